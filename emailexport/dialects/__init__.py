"""Template-engine presets: a personalization tag and a conditional's branch rules in each
platform's own syntax (docs/domain.md, Dialects).

    tag_syntax("braze", "first_name", "there")   -> "{{ ${first_name} | default: 'there' }}"
    conditional_syntax("mailchimp", branches)     -> ConditionalSyntax(*|IF:TIER=gold|* ...)

Every form, and the vendor page it was checked against, is listed in docs/dialects.md. Anything
that could not be confirmed there is listed in `UNCONFIRMED` (and marked in the docs): it must be
checked in the vendor's editor before it ships. A rule a preset cannot express raises
`UnsupportedRuleError`; a value that cannot be written (both quote types in a language without
escapes, a merge-tag delimiter inside a bare value) raises `DialectError`. Neither ever degrades
to a condition that would silently select the wrong branch.

Families (one module each): liquid.py (`{% if %}` languages), handlebars.py (SendGrid, Iterable),
merge_tags.py (Mailchimp, Campaign Monitor), scripting.py (AMPscript, Marketo); names.py holds the
attribute-name conventions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import get_args

from emailexport.models.workspace import Branch, ConditionalSyntax, TemplateEnginePreset

from ._common import DialectError, Resolve, UnsupportedRuleError
from .escaping import escape_text
from .handlebars import handlebars_conditional, handlebars_tag
from .liquid import block_conditional, block_tag
from .merge_tags import merge_conditional, merge_tag
from .names import NAMING
from .scripting import ampscript_conditional, ampscript_tag, marketo_conditional, marketo_tag

__all__ = [
    "PRESETS",
    "UNCONFIRMED",
    "DialectError",
    "UnsupportedRuleError",
    "attribute_name",
    "conditional_syntax",
    "escape_text",
    "tag_syntax",
]

PRESETS: tuple[str, ...] = get_args(TemplateEnginePreset)

# preset -> what could not be confirmed against the vendor's own reference (see docs/dialects.md)
UNCONFIRMED: dict[str, list[str]] = {
    "braze": [],
    "klaviyo": ["boolean literals True/False in conditions", "{% templatetag %} to write {{ and {% as text"],
    "customerio": [],
    "brevo": [
        "{% elif %} (Django-style; Brevo's if-statement page was not readable in full)",
        'contains as `"x" in contact.X`',
        "{% templatetag %} to write {{ and {% as text",
    ],
    "mailchimp": ["> and < comparisons in *|IF:|* (only = and != were seen in the reference)"],
    "ampscript": ["boolean literals true/false compared with an attribute", "%%=Char(37,2)=%% to write %% as text"],
    "sendgrid": [],
    "iterable": [],
    "hubspot": [
        "custom contact property internal names as the lower-cased tag key (a property's internal name is "
        "fixed when it is created; set attribute_names.hubspot when it differs)",
    ],
    "marketo": [
        "Email Designer token without a default ({{lead.firstName}})",
        "conditionals in the Email Designer (Velocity script tokens are documented for the classic editor)",
        "$math.toNumber for greater_than/less_than and `== true/false` for booleans in Velocity",
    ],
    "campaign_monitor": [
        "[if:F=v] [elseif:F=v] [else] [endif]: seen in public integrations' Campaign Monitor templates, not on a "
        "Campaign Monitor page; other operators (!=, set, unset) are not written",
        "lower-casing in attribute naming: Campaign Monitor keeps a field name's case in its tag ([ZipCode]) and "
        "does not say whether tags match regardless of case",
    ],
    "mailjet": [
        'a "" default inside conditions (data:x:"" == "y")',
        "attribute naming (lower case, firstname/lastname)",
        "{% raw %} to write {{ and {% as text",
    ],
}

_Tag = Callable[[str, str, str, Mapping[str, str]], str]
_Conditional = Callable[[str, Sequence[Branch], Resolve, Mapping[str, str]], ConditionalSyntax]
_FAMILY: dict[str, tuple[_Tag, _Conditional]] = {
    **{p: (block_tag, block_conditional) for p in ("braze", "klaviyo", "customerio", "brevo", "hubspot", "mailjet")},
    **{p: (handlebars_tag, handlebars_conditional) for p in ("sendgrid", "iterable")},
    **{p: (merge_tag, merge_conditional) for p in ("mailchimp", "campaign_monitor")},
    "ampscript": (ampscript_tag, ampscript_conditional),
    "marketo": (marketo_tag, marketo_conditional),
}


def _family(preset: str) -> tuple[_Tag, _Conditional]:
    try:
        return _FAMILY[preset]
    except KeyError:
        raise DialectError(f"unknown template engine preset {preset!r}; known: {', '.join(PRESETS)}") from None


def attribute_name(preset: str, tag_key: str, overrides: Mapping[str, str] = {}) -> str:
    """(preset, tag key, per-preset overrides) -> the platform's name for the contact attribute.

    `overrides[preset]` wins; otherwise the preset's convention (names.py) applies.
    """
    _family(preset)
    return overrides.get(preset) or NAMING[preset](tag_key)


def tag_syntax(
    preset: str,
    key: str,
    fallback: str,
    *,
    attribute_names: Mapping[str, str] = {},
    settings: Mapping[str, str] = {},
) -> str:
    """(preset, tag key, fallback) -> the tag in the platform's syntax; empty fallback: no default."""
    tag, _ = _family(preset)
    return tag(preset, attribute_name(preset, key, attribute_names), fallback, settings)


def conditional_syntax(
    preset: str,
    branches: Sequence[Branch],
    *,
    attribute_names: Mapping[str, Mapping[str, str]] = {},
    settings: Mapping[str, str] = {},
) -> ConditionalSyntax:
    """(preset, branches) -> an opening tag per branch key and the closing tag.

    `attribute_names` maps a rule's field to that field's per-preset overrides.
    """
    _, conditional = _family(preset)

    def resolve(field: str) -> str:
        return attribute_name(preset, field, attribute_names.get(field, {}))

    return conditional(preset, branches, resolve, settings)
