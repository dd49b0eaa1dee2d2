"""The plaintext version: readable text, layout read row by row, tokens exact."""

from __future__ import annotations

import pytest

from emailexport.transforms.markers import marker
from emailexport.transforms.plaintext import html_to_plaintext

TOKENS = ["{% if ${tier} == 'gold' %}", "{% endif %}", "{{ ${first_name} | default: 'there' }}", "{{ url }}"]


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<h1>Title</h1><p>One  \n two</p><p>Three</p>", "Title\n\nOne two\n\nThree"),
        ("<p>a<br>b<br><br>c</p>", "a\nb\n\nc"),
        ("<ul><li>one</li><li>two</li></ul>", "- one\n- two"),
        ('<a href="https://x.com/">Shop now</a>', "Shop now (https://x.com/)"),
        ('<a href="https://x.com/">https://x.com/</a>', "https://x.com/"),
        ('<a href="#top">Back to top</a>', "Back to top"),
        ('<a href="https://x.com/"><img src="a.png" alt=""></a>', "https://x.com/"),
        ('<p><img src="logo.png" alt="ACME"><img src="spacer.gif" alt=""></p>', "ACME"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
        ('<p>shown</p><div style="display: none; max-height:0">preheader&zwnj;&nbsp;</div>', "shown"),
        ("<p>x&nbsp;&nbsp;y&zwnj;</p>", "x y"),
    ],
)
def test_structure(html: str, expected: str) -> None:
    assert html_to_plaintext(f"<html><body>{html}</body></html>", TOKENS) == expected


def test_head_style_comments_and_outlook_content_dropped() -> None:
    html = (
        "<html><head><title>T</title><style>.a{color:red}</style></head><body>"
        "<!-- note --><!--[if mso]><p>outlook only</p><![endif]-->"
        "<!--[if !mso]><!--><p>everyone else</p><!--<![endif]--></body></html>"
    )
    assert html_to_plaintext(html, []) == "everyone else"


def test_tokens_restored_in_text_between_rows_and_in_hrefs() -> None:
    html = (
        f"<table>{marker(0)}<tr><td>Hi {marker(2)},</td></tr>{marker(1)}"
        f'<tr><td><a href="{marker(3)}">Open</a></td></tr></table>'
    )
    assert html_to_plaintext(html, TOKENS) == (
        "{% if ${tier} == 'gold' %}\nHi {{ ${first_name} | default: 'there' }},\n{% endif %}\nOpen ({{ url }})"
    )


def test_token_with_inner_whitespace_kept_exactly() -> None:
    token = "{{  first_name   | default: 'a  b' }}"
    assert html_to_plaintext(f"<p>Hi {marker(0)}</p>", [token]) == f"Hi {token}"


def test_empty_document() -> None:
    assert html_to_plaintext("", []) == ""
