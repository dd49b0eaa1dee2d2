"""The plaintext version of a rendered email, written on top of lxml's HTML parser.

Why not a library: inscriptis (Apache-2.0, the permissive candidate) lays tables out as aligned,
space-padded grids, which turns an email's nested layout tables into wide blocks of padding, and
writes links as `[text](url)`; html2text is GPL. An email needs "read the layout tables row by row,
links as `text (url)`", which is a short tree walk. lxml (libxml2) keeps text that sits between
table rows where it is, so conditional tokens there stay around the rows they wrap.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import lxml.html
from lxml import etree

from emailexport.transforms.markers import restore_markers

__all__ = ["html_to_plaintext"]

_SKIPPED = frozenset({"head", "title", "style", "script", "template", "noscript", "xml"})
_PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote", "pre", "hr", "dl"})
_LINES = frozenset(
    {
        "div",
        "table",
        "tr",
        "li",
        "center",
        "section",
        "article",
        "header",
        "footer",
        "main",
        "nav",
        "aside",
        "address",
        "dt",
        "dd",
        "figure",
        "figcaption",
        "form",
        "caption",
    }
)
_CELLS = frozenset({"td", "th"})
_LINE, _PARAGRAPH = "\x00", "\x01"  # break requests, merged when the text is finished
_HIDDEN_RE = re.compile(r"display\s*:\s*none", re.IGNORECASE)
_INVISIBLE_RE = re.compile("[\u00ad\u034f\u200b\u200c\u200d\u2060\ufeff]")
_SPACE_RE = re.compile(r"[\s\u00a0]+")
_BREAKS_RE = re.compile("[ \n\x00\x01]+")
_XML_DECLARATION_RE = re.compile(r"\A\s*<\?xml[^>]*\?>")


def html_to_plaintext(html: str, tokens: Sequence[str]) -> str:
    """Rendered email HTML with markers, its tokens -> readable plaintext with the tokens restored."""
    html = _XML_DECLARATION_RE.sub("", html)
    if not html.strip():
        return ""
    root = lxml.html.document_fromstring(html)
    parts: list[str] = []
    _emit(root, parts)
    return restore_markers(_finish("".join(parts)), tuple(tokens))


def _emit(element: etree._Element, out: list[str]) -> None:
    """Append the plaintext of an element (not its tail) to `out`."""
    if not isinstance(element.tag, str):
        return  # comments (Outlook conditional content included) and processing instructions
    tag = etree.QName(element).localname.lower()
    if tag in _SKIPPED or _HIDDEN_RE.search(element.get("style", "")):
        return
    if tag == "br":
        out.append("\n")
    elif tag == "img":
        out.append(_inline_text(element.get("alt", "")))
    elif tag == "a":
        out.append(_link_text(element))
    else:
        _emit_container(element, tag, out)


def _emit_container(element: etree._Element, tag: str, out: list[str]) -> None:
    """An element with children: its text, each child and its tail, with the breaks it asks for."""
    brk = _PARAGRAPH if tag in _PARAGRAPHS else _LINE if tag in _LINES else ""
    out.append(brk)
    if tag == "li":
        out.append("- ")
    _emit_children(element, out)
    out.append(brk)
    if tag in _CELLS:
        out.append(" ")  # cells of one row are read left to right on one line


def _emit_children(element: etree._Element, out: list[str]) -> None:
    out.append(_inline_text(element.text or ""))
    for child in element:
        _emit(child, out)
        out.append(_inline_text(child.tail or ""))


def _link_text(element: etree._Element) -> str:
    """`<a>` -> `text (url)`, just the url when the text is empty or the url itself, no `#` links."""
    parts: list[str] = []
    _emit_children(element, parts)
    text = _BREAKS_RE.sub(" ", "".join(parts)).strip()
    href = (element.get("href") or "").strip()
    if not href or href.startswith("#") or text == href:
        return text
    return f"{text} ({href})" if text else href


def _inline_text(text: str) -> str:
    """Text of the document -> the same with invisible characters dropped, whitespace collapsed."""
    return _SPACE_RE.sub(" ", _INVISIBLE_RE.sub("", text))


def _finish(raw: str) -> str:
    """Text with break requests -> lines: breaks merged (at most one blank line), lines trimmed."""

    def merge(match: re.Match[str]) -> str:
        run = match.group(0)
        wanted = 2 if _PARAGRAPH in run else 1 if _LINE in run else 0
        newlines = min(max(run.count("\n"), wanted), 2)
        return "\n" * newlines if newlines else " "

    text = _BREAKS_RE.sub(merge, raw)
    return "\n".join(line.strip() for line in text.split("\n")).strip()
