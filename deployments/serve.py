"""Serve the pipeline's deployments from this process (no work pool needed): `python -m deployments.serve`.

`prefect.yaml` declares the same deployments for `prefect deploy` onto a server with workers;
`emailexport serve` runs this module as its runner. There is no reconcile deployment: the
dispatcher's reconcile loop does that job without flow runs (`emailexport.runs.dispatcher`), so the
Prefect UI's run list shows only export and bulk runs.
"""

from __future__ import annotations

from prefect import serve

from emailexport.settings import get_settings
from flows.bulk_export import bulk_export
from flows.export_email import export_email

__all__ = ["BULK_CRON", "deployments", "main"]

BULK_CRON = "0 6 * * *"  # daily; the CSV comes from EMAILEXPORT_BULK_CSV_URL


def deployments() -> list:
    """The deployments this project serves."""
    return [
        export_email.to_deployment(name="export-email", tags=["emailexport"]),
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
