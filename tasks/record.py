"""Stage 5, record: what happened -> the export record's final state (status, errors, results, URLs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prefect import task
from prefect.cache_policies import NO_CACHE

from emailexport.models import ExportMetadata, ExportRecord, LocaleOutcome
from emailexport.render.result import LocaleRender
from emailexport.runtime import open_store
from tasks.package import Outputs
from tasks.push import PushOutcome
from tasks.retry import retry_unless_terminal

__all__ = ["final_fields", "record_result"]


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
    """Write the final state of the export to its record and return it."""
    return open_store().update_export(record.id, **final_fields(record, renders, base_errors, outputs, pushed))
