"""Step 1: hide ESP tokens and comments behind placeholders that the inliner and minifier keep.

Handwritten because no library does it: the placeholder has to suit where it stands, and only a
scan that knows HTML's contexts can tell.

- Element content where text is rendered (inside `<body>`, not directly in a table structure): a
  word `P=n=P`, i.e. text. The minifier then treats the token exactly as it treats the text it
  stands for, so the space in `Hi {{ first_name }}` or between `*|IF:X|* *|LIST:NAME|*` stays.
  A comment does not work here: minify-html collapses whitespace next to a comment as if the
  comment were absent, so `<p>Hi <!--P--></p>` became `<p>Hi<!--P--></p>` and the recipient read
  "HiAnna" (issue 10).
- Element content where text would be moved by an HTML5 parser: directly inside `<table>`,
  `<tbody>`/`<thead>`/`<tfoot>` or `<tr>` (text there is "foster-parented" out of the table, so
  `{{#each}}` between rows would jump above the table), and before `<body>`/after `</body>` (text
  in `<head>` would start the body): an HTML comment `<!--P:n-->`, which a parser keeps in
  place. Whitespace there is not rendered, so collapsing it around the comment changes nothing.
  Which context a position is in comes from a small stack of the table elements and whether the
  body has started (see `_Context`), following the HTML5 tree-construction rules for these tags.
- Attribute values and raw text (`<title>`, `<script>`, `<textarea>`): the same word `P=n=P`. A
  comment would be literal text there; the `=` makes minify-html keep the attribute quoted, which
  the restored token (spaces, quotes) needs.
- Inside a tag but outside any value (`<td <marker>>`): a valueless attribute `P-n`. This works,
  but the minifier may reorder attributes around it, so a warning is recorded.
- Whitespace alone between two inline elements (`</a> <a>`, `</b>\n<i>`): a word `P=n=P` standing
  for one space. minify-html drops whitespace-only text between the children of `<div>`,
  `<body>`, `<section>`... as if their content were blocks, so `<a>Profile</a> <a>Help</a>` in a
  `<div>` would read "ProfileHelp"; as a word it is text and stays.
- Every comment (Outlook conditionals `<!--[if mso]>...<![endif]-->`, `<![if ...]>`) is stashed
  whole; ordinary comments without tokens may be dropped instead (when minifying).
- `<style data-embed>` (client hacks) and any `<style>` holding a token are stashed whole: the
  inliner must neither inline nor drop them, and it rejects a token in CSS selector position.

Raw ESP syntax typed by authors is first turned into markers (appended to the token list), so from
then on a single scan handles both, and quotes or `<` inside a raw token cannot mislead it.
Character references that spell ESP syntax (`&#123;&#123; x }}`) are text, not tokens: the
serializers decode them, and `references.reescape_esp_syntax` encodes them again after minifying.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal

from emailexport.transforms.esp_syntax import ESP_SYNTAX_RE
from emailexport.transforms.markers import MARKER_OPEN, MARKER_RE, marker, restore_markers

__all__ = ["Protected", "protect"]

StashKind = Literal["token", "comment", "conditional", "block", "space"]

_RAW_TEXT_TAGS = frozenset({"style", "script", "title", "textarea", "xmp", "iframe", "noembed", "noframes"})
_TAG_OPEN_RE = re.compile(r"<([A-Za-z][^\s/>]*)")
_START_TAG_RE = re.compile(
    r"""<[A-Za-z][^\s/>]*(?:\s+|=\s*(?:"[^"]*"|'[^']*'|[^\s>"'][^\s>]*)|[^\s=>]+|=)*/?>"""
)
"""A whole start tag, the same grammar as the `_TAG_PIECE_RE` loop below (used when it holds no marker)."""
_TAG_PIECE_RE = re.compile(
    r"""(?P<value>=\s*(?:"[^"]*"|'[^']*'|[^\s>"'][^\s>]*))|(?P<end>/?>)|(?P<other>\s+|[^\s=>]+|=)"""
)
_CONDITIONAL_RE = re.compile(r"^<!--\s*(?:\[if\b|<!\[endif\])|<!\[endif\]\s*-->$", re.IGNORECASE)
_CONDITIONAL_BODY_RE = re.compile(r"^(<!--\[if[^\]]*\]>)(.*)(<!\[endif\]-->)$", re.DOTALL | re.IGNORECASE)
_DATA_EMBED_RE = re.compile(r"\sdata-embed\b", re.IGNORECASE)
_DOCTYPE_RE = re.compile(r"<!doctype[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class Protected:
    """A document with placeholders, and what each placeholder stands for.

    `originals[n]` is the source text of placeholder n, in marker form (a renderer marker, a
    comment or a `<style>` element, where ESP syntax is still a marker); `quotes[n]` is the quote
    character of the attribute value placeholder n stood in (restored tokens may need it);
    `tokens` are the renderer's tokens followed by the raw ESP syntax found in the document.
    """

    html: str
    originals: tuple[str, ...]
    kinds: tuple[StashKind, ...]
    quotes: tuple[str, ...]
    tokens: tuple[str, ...]
    renderer_token_count: int
    prefix: str
    doctype: str | None
    warnings: tuple[str, ...]

    @cached_property
    def placeholder_re(self) -> re.Pattern[str]:
        """The pattern of every placeholder form; group 1, 2 or 3 is the stash index."""
        p = re.escape(self.prefix)
        return re.compile(rf'<!--{p}:(\d+)-->|{p}=(\d+)={p}|{p}-(\d+)(?:="")?')

    def original_of(self, match: re.Match[str]) -> str:
        """A placeholder match -> the source text it stands for."""
        return self.originals[int(next(g for g in match.groups() if g is not None))]

    def source_text(self, text: str) -> str:
        """Text with placeholders -> the renderer's form (its markers kept, raw ESP syntax back)."""
        text = self.placeholder_re.sub(self.original_of, text)
        count = self.renderer_token_count
        return MARKER_RE.sub(lambda m: m.group(0) if int(m.group(1)) < count else self.tokens[int(m.group(1))], text)

    def map_bodies(self, edit: Callable[[str], str]) -> Protected:
        """Apply an HTML edit to the stashed HTML: Outlook conditional bodies and whole `<style>`s."""
        originals = list(self.originals)
        for index, kind in enumerate(self.kinds):
            if kind == "block":
                originals[index] = edit(originals[index])
            elif kind == "conditional" and (body := _CONDITIONAL_BODY_RE.match(originals[index])):
                originals[index] = body.group(1) + edit(body.group(2)) + body.group(3)
        return replace(self, originals=tuple(originals))


def protect(html: str, tokens: Sequence[str], *, drop_comments: bool = False, reserved: str = "") -> Protected:
    """Rendered HTML with markers, its tokens -> the same HTML with context-fitting placeholders.

    `drop_comments` (set when minifying) drops ordinary comments that hold no token (Outlook
    conditionals are always kept) and shortens the whitespace stashed with a placeholder to the one
    character that matters; `reserved` is other text the placeholder prefix must not occur in.
    """
    all_tokens = list(tokens)

    def to_marker(match: re.Match[str]) -> str:
        all_tokens.append(restore_markers(match.group(0), tuple(tokens)))
        return marker(len(all_tokens) - 1)

    markerized = ESP_SYNTAX_RE.sub(to_marker, html)
    prefix = _choose_prefix("\n".join([html, reserved, *tokens]))
    scanner = _Scanner(prefix, drop_comments)
    scanned = scanner.scan(markerized)
    doctype = _DOCTYPE_RE.search(markerized)
    return Protected(
        html=scanned,
        originals=tuple(scanner.originals),
        kinds=tuple(scanner.kinds),
        quotes=tuple(scanner.quotes),
        tokens=tuple(all_tokens),
        renderer_token_count=len(tokens),
        prefix=prefix,
        doctype=doctype.group(0) if doctype else None,
        warnings=tuple(scanner.warnings),
    )


def _choose_prefix(text: str) -> str:
    """Text -> a placeholder prefix that does not occur in it (case-insensitively)."""
    lowered = text.lower()
    candidate, attempt = "eex", 0
    while candidate in lowered:
        attempt += 1
        candidate = f"eex{attempt}x"
    return candidate


class _Scanner:
    """Walks markerized HTML once, replacing markers and comments by placeholders."""

    def __init__(self, prefix: str, drop_comments: bool) -> None:
        self.prefix = prefix
        self.drop_comments = drop_comments
        self.originals: list[str] = []
        self.kinds: list[StashKind] = []
        self.quotes: list[str] = []
        self.warnings: list[str] = []
        self.context = _Context(fragment=True)
        self.inline_before = False  # the markup just scanned was an inline element's tag

    def stash(self, text: str, kind: StashKind, quote: str = "") -> int:
        self.originals.append(text)
        self.kinds.append(kind)
        self.quotes.append(quote)
        return len(self.originals) - 1

    def node(self, text: str, kind: StashKind) -> str:
        return f"<!--{self.prefix}:{self.stash(text, kind)}-->"

    def words(self, text: str, quote: str = "") -> str:
        """Markers in attribute values (quoted with `quote`) or raw text -> word placeholders."""
        if MARKER_OPEN not in text:
            return text
        return MARKER_RE.sub(lambda m: f"{self.prefix}={self.stash(m.group(0), 'token', quote)}={self.prefix}", text)

    def space(self, whitespace: str) -> str:
        """Whitespace alone between two inline elements -> a word placeholder standing for one space.

        minify-html removes whitespace-only text between elements inside `<div>`, `<body>`,
        `<section>` and the like (it takes their content for block layout), so
        `<div><a>Profile</a> <a>Help</a></div>` would read "ProfileHelp"; as a word it is text.
        """
        return f"{self.prefix}={self.stash(self.spacing(whitespace), 'space')}={self.prefix}"

    def spacing(self, whitespace: str) -> str:
        """Whitespace kept in a stash: as written, or (when minifying) the one character that matters."""
        return _separator(whitespace) if self.drop_comments else whitespace

    def content(self, text: str) -> str:
        """Markers in element content -> word placeholders where text renders, else comments."""
        if MARKER_OPEN not in text:
            self.context.text_seen(text)
            return text
        if self.context.text_renders():
            return self.words(text)
        # Whitespace around the token goes into the stash (one separator kept): where an HTML5
        # parser moves the token text (foster-parenting out of a table, out of <head>), the moved
        # text keeps its separators, and the minifier can no longer remove them.
        result = _SPACED_MARKER_RE.sub(
            lambda m: self.node(self.spacing(m.group(1)) + m.group(2) + self.spacing(m.group(3)), "token"), text
        )
        self.context.text_seen(MARKER_RE.sub("", text))  # real text starts the body, as in a parser
        return result

    def scan(self, text: str) -> str:
        self.context = _Context(fragment=not _DOCUMENT_TAG_RE.search(text))
        out: list[str] = []
        pos = 0
        while (lt := text.find("<", pos)) >= 0:
            chunk = text[pos:lt]
            if self.inline_before and chunk and not chunk.strip(" \t\n\r\f") and self.context.text_renders() \
                    and (following := _NEXT_TAG_RE.match(text, lt)) and following.group(1).lower() in _INLINE:
                out.append(self.space(chunk))
            else:
                out.append(self.content(chunk))
            inline_before, self.inline_before = self.inline_before, False
            pos = self.markup(text, lt, out)
            if text.startswith(("<!--", "<!["), lt):  # a comment is invisible: `</a> <!--c--> <a>` is still a gap
                self.inline_before = inline_before and not chunk.strip(" \t\n\r\f")
        out.append(self.content(text[pos:]))
        return "".join(out)

    def markup(self, text: str, lt: int, out: list[str]) -> int:
        """Handle the markup starting at `lt`; append its protected form; return where it ends."""
        if text.startswith("<!--", lt):
            end = _comment_end(text, lt)
            out.append(self.comment(text[lt:end]))
            return end
        if text.startswith("<![", lt):  # downlevel-revealed `<![if !mso]>`: a parser would rewrite it
            end = _find_end(text, ">", lt)
            out.append(self.node(text[lt:end], "conditional"))
            return end
        if text.startswith(("<!", "<?", "</"), lt):
            end = _find_end(text, ">", lt)
            if text.startswith("</", lt):
                name = text[lt + 2 : end].strip("> \t\n\r\f/").lower()
                self.context.end_tag(name)
                self.inline_before = name in _INLINE
            out.append(self.words(text[lt:end]))
            return end
        if _TAG_OPEN_RE.match(text, lt):
            return self.element(text, lt, out)
        out.append("<")
        return lt + 1

    def comment(self, text: str) -> str:
        if _CONDITIONAL_RE.search(text):
            return self.node(text, "conditional")
        if self.drop_comments and not MARKER_RE.search(text):
            return ""
        return self.node(text, "comment")

    def element(self, text: str, lt: int, out: list[str]) -> int:
        """A start tag (and, for raw-text elements, its content up to the end tag)."""
        tag, end = self.start_tag(text, lt)
        name = tag[1:].split(None, 1)[0].rstrip("/>").lower()
        self.context.start_tag(name)
        self.inline_before = name in _INLINE
        if name not in _RAW_TEXT_TAGS:
            out.append(tag)
            return end
        close = _find_close(text, name, end)
        body = text[end:close]
        if name == "style" and (_DATA_EMBED_RE.search(text[lt:end]) or MARKER_RE.search(body)):
            element_end = _find_end(text, ">", close)
            out.append(self.node(text[lt:element_end], "block"))
            return element_end
        out.append(tag + self.words(body))
        return close

    def start_tag(self, text: str, lt: int) -> tuple[str, int]:
        """The start tag at `lt` -> its protected text and where it ends."""
        whole = _START_TAG_RE.match(text, lt)
        if whole is not None and MARKER_OPEN not in whole.group(0):
            return whole.group(0), whole.end()  # the common case, in one regex match
        opening = _TAG_OPEN_RE.match(text, lt)
        assert opening is not None
        out = [opening.group(0)]
        pos = opening.end()
        while pos < len(text) and (piece := _TAG_PIECE_RE.match(text, pos)):
            pos = piece.end()
            if piece.lastgroup == "end":
                out.append(piece.group(0))
                break
            if piece.lastgroup == "value":
                value = piece.group(0)[1:].lstrip()
                out.append(self.words(piece.group(0), value[0] if value[0] in "\"'" else ""))
            else:
                out.append(self.attribute_names(piece.group(0)))
        else:
            out.append(text[pos:])  # an unterminated tag at the end of the document
            pos = len(text)
        return "".join(out), pos

    def attribute_names(self, text: str) -> str:
        """Markers inside a tag but outside values -> valueless attribute placeholders."""
        if not MARKER_RE.search(text):
            return text
        self.warnings.append(
            "an ESP token sits inside a tag outside any attribute value; "
            "its position among the attributes is not guaranteed"
        )
        parts = MARKER_RE.split(text)
        out = [parts[0]]
        for index, rest in zip(parts[1::2], parts[2::2], strict=True):
            placeholder = f"{self.prefix}-{self.stash(marker(int(index)), 'token')}"
            out.append(f" {placeholder} " if out[-1] or rest else placeholder)
            out.append(rest)
        return "".join(out)


_NEXT_TAG_RE = re.compile(r"(?:<!--.*?-->|<!\[[^>]*>|[ \t\n\r\f])*</?([A-Za-z][^\s/>]*)", re.DOTALL)
"""The name of the next tag, skipping comments and whitespace."""
_INLINE = frozenset({
    "a", "abbr", "b", "bdi", "bdo", "big", "button", "cite", "code", "data", "del", "dfn", "em", "font", "i",
    "img", "input", "ins", "kbd", "label", "mark", "q", "s", "samp", "select", "small", "span", "strike",
    "strong", "sub", "sup", "textarea", "time", "tt", "u", "var",
})
"""Inline-level elements: whitespace alone between two of them is a rendered space."""
_SPACED_MARKER_RE = re.compile("([ \t\n\r\f]*)(\ue000\\d+\ue001)([ \t\n\r\f]*)")


def _separator(whitespace: str) -> str:
    """A run of whitespace -> the one character that keeps its meaning (none, a newline or a space)."""
    return "" if not whitespace else "\n" if "\n" in whitespace else " "


_DOCUMENT_TAG_RE = re.compile(r"<(?:html|head|body)[\s/>]", re.IGNORECASE)
_HEAD_TAGS = frozenset(
    {"html", "head", "meta", "link", "title", "style", "script", "base", "noscript", "template", "basefont", "bgsound"}
)
_TABLE_SECTIONS = frozenset({"tbody", "thead", "tfoot"})
_TEXTLESS = frozenset({"table", "tbody", "thead", "tfoot", "tr"})
"""Table elements whose direct text content an HTML5 parser foster-parents out of the table."""


class _Context:
    """Whether text at the scan position would render where it stands (HTML5 tree construction).

    Tracks only what decides it: whether the body has started (a `<body>` tag, any start tag that
    cannot be in `<head>`, or non-whitespace text), whether it has ended (`</body>`, `</html>`),
    and the stack of open table elements with the implied end tags of `<tr>`, `<td>`, `<tbody>`.
    A fragment (no `<html>`, `<head>` or `<body>` tag) is body content from the start.
    """

    def __init__(self, *, fragment: bool) -> None:
        self.in_body = fragment
        self.after_body = False
        self.tables: list[str] = []

    def text_renders(self) -> bool:
        return self.in_body and not self.after_body and not (self.tables and self.tables[-1] in _TEXTLESS)

    def text_seen(self, text: str) -> None:
        if not self.in_body and not self.after_body and text.strip():
            self.in_body = True

    def start_tag(self, name: str) -> None:
        if name == "body" or name not in _HEAD_TAGS:
            self.in_body = True
        if name == "table":
            self.tables.append(name)
        elif name in _TABLE_SECTIONS:
            self._pop_to({"table"}, keep=True)
            self.tables.append(name)
        elif name == "tr":
            self._pop_to({"table", *_TABLE_SECTIONS}, keep=True)
            self.tables.append(name)
        elif name in {"td", "th"}:
            self._pop_to({"tr", "table"}, keep=True)
            self.tables.append(name)
        elif name == "caption":
            self.tables.append(name)

    def end_tag(self, name: str) -> None:
        if name in {"body", "html"}:
            self.after_body = True
        elif name in {"table", "caption", "tr", "td", "th", *_TABLE_SECTIONS} and name in self.tables:
            self._pop_to({name}, keep=False)

    def _pop_to(self, names: set[str], *, keep: bool) -> None:
        """Pop open table elements until one of `names` is on top (`keep`) or has been popped."""
        if not any(name in names for name in self.tables):
            return
        while self.tables and self.tables[-1] not in names:
            self.tables.pop()
        if not keep and self.tables:
            self.tables.pop()


def _find_end(text: str, needle: str, start: int) -> int:
    """Index just after the next `needle` from `start`, or the end of the text."""
    found = text.find(needle, start)
    return len(text) if found < 0 else found + len(needle)


def _comment_end(text: str, lt: int) -> int:
    """Where the comment starting at `lt` ends (HTML5: `<!-->` and `<!--->` are whole comments)."""
    for short in ("<!-->", "<!--->"):
        if text.startswith(short, lt):
            return lt + len(short)
    return _find_end(text, "-->", lt + 4)


def _find_close(text: str, name: str, start: int) -> int:
    """Index of the `</name` that ends a raw-text element, or the end of the text."""
    found = re.compile(rf"</{re.escape(name)}[\s/>]", re.IGNORECASE).search(text, start)
    return found.start() if found else len(text)
