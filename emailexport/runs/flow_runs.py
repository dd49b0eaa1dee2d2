"""The Prefect side of exports: create a flow run for a record (the dispatcher), and read a run's
state and newest heartbeat (the reconciler, `emailexport.runs.reconcile`)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from emailexport.errors import TransientError
from emailexport.models import ExportRecord

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

__all__ = ["FlowRuns", "PrefectUnavailable", "RunView", "heartbeat_seconds", "run_name", "run_tags"]

log = logging.getLogger("emailexport.flow_runs")
_ALIVE = {"RUNNING", "PENDING"}  # runs whose heartbeat is worth reading



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
