"""Issue 10: minifying must not change what recipients read (the cases reported, exactly)."""

from __future__ import annotations

import pytest

from emailexport.transforms import TransformOptions, marker, transform_html
from emailexport.transforms.esp_syntax import ESP_SYNTAX_RE
from emailexport.transforms.references import reescape_esp_syntax


def _run(html: str, minify: bool, tokens: tuple[str, ...] = ()) -> str:
    return transform_html(html, list(tokens), TransformOptions(lang="en", direction="ltr", minify=minify)).html


@pytest.mark.parametrize("minify", [False, True])
@pytest.mark.parametrize(
    ("body", "kept"),
    [
        ("<p>Hi {{ first_name }}</p>", "Hi {{ first_name }}</p>"),
        ("<p>By {{name}} at {{timestamp}}</p>", "at {{timestamp}}</p>"),
        ("<p>*|IFNOT:ARCHIVE_PAGE|* *|LIST:DESCRIPTION|*</p>", "*|IFNOT:ARCHIVE_PAGE|* *|LIST:DESCRIPTION|*"),
        ("<p>Hello %%=v(@first)=%%\n</p>", "Hello %%=v(@first)=%%"),
        ("<span>Order <b>#1</b> {{ order.id }}</span>", "</b> {{ order.id }}"),
    ],
)
def test_space_before_a_token_at_the_end_of_a_text_run_survives(body: str, kept: str, minify: bool) -> None:
    assert kept in _run(f"<html><body><table><tr><td>{body}</td></tr></table></body></html>", minify)


@pytest.mark.parametrize("minify", [False, True])
def test_renderer_tag_ending_a_line_of_text_keeps_its_space(minify: bool) -> None:
    html = f"<html><body><p>Hi {marker(0)}</p></body></html>"
    assert "<p>Hi {{ ${first_name} }}</p>" in _run(html, minify, ("{{ ${first_name} }}",))


@pytest.mark.parametrize("minify", [False, True])
def test_tokens_between_rows_stay_comments_so_they_are_not_foster_parented(minify: bool) -> None:
    html = "<html><body><table>\n{{#each items}}\n<tr><td>x</td></tr>\n{{/each}}\n</table></body></html>"
    out = _run(html, minify)
    assert out.index("<table>") < out.index("{{#each items}}") < out.index("<tr>")
    assert out.index("</tr>") < out.index("{{/each}}") < out.index("</table>")


@pytest.mark.parametrize("minify", [False, True])
@pytest.mark.parametrize(
    "literal",
    ["&#123;&#123; something }}", "&lbrace;&lbrace; x }}", "&#x7B;&#x7B;{ raw }}}", "&#42;|FNAME|*",
     "&#37;&#37;=v(@x)=%%", "&#37;&#37;FirstName%%", "{&#123; y }}"],
)
def test_character_references_never_become_live_esp_syntax(literal: str, minify: bool) -> None:
    html = f'<html><body><p>Show {literal} here</p><a title="{literal}" href="https://x.com/">a</a></body></html>'
    out = _run(html, minify)
    assert ESP_SYNTAX_RE.search(out) is None, out


def test_reescape_leaves_raw_text_and_reports_a_count() -> None:
    html = "<style>a{{x}}</style><p>{{ a }} {{{ b }}}</p><script>{{y}}</script>"
    out, count = reescape_esp_syntax(html)
    assert out == "<style>a{{x}}</style><p>&#123;{ a }} &#123;&#123;{ b }}}</p><script>{{y}}</script>"
    assert count == 3


@pytest.mark.parametrize("minify", [False, True])
def test_real_tokens_next_to_references_are_kept(minify: bool) -> None:
    out = _run("<html><body><p>&#123;&#123; literal }} and {{ real }}</p></body></html>", minify)
    assert ESP_SYNTAX_RE.findall(out) == ["{{ real }}"]


@pytest.mark.parametrize("minify", [False, True])
@pytest.mark.parametrize(
    "gap", [" ", "\n  ", " <!-- note --> ", "<!--[if mso]>o<![endif]-->\n", "\n<!--[if mso]>o<![endif]-->"]
)
def test_whitespace_between_inline_elements_in_a_div_survives(gap: str, minify: bool) -> None:
    """minify-html drops whitespace-only text between the children of a <div>, comments or not."""
    out = _run(f'<html><body><div><a href="https://x.com/a">Profile</a>{gap}<a href="https://x.com/b">Help</a>'
               "</div></body></html>", minify)
    between = out[out.index("Profile</a>") + len("Profile</a>") : out.index("<a href", out.index("Profile"))]
    assert between.replace("<!--[if mso]>o<![endif]-->", "").replace("<!-- note -->", "").strip(" \n") == ""
    assert any(c in between for c in " \n")
