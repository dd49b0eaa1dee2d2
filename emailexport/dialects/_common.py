"""Shared pieces of every dialect: the errors, quoting, literals and the two chain shapes.

A conditional becomes a `ConditionalSyntax`: one opening tag per branch key, written before that
branch's content, and one closing tag after the last branch. Two shapes cover every platform:

- a *flat* chain (`if` / `elsif` / `else` / `end`), for languages with an else-if keyword;
- a *nested* chain, for block helpers without an else-if (Handlebars helpers such as `#ifEq`):
  each later branch opens inside the previous block's `{{else}}`, and the closing tag closes every
  block that was opened, innermost first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from emailexport.errors import RenderError
from emailexport.models.workspace import Branch, BranchRule, ConditionalSyntax

__all__ = [
    "Block",
    "DialectError",
    "Resolve",
    "UnsupportedRuleError",
    "check_shape",
    "compare_value",
    "flat_chain",
    "nested_chain",
    "number",
    "quote_doubled",
    "quote_either",
    "unsupported",
]

# field name -> the platform's attribute name for it
Resolve = Callable[[str], str]


class DialectError(RenderError):
    """A tag or rule cannot be written in the target platform's syntax. Safe to show the user."""


class UnsupportedRuleError(DialectError):
    """A branch rule uses an operator (or a placement) the platform cannot express."""


def unsupported(preset: str, branch: Branch, why: str = "") -> UnsupportedRuleError:
    """The error for `branch`'s rule in `preset`: names the preset, the branch key and the operator."""
    assert branch.rule is not None
    extra = f" ({why})" if why else ""
    return UnsupportedRuleError(
        f"{preset} cannot express the operator '{branch.rule.operator}' used by branch '{branch.key}'{extra}"
    )


def quote_either(preset: str, text: str, preferred: str) -> str:
    """`text` as a string literal in a language without escapes (Liquid, Django, Handlebars).

    Uses `preferred` quotes, the other kind when `text` contains the preferred one, and raises when it
    contains both: there is no way to write that literal.
    """
    other = "'" if preferred == '"' else '"'
    for quote in (preferred, other):
        if quote not in text:
            return f"{quote}{text}{quote}"
    raise DialectError(f"{preset}: {text!r} contains both ' and \" and {preset} strings have no escape")


def quote_doubled(text: str) -> str:
    """`text` as a double-quoted literal where a quote inside is written twice (AMPscript)."""
    return '"' + text.replace('"', '""') + '"'


def number(value: int | float) -> str:
    """A number as the platforms write it: `10`, `9.5`."""
    return str(value) if isinstance(value, int) else repr(value)


def compare_value(
    preset: str,
    rule: BranchRule,
    quote: Callable[[str], str],
    bools: tuple[str, str] = ("true", "false"),
) -> str:
    """The right-hand side of `rule` as a literal: strings quoted, numbers bare, booleans as `bools`.

    greater_than / less_than compare numbers, so their value must be a number (or a numeric string).
    """
    value = rule.value
    if rule.operator in ("greater_than", "less_than"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise DialectError(f"{preset}: '{rule.operator}' on '{rule.field}' needs a number, got {value!r}")
        if isinstance(value, str):
            try:
                value = float(value) if "." in value else int(value)
            except ValueError:
                raise DialectError(
                    f"{preset}: '{rule.operator}' on '{rule.field}' needs a number, got {value!r}"
                ) from None
        return number(value)
    if isinstance(value, bool):
        return bools[0] if value else bools[1]
    if isinstance(value, (int, float)):
        return number(value)
    return quote(str(value))


def check_shape(preset: str, branches: Sequence[Branch]) -> None:
    """Raise unless the first branch has a rule and only the last one may lack it."""
    if not branches:
        raise DialectError(f"{preset}: a conditional needs at least one branch")
    if branches[0].rule is None:
        raise DialectError(f"{preset}: the first branch '{branches[0].key}' needs a rule")
    for branch in branches[1:-1]:
        if branch.rule is None:
            raise DialectError(f"{preset}: only the last branch may have no rule ('{branch.key}' has none)")


def flat_chain(
    preset: str,
    branches: Sequence[Branch],
    condition: Callable[[Branch], str],
    *,
    if_: str,
    elif_: str,
    else_: str,
    end: str,
) -> ConditionalSyntax:
    """if / else-if / else / end: `if_` and `elif_` are format strings with `{}` for the condition."""
    check_shape(preset, branches)
    values: dict[str, str] = {}
    for index, branch in enumerate(branches):
        if branch.rule is None:
            values[branch.key] = else_
        else:
            values[branch.key] = (if_ if index == 0 else elif_).format(condition(branch))
    return ConditionalSyntax(branch_values=values, closing=end)


@dataclass(frozen=True)
class Block:
    """One block helper around a branch: `{{#ifEq a "b"}}` ... `{{/ifEq}}`.

    `inverted` means the branch's content belongs in the helper's `{{else}}` part (Iterable's
    not-equal is the else of `#ifEq`).
    """

    open: str
    close: str
    inverted: bool = False


def nested_chain(
    preset: str,
    branches: Sequence[Branch],
    block: Callable[[Branch], Block],
    *,
    else_: str = "{{else}}",
) -> ConditionalSyntax:
    """Else-if written as nesting: each later branch opens inside the previous block's else."""
    check_shape(preset, branches)
    values: dict[str, str] = {}
    closers: list[str] = []
    for index, branch in enumerate(branches):
        prefix = else_ if index else ""
        if branch.rule is None:
            values[branch.key] = prefix
            continue
        helper = block(branch)
        if helper.inverted and index != len(branches) - 1:
            # The helper's true part is already used up (it is empty), so nothing can follow.
            raise unsupported(preset, branch, "only as the last branch, with no else branch after it")
        values[branch.key] = prefix + helper.open + (else_ if helper.inverted else "")
        closers.append(helper.close)
    return ConditionalSyntax(branch_values=values, closing="".join(reversed(closers)))
