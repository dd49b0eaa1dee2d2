"""What a recipient reads, taken from an HTML5 parser's tree (tinyhtml5), not from regexes on source.

`visible_text`: the body's text as a browser lays it out, reduced to what the issue-10 guarantee is
about: words and whether a separator stands between them. Block elements (and `<br>`) break the
text; inside a block, runs of collapsible whitespace (space, tab, newline, CR, FF, never U+00A0)
count as one space, and whitespace at a block's edges is not rendered. An image counts as its alt
text (what a reader with images off sees). `<script>`, `<style>`, `<template>`, comments and
`<head>` are not shown.

`conditional_comments`: every Outlook conditional comment (`<!--[if mso]>...<![endif]-->`,
`<!--[if !mso]><!-->`, `<!--<![endif]-->`, downlevel-revealed `<![if !mso]>` / `<![endif]>`), as
the parser sees it, in document order.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import tinyhtml5

from emailexport.transforms._tags import _ATTR_RE, iter_start_tags
from emailexport.transforms.esp_syntax import ESP_SYNTAX_RE

__all__ = ["conditional_comments", "esp_tokens", "visible_text"]

_NS = "{http://www.w3.org/1999/xhtml}"
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "caption", "center", "dd", "details", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "ul", "body", "html",
})
_HIDDEN = frozenset({"script", "style", "template", "head", "title", "noscript"})
_COLLAPSIBLE = re.compile(r"[ \t\n\r\f]+")
_BREAK = "\x00"
_CONDITIONAL = re.compile(r"^\s*(?:\[if\b|<!\[endif\]|\[endif\])", re.IGNORECASE)


def _name(element: Any) -> str:
    tag = element.tag
    return tag[len(_NS) :] if isinstance(tag, str) and tag.startswith(_NS) else str(tag)


def _walk(element: Any, out: list[str]) -> None:
    if element.tag is ET.Comment or not isinstance(element.tag, str):
        return
    name = _name(element)
    if name in _HIDDEN:
        return
    block = name in _BLOCKS
    if block:
        out.append(_BREAK)
    if name == "br":
        out.append(_BREAK)
    if name == "img" and element.get("alt"):
        out.append(element.get("alt"))
    out.append(element.text or "")
    for child in element:
        _walk(child, out)
        out.append(child.tail or "")
    if block:
        out.append(_BREAK)


def visible_text(html: str) -> str:
    """HTML -> its rendered body text: blocks separated by newlines, inline whitespace runs as one space."""
    root = tinyhtml5.parse(html)
    body = root.find(f"{_NS}body")
    if body is None:
        return ""
    pieces: list[str] = []
    _walk(body, pieces)
    blocks = (_COLLAPSIBLE.sub(" ", block).strip(" ") for block in "".join(pieces).split(_BREAK))
    return "\n".join(block for block in blocks if block)


def conditional_comments(html: str) -> list[str]:
    """HTML -> the data of its Outlook conditional comments, in document order."""
    comments = (el.text or "" for el in tinyhtml5.parse(html).iter() if el.tag is ET.Comment)
    return [text for text in comments if _CONDITIONAL.match(text)]


def esp_tokens(html: str) -> list[object]:
    """Every delimited ESP token in the raw HTML, in order (what the ESP will evaluate).

    minify-html sorts a tag's attributes (it compresses better), and attribute order has no
    meaning in HTML: the tokens of one start tag are one entry, a sorted tuple of per-attribute
    token tuples (order inside one attribute value still counts), plus the tokens outside values.
    """
    tags = list(iter_start_tags(html))
    out: list[object] = []
    position, index = 0, 0
    while (found := ESP_SYNTAX_RE.search(html, position)) is not None:
        while index < len(tags) and tags[index].end <= found.start():
            index += 1
        if index < len(tags) and tags[index].start <= found.start():
            tag = tags[index]
            out.append(_tag_tokens(html[tag.start : tag.end]))
            position, index = tag.end, index + 1
            continue
        out.append(found.group(0))
        position = found.end()
    return out


def _tag_tokens(tag_text: str) -> tuple[object, ...]:
    per_attribute: list[tuple[str, ...]] = []
    outside = tag_text
    for match in _ATTR_RE.finditer(tag_text):
        value = next((v for v in (match.group("dq"), match.group("sq"), match.group("uq")) if v is not None), None)
        if value is not None and (tokens := tuple(ESP_SYNTAX_RE.findall(value))):
            per_attribute.append(tokens)
            outside = outside.replace(match.group(0), " ", 1)
    return (tuple(sorted(per_attribute)), tuple(sorted(ESP_SYNTAX_RE.findall(outside))))
