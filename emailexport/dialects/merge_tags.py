"""Bracketed merge-tag platforms: Mailchimp (`*|TAG|*`) and Campaign Monitor (`[tag]`).

Neither quotes values: a value runs up to the tag's closing delimiter, so a value or fallback that
contains that delimiter cannot be written and raises `DialectError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

from emailexport.models.workspace import Branch, ConditionalSyntax

from ._common import DialectError, Resolve, check_shape, compare_value, flat_chain, unsupported

__all__ = ["merge_conditional", "merge_tag"]

_MAILCHIMP_SYMBOLS = {"equals": "=", "not_equals": "!=", "greater_than": ">", "less_than": "<"}
_FORBIDDEN = {"mailchimp": ("*|", "|*"), "campaign_monitor": ("[", "]")}


def _bare(preset: str, text: str) -> str:
    """`text` written unquoted, refused when it holds the tag delimiters."""
    for token in _FORBIDDEN[preset]:
        if token in text:
            raise DialectError(f"{preset}: {text!r} contains {token!r}, which would end the merge tag")
    return text


def _mailchimp_opening(resolve: Resolve, index: int, branch: Branch) -> str:
    """`*|IF:F=v|*`, `*|ELSEIF:F=v|*`, `*|IF:F|*` (set) or `*|IFNOT:F|*` (unset, first branch only)."""
    rule = branch.rule
    assert rule is not None
    field = resolve(rule.field)
    keyword = "ELSEIF" if index else "IF"
    if rule.operator == "is_set":
        return f"*|{keyword}:{field}|*"
    if rule.operator == "is_not_set":
        if index:
            raise unsupported("mailchimp", branch, "only in the first branch: IFNOT has no ELSEIF form")
        return f"*|IFNOT:{field}|*"
    if rule.operator == "contains":
        raise unsupported("mailchimp", branch)
    value = compare_value("mailchimp", rule, partial(_bare, "mailchimp"))
    return f"*|{keyword}:{field}{_MAILCHIMP_SYMBOLS[rule.operator]}{value}|*"


def _campaign_monitor_condition(resolve: Resolve, branch: Branch) -> str:
    rule = branch.rule
    assert rule is not None
    if rule.operator != "equals":
        raise unsupported("campaign_monitor", branch)
    return f"{resolve(rule.field)}={compare_value('campaign_monitor', rule, partial(_bare, 'campaign_monitor'))}"


def merge_conditional(
    preset: str, branches: Sequence[Branch], resolve: Resolve, settings: Mapping[str, str]
) -> ConditionalSyntax:
    """`*|IF:|*` chains (Mailchimp) or `[if:]` chains (Campaign Monitor)."""
    if preset == "campaign_monitor":
        return flat_chain(
            preset, branches, partial(_campaign_monitor_condition, resolve),
            if_="[if:{}]", elif_="[elseif:{}]", else_="[else]", end="[endif]",
        )  # fmt: skip
    check_shape(preset, branches)
    values = {
        b.key: "*|ELSE:|*" if b.rule is None else _mailchimp_opening(resolve, i, b) for i, b in enumerate(branches)
    }
    return ConditionalSyntax(branch_values=values, closing="*|END:IF|*")


def merge_tag(preset: str, name: str, fallback: str, settings: Mapping[str, str]) -> str:
    """`*|FNAME|*` with the conditional-block fallback idiom, or `[firstname,fallback=there]`."""
    if preset == "campaign_monitor":
        return f"[{name},fallback={_bare(preset, fallback)}]" if fallback else f"[{name}]"
    tag = f"*|{name}|*"
    if not fallback:
        return tag
    # Mailchimp has no inline default: an IF on an empty field is false, so ELSE carries the fallback.
    return f"*|IF:{name}|*{tag}*|ELSE:|*{_bare(preset, fallback)}*|END:IF|*"
