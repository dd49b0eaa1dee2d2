"""Issue 10's guarantee on the corpus: minify on or off, recipients read the same thing.

For each template in tests/fixtures/corpus (real-world-style templates written for this project),
the transform's output is compared with the source, with minify off and on: the browser-visible
text (see `visible.py`), the ESP token sequence, and the Outlook conditional comments.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emailexport.transforms import TransformOptions, transform_html
from tests.transforms.visible import conditional_comments, esp_tokens, visible_text

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
TEMPLATES = sorted(CORPUS.glob("*.html"))


def _transform(source: str, minify: bool) -> str:
    result = transform_html(source, [], TransformOptions(lang="en", direction="ltr", minify=minify))
    return result.html


def test_corpus_has_at_least_30_templates() -> None:
    assert len(TEMPLATES) >= 30


@pytest.fixture(scope="module", params=TEMPLATES, ids=lambda p: p.stem)
def template(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    source = request.param.read_text(encoding="utf-8")
    return source, _transform(source, minify=False), _transform(source, minify=True)


def test_visible_text_unchanged(template: tuple[str, str, str]) -> None:
    source, plain, minified = template
    expected = visible_text(source)
    assert expected  # the template shows something, so the comparison means something
    assert visible_text(plain) == expected
    assert visible_text(minified) == expected


def test_esp_tokens_unchanged_in_order(template: tuple[str, str, str]) -> None:
    source, plain, minified = template
    assert esp_tokens(plain) == esp_tokens(source)
    assert esp_tokens(minified) == esp_tokens(source)


def test_outlook_conditional_comments_unchanged(template: tuple[str, str, str]) -> None:
    source, plain, minified = template
    assert conditional_comments(plain) == conditional_comments(source)
    assert conditional_comments(minified) == conditional_comments(source)


def test_minified_output_is_smaller(template: tuple[str, str, str]) -> None:
    _source, plain, minified = template
    assert len(minified) < len(plain)
