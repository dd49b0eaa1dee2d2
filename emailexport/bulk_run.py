"""A bulk run: a CSV of export specs -> one export record and one `export-email` flow run per good
row, launched side by side (`emailexport.launch`), waited for, and summarized.

Every row is validated like an API body (`validate_export_request`); a bad row is reported with
its row number and field errors and the others go on. Exports progress side by side, never one
after another:

- **deployment mode** (a Prefect server with the `export-email` deployment, as under
  `emailexport serve` or `prefect deploy`): each row becomes a flow run of that deployment,
  executed by the runner or workers with their own concurrency limit; the bulk run waits for the
  records to end.
- **local mode** (the embedded default): each row's `export-email` flow runs in this process, on
  a thread pool of `concurrency` threads, all against one ephemeral Prefect server.

Either way each export is its own flow run with its own record. A row whose export already
completed is skipped (its key: the `idempotency_key` column, else a hash of the row), so running a
file again, or resuming after a crash, creates nothing twice; `force` exports again.
"""

from __future__ import annotations

import csv
import io
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from emailexport.bulk import CsvRow, read_rows, row_key
from emailexport.errors import EmailExportError, NotFoundError, ValidationFailed
from emailexport.launch import Launcher, LocalLauncher, make_launcher
from emailexport.models import ExportRecord
from emailexport.runtime import open_storage, open_store
from emailexport.settings import get_settings
from emailexport.store import Store
from emailexport.validation import ValidatedExport, validate_export_request

__all__ = ["ARTIFACT_ROWS", "BulkSummary", "RowResult", "run_bulk", "set_progress_listener"]

RowStatus = Literal["invalid", "skipped", "completed", "failed", "running"]
ARTIFACT_ROWS = 1000  # the UI table; the full summary is a CSV file in output storage


@dataclass
class RowResult:
    row: int
    status: RowStatus
    export_id: int | None = None
    errors: list[str] = field(default_factory=list)


