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
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from emailexport.models import ExportRecord
from emailexport.runtime import embedded_flow_settings, ensure_prefect_api, open_store
from emailexport.settings import get_settings

__all__ = ["START_ATTEMPTS", "DeploymentLauncher", "Launcher", "LocalLauncher", "make_launcher", "run_export_flow"]

START_ATTEMPTS = 3  # a run Prefect refused to create (e.g. 503 from a busy server) is tried again
NO_RESULT = "the export flow run ended without recording a result"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


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
                    state = export_email(export_id, return_state=True)
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
    server for the whole bulk run (started before the first export)."""

    mode = "local"

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bulk-export")
        self._slots = threading.BoundedSemaphore(concurrency * 2)  # bounded backlog: bounded memory
        with contextlib.suppress(Exception):  # each row tries again and, failing, records why
            ensure_prefect_api()

    def launch(self, record: ExportRecord, on_done: Callable[[int], None]) -> None:
        self._slots.acquire()

        def run() -> None:
            try:
                run_export_flow(record.id)
            finally:
                self._slots.release()
                on_done(record.id)

        self._pool.submit(run)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


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
