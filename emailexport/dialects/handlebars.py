"""Handlebars platforms: SendGrid dynamic templates and Iterable.

Both compare with block helpers (`{{#equals}}`, `{{#ifEq}}`, ...) that have an `{{else}}` part but
no documented else-if of their own, so a chain is written as nesting (`nested_chain`): a later
branch opens inside the previous helper's `{{else}}` and the closing tag closes every helper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

from emailexport.models.workspace import Branch, ConditionalSyntax

from ._common import Block, Resolve, compare_value, nested_chain, quote_either, unsupported

__all__ = ["HELPERS", "handlebars_conditional", "handlebars_tag"]

# operator -> (helper name, inverted); None: the platform has no helper for it.
HELPERS: dict[str, dict[str, tuple[str, bool] | None]] = {
    "sendgrid": {
        "equals": ("equals", False),
        "not_equals": ("notEquals", False),
        "greater_than": ("greaterThan", False),
        "less_than": ("lessThan", False),
        "contains": None,  # SendGrid documents no substring helper
        "is_set": ("if", False),
        "is_not_set": ("unless", False),
    },
    "iterable": {
        "equals": ("ifEq", False),
        "not_equals": ("ifEq", True),  # Iterable has no not-equal helper: the else of #ifEq
        "greater_than": ("ifGt", False),
        "less_than": ("ifLt", False),
        "contains": ("ifContainsStr", False),
        "is_set": ("if", False),
        "is_not_set": ("unless", False),
    },
}


def _block(preset: str, resolve: Resolve, branch: Branch) -> Block:
    rule = branch.rule
    assert rule is not None
    helper = HELPERS[preset][rule.operator]
    if helper is None:
        raise unsupported(preset, branch)
    name, inverted = helper
    args = resolve(rule.field)
    if rule.operator not in ("is_set", "is_not_set"):
        args += " " + compare_value(preset, rule, partial(quote_either, preset, preferred='"'))
    return Block(open=f"{{{{#{name} {args}}}}}", close=f"{{{{/{name}}}}}", inverted=inverted)


def handlebars_conditional(
    preset: str, branches: Sequence[Branch], resolve: Resolve, settings: Mapping[str, str]
) -> ConditionalSyntax:
    """Nested block helpers for `preset` (sendgrid or iterable)."""
    return nested_chain(preset, branches, partial(_block, preset, resolve))


def handlebars_tag(preset: str, name: str, fallback: str, settings: Mapping[str, str]) -> str:
    """`{{insert x "default=y"}}` (SendGrid), `{{defaultIfEmpty x "y"}}` (Iterable), or `{{x}}`."""
    if not fallback:
        return f"{{{{{name}}}}}"
    if preset == "sendgrid":
        return f"{{{{insert {name} {quote_either(preset, 'default=' + fallback, chr(34))}}}}}"
    return f"{{{{defaultIfEmpty {name} {quote_either(preset, fallback, chr(34))}}}}}"