@dataclass
class BulkSummary:
    source: str
    mode: str
    concurrency: int
    rows: list[RowResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary_url: str | None = None

    def count(self, status: RowStatus) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def created(self) -> int:
        return sum(1 for r in self.rows if r.status in ("completed", "failed", "running") and r.export_id)

    @property
    def ok(self) -> bool:
        return not any(r.status in ("invalid", "failed", "running") for r in self.rows)

    def line(self) -> str:
        return (f"{len(self.rows)} rows read, {self.created} exports created, {self.count('completed')} completed, "
                f"{self.count('failed')} failed, {self.count('skipped')} skipped, {self.count('invalid')} invalid"
                + (f", {self.count('running')} still running" if self.count("running") else ""))


Progress = Callable[[str], None]  # "validated", "created", "completed", "failed", "skipped", "invalid"
_listener: Progress | None = None


def set_progress_listener(listener: Progress | None) -> None:
    """In-process progress events (the CLI's progress bar); flows run elsewhere send none."""
    global _listener
    _listener = listener


def _emit(event: str) -> None:
    if _listener is not None:
        _listener(event)


# -- one row --------------------------------------------------------------------------------


def _check_row(store: Store, row: CsvRow) -> tuple[ValidatedExport | None, list[str]]:
    """The validated request, or the row's errors as `path: message` lines (all of them)."""
    errors = {k: list(v) for k, v in row.errors.items()}
    checked = None
    if row.workspace_id is not None:
        try:
            checked = validate_export_request(store, row.workspace_id, row.body)
        except ValidationFailed as exc:
            for path, messages in exc.errors.items():
                errors.setdefault(path, []).extend(m for m in messages if m not in errors.get(path, []))
        except NotFoundError:
            errors.setdefault("workspace_id", []).append(f"workspace {row.workspace_id} not found")
    lines = [f"{path}: {message}" for path, messages in errors.items() for message in messages]
    return (None if lines else checked), lines


def _create(store: Store, checked: ValidatedExport, key: str, attempt: int) -> ExportRecord:
    request = checked.request
    return store.create_export(
        workspace=checked.workspace, email=checked.email, export_type=request.export_type,
        options=request.options, connector_id=request.connector_id, cdn_connector_id=request.cdn_connector_id,
        dynamic_content_profile_id=request.dynamic_content_profile_id, integration_name=checked.integration_name,
        idempotency_key=key if attempt == 0 else f"{key}:{attempt}",
    )


# -- the whole file -------------------------------------------------------------------------


def run_bulk(url: str, *, force: bool = False, concurrency: int | None = None, api_url: str | None = None,
             wait_seconds: float | None = None) -> BulkSummary:
    """Read, validate and launch every row of the CSV at `url`, wait for the exports, summarize."""
    settings = get_settings()
    store = open_store()
    concurrency = concurrency or settings.bulk_concurrency
    warnings: list[str] = []
    rows = read_rows(url, warnings=warnings)
    first = next(rows, None)  # raises BulkFileError (missing columns, empty file) before anything
    launcher = make_launcher(concurrency, api_url)
    summary = BulkSummary(source=url, mode=launcher.mode, concurrency=concurrency, warnings=warnings)
    running: dict[int, RowResult] = {}
    lock = threading.Lock()

    def finish(export_id: int) -> None:
        record = store.export(export_id)
        if record is None or record.status == "in_progress":
            return
        with lock:
            result = running.pop(export_id, None)
        if result is not None:
            result.status = "completed" if record.status == "completed" else "failed"
            result.errors = [f"{where}: {message}" for where, messages in record.export_errors.items()
                             for message in (messages or [])]
            _emit(result.status)

    try:
        for row in itertools.chain([first] if first else [], rows):
            result = _one_row(store, row, force, launcher, finish, running, lock)
            summary.rows.append(result)
    finally:
        if isinstance(launcher, LocalLauncher):
            launcher.close()  # waits for the exports still running here
    deadline = time.monotonic() + (wait_seconds if wait_seconds is not None else settings.bulk_wait_seconds)
    while running and time.monotonic() < deadline:
        for export_id in list(running):
            finish(export_id)
        if running:
            time.sleep(0.5)
    launcher.close()
    summary.summary_url = _write_summary(summary)
    return summary


def _one_row(store: Store, row: CsvRow, force: bool, launcher: Launcher,
             finish: Callable[[int], None], running: dict[int, RowResult], lock: threading.Lock) -> RowResult:
    checked, errors = _check_row(store, row)
    _emit("validated")
    if checked is None:
        _emit("invalid")
        return RowResult(row.number, "invalid", errors=errors)
    key = row_key(row)
    earlier = store.exports_for_key(row.workspace_id or 0, key)
    if earlier and not force and earlier[0].status in ("completed", "in_progress"):
        _emit("skipped")
        state = "already completed" if earlier[0].status == "completed" else "still in progress"
        return RowResult(row.number, "skipped", earlier[0].id, [f"export {earlier[0].id} {state}"])
    record = _create(store, checked, key, len(earlier))
    result = RowResult(row.number, "running", record.id)
    with lock:
        running[record.id] = result
    _emit("created")
    try:
        launcher.launch(record, finish)
    except EmailExportError as exc:
        with lock:
            running.pop(record.id, None)
        store.fail_if_in_progress(record.id, f"could not start the export: {exc}")
        _emit("failed")
        return RowResult(row.number, "failed", record.id, [f"could not start the export: {exc}"])
    return result


def _write_summary(summary: BulkSummary) -> str | None:
    """The per-row summary as CSV in output storage (the UI table holds the first rows only)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "export_id", "status", "errors"])
    for r in summary.rows:
        writer.writerow([r.row, r.export_id or "", r.status, " | ".join(r.errors)])
    storage = open_storage()
    key = f"bulk/{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-summary.csv"
    try:
        storage.write(key, buffer.getvalue().encode("utf-8"))
    except OSError:
        return None
    return storage.download_url(key, "")
