"""Scripting languages: AMPscript (Salesforce Marketing Cloud) and Marketo (tokens + Velocity).

AMPscript doubles a quote inside a string. Marketo has two token forms (classic editor, Email
Designer, picked by `settings["editor"]`) and writes conditions in Velocity, which only runs inside
an Email Script token: the connector has to place the whole conditional in one such token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

from emailexport.models.workspace import Branch, ConditionalSyntax

from ._common import DialectError, Resolve, compare_value, flat_chain, quote_doubled, quote_either
from .names import marketo_api_name, marketo_designer_name

__all__ = ["ampscript_conditional", "ampscript_tag", "marketo_conditional", "marketo_tag"]

_SYMBOLS = {"equals": "==", "not_equals": "!=", "greater_than": ">", "less_than": "<"}


def _ampscript_condition(resolve: Resolve, branch: Branch) -> str:
    rule = branch.rule
    assert rule is not None
    ref = f"AttributeValue({quote_doubled(resolve(rule.field))})"
    if rule.operator == "is_set":
        return f"NOT Empty({ref})"
    if rule.operator == "is_not_set":
        return f"Empty({ref})"
    value = compare_value("ampscript", rule, quote_doubled)
    if rule.operator == "contains":
        return f"IndexOf({ref},{value}) > 0"  # IndexOf is 1-based and 0 when not found
    return f"{ref} {_SYMBOLS[rule.operator]} {value}"


def ampscript_conditional(
    preset: str, branches: Sequence[Branch], resolve: Resolve, settings: Mapping[str, str]
) -> ConditionalSyntax:
    """`%%[ IF ... THEN ]%%` / `ELSEIF ... THEN` / `ELSE` / `ENDIF`."""
    return flat_chain(
        preset, branches, partial(_ampscript_condition, resolve),
        if_="%%[ IF {} THEN ]%%", elif_="%%[ ELSEIF {} THEN ]%%", else_="%%[ ELSE ]%%", end="%%[ ENDIF ]%%",
    )  # fmt: skip


def ampscript_tag(preset: str, name: str, fallback: str, settings: Mapping[str, str]) -> str:
    """`%%=AttributeValue("X")=%%`, wrapped in IIf(Empty(...)) when there is a fallback."""
    ref = f"AttributeValue({quote_doubled(name)})"
    if not fallback:
        return f"%%={ref}=%%"
    return f"%%=IIf(Empty({ref}),{quote_doubled(fallback)},{ref})=%%"


def _velocity_string(text: str) -> str:
    """A Velocity literal: double quotes interpolate `$` and `#`, single quotes do not."""
    if not any(c in text for c in '"$#'):
        return f'"{text}"'
    if "'" not in text:
        return f"'{text}'"
    raise DialectError(f"marketo: {text!r} cannot be written as a Velocity string literal")


def _velocity_condition(resolve: Resolve, branch: Branch) -> str:
    rule = branch.rule
    assert rule is not None
    field = marketo_api_name(resolve(rule.field))
    ref = f"${{lead.{field}}}"
    if rule.operator in ("is_set", "is_not_set"):
        # Quiet reference: an unset field renders as "" instead of its own source text.
        return f'"$!{{lead.{field}}}" {"!=" if rule.operator == "is_set" else "=="} ""'
    value = compare_value("marketo", rule, _velocity_string)
    if rule.operator == "contains":
        return f"$lead.{field}.contains({value})"
    if rule.operator in ("greater_than", "less_than"):
        # Marketo hands lead fields to Velocity as strings; compare as numbers.
        ref = f"$math.toNumber({ref})"
    return f"{ref} {_SYMBOLS[rule.operator]} {value}"


def marketo_conditional(
    preset: str, branches: Sequence[Branch], resolve: Resolve, settings: Mapping[str, str]
) -> ConditionalSyntax:
    """Velocity `#if(...)` / `#elseif(...)` / `#{else}` / `#{end}` for an Email Script token.

    The braced `#{else}` / `#{end}` forms keep Velocity from reading following text as part of the
    directive name (`#elseHello` is not `#else`).
    """
    _editor(settings)
    return flat_chain(
        preset, branches, partial(_velocity_condition, resolve),
        if_="#if({})", elif_="#elseif({})", else_="#{else}", end="#{end}",
    )  # fmt: skip


def marketo_tag(preset: str, name: str, fallback: str, settings: Mapping[str, str]) -> str:
    """Classic `{{lead.First Name:default=there}}` or Email Designer `{%=lead.firstName ?: "there" %}`."""
    if _editor(settings) == "email_designer":
        ref = f"lead.{marketo_designer_name(name)}"
        if not fallback:
            return f"{{{{{ref}}}}}"
        return f"{{%={ref} ?: {quote_either(preset, fallback, chr(34))} %}}"
    if "}}" in fallback:
        raise DialectError(f"marketo: {fallback!r} contains '}}}}', which would end the token")
    return f"{{{{lead.{name}:default={fallback}}}}}" if fallback else f"{{{{lead.{name}}}}}"


def _editor(settings: Mapping[str, str]) -> str:
    editor = settings.get("editor", "classic")
    if editor not in ("classic", "email_designer"):
        raise DialectError(f"marketo: editor must be 'classic' or 'email_designer', not {editor!r}")
    return editor
