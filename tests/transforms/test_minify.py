"""Step 5: minify-html keeps placeholders, closing tags and media query syntax."""

from __future__ import annotations

from emailexport.transforms.minify import minify_document


def test_placeholders_and_structure_kept() -> None:
    html = (
        "<html>\n<head>\n<title>Hi eex=1=eex</title></head>\n<body>\n<table>\n<!--eex:0-->\n"
        "<tbody><tr><td>a</td></tr></tbody></table></body></html>"
    )
    minified = minify_document(html)
    assert minified == (
        "<html><head><title>Hi eex=1=eex</title></head><body><table><!--eex:0--><tbody><tr><td>a</td></tr>"
        "</tbody></table></body></html>"
    )


def test_word_placeholder_keeps_the_attribute_quoted() -> None:
    assert minify_document('<img alt="eex=4=eex">') == '<img alt="eex=4=eex">'


def test_media_query_not_rewritten_to_range_syntax() -> None:
    css = "@media (max-width:600px){.a{color:blue}}"
    assert css in minify_document(f"<style>{css}</style>")
