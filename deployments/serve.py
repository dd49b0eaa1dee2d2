"""Serve the pipeline's deployments from this process (no work pool needed): `python -m deployments.serve`.

`prefect.yaml` declares the same deployments for `prefect deploy` onto a server with workers;
`emailexport serve` runs this module as its runner.
"""

from __future__ import annotations

from prefect import serve

from flows.export_email import export_email
from flows.reconcile import reconcile_exports

__all__ = ["RECONCILE_CRON", "deployments", "main"]

# Every minute: with 30-second heartbeats a dead run is noticed about 75 s after its last beat
# (README "Monitoring"), so checking more often would not find it sooner.
RECONCILE_CRON = "* * * * *"


def deployments() -> list:
    """The deployments this project serves."""
    return [
        export_email.to_deployment(name="export-email", tags=["emailexport"]),
        reconcile_exports.to_deployment(name="reconcile-exports", tags=["emailexport"], cron=RECONCILE_CRON),
        # bulk-export (CSV, on a cron schedule) comes with issue 6.
    ]


def main(limit: int | None = None) -> None:
    """Serve until interrupted, running at most `limit` flow runs at once (default: the
    `EMAILEXPORT_RUNNER_LIMIT` setting, 8)."""
    from emailexport.settings import get_settings

    serve(*deployments(), limit=limit or get_settings().runner_limit)


if __name__ == "__main__":
    main()
