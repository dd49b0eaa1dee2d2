"""Step 1: placeholders that suit their context, and a lossless round trip with step 6."""

from __future__ import annotations

import re

import pytest

from emailexport.transforms.markers import marker
from emailexport.transforms.protect import protect
from emailexport.transforms.restore import restore_placeholders

TOKENS = ["{% if ${tier} == 'gold' %}", "{% endif %}", "{{ ${first_name} | default: 'there' }}", "*|FNAME|*"]


def test_marker_between_rows_becomes_a_comment() -> None:
    html = f"<table>{marker(0)}<tr><td>a</td></tr>{marker(1)}</table>"
    protected = protect(html, TOKENS)
    assert protected.html == "<table><!--eex:0--><tr><td>a</td></tr><!--eex:1--></table>"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (f'<a href="https://x.com/?u={marker(2)}">x</a>', '<a href="https://x.com/?u=eex=0=eex">x</a>'),
        (f"<img alt='Hi {marker(2)}'>", "<img alt='Hi eex=0=eex'>"),
        (f"<a href={marker(2)}>x</a>", "<a href=eex=0=eex>x</a>"),
        (f"<title>Hi {marker(3)}</title>", "<title>Hi eex=0=eex</title>"),
        (f'<td style="color: {marker(2)}">x</td>', '<td style="color: eex=0=eex">x</td>'),
    ],
)
def test_markers_in_attributes_and_raw_text_become_words(html: str, expected: str) -> None:
    assert protect(html, TOKENS).html == expected


def test_marker_in_tag_outside_value_becomes_an_attribute_name_with_a_warning() -> None:
    protected = protect(f"<td {marker(2)} class=a>x</td>", TOKENS)
    assert protected.html == "<td eex-0 class=a>x</td>"
    assert protected.warnings


@pytest.mark.parametrize(
    "raw",
    [
        "{{ first_name | default: 'there' }}",
        "{% if x > 3 %}",
        "*|IF:TIER=gold|*",
        '%%[ IF @x == "a" THEN ]%%',
        '%%=IIf(Empty(AttributeValue("FirstName")),"there",AttributeValue("FirstName"))=%%',
        "{{#each items}}",
        "{{/each}}",
        "{{{ raw_html }}}",
        "%%view_email_url%%",
    ],
)
def test_raw_esp_syntax_is_protected_by_pattern(raw: str) -> None:
    html = f'<table>{raw}<tr><td><a href="{raw}">x</a></td></tr></table>'
    protected = protect(html, [])
    assert raw not in protected.html
    assert protected.html == '<table><!--eex:0--><tr><td><a href="eex=1=eex">x</a></td></tr></table>'
    assert restore_placeholders(protected.html, protected) == html


@pytest.mark.parametrize(
    "comment",
    [
        '<!--[if mso]><v:roundrect href="https://x.com"></v:roundrect><![endif]-->',
        "<!--[if !mso]><!-->",
        "<!--<![endif]-->",
        "<![if !mso]>",
        "<!-- plain -->",
    ],
)
def test_comments_are_stashed_whole(comment: str) -> None:
    protected = protect(f"<div>{comment}</div>", [])
    assert protected.html == "<div><!--eex:0--></div>"
    assert protected.originals == (comment,)


def test_plain_comments_dropped_when_asked_but_conditionals_and_token_comments_kept() -> None:
    html = f"<div><!-- note --><!--[if mso]>x<![endif]--><!-- {marker(2)} --></div>"
    protected = protect(html, TOKENS, drop_comments=True)
    assert protected.html == "<div><!--eex:0--><!--eex:1--></div>"
    assert protected.originals == ("<!--[if mso]>x<![endif]-->", f"<!-- {marker(2)} -->")


@pytest.mark.parametrize(
    "style",
    [
        "<style data-embed>[data-ogsc] .x{color:#fff}</style>",
        f"<style>{marker(0)}.a{{color:gold}}{marker(1)}</style>",
    ],
)
def test_embedded_or_tokenised_style_blocks_are_stashed_whole(style: str) -> None:
    protected = protect(f"<head>{style}</head>", TOKENS)
    assert protected.html == "<head><!--eex:0--></head>"
    assert protected.kinds == ("block",)


def test_prefix_avoids_text_already_in_the_input() -> None:
    protected = protect(f"<p>eex here {marker(2)}</p>", TOKENS)
    assert protected.prefix != "eex"
    assert protected.prefix not in "eex here"
    assert re.fullmatch(rf"<p>eex here {protected.prefix}=0={protected.prefix}</p>", protected.html)


def test_source_text_gives_the_renderers_form() -> None:
    protected = protect(f'<a href="{marker(2)}/{{{{ path }}}}">x</a>', TOKENS)
    href = re.search(r'href="([^"]*)"', protected.html).group(1)  # type: ignore[union-attr]
    assert protected.source_text(href) == f"{marker(2)}/{{{{ path }}}}"


@pytest.mark.parametrize(
    "html",
    [
        f"<!DOCTYPE html><html><head><title>{marker(2)}</title></head><body>{marker(3)}</body></html>",
        f"<p>a < b {marker(2)} <br/> <img src=x /></p>",
        f"<td {marker(0)} class=a>x</td>",
        "<p>unterminated <a href='x",
        "<!-->empty<!--->",
        f"<textarea>{marker(2)} <b></textarea>",
    ],
)
def test_protect_then_restore_is_identity(html: str) -> None:
    protected = protect(html, TOKENS)
    restored = restore_placeholders(protected.html, protected)
    assert restored.replace("eex-0 class", "{% if ${tier} == 'gold' %} class") == html.replace(
        marker(0), TOKENS[0]
    ).replace(marker(2), TOKENS[2]).replace(marker(3), TOKENS[3])
