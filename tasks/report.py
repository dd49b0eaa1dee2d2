"""Artifacts in the Prefect UI: a markdown summary of the export and one table of every locale.

Two artifacts per export whatever its locale count: each artifact is a write to the Prefect API,
and a table per locale made the report the largest part of an export's API traffic (issue 14).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from emailexport.models import ExportRecord
from emailexport.render.result import LocaleRender

__all__ = ["locale_rows", "publish_report", "summary_markdown"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def preview_lines(record: ExportRecord, locales: Sequence[str], base_url: str | None) -> list[str]:
    """A thumbnail per previewed locale, each a signed link to the API (`base_url`, i.e.
    EMAILEXPORT_PUBLIC_BASE_URL: `serve` sets it) that opens the full desktop screenshot; without an
    API to serve them (the embedded default) the section says where the gallery is instead."""
    if not locales:
        return []
    lines = ["", "## Previews", ""]
    if not base_url:
        return [*lines, f"Gallery in the zip (`previews/index.html`); `emailexport preview {record.id}` unpacks it."]
    from emailexport.signing import sign_preview_url

    for locale in locales:
        thumb = sign_preview_url(base_url, record.workspace_id, record.id, locale, "thumbnail.png")
        full = sign_preview_url(base_url, record.workspace_id, record.id, locale, "desktop.png")
        lines.append(f"[![{locale}]({thumb})]({full}) **{locale}**")
        lines.append("")
    return lines


def summary_markdown(record: ExportRecord, renders: Mapping[str, LocaleRender], cached: Collection[str],
                     images: Sequence[Any] = (), previews: Sequence[str] = (), base_url: str | None = None) -> str:
    """A markdown summary: status, outputs, one line per locale, then one line per library image
    (`images`: `tasks.images.ImageOutcome`s), then a thumbnail per previewed locale (`previews`)."""
    lines = [
        f"# Export {record.id}: {_cell(record.email.name)}",
        "",
        f"- **Status:** {record.status}",
        f"- **Type:** {record.export_type}, image mode {record.options.image_mode}"
        f"{', minified' if record.options.minify_html else ''}",
        f"- **Dynamic content profile:** {record.dynamic_content_profile_id or 'none (default values)'}",
    ]
    for label, url in (("Download zip", record.download_zip_url), ("Download JSON", record.download_json_url)):
        if url:
            lines.append(f"- **{label}:** {url}")
    if record.export_errors.get("base"):
        lines += ["", "## Export errors", *[f"- {_cell(e)}" for e in record.export_errors["base"] or []]]
    lines += ["", "| locale | status | size | from cache | subject | warnings | errors |",
              "|---|---|---|---|---|---|---|"]
    for locale in record.options.locales:
        outcome = record.results.get(locale)
        render = renders.get(locale)
        size = f"{outcome.size_bytes:,} B" if outcome and outcome.size_bytes else "-"
        lines.append(
            f"| {locale} | {outcome.status if outcome else 'failed'} | {size} | {'yes' if locale in cached else 'no'} "
            f"| {_cell(render.subject) if render else ''} | {len(render.warnings) if render else 0} "
            f"| {_cell('; '.join(render.errors)) if render and render.errors else ''} |"
        )
    meta = record.metadata
    lines += ["", "## Used", f"- conditionals: {meta.conditional_ids or 'none'}",
              f"- personalization tags: {meta.personalization_tag_ids or 'none'}",
              f"- images: {meta.image_ids or 'none'}"]
    if images:
        lines += ["", "## Images", "", "| image | file | source | locales | status | where |",
                  "|---|---|---|---|---|---|"]
        for o in images:
            where = o.error or o.zip_entry or o.cdn_url or o.source
            if o.uploaded is not None:
                where += " (uploaded)" if o.uploaded else " (already on the CDN)"
            if o.origin is not None and o.status == "placed":
                where += {"library": "; the library's copy", "downloaded": "; downloaded",
                          "not_modified": "; unchanged (304), stored copy"}[o.origin]
            lines.append(f"| {_cell(o.image_id)} | {_cell(o.filename)} | {_cell(o.source)} | {', '.join(o.locales)} "
                         f"| {o.status} | {_cell(where)} |")
    lines += preview_lines(record, previews, base_url)
    return "\n".join(lines)


def locale_rows(locale: str, render: LocaleRender, cached: bool) -> list[dict[str, str]]:
    """The table artifact of one locale: one row per fact, warning and error."""
    rows = [
        {"item": "subject", "value": render.subject},
        {"item": "preheader", "value": render.preheader},
        {"item": "html size", "value": f"{render.size_bytes} bytes"},
        {"item": "from cache", "value": "yes" if cached else "no"},
        {"item": "conditionals", "value": ", ".join(map(str, render.conditional_ids))},
        {"item": "personalization tags", "value": ", ".join(map(str, render.personalization_tag_ids))},
        {"item": "images", "value": ", ".join(render.image_ids)},
    ]
    rows += [{"item": "warning", "value": w} for w in render.warnings]
    rows += [{"item": "error", "value": e} for e in render.errors]
    return rows


@task(name="publish-report", cache_policy=NO_CACHE)
def publish_report(record: ExportRecord, renders: dict[str, LocaleRender], cached: list[str],
                   images: list[Any] | None = None, previews: list[str] | None = None) -> None:
    """Create the summary artifact and the table of every locale (`locale`, `item`, `value`);
    `previews`: the locales with a preview thumbnail."""
    from emailexport.settings import get_settings

    create_markdown_artifact(
        key=f"export-{record.id}-summary",
        markdown=summary_markdown(record, renders, cached, images or (), previews or (),
                                  get_settings().public_base_url),
        description=f"Export {record.id} of {record.email.name}",
    )
    create_table_artifact(
        key=f"export-{record.id}-locales",
        table=[{"locale": locale, **row} for locale, render in renders.items()
               for row in locale_rows(locale, render, locale in cached)],
        description=f"Export {record.id}: every locale's facts, warnings and errors",
    )
