"""Run reconciliation: tell whether an export's flow run is dead and fail its record (the dispatcher's
reconcile loop every `reconcile_interval_seconds`, and the API whenever it reads a record). It lives
below both the API and the flows; it makes no flow runs of its own, so the Prefect UI's run list
shows only export and bulk runs.

How a dead run is noticed (Prefect 3.9.1): a flow run's engine emits a `prefect.flow-run.heartbeat`
event every `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` seconds (default 180, minimum 30) from a daemon
thread, as long as the process lives. When a runner or worker sees its flow process die it reports
the run `Crashed`; when the runner or worker dies too (SIGKILL, a lost machine) nobody reports
anything and the run stays `Running` forever. So the rule, per in_progress record:

- its run ended without completing the record (Failed, Crashed, Cancelled, or Completed while the
  record is still in_progress) -> failed, with the run's state and message;
- its run is gone from the server -> failed ("vanished");
- its run is Running (or Pending after a first heartbeat) and its newest heartbeat (or, before the
  first one, the time it entered that state) is older than `misses x frequency + grace` -> failed
  ("stopped sending heartbeats"). Two missed beats, because one can be late under load; the grace
  covers event delivery (the server persists events in batches every few seconds);
- its run is Pending without any heartbeat for `reconcile_pending_seconds` (600) -> failed ("never
  started"). Pending is the flow process starting; on a loaded machine (measured: 2 cores, load 15)
  that took over 75 s, so the heartbeat bound would fail live runs (issue 13's benchmark did);
- its run still waits for a worker (Scheduled, Late) after `reconcile_max_queued_seconds` -> failed;
- the record has no run and no outbox row after `reconcile_unlaunched_seconds` (created by a
  process that died before creating the run) -> failed. A record still in the outbox is the
  dispatcher's: it fails it after `dispatch_max_wait_seconds` (`emailexport.runs.dispatcher`).

Paused and Cancelling runs are left alone: Prefect bounds those itself (pause timeout, cancellation).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from emailexport.models import ExportRecord
from emailexport.runs.flow_runs import FlowRuns, PrefectUnavailable, RunView, heartbeat_seconds
from emailexport.settings import Settings
from emailexport.store import Store

__all__ = ["dead_reason", "reconcile_pass", "reconcile_record"]

log = logging.getLogger("emailexport.reconcile")
_ENDED_BADLY = {"FAILED", "CRASHED", "CANCELLED"}
_ALIVE = {"RUNNING", "PENDING"}
_QUEUED = {"SCHEDULED"}


def _age(now: datetime, then: datetime) -> float:
    # SQLite hands back naive datetimes; everything the store writes is UTC.
    return (now - (then if then.tzinfo else then.replace(tzinfo=UTC))).total_seconds()


def dead_reason(record: ExportRecord, run: RunView | None, *, now: datetime, settings: Settings,
                beat: int | None) -> str | None:
    """The staleness rule (module docstring): why `record`'s run is dead, or None while it may live.
    `run` None means the run is not on the server."""
    if record.flow_run_id is None:
        waited = _age(now, record.created_at)
        return "no flow run was created for this export" if waited > settings.reconcile_unlaunched_seconds else None
    if run is None:
        return f"export flow run {record.flow_run_id} vanished from the Prefect server"
    described = f"export flow run {run.state_name.lower()}" + (f": {run.message}" if run.message else "")
    if run.state_type in _ENDED_BADLY:
        return described
    if run.state_type == "COMPLETED":
        return "export flow run completed without recording a result"
    since = run.last_heartbeat or run.entered_state_at
    if run.state_type == "PENDING" and run.last_heartbeat is None and since is not None:
        # Its process is still starting (imports, a loaded machine): no heartbeat is due yet.
        waited = _age(now, since)
        if waited > settings.reconcile_pending_seconds:
            return (f"export flow run never started: {run.state_name.lower()} for {waited:.0f} s without a "
                    f"heartbeat (limit {settings.reconcile_pending_seconds} s): the process starting it was lost")
        return None
    if run.state_type in _ALIVE and beat is not None and since is not None:
        limit = settings.reconcile_heartbeat_misses * beat + settings.reconcile_grace_seconds
        silent = _age(now, since)
        if silent > limit:
            return (f"export flow run stopped sending heartbeats ({run.state_name.lower()}, silent for "
                    f"{silent:.0f} s, limit {limit} s): the process running it was lost")
    if run.state_type in _QUEUED and since is not None:
        waited = _age(now, since)
        if waited > settings.reconcile_max_queued_seconds:
            return f"export flow run waited {waited:.0f} s for a worker; no worker picked it up"
    return None


def reconcile_record(store: Store, runs: FlowRuns, record: ExportRecord, settings: Settings,
                     now: datetime | None = None) -> ExportRecord:
    """Apply the staleness rule to one record; the record as it is afterwards. A record that ended in
    the meantime is left as it is (`fail_if_in_progress` re-checks under a row lock)."""
    if record.status != "in_progress":
        return record
    if record.flow_run_id is None and store.dispatch_pending(record.id):
        return record  # accepted, its run not created yet: the dispatcher bounds that wait
    view = runs.view(record.flow_run_id) if record.flow_run_id else None
    reason = dead_reason(record, view, now=now or datetime.now(UTC), settings=settings, beat=heartbeat_seconds())
    if reason is None:
        return record
    log.warning("Export %s marked failed: %s", record.id, reason)
    return store.fail_if_in_progress(record.id, reason) or record


def reconcile_pass(store: Store, runs: FlowRuns, settings: Settings, limit: int = 500) -> tuple[int, int]:
    """Check up to `limit` in_progress records (oldest first) against their flow runs; (checked,
    failed). Stops early, without failing anything, while the Prefect server is unreachable."""
    checked = failed = 0
    for record in store.exports_in_progress(limit):
        try:
            after = reconcile_record(store, runs, record, settings)
        except PrefectUnavailable as exc:
            log.warning("Reconcile stopped: %s", exc)
            break
        checked += 1
        failed += after.status == "failed"
    return checked, failed
