"""Personalization tags: `[[tag:KEY]]` in values -> markers standing for the profile's syntax."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from emailexport import dialects
from emailexport.models import DynamicContentProfile, PersonalizationTag
from emailexport.transforms.markers import marker

__all__ = ["TAG_RE", "TagResolver", "TokenTable"]

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


@dataclass
class TagResolver:
    """Replaces tags in a value; remembers which tags it used and which keys were unknown."""

    tags: dict[str, PersonalizationTag]
    profile: DynamicContentProfile | None
    table: TokenTable
    used: set[int] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)

    def syntax(self, tag: PersonalizationTag) -> str | None:
        """The tag's syntax for the profile, or None when it resolves to its plain fallback.

        Explicit per-profile syntax, then the profile preset's rule, then the tag's default_syntax;
        with no profile, the default syntax or else the fallback text ("default values").
        """
        if self.profile is not None:
            explicit = tag.dynamic_content_profile_syntaxes.get(self.profile.id)
            if explicit is not None:
                return fill_syntax(explicit, tag.key, tag.fallback)
            return dialects.tag_syntax(
                self.profile.template_engine_preset, tag.key, tag.fallback,
                attribute_names=tag.attribute_names, settings=self.profile.settings,
            )
        if tag.default_syntax is not None:
            return fill_syntax(tag.default_syntax, tag.key, tag.fallback)
        return None

    def replace(self, text: str) -> str:
        """`Hi [[tag:first_name]]` -> `Hi <marker>` (or the fallback when there is no syntax)."""

        def one(match: re.Match[str]) -> str:
            tag = self.tags.get(match.group(1))
            if tag is None:
                self.unknown.add(match.group(1))
                return match.group(0)
            self.used.add(tag.id)
            syntax = self.syntax(tag)
            return tag.fallback if syntax is None else self.table.add(syntax)

        return TAG_RE.sub(one, text)
