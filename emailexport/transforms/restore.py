"""Step 6: put back the exact source text of every placeholder, then every token.

Handwritten, the counterpart of `protect`. Tokens inside attribute values are restored tag by tag
because the inliner re-quotes every value with `"`: a value holding ESP syntax the author typed
gets back the author's quote character; a value holding a renderer token keeps its source quote
unless the token contains it, then it takes the other one (the renderer's template could not
know what the token would contain), so the HTML stays well-formed before the ESP runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from emailexport.transforms._tags import AttrEdit, StartTag, quote_for, rewrite_attrs
from emailexport.transforms.markers import MARKER_RE
from emailexport.transforms.protect import Protected

__all__ = ["restore_placeholders"]

_DOCTYPE_RE = re.compile(r"<!doctype[^>]*>", re.IGNORECASE)


def restore_placeholders(html: str, protected: Protected) -> str:
    """Processed HTML with placeholders, the protection record -> HTML with the original text back."""

    def restore_tokens(text: str) -> str:
        return MARKER_RE.sub(lambda m: protected.tokens[int(m.group(1))], text)

    def restore(text: str) -> str:
        return restore_tokens(protected.placeholder_re.sub(protected.original_of, text))

    def restore_value(_name: str, raw: str) -> AttrEdit:
        found = list(protected.placeholder_re.finditer(raw))
        if not found:
            return None
        value = restore(raw)
        source_quote = protected.quotes[_index(found[0])]
        if any(_is_raw_syntax(protected, _index(m)) for m in found):
            return value, source_quote  # the author typed this syntax with these quotes: keep them
        return (value, quote_for(value, source_quote)) if source_quote else value

    def restore_tag(_tag: StartTag, source: str) -> str:
        return rewrite_attrs(source, restore_value) if protected.placeholder_re.search(source) else source

    # Attribute values first, while each placeholder still tells which quote its value had.
    html = restore(_edit_tags_with_placeholders(html, protected.prefix, restore_tag))
    if protected.doctype is not None:
        # The inliner rewrites any doctype to `<!DOCTYPE html>`; email templates often use XHTML's.
        html = _DOCTYPE_RE.sub(lambda _m: protected.doctype or "", html, count=1)
    return html


_RAW = "script|style|xmp|iframe|noembed|noframes"
_RAW_TEXT_RE = re.compile(rf"(<(?:{_RAW})\b[^>]*>.*?</(?:{_RAW})\s*>)", re.IGNORECASE | re.DOTALL)
_START_TAG_RE = re.compile(r"""<[A-Za-z][^\s/>]*(?:\s+|=\s*(?:"[^"]*"|'[^']*'|[^\s>"'][^\s>]*)|[^\s=>]+|=)*/?>""")


def _edit_tags_with_placeholders(html: str, prefix: str, edit: Callable[[StartTag, str], str]) -> str:
    """`edit_start_tags` for the start tags holding a placeholder, found by one regex pass.

    Here the document comes from css-inline or minify-html (or is the protected input when
    inlining failed): every comment is a placeholder, so outside raw-text elements each `<` that
    starts a tag name starts a real tag. Parsing the whole page with html.parser cost more than
    inlining and minifying together, for the few tags that hold a placeholder.
    """
    if prefix not in html:
        return html
    pieces = _RAW_TEXT_RE.split(html)
    for index in range(0, len(pieces), 2):  # even pieces are outside raw-text elements
        if prefix in pieces[index]:
            pieces[index] = _START_TAG_RE.sub(
                lambda m: edit(StartTag("", m.start(), m.end()), m.group(0)) if prefix in m.group(0) else m.group(0),
                pieces[index],
            )
    return "".join(pieces)


def _index(match: re.Match[str]) -> int:
    return int(next(g for g in match.groups() if g is not None))


def _is_raw_syntax(protected: Protected, index: int) -> bool:
    """Whether placeholder `index` stands for ESP syntax typed in the HTML (not a renderer marker)."""
    found = MARKER_RE.fullmatch(protected.originals[index])
    return found is not None and int(found.group(1)) >= protected.renderer_token_count
