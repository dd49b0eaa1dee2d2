"""`bulk-export`: a CSV of export specs -> one `export-email` flow run per good row -> a report.

The flow only sequences the stages; reading and validating rows, launching and waiting for the
exports (thread pool, retries) live in `emailexport.bulk_run` and `emailexport.launch`.
"""

from __future__ import annotations

import os

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Completed, Failed, State

from emailexport.bulk import BulkFileError
from emailexport.bulk_run import ARTIFACT_ROWS, BulkSummary, RowResult, run_bulk, set_progress_listener
from emailexport.settings import get_settings

__all__ = ["BulkSummary", "RowResult", "bulk_export", "publish_bulk_report", "run_bulk", "set_progress_listener"]


@flow(name="bulk-export", flow_run_name="bulk-export")
def bulk_export(csv_url: str | None = None, force: bool = False, concurrency: int | None = None) -> State:
    """Export every row of the CSV at `csv_url` (default: the `EMAILEXPORT_BULK_CSV_URL` setting)."""
    logger = get_run_logger()
    settings = get_settings()
    url = csv_url or settings.bulk_csv_url
    if not url:
        return Failed(message="no CSV given: pass csv_url or set EMAILEXPORT_BULK_CSV_URL")
    try:
        summary = run_bulk(url, force=force, concurrency=concurrency, api_url=os.environ.get("PREFECT_API_URL"))
    except BulkFileError as exc:
        logger.error("%s", exc)
        return Failed(message=str(exc))
    for warning in summary.warnings:
        logger.warning("%s", warning)
    logger.info("Bulk export of %s (%s mode, %d at once): %s", url, summary.mode, summary.concurrency, summary.line())
    publish_bulk_report(summary)
    if not summary.ok:
        return Failed(message=summary.line(), data=summary)
    return Completed(message=summary.line(), data=summary)


def publish_bulk_report(summary: BulkSummary) -> None:
    """A table artifact (one row per CSV row) and a markdown summary in the Prefect UI."""
    rows = [{"row": r.row, "export_id": r.export_id or "", "status": r.status, "errors": "; ".join(r.errors)}
            for r in summary.rows[:ARTIFACT_ROWS]]
    create_table_artifact(key="bulk-export-rows", table=rows, description=f"Bulk export of {summary.source}")
    lines = [f"# Bulk export of {summary.source}", "", f"- {summary.line()}",
             f"- mode: {summary.mode}, {summary.concurrency} at once"]
    if summary.summary_url:
        lines.append(f"- every row: {summary.summary_url}")
    if len(summary.rows) > ARTIFACT_ROWS:
        lines.append(f"- the table shows the first {ARTIFACT_ROWS} rows")
    lines += [f"- warning: {w}" for w in summary.warnings]
    create_markdown_artifact(key="bulk-export-summary", markdown="\n".join(lines))
