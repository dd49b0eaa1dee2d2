"""Serve the pipeline's deployments from this process (no work pool needed): `python -m deployments.serve`.

`prefect.yaml` declares the same deployments for `prefect deploy` onto a server with workers;
`emailexport serve` runs this module as its runner.
"""

from __future__ import annotations

from prefect import serve

from emailexport.settings import get_settings
from flows.bulk_export import bulk_export
from flows.export_email import export_email
from flows.reconcile import reconcile_exports

__all__ = ["BULK_CRON", "RECONCILE_CRON", "deployments", "main"]

# Every minute: with 30-second heartbeats a dead run is noticed about 75 s after its last beat
# (README "Monitoring"), so checking more often would not find it sooner.
RECONCILE_CRON = "* * * * *"
BULK_CRON = "0 6 * * *"  # daily; the CSV comes from EMAILEXPORT_BULK_CSV_URL


def deployments() -> list:
    """The deployments this project serves."""
    return [
        export_email.to_deployment(name="export-email", tags=["emailexport"]),
        reconcile_exports.to_deployment(name="reconcile-exports", tags=["emailexport"], cron=RECONCILE_CRON),
        # Scheduled only when there is a CSV to read; it can always be run by hand from the UI.
        bulk_export.to_deployment(name="bulk-export", tags=["emailexport"],
                                  cron=BULK_CRON if get_settings().bulk_csv_url else None),
    ]


def main(limit: int | None = None) -> None:
    """Serve until interrupted, running at most `limit` flow runs at once (default: the
    `EMAILEXPORT_RUNNER_LIMIT` setting, 8)."""
    serve(*deployments(), limit=limit or get_settings().runner_limit)


if __name__ == "__main__":
    main()
