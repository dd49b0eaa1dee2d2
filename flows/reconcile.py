"""`reconcile-exports`: a scheduled flow that fails every in_progress export whose flow run is dead,
so none stays in_progress forever (the rule: `emailexport.api.flow_runs`, docs/api.md "Monitoring")."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.settings import get_current_settings

from emailexport.api.flow_runs import FlowRuns, PrefectUnavailable, reconcile_record
from emailexport.runtime import open_store
from emailexport.settings import get_settings

__all__ = ["reconcile_exports"]


@flow(name="reconcile-exports", log_prints=False)
def reconcile_exports(limit: int = 500) -> dict[str, int]:
    """Check up to `limit` in_progress records against their flow runs; counts of checked and failed."""
    logger = get_run_logger()
    settings = get_settings()
    store = open_store(settings)
    runs = FlowRuns(get_current_settings().api.url, settings.export_deployment)
    checked = failed = 0
    try:
        for record in store.exports_in_progress(limit):
            checked += 1
            try:
                after = reconcile_record(store, runs, record, settings)
            except PrefectUnavailable as exc:
                logger.warning("Stopped: the Prefect server is not reachable (%s)", exc)
                break
            if after.status == "failed":
                failed += 1
                logger.warning("Export %s marked failed: %s", record.id, "; ".join(after.export_errors["base"] or []))
    finally:
        runs.close()
    logger.info("Checked %d in_progress export(s); %d had a dead flow run and were marked failed", checked, failed)
    return {"checked": checked, "failed": failed}
