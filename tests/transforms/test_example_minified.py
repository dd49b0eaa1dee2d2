"""Issue 10: the example email exported with minify reads exactly like the unminified export.

Every preset the example workspace has a profile for, every locale: the browser-visible text, the
ESP tokens and the Outlook conditional comments of the minified HTML equal the unminified one's.
"""

from __future__ import annotations

import pytest
import yaml

from emailexport.bundle import import_bundle, load_bundle
from tasks.render import render_locale
from tests.conftest import EXAMPLE
from tests.helpers import render_inputs
from tests.transforms.visible import conditional_comments, esp_tokens, visible_text

LOCALES = ("en-US", "ar-SA", "ja-JP")


def _presets() -> list[str]:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return sorted({p["template_engine_preset"] for p in data.get("dynamic_content_profiles", [])})


@pytest.mark.parametrize("preset", _presets())
def test_minified_example_reads_like_the_unminified_one(store, preset: str) -> None:
    bundle = load_bundle(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    import_bundle(store, bundle)
    profile = next(p.id for p in bundle.dynamic_content_profiles if p.template_engine_preset == preset)
    inputs = render_inputs(store, 1, 1, list(LOCALES), profile=profile)
    for locale in LOCALES:
        plain = render_locale.fn(locale, inputs[locale].model_copy(update={"minify_html": False}))
        small = render_locale.fn(locale, inputs[locale].model_copy(update={"minify_html": True}))
        assert small.errors == plain.errors
        if plain.errors:  # a preset that cannot express one of the example's rules fails both ways
            continue
        assert len(small.html) < len(plain.html)
        assert visible_text(small.html) == visible_text(plain.html), f"{preset}/{locale}"
        assert esp_tokens(small.html) == esp_tokens(plain.html), f"{preset}/{locale}"
        assert conditional_comments(small.html) == conditional_comments(plain.html), f"{preset}/{locale}"
