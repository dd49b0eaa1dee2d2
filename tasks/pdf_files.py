"""Stage 4 for pdf exports: the rendered locales' final HTML -> one PDF each.

Separate from `tasks/html_to_pdf.py` because WeasyPrint's worker processes import that module and must
not pay for loading Prefect. Remote images go through the same SSRF-safe fetcher as the image
stage (`fetch_for_pdf`, module-level so the worker processes can unpickle it); include_in_zip
images are handed over as bytes.
"""

from __future__ import annotations

from collections.abc import Mapping

from prefect import task
from prefect.cache_policies import NO_CACHE

from emailexport.images.fetch import ImageFetcher
from emailexport.images.settings import ImageSettings
from emailexport.render.result import LocaleRender
from tasks.html_to_pdf import render_pdfs

__all__ = ["fetch_for_pdf", "render_pdf_files"]


def fetch_for_pdf(url: str) -> tuple[bytes, str]:
    """An http(s) image for WeasyPrint, through the safe fetcher (allow-list, caps, magic bytes)."""
    image = ImageFetcher(ImageSettings()).fetch("pdf", url)
    return image.data, image.content_type


@task(name="render-pdfs", cache_policy=NO_CACHE)
def render_pdf_files(renders: dict[str, LocaleRender], images: Mapping[str, bytes]) -> tuple[
        dict[str, bytes], dict[str, LocaleRender]]:
    """PDF bytes per locale that rendered, and the renders with PDF failures and warnings added
    (a locale whose PDF failed becomes a failed locale)."""
    ready = [(locale, r.html) for locale, r in renders.items() if r.ok]
    warnings: dict[str, list[str]] = {}
    outcomes = render_pdfs(ready, fetch=fetch_for_pdf, images=images, warnings=warnings) if ready else {}
    pdfs: dict[str, bytes] = {}
    updated = dict(renders)
    for locale, outcome in outcomes.items():
        render = updated[locale]
        extra = [f"PDF: {w}" for w in warnings.get(locale, [])]
        if isinstance(outcome, bytes):
            pdfs[locale] = outcome
            updated[locale] = render.model_copy(update={"warnings": [*render.warnings, *extra]})
        else:
            updated[locale] = render.model_copy(update={"warnings": [*render.warnings, *extra],
                                                        "errors": [*render.errors, f"PDF: {outcome}"]})
    return pdfs, updated
