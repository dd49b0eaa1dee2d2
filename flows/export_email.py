"""`export-email`: one export, from its record to its outputs. Reads top to bottom like the pipeline:
load -> place images (fetch, upload; mapped) -> render every locale (cache hits read directly, the
others mapped as cached, retried task runs) -> checks -> write outputs -> record -> report.

What a run writes to the Prefect API is kept to what a user reads (issue 14; each write is a round
trip to the server and, on the embedded default, a SQLite write): the flow run and its states, one
task run per stage that can fail transiently (load, image fetch/upload, each locale rendered, the
outputs, the record), a progress artifact only when rendering takes longer than `PROGRESS_EVERY_S`
seconds (then updated at most that often), and two report artifacts (the summary and one table of
every locale). Checks and the report run inline
(`.fn`): they cannot fail transiently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from prefect.runtime import flow_run as current_run
from prefect.states import Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner

from emailexport.errors import EmailExportError, ValidationFailed
from emailexport.images.library import ImageLibrary
from emailexport.render.result import LocaleRender
from emailexport.runtime import open_storage, open_store
from emailexport.settings import get_settings
from tasks.checks import check_locales
from tasks.images import apply_image_errors, place_images, with_image_urls
from tasks.load import load_export
from tasks.package import Outputs, slug, write_outputs
from tasks.pdf_files import render_pdf_files
from tasks.previews import build_previews, image_resources
from tasks.push import PushOutcome, push_locales
from tasks.record import record_result, stop_if_ended
from tasks.render import cached_renders, render_locale
from tasks.report import publish_report

__all__ = ["PROGRESS_EVERY_S", "export_email", "mark_record_failed", "run_name", "set_locale_listener"]

PROGRESS_EVERY_S = 2.0  # the progress artifact is updated at most this often (and once at the end)

LocaleListener = Callable[[str | None, int, int], None]  # (locale just rendered or None at start, done, total)
_locale_listener: LocaleListener | None = None


def set_locale_listener(listener: LocaleListener | None) -> None:
    """In-process progress of the locales as they render (the CLI's progress bar); flow runs
    elsewhere (a deployment, a worker) send none."""
    global _locale_listener
    _locale_listener = listener


def mark_record_failed(flow: Any, flow_run: Any, state: State) -> None:
    """State hook (failed, crashed, cancelled): a record never stays `in_progress` after its run."""
    export_id = (flow_run.parameters or {}).get("export_id")
    if export_id is None:
        return
    reason = f"export flow run {(state.name or state.type.value).lower()}"
    if state.message:
        reason += f": {state.message}"
    open_store().fail_if_in_progress(int(export_id), reason)


def run_name() -> str:
    """`export-{id}-{email name}`: the record's email, so a run is recognisable in the UI."""
    export_id = current_run.parameters["export_id"]
    record = open_store().export(int(export_id))
    if record is None:
        return f"export-{export_id}"
    return f"export-{export_id}-{slug(record.email.name)}"


class _Progress:
    """The export's progress artifact, for renders that take a while: created at the first update
    `PROGRESS_EVERY_S` seconds after the renders started, then updated at most that often and once
    when every locale is done. An export rendered sooner has none: it would only ever show 100 %,
    at the price of two API writes."""

    def __init__(self, export_id: int, total: int) -> None:
        self.export_id, self.total = export_id, total
        self.last = time.monotonic()
        self.id: UUID | None = None

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_S and (done < self.total or self.id is None):
            return
        if self.id is None:
            self.id = cast(UUID, create_progress_artifact(
                progress=100.0 * done / self.total, key=f"export-{self.export_id}-progress",
                description=f"Export {self.export_id}: locales rendered"))
        else:
            update_progress_artifact(self.id, progress=100.0 * done / self.total)
        self.last = now


def _collect(export_id: int, locales: list[str], futures: Any,
             already: int = 0) -> tuple[dict[str, LocaleRender], list[str]]:
    """Wait for every locale's task run, updating the progress artifact as they finish; a task that
    raised becomes that locale's error, the others are kept. Also: the locales Prefect served from
    the cache (another export cached them meanwhile). `already`: locales done before (cache hits
    read directly), for the in-process listener's count."""
    renders: dict[str, LocaleRender] = {}
    cached: list[str] = []
    if not locales:
        return renders, cached
    by_future = {id(f): loc for loc, f in zip(locales, futures, strict=True)}
    progress = _Progress(export_id, len(locales))
    for done, future in enumerate(as_completed(list(futures)), start=1):
        locale = by_future[id(future)]
        progress.update(done)
        if _locale_listener is not None:
            _locale_listener(locale, already + done, already + len(locales))
        future.wait()  # as_completed can yield before the final state is readable
        state = future.state
        if state.is_completed():
            renders[locale] = future.result()
            if state.name == "Cached":
                cached.append(locale)
        else:
            exc = state.result(raise_on_failure=False)
            message = str(exc) if isinstance(exc, EmailExportError) else f"internal error ({type(exc).__name__})"
            renders[locale] = LocaleRender(locale=locale, errors=[f"rendering failed: {message}"])
    return renders, cached


def _with_warnings(renders: dict[str, LocaleRender], warnings: dict[str, list[str]]) -> dict[str, LocaleRender]:
    """Previews' problems are warnings of their locale, never errors."""
    return {loc: r.model_copy(update={"warnings": [*r.warnings, *warnings[loc]]}) if warnings.get(loc) else r
            for loc, r in renders.items()}


@flow(
    name="export-email",
    flow_run_name=run_name,
    task_runner=ThreadPoolTaskRunner(max_workers=get_settings().task_workers),  # type: ignore[arg-type]
    on_failure=[mark_record_failed],
    on_crashed=[mark_record_failed],
    on_cancellation=[mark_record_failed],
)
def export_email(export_id: int) -> State:
    """Run the export whose record is `export_id`; the record ends `completed` or `failed`."""
    logger = get_run_logger()
    store = open_store()
    if current_run.id:
        store.update_export(export_id, flow_run_id=str(current_run.id))
    try:
        job = load_export(export_id)
    except EmailExportError as exc:
        reasons = exc.messages() if isinstance(exc, ValidationFailed) else [str(exc)]
        logger.error("Export %s cannot start: %s", export_id, "; ".join(reasons))
        store.fail_if_in_progress(export_id, *reasons)
        return Failed(message="; ".join(reasons))
    locales = list(job.inputs)
    logger.info("Export %s: rendering %d locale(s) of %r as %s", export_id, len(locales), job.email.name,
                job.record.export_type)
    if (stopped := stop_if_ended(export_id, store)) is not None:  # issue 18: first terminal state wins
        return stopped
    # Images before rendering: their new URLs are rewritten inside the transform stage.
    placed = place_images(job)
    inputs = with_image_urls(job.inputs, placed)
    # A cache hit is read here, without a task run; only the misses are mapped (still cached by
    # key, so two exports rendering the same locale at once agree, and retried).
    hits = cached_renders(inputs)
    misses = [loc for loc in locales if loc not in hits]
    if _locale_listener is not None:
        _locale_listener(None, len(hits), len(locales))
    futures = render_locale.map(locale=misses, inp=[inputs[loc] for loc in misses]) if misses else []
    fresh, also_cached = _collect(export_id, misses, futures, already=len(hits))
    renders = {loc: hits[loc] if loc in hits else fresh[loc] for loc in locales}
    cached = [loc for loc in locales if loc in hits or loc in also_cached]
    renders = apply_image_errors(renders, placed)
    # Checks and the report run inline (`.fn`): they cannot fail transiently, and a task run costs
    # several Prefect API writes per export, which is what limits bulk throughput.
    renders = check_locales.fn(renders, inputs)

    if (stopped := stop_if_ended(export_id, store)) is not None:  # failed while rendering: deliver nothing
        return stopped
    base_errors: list[str] = []
    outputs: Outputs | None = None
    pushed: dict[str, PushOutcome] | None = None
    previews: dict[str, bytes] | None = None
    export_type = job.record.export_type
    if export_type == "connector" and job.connector is not None:
        logger.info("Export %s: pushing %d locale(s) to %s", export_id, sum(r.ok for r in renders.values()),
                    job.connector.name)
        pushed = push_locales(job.record, job.connector, renders, store)
    else:
        pdfs: dict[str, bytes] | None = None
        zip_images = placed.zip_files(list(renders.values()))
        if job.record.options.previews and export_type in ("html", "pdf"):
            files = placed.browser_files(ImageLibrary(open_storage()))
            shots = build_previews(job.email.name, inputs, renders, image_resources(files))
            previews, renders = shots.files, _with_warnings(renders, shots.warnings)
            logger.info("Export %s: %d preview file(s) in %.1f s", export_id, len(previews), shots.seconds)
        if export_type == "pdf":
            pdfs, renders = render_pdf_files(renders, zip_images)
            zip_images = {}  # the PDFs embed them; the pdf zip holds only PDFs
        try:
            outputs = write_outputs(job.record, list(renders.values()), zip_images, pdfs, previews)
        except EmailExportError as exc:
            base_errors.append(f"writing the outputs failed: {exc}")
        except OSError as exc:
            base_errors.append(f"writing the outputs failed: {exc.strerror or exc}")

    record = record_result(job.record, renders, base_errors, outputs, pushed)
    thumbnails = [loc for loc in locales if f"previews/{loc}/thumbnail.png" in (previews or {})]
    publish_report.fn(record, renders, cached, list(placed.outcomes.values()),
                      thumbnails if outputs and outputs.download_zip_url else [])
    failed = [loc for loc, r in record.results.items() if r.status != "completed"]
    logger.info("Export %s %s: %d of %d locale(s) delivered, %d from cache%s", export_id, record.status,
                len(locales) - len(failed), len(locales), len(cached),
                f"; failed: {', '.join(failed)}" if failed else "")
    if record.status == "failed":
        return Failed(message=f"export {export_id} failed: " + ", ".join(failed or ["base"]), data=record)
    return Completed(message=f"export {export_id} completed", data=record)
