"""Personalization tags: `[[tag:KEY]]` in values -> markers standing for the profile's syntax."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from markupsafe import escape

from emailexport import dialects
from emailexport.models import DynamicContentProfile, PersonalizationTag
from emailexport.transforms.markers import MARKER_CLOSE, MARKER_OPEN, marker

__all__ = ["TAG_RE", "Context", "TagResolver", "TokenTable"]

TAG_RE = re.compile(r"\[\[tag:([^\]\s]+)\]\]")


@dataclass
class TokenTable:
    """The ESP tokens of one locale's render; the same token text always gets the same marker."""

    tokens: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)

    def add(self, token: str) -> str:
        """Register `token`, return its marker."""
        if token not in self._index:
            self._index[token] = len(self.tokens)
            self.tokens.append(token)
        return marker(self._index[token])


def fill_syntax(template: str, key: str, fallback: str) -> str:
    """A hand-written tag syntax with `{key}` and `{fallback}` filled in (braces elsewhere kept)."""
    return template.replace("{key}", key).replace("{fallback}", fallback)


# Where a value lands: plain text (subject, preheader), HTML text that the template still escapes
# (text and url fields), or HTML that is already markup (rich text, the subject inside the HTML).
Context = Literal["plain", "html_text", "html_markup"]


@dataclass
class TagResolver:
    """Replaces tags in a value; remembers which tags it used and which keys were unknown.

    Text between tags is text: with a dynamic content profile, the target dialect's delimiters in it
    are escaped (`dialects.escape_text`). A tag's fallback is text for the context it lands in: in
    HTML it is HTML-escaped, also inside the ESP syntax (the ESP prints it without escaping).
    """

    tags: dict[str, PersonalizationTag]
    profile: DynamicContentProfile | None
    table: TokenTable
    used: set[int] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    # False while rendering the plaintext version: its tokens end up in text, not in HTML.
    fallback_html: bool = True

    def syntax(self, tag: PersonalizationTag, fallback: str | None = None) -> str | None:
        """The tag's syntax for the profile, or None when it resolves to its plain fallback.

        Explicit per-profile syntax, then the profile preset's rule, then the tag's default_syntax;
        with no profile, the default syntax or else the fallback text ("default values").
        """
        fallback = tag.fallback if fallback is None else fallback
        if self.profile is not None:
            explicit = tag.dynamic_content_profile_syntaxes.get(self.profile.id)
            if explicit is not None:
                return fill_syntax(explicit, tag.key, fallback)
            return dialects.tag_syntax(
                self.profile.template_engine_preset, tag.key, fallback,
                attribute_names=tag.attribute_names, settings=self.profile.settings,
            )
        if tag.default_syntax is not None:
            return fill_syntax(tag.default_syntax, tag.key, fallback)
        return None

    def text(self, text: str) -> str:
        """Text between tags, with the target dialect's delimiters escaped (as tokens)."""
        if self.profile is None or not text:
            return text
        try:
            pieces = dialects.escape_text(self.profile.template_engine_preset, text)
        except dialects.DialectError as exc:
            self.problems.append(str(exc))
            return ""
        return "".join(self.table.add(piece) if is_syntax else piece for is_syntax, piece in pieces)

    def replace(self, text: str, context: Context = "plain") -> str:
        """`Hi [[tag:first_name]]` -> `Hi <marker>` (or the fallback when there is no syntax)."""
        # A value cannot forge a marker (and so reach another token) with the private-use characters.
        text = text.replace(MARKER_OPEN, "").replace(MARKER_CLOSE, "")
        out: list[str] = []
        last = 0
        for match in TAG_RE.finditer(text):
            out.append(self.text(text[last:match.start()]))
            out.append(self.one(match, context))
            last = match.end()
        out.append(self.text(text[last:]))
        return "".join(out)

    def one(self, match: re.Match[str], context: Context) -> str:
        tag = self.tags.get(match.group(1))
        if tag is None:
            self.unknown.add(match.group(1))
            return self.text(match.group(0))
        self.used.add(tag.id)
        in_html = context != "plain" and self.fallback_html
        syntax = self.syntax(tag, str(escape(tag.fallback)) if in_html else tag.fallback)
        if syntax is None:
            return str(escape(tag.fallback)) if context == "html_markup" else tag.fallback
        return self.table.add(syntax)
