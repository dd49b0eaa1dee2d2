"""Stage 5, record: what happened -> the export record's final state (status, errors, results, URLs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State

from emailexport.errors import TerminalError
from emailexport.models import ExportMetadata, ExportRecord, LocaleOutcome
from emailexport.render.result import LocaleRender
from emailexport.runtime import open_store
from emailexport.secrets import redact_registered
from emailexport.store import Store
from tasks.package import Outputs
from tasks.push import PushOutcome
from tasks.retry import retry_unless_terminal

__all__ = ["RecordEnded", "ensure_in_progress", "final_fields", "record_result", "stop_if_ended"]


def final_fields(
    record: ExportRecord,
    renders: Mapping[str, LocaleRender],
    base_errors: Sequence[str] = (),
    outputs: Outputs | None = None,
    pushed: Mapping[str, PushOutcome] | None = None,
) -> dict[str, object]:
    """The record fields an export ends with. `completed` only when every requested locale rendered
    and was delivered (outputs written, or pushed to the ESP for connector exports); otherwise
    `failed`, with each reason under its locale or `base`."""
    errors: dict[str, list[str] | None] = {"base": list(base_errors) or None}
    warnings: dict[str, list[str] | None] = {"base": None}
    results: dict[str, LocaleOutcome] = {}
    for locale in record.options.locales:
        render = renders.get(locale)
        if render is None:
            errors[locale] = ["locale was not rendered (the export stopped before it)"]
            results[locale] = LocaleOutcome(status="failed")
            continue
        locale_errors, locale_warnings = list(render.errors), list(render.warnings)
        push = (pushed or {}).get(locale)
        if pushed is not None:
            delivered = render.ok and push is not None and push.error is None
            if render.ok and push is not None:
                locale_warnings += push.warnings
                locale_errors += [push.error] if push.error else []
        else:
            delivered = render.ok and outputs is not None and bool(outputs.files)
        if locale_errors:
            errors[locale] = locale_errors
        if locale_warnings:
            warnings[locale] = locale_warnings
        results[locale] = LocaleOutcome(
            status="completed" if delivered else "failed",
            size_bytes=render.size_bytes if render.ok else None,
            resource_id=push.resource_id if push and delivered else None,
            resource_url=push.resource_url if push and delivered else None,
        )
    ok = [r for r in renders.values() if r.ok]
    metadata = ExportMetadata(
        conditional_ids=sorted({i for r in ok for i in r.conditional_ids}),
        personalization_tag_ids=sorted({i for r in ok for i in r.personalization_tag_ids}),
        image_ids=sorted({i for r in ok for i in r.image_ids}),
    )
    failed = errors["base"] is not None or any(v.status != "completed" for v in results.values())
    return {
        "status": "failed" if failed else "completed",
        "export_errors": errors,
        "warnings": warnings,
        "results": results,
        "metadata": metadata,
        "download_zip_url": outputs.download_zip_url if outputs else None,
        "download_json_url": outputs.download_json_url if outputs else None,
        # With several locales, the first requested locale that reached the ESP.
        "open_in_integration_url": next((r.resource_url for r in results.values() if r.resource_url), None),
    }


@task(
    name="record-result", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 3, 10],
    retry_condition_fn=retry_unless_terminal,
)
def record_result(
    record: ExportRecord,
    renders: dict[str, LocaleRender],
    base_errors: list[str],
    outputs: Outputs | None,
    pushed: dict[str, PushOutcome] | None = None,
) -> ExportRecord:
    """Write the final state of the export to its record and return it. Only an in_progress record is
    written (`Store.finish_export`): one the reconciler already failed stays failed."""
    fields = final_fields(record, renders, base_errors, outputs, pushed)
    for name in ("export_errors", "warnings"):  # no form of a credential of this process reaches the record
        fields[name] = redact_registered(fields[name])
    return open_store().finish_export(record.id, **fields)


class RecordEnded(TerminalError):
    """The export's record ended (failed by the reconciler or a state hook) while its flow ran."""


def ensure_in_progress(export_id: int, store: Store | None = None) -> None:
    """Raise `RecordEnded` when the record is no longer in_progress: called at stage boundaries and
    before each push, so a flow whose record was failed under it stops its work (a client that saw
    `failed` may have retried; pushing now would make a duplicate in the ESP)."""
    record = (store or open_store()).export(export_id)
    if record is not None and record.status != "in_progress":
        reasons = "; ".join(record.export_errors.get("base") or []) or record.status
        raise RecordEnded(f"export {export_id} was already {record.status} ({reasons}); its flow stopped")


def stop_if_ended(export_id: int, store: Store | None = None) -> State | None:
    """For the flow, at a stage boundary: a Failed state to return when the record already ended
    (logged), else None to go on."""
    try:
        ensure_in_progress(export_id, store)
    except RecordEnded as exc:
        get_run_logger().warning("%s", exc)
        return Failed(message=str(exc))
    return None
