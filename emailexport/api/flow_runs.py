"""Flow runs of exports: create one for a record (the API), and tell whether a record's run is dead
(the reconciler: `flows/reconcile.py` on a schedule, and the API whenever it reads a record).

How a dead run is noticed (Prefect 3.9.1): a flow run's engine emits a `prefect.flow-run.heartbeat`
event every `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` seconds (default 180, minimum 30) from a daemon
thread, as long as the process lives. When a runner or worker sees its flow process die it reports
the run `Crashed`; when the runner or worker dies too (SIGKILL, a lost machine) nobody reports
anything and the run stays `Running` forever. So the rule, per in_progress record:

- its run ended without completing the record (Failed, Crashed, Cancelled, or Completed while the
  record is still in_progress) -> failed, with the run's state and message;
- its run is gone from the server -> failed ("vanished");
- its run is Running or Pending and its newest heartbeat (or, before the first one, the time it
  entered that state) is older than `misses x frequency + grace` -> failed ("stopped sending
  heartbeats"). Two missed beats, because one can be late under load; the grace covers event
  delivery (the server persists events in batches every few seconds);
- its run still waits for a worker (Scheduled, Late) after `reconcile_max_queued_seconds` -> failed;
- the record has no run at all after `reconcile_unlaunched_seconds` (the process that created it
  died before creating the run) -> failed.

Paused and Cancelling runs are left alone: Prefect bounds those itself (pause timeout, cancellation).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from emailexport.errors import TransientError
from emailexport.models import ExportRecord
from emailexport.settings import Settings
from emailexport.store import Store

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

__all__ = [
    "FlowRuns",
    "PrefectUnavailable",
    "RunView",
    "dead_reason",
    "heartbeat_seconds",
    "reconcile_record",
    "run_name",
    "run_tags",
]

log = logging.getLogger("emailexport.flow_runs")
_ENDED_BADLY = {"FAILED", "CRASHED", "CANCELLED"}
_ALIVE = {"RUNNING", "PENDING"}
_QUEUED = {"SCHEDULED"}


class PrefectUnavailable(TransientError):
    """The Prefect server could not be reached or refused the request."""


def run_name(record: ExportRecord) -> str:
    """`export-{id}-{email slug}`, as the flow names runs it starts itself."""
    from tasks.package import slug

    return f"export-{record.id}-{slug(record.email.name)}"


def run_tags(record: ExportRecord, connector_type: str | None = None) -> list[str]:
    """Tags to filter runs by in the Prefect UI: workspace, export type, connector type."""
    tags = ["emailexport", f"workspace:{record.workspace_id}", f"type:{record.export_type}"]
    if connector_type:
        tags.append(f"connector:{connector_type}")
    return tags


@dataclass(frozen=True)
class RunView:
    """What the reconciler needs to know about a flow run."""

    state_type: str  # Prefect's StateType value: RUNNING, CRASHED, ...
    state_name: str
    message: str | None
    entered_state_at: datetime | None
    last_heartbeat: datetime | None


def heartbeat_seconds() -> int | None:
    """The heartbeat period flow runs use (None: heartbeats are off), as Prefect computes it."""
    from prefect.flow_engine import MINIMUM_HEARTBEAT_INTERVAL
    from prefect.settings import get_current_settings

    value = get_current_settings().flows.heartbeat_frequency
    return None if value is None else max(int(value), MINIMUM_HEARTBEAT_INTERVAL)


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


class FlowRuns:
    """The Prefect side of exports, against one Prefect API (not the process-wide settings, so an
    app and a test harness in one process cannot leak into each other)."""

    def __init__(self, api_url: str | None, deployment: str = "export-email/export-email") -> None:
        self.api_url = api_url
        self.deployment = deployment
        self._lock = threading.Lock()
        self._client: SyncPrefectClient | None = None
        self._deployment_id: UUID | None = None

    def client(self) -> SyncPrefectClient:
        """One shared HTTP client (httpx clients are thread-safe), opened on first use."""
        from prefect.client.orchestration import SyncPrefectClient

        if self.api_url is None:
            raise PrefectUnavailable("no Prefect server is configured (set PREFECT_API_URL)")
        with self._lock:
            if self._client is None:
                client = SyncPrefectClient(self.api_url)
                try:
                    client.__enter__()
                except Exception as exc:
                    raise PrefectUnavailable(f"the Prefect server is not reachable ({type(exc).__name__})") from exc
                self._client = client
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.__exit__(None, None, None)
                self._client = None

    def launch(self, record: ExportRecord, connector_type: str | None = None) -> str:
        """Create (not wait for) a run of the export deployment for `record`; its id."""
        from prefect.exceptions import ObjectNotFound

        client = self.client()
        try:
            for attempt in (1, 2):
                deployment_id = self._deployment_id or client.read_deployment_by_name(self.deployment).id
                try:
                    run = client.create_flow_run_from_deployment(
                        deployment_id, parameters={"export_id": record.id}, name=run_name(record),
                        tags=run_tags(record, connector_type), idempotency_key=f"export-{record.id}",
                    )
                except ObjectNotFound:
                    self._deployment_id = None  # redeployed under a new id: look it up again once
                    if attempt == 2:
                        raise
                    continue
                self._deployment_id = deployment_id
                return str(run.id)
        except ObjectNotFound:
            raise PrefectUnavailable(f"the deployment {self.deployment} is not on the Prefect server "
                                     "(start `emailexport serve`, or `prefect deploy --all`)") from None
        except PrefectUnavailable:
            raise
        except Exception as exc:
            raise PrefectUnavailable(f"the Prefect server is not reachable ({type(exc).__name__})") from exc
        raise AssertionError("unreachable")

    def view(self, flow_run_id: str) -> RunView | None:
        """The run's state and newest heartbeat; None when the server does not know the run."""
        from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
        from prefect.exceptions import ObjectNotFound

        client = self.client()
        try:
            run = client.read_flow_run(UUID(flow_run_id))
        except (ObjectNotFound, ValueError):
            return None
        except Exception as exc:
            raise PrefectUnavailable(f"the Prefect server is not reachable ({type(exc).__name__})") from exc
        state: Any = run.state
        last = None
        if state is not None and state.type.value in _ALIVE:
            try:
                page = client.read_events(EventFilter(
                    occurred=EventOccurredFilter(since=datetime.now(UTC) - timedelta(days=1)),  # type: ignore[arg-type]
                    event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
                    resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
                ), limit=1)
            except Exception as exc:
                raise PrefectUnavailable(f"the Prefect server is not reachable ({type(exc).__name__})") from exc
            last = page.events[0].occurred if page.events else None
        return RunView(
            state_type=state.type.value if state else "SCHEDULED",
            state_name=state.name if state and state.name else "Scheduled",
            message=state.message if state else None,
            entered_state_at=state.timestamp if state else run.created,
            last_heartbeat=last,
        )


def reconcile_record(store: Store, runs: FlowRuns, record: ExportRecord, settings: Settings,
                     now: datetime | None = None) -> ExportRecord:
    """Apply the staleness rule to one record; the record as it is afterwards. A record that ended in
    the meantime is left as it is (`fail_if_in_progress` re-checks under a row lock)."""
    if record.status != "in_progress":
        return record
    view = runs.view(record.flow_run_id) if record.flow_run_id else None
    reason = dead_reason(record, view, now=now or datetime.now(UTC), settings=settings, beat=heartbeat_seconds())
    if reason is None:
        return record
    log.warning("Export %s marked failed: %s", record.id, reason)
    return store.fail_if_in_progress(record.id, reason) or record
