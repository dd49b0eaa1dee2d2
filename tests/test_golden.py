"""Golden files: the example email, every locale, under three presets, compared byte for byte.

The files were reviewed by eye once (rendered in Chromium, the ESP syntax read against each
vendor's reference). After an intended change, regenerate with
`UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from emailexport.bundle import import_bundle, load_bundle
from tasks.render import render_locale
from tests.conftest import EXAMPLE
from tests.helpers import render_inputs

GOLDEN = Path(__file__).parent / "golden"
PRESETS = ("braze", "mailchimp", "ampscript")
LOCALES = ("en-US", "de-DE", "fr-FR", "es-ES", "ar-SA", "ja-JP")


@pytest.fixture(scope="module")
def example_data():
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("preset", PRESETS)
def test_example_email_matches_its_golden_files(store, example_data, preset):
    bundle = load_bundle(example_data)
    import_bundle(store, bundle)
    profile = next(p.id for p in bundle.dynamic_content_profiles if p.template_engine_preset == preset)
    inputs = render_inputs(store, 1, 1, list(LOCALES), profile=profile)
    for locale in LOCALES:
        result = render_locale.fn(locale, inputs[locale])
        assert result.errors == []
        for suffix, content in (("html", result.html), ("txt", result.plaintext)):
            path = GOLDEN / preset / f"{locale}.{suffix}"
            if os.environ.get("UPDATE_GOLDEN"):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content, encoding="utf-8")
            assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
            assert content == path.read_text(encoding="utf-8"), f"{preset}/{locale}.{suffix} changed"
