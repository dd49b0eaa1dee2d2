"""Stage 3, checks: each rendered locale's final HTML -> pre-export findings (every export type).

A finding is a warning of its locale, or an error (failing the locale) when its code is listed in
`EMAILEXPORT_CHECKS_BLOCKING`. Image sizes come from the library's metadata, under whichever URL
the locale's HTML uses for the image (its public URL, zip path or CDN URL).
"""

from __future__ import annotations

from collections.abc import Mapping

from prefect import task
from prefect.cache_policies import NO_CACHE

from emailexport.checks import CheckSettings, run_checks
from emailexport.render import LocaleRenderInput
from emailexport.render.result import LocaleRender

__all__ = ["check_locale", "check_locales"]


def _image_sizes(inp: LocaleRenderInput) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for image in inp.images.values():
        if image.file_size is not None:
            sizes[image.ref_url] = image.file_size
            rewritten = inp.image_urls.get(image.ref_url)
            if rewritten:
                sizes[rewritten] = image.file_size
    return sizes


def check_locale(render: LocaleRender, inp: LocaleRenderInput, settings: CheckSettings) -> LocaleRender:
    """`render` with its findings added to `findings` and to its warnings or errors."""
    if not render.ok:
        return render
    findings = run_checks(render.html, render.subject, render.preheader, image_sizes=_image_sizes(inp),
                          settings=settings, preset=inp.profile.template_engine_preset if inp.profile else None)
    if not findings:
        return render
    return render.model_copy(update={
        "findings": [str(f) for f in findings],
        "warnings": [*render.warnings, *(str(f) for f in findings if not f.blocking)],
        "errors": [*render.errors, *(str(f) for f in findings if f.blocking)],
    })


@task(name="check-locales", cache_policy=NO_CACHE)
def check_locales(renders: dict[str, LocaleRender], inputs: Mapping[str, LocaleRenderInput]) -> dict[str, LocaleRender]:
    """Run the pre-export checks on every rendered locale."""
    settings = CheckSettings()
    return {locale: check_locale(render, inputs[locale], settings) for locale, render in renders.items()}
