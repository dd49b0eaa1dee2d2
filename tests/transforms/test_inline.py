"""Step 2: styles inlined, at-rules and non-inlinable rules kept, placeholders never lost."""

from __future__ import annotations

import pytest

from emailexport.transforms.inline import inline_css
from emailexport.transforms.markers import marker
from emailexport.transforms.protect import protect

HEAD = """<style>
.a { color: red; }
.a:hover { color: green; }
@media (max-width:600px) { .a { color: blue; } }
@media (prefers-color-scheme: dark) { .a { color: white !important; } }
</style>"""


def _inline(html: str, tokens: list[str] | None = None) -> tuple[str, tuple[str, ...]]:
    protected = protect(html, tokens or [])
    return inline_css(protected.html, protected.placeholder_re, f"{protected.prefix}-guard")


def test_rules_are_inlined_on_elements() -> None:
    html, warnings = _inline(f"<html><head>{HEAD}</head><body><p class=a>x</p></body></html>")
    assert '<p class="a" style="color: red;">' in html
    assert warnings == ()


@pytest.mark.parametrize(
    "kept",
    ["@media (max-width:600px) { .a { color: blue; } }", "@media (prefers-color-scheme: dark)", ".a:hover"],
)
def test_media_dark_mode_and_pseudo_rules_stay_in_style(kept: str) -> None:
    html, _ = _inline(f"<html><head>{HEAD}</head><body><p class=a>x</p></body></html>")
    assert kept in html
    assert html.index(kept) < html.index("</head>")


def test_remote_stylesheet_link_is_kept_not_loaded() -> None:
    # An unreachable address: loading it would raise (or hang); keep_link_tags leaves the tag alone.
    link = '<link rel="stylesheet" href="https://127.0.0.1:9/never.css">'
    html, warnings = _inline(f"<html><head>{link}</head><body><p>x</p></body></html>")
    assert link in html
    assert warnings == ()


def test_placeholders_between_rows_stay_put() -> None:
    tokens = ["{% if a %}", "{% endif %}"]
    html, _ = _inline(f"<table>{marker(0)}<tr><td>x</td></tr>{marker(1)}</table>", tokens)
    assert "<table><!--eex:0--><tbody><tr><td>x</td></tr><!--eex:1--></tbody></table>" in html


def test_token_in_style_attribute_kept_as_a_value() -> None:
    html, warnings = _inline(f"<style>.a{{font-size:1px}}</style><p class=a style='color:{marker(0)}'>x</p>", ["c"])
    assert 'style="font-size: 1px;color: eex=0=eex"' in html
    assert warnings == ()


@pytest.mark.parametrize(
    "style",
    [
        f"{marker(0)}color:red;{marker(1)}",  # declaration position: a CSS syntax error for css-inline
        f"color:{marker(0)}",  # would be overridden by the !important rule below
    ],
)
def test_token_css_inline_would_lose_leaves_that_element_alone(style: str) -> None:
    source = f'<style>.a{{color:blue!important}}</style><p class=a style="{style}">x</p><p class=a>y</p>'
    html, warnings = _inline(source, ["{% if x %}", "{% endif %}"])
    assert html.count("eex=") == style.count("\ue000")
    assert "data-css-inline" not in html
    assert "guard" not in html
    assert '<p class="a" style="color: blue!important;">y</p>' in html
    assert warnings
