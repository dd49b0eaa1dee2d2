"""Find start tags in an HTML string and edit their attributes in place.

The attribute-rewriting steps (image URLs, link tracking, `<html lang dir>`) must change only the
tags concerned and leave every other byte of the document alone, so they cannot re-serialize a
parsed tree. Python's `html.parser` knows where each start tag begins (it skips comments, raw text
and the like correctly); a small attribute regex then edits the tag's own text. No library offers
"edit this attribute, keep the rest byte-identical", hence this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

__all__ = ["AttrEdit", "StartTag", "edit_start_tags", "escape_attr", "iter_start_tags", "quote_for", "rewrite_attrs"]

# One attribute inside a start tag's text: name, then optionally `=` and a quoted/unquoted value.
_ATTR_RE = re.compile(
    r"""(?P<name>[^\s"'>/=]+)"""
    r"""(?:(?P<eq>\s*=\s*)(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<uq>[^\s"'=<>`]+)))?"""
)


@dataclass(frozen=True)
class StartTag:
    """A start tag found in a document: its name (lowercase) and where its text lies."""

    name: str
    start: int
    end: int


class _StartTagFinder(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=False)
        self.tags: list[StartTag] = []
        # Offsets of line starts, to turn html.parser's (line, column) into a string index.
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line, column = self.getpos()
        start = self._line_starts[line - 1] + column
        raw = self.get_starttag_text() or ""
        self.tags.append(StartTag(tag, start, start + len(raw)))


def iter_start_tags(text: str) -> Iterator[StartTag]:
    """HTML text -> its start tags in document order (not those inside comments or raw text)."""
    finder = _StartTagFinder(text)
    finder.feed(text)
    finder.close()
    return iter(finder.tags)


def edit_start_tags(text: str, edit: Callable[[StartTag, str], str], names: frozenset[str] | None = None) -> str:
    """HTML text, a tag editor -> the text with each start tag (of `names`) replaced by `edit`'s result.

    `edit` receives the tag and its exact source text and returns the new text (or the same).
    """
    pieces: list[str] = []
    last = 0
    for tag in iter_start_tags(text):
        if names is not None and tag.name not in names:
            continue
        source = text[tag.start : tag.end]
        replacement = edit(tag, source)
        if replacement != source:
            pieces.append(text[last : tag.start])
            pieces.append(replacement)
            last = tag.end
    pieces.append(text[last:])
    return "".join(pieces)


AttrEdit = str | tuple[str, str] | None
"""A new raw value, or (new raw value, the quote character to use), or None to leave it."""


def rewrite_attrs(tag_text: str, rewrite: Callable[[str, str], AttrEdit]) -> str:
    """A start tag's text, `rewrite(name, raw_value) -> AttrEdit` -> the edited tag.

    Values are passed and returned raw (as written, entities not decoded) so that an unchanged part
    of a value is never re-encoded. Unless `rewrite` names one, the quote character is kept (an
    unquoted value gets `"`), or swapped when the new value contains it and not the other one.
    """
    name_end = re.match(r"<[^\s/>]+", tag_text)
    offset = name_end.end() if name_end else 0
    pieces = [tag_text[:offset]]
    last = offset
    for match in _ATTR_RE.finditer(tag_text, offset):
        if match.group("eq") is None:
            continue
        raw = next(v for v in (match.group("dq"), match.group("sq"), match.group("uq")) if v is not None)
        edit = rewrite(match.group("name").lower(), raw)
        new, quote = edit if isinstance(edit, tuple) else (edit, "")
        if new is None or (new == raw and not quote):
            continue
        quote = quote or quote_for(new, "'" if match.group("sq") is not None else '"')
        pieces.append(tag_text[last : match.start()])
        pieces.append(f"{match.group('name')}{match.group('eq')}{quote}{new}{quote}")
        last = match.end()
    pieces.append(tag_text[last:])
    return "".join(pieces)


def quote_for(value: str, quote: str) -> str:
    """The quote to write `value` with: `quote`, or the other one if only that keeps it well-formed."""
    other = "'" if quote == '"' else '"'
    return other if quote in value and other not in value else quote


def escape_attr(value: str) -> str:
    """A plain attribute value -> its raw form: `&` and `"` encoded, `'` left for `quote_for`."""
    return value.replace("&", "&amp;").replace('"', "&quot;")
