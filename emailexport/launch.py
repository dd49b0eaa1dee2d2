"""Execution machinery below the flows: how an export's flow run is started and carried out.

- `run_export_flow`: one `export-email` flow run in this process (the CLI's `export`, each row of a
  local bulk run). It starts the embedded Prefect server first (`runtime.ensure_prefect_api`) and
  retries a run Prefect refused to create, with jitter (a busy ephemeral server answers 503). A
  record whose flow run never started is failed at once with the true reason (the exception that
  stopped it), never left `in_progress` for a reconciler to guess about later.
- `LocalLauncher`: a bounded thread pool of such runs (bulk local mode).
- `DeploymentLauncher`: one flow run of the `export-email` deployment per export (bulk with a
  Prefect server), executed by its runner or workers.

The flows (`flows/`) only sequence stages; these classes hold the threads, retries and waiting.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emailexport.models import ExportRecord
from emailexport.runtime import embedded_flow_settings, ensure_prefect_api, is_embedded, open_store
from emailexport.settings import get_settings

__all__ = ["START_ATTEMPTS", "DeploymentLauncher", "Launcher", "LocalLauncher", "make_launcher", "run_export_flow"]

START_ATTEMPTS = 3  # a run Prefect refused to create (e.g. 503 from a busy server) is tried again
NO_RESULT = "the export flow run ended without recording a result"
logger = logging.getLogger(__name__)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


_local_flows: dict[int, tuple[Any, Any]] = {}  # id(flow) -> (flow, the same with its result storage named)


def _in_process(flow: Any) -> Any:
    """The flow as run here against the ephemeral server, with its result storage named: the local
    storage path, which is what Prefect picks when the server has no default storage block (an
    ephemeral server of this project never has one). Unnamed, Prefect asks the server for that
    default at the flow run and again at each task run: three of an export's twelve API calls."""
    if not is_embedded():
        return flow
    pair = _local_flows.get(id(flow))
    if pair is None or pair[0] is not flow:
        from prefect.settings import get_current_settings

        path = Path(get_current_settings().results.local_storage_path)
        # persist_result stays off as before: naming a storage would otherwise switch it on.
        pair = _local_flows[id(flow)] = (flow, flow.with_options(result_storage=path, persist_result=False))
    return pair[1]


def run_export_flow(export_id: int, *, sleep: Callable[[float], None] = time.sleep) -> Any:
    """Run the `export-email` flow for `export_id` here and return its final state (None when it
    never ran). Whatever happens, the record is not left `in_progress`: a run that never started
    fails it with the reason it did not start."""
    from flows.export_email import export_email

    store = open_store()
    problem = NO_RESULT
    state: Any = None
    try:
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                ensure_prefect_api()
                with embedded_flow_settings():
                    state = _in_process(export_email)(export_id, return_state=True)
                break
            except Exception as exc:  # the run could not even start (server down or busy)
                problem = f"the export flow run could not start: {_describe(exc)}"
                started = store.export(export_id)
                if attempt == START_ATTEMPTS or (started is not None and started.flow_run_id):
                    if started is not None and started.flow_run_id:
                        problem = f"the export flow run stopped: {_describe(exc)}"
                    break  # it did start: a second run would export twice
                sleep(attempt * random.uniform(0.5, 1.5))
    finally:
        store.fail_if_in_progress(export_id, problem)
    return state


class LocalLauncher:
    """Runs each export's flow in this process, `concurrency` at a time, against one Prefect
    server for the whole bulk run (started before the first export).

    Each of the `concurrency` worker threads keeps one Prefect API client for all the runs it
    executes (Prefect's `SyncClientContext`, which a flow run reuses when one is open): otherwise
    every flow run builds a client (an SSL context, a connection pool) and asks the server for a
    CSRF token first. `launch` blocks while `concurrency` exports wait to start (bounded memory)."""

    mode = "local"

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._jobs: queue.Queue[tuple[int, Callable[[int], None]] | None] = queue.Queue(maxsize=concurrency)
        with contextlib.suppress(Exception):  # each row tries again and, failing, records why
            ensure_prefect_api()
        self._workers = [threading.Thread(target=self._work, name=f"bulk-export-{n}", daemon=True)
                         for n in range(concurrency)]
        for worker in self._workers:
            worker.start()

    def _work(self) -> None:
        with contextlib.ExitStack() as stack:
            with contextlib.suppress(Exception):  # no server yet: each run makes its own client
                from prefect.context import SyncClientContext

                stack.enter_context(SyncClientContext.get_or_create())
            while (job := self._jobs.get()) is not None:
                export_id, on_done = job
                # A worker must outlive any one export: run_export_flow records its own failures, and
                # a worker that died here would leave `launch` and `close` waiting on a full queue.
                try:
                    run_export_flow(export_id)
                except Exception:
                    logger.exception("bulk export %s: unexpected error", export_id)
                try:
                    on_done(export_id)
                except Exception:  # the bulk run's bookkeeping (a store read) failed: it polls again
                    logger.exception("bulk export %s: reporting its end failed", export_id)

    def launch(self, record: ExportRecord, on_done: Callable[[int], None]) -> None:
        self._jobs.put((record.id, on_done))

    def close(self) -> None:
        """Wait for every launched export to end, then stop the workers."""
        for _ in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            worker.join()


class DeploymentLauncher:
    """Creates a run of the export deployment per export; the runner or workers execute them."""

    mode = "deployment"

    def __init__(self, api_url: str, concurrency: int) -> None:
        from emailexport.api.flow_runs import FlowRuns

        self.concurrency = concurrency
        self.runs = FlowRuns(api_url, get_settings().export_deployment)

    def launch(self, record: ExportRecord, on_done: Callable[[int], None]) -> None:
        flow_run_id = self.runs.launch(record)  # ends elsewhere: the bulk run polls the records
        open_store().update_export(record.id, flow_run_id=flow_run_id)

    def close(self) -> None:
        self.runs.close()


Launcher = LocalLauncher | DeploymentLauncher


def make_launcher(concurrency: int, api_url: str | None) -> Launcher:
    """A deployment launcher when `api_url` serves the export deployment, else a local one."""
    if api_url:
        launcher = DeploymentLauncher(api_url, concurrency)
        try:
            launcher.runs.client().read_deployment_by_name(launcher.runs.deployment)
            return launcher
        except Exception:  # no server or no deployment: run the exports here instead
            launcher.close()
    return LocalLauncher(concurrency)
