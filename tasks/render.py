"""Stage 2, render: one locale's input -> its final subject, preheader, HTML and plaintext.

Cached on what determines the output (the locale's sliced content, design system, brand profile,
dynamic content profile, options, locale, and the rendering code itself), never on the export id,
so an unchanged locale is not rendered twice, across exports too.

A cache hit costs no task run: `cached_renders` reads the cached results before the flow maps
`render_locale` over the locales, and only the misses become task runs (a task run costs several
Prefect API writes, which is what a cache hit used to cost nearly as much as a render for). The
key and the storage are the task's own, so a render cached by a task run is found by the lookup
and the other way round. Results are stored compressed (`compressed/pickle`: about a fifth of the
size of the HTML; the HTML is most of a `LocaleRender`), in the Prefect home under the data dir.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, cast

from prefect import task
from prefect.results import ResultStore, get_result_store

from emailexport.images.collect import collect_image_urls
from emailexport.locales import direction_of
from emailexport.render import LocaleRenderInput
from emailexport.render.isolated import limits_from_settings, render_isolated
from emailexport.render.result import LocaleRender
from emailexport.settings import get_settings
from emailexport.transforms import LinkTracking, TransformOptions, html_to_plaintext, transform_html
from emailexport.transforms.markers import restore_markers
from emailexport.transforms.tracking import add_link_tracking
from tasks.retry import retry_unless_terminal

__all__ = ["cached_renders", "code_fingerprint", "render_cache_key", "render_locale"]

_CODE_DIRS = ("render", "transforms", "dialects")


@cache
def code_fingerprint() -> str:
    """A hash of the rendering code, so a new version of it never serves an old cached render."""
    root = Path(__file__).resolve().parents[1] / "emailexport"
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for directory in _CODE_DIRS:
        for path in sorted((root / directory).rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def render_cache_key(context: Any, parameters: dict[str, Any]) -> str | None:
    """Cache key: the render input's JSON and the code fingerprint (None: caching is off)."""
    if not get_settings().render_cache:
        return None
    inp: LocaleRenderInput = parameters["inp"]
    body = inp.model_dump_json().encode()
    return f"render-{inp.locale}-{hashlib.sha256(body).hexdigest()[:32]}-{code_fingerprint()}"


def _link_tracking(inp: LocaleRenderInput, skip: set[str], per_url: dict[str, dict[str, str]]) -> LinkTracking | None:
    if inp.link_tracking is None and not per_url:
        return None
    parameters = dict(inp.link_tracking.parameters) if inp.link_tracking else {}
    return LinkTracking(parameters=parameters, skip_urls=frozenset(skip), per_url_parameters=per_url)


@task(
    name="render-locale",
    task_run_name="render-{locale}",
    cache_key_fn=render_cache_key,
    cache_expiration=timedelta(days=30),
    persist_result=True,
    result_serializer="compressed/pickle",
    cache_result_in_memory=False,  # a bulk run would otherwise keep every render of the process
    retries=2,
    retry_delay_seconds=1,
    retry_condition_fn=retry_unless_terminal,
)
def render_locale(locale: str, inp: LocaleRenderInput) -> LocaleRender:
    """Render and transform one locale; problems come back in `errors`, not as exceptions."""
    settings = get_settings()
    doc = render_isolated(inp, limits_from_settings(settings), settings.render_workers)
    result = LocaleRender(
        locale=locale,
        subject=restore_markers(doc.subject, doc.tokens),
        preheader=restore_markers(doc.preheader, doc.tokens),
        warnings=list(doc.warnings),
        errors=list(doc.errors),
        conditional_ids=sorted(doc.conditional_ids),
        personalization_tag_ids=sorted(doc.tag_ids),
        image_ids=sorted(doc.image_ids),
    )
    if doc.errors:
        return result
    tracking = _link_tracking(inp, doc.skip_urls, doc.url_parameters)
    options = TransformOptions(lang=locale, direction=direction_of(locale), minify=inp.minify_html,
                               link_tracking=tracking, image_urls=inp.image_urls)
    transformed = transform_html(doc.html, doc.tokens, options)
    # The plaintext version's links are tracked the same way as the HTML's.
    text_html = add_link_tracking(doc.plaintext_html, tracking) if tracking else doc.plaintext_html
    return result.model_copy(update={
        "html": transformed.html,
        "plaintext": html_to_plaintext(text_html, doc.tokens),
        "warnings": [*result.warnings, *transformed.warnings],
        "image_ids": sorted(doc.image_ids | _library_images_in(transformed.html, inp)),
    })


def cached_renders(inputs: dict[str, LocaleRenderInput]) -> dict[str, LocaleRender]:
    """The locales of `inputs` whose render is in the cache (unexpired, same code), read without a
    task run. A missing, expired or unreadable entry is simply a miss: the task renders it."""
    if not get_settings().render_cache or not inputs:
        return {}
    store = cast(ResultStore, get_result_store().update_for_task(render_locale))  # sync in a sync flow
    now = datetime.now(UTC)
    found: dict[str, LocaleRender] = {}
    for locale, inp in inputs.items():
        key = render_cache_key(None, {"inp": inp})
        if key is None:
            continue
        try:
            record = store.read(key)
        except Exception:  # not there (FileNotFoundError, ValueError from the storage block), or unreadable
            continue
        expiration = record.metadata.expiration
        value = record.result
        if (expiration is None or expiration > now) and isinstance(value, LocaleRender) and value.locale == locale:
            found[locale] = value
    return found


def _library_images_in(html: str, inp: LocaleRenderInput) -> set[str]:
    """Library images the final HTML references, by public URL or by the URL it was rewritten to
    (templates and code values may name a library image without an image field)."""
    by_url: dict[str, str] = {}
    for image_id, image in inp.images.items():
        by_url[image.ref_url] = image_id
        if image.ref_url in inp.image_urls:
            by_url[inp.image_urls[image.ref_url]] = image_id
    return {by_url[url] for url in collect_image_urls(html) if url in by_url}

