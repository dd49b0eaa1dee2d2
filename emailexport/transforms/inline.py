"""Step 2: inline the `<style>` rules into `style` attributes with css-inline.

Style tags are kept with the inlined selectors removed (`keep_style_tags` +
`remove_inlined_selectors`): what cannot be inlined (`@media`, dark mode, `:hover`,
`[x-apple-data-detectors]`) stays in its `<style>` where it was; css-inline's default would drop
the non-at-rules it cannot inline. Remote stylesheets are never loaded (that would be a
server-side request) and `<link>` tags (web fonts) are kept.

A token inside a `style` attribute can be lost: an `!important` rule overrides it, and a token in
declaration position is a CSS syntax error for css-inline. So the placeholders are counted before
and after; if any went missing, inlining is redone with the elements holding them left alone.
"""

from __future__ import annotations

import re
from collections import Counter

import css_inline

from emailexport.transforms._tags import edit_start_tags

__all__ = ["inline_css"]

_STYLE_ATTR_RE = re.compile(r"""\sstyle\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
_IGNORE = 'data-css-inline="ignore"'
_EMPTY_STYLE_RE = re.compile(r"<style>\s*</style>")  # left behind when every rule was inlined


def _inliner() -> css_inline.CSSInliner:
    return css_inline.CSSInliner(
        keep_style_tags=True,
        remove_inlined_selectors=True,
        keep_at_rules=True,
        keep_link_tags=True,
        load_remote_stylesheets=False,
    )


def inline_css(html: str, placeholder_re: re.Pattern[str], guard: str) -> tuple[str, tuple[str, ...]]:
    """Protected HTML -> (HTML with styles inlined, warnings).

    `placeholder_re` finds the placeholders that must all survive; `guard` is an attribute name
    absent from the document, used to find again the elements this step asks css-inline to skip.
    """
    before = _counts(html, placeholder_re)
    try:
        inlined = _EMPTY_STYLE_RE.sub("", _inliner().inline(html))
        if _counts(inlined, placeholder_re) == before:
            return inlined, ()
    except ValueError:  # css_inline.InlineError subclasses ValueError
        pass
    guarded = _guard_token_styles(html, placeholder_re, guard)
    try:
        inlined = _EMPTY_STYLE_RE.sub("", _unguard(_inliner().inline(guarded), guard))
    except ValueError as error:
        return html, (f"CSS inlining failed: {error}; styles left in <style>",)
    if _counts(inlined, placeholder_re) != before:
        return html, ("CSS inlining lost an ESP token; styles left in <style>",)
    return inlined, ("ESP token in a style attribute: rules not inlined into that element",)


def _counts(html: str, placeholder_re: re.Pattern[str]) -> Counter[tuple[str | None, ...]]:
    """How often each placeholder occurs, whatever its serialized form (`P-1` or `P-1=""`)."""
    return Counter(m.groups() for m in placeholder_re.finditer(html))


def _guard_token_styles(html: str, placeholder_re: re.Pattern[str], guard: str) -> str:
    """Mark the elements whose `style` attribute holds a placeholder so css-inline skips them."""

    def guard_tag(_tag: object, source: str) -> str:
        style = _STYLE_ATTR_RE.search(source)
        if not style or not placeholder_re.search(style.group(1)) or "data-css-inline" in source:
            return source
        cut = len(source) - (2 if source.endswith("/>") else 1)
        return f"{source[:cut]} {_IGNORE} {guard}{source[cut:]}"

    return edit_start_tags(html, guard_tag)


def _unguard(html: str, guard: str) -> str:
    """Remove what `_guard_token_styles` added (css-inline re-serializes the attributes)."""
    attrs = re.compile(rf'\s(?:data-css-inline="ignore"|{re.escape(guard)}(?:="")?)(?=[\s/>])')

    def unguard_tag(_tag: object, source: str) -> str:
        return attrs.sub("", source) if guard in source else source

    return edit_start_tags(html, unguard_tag)
