"""The `{% if %}` family: Liquid (Braze, Customer.io), Django-like (Klaviyo, Brevo), HubL, Mailjet.

They share the chain (`{% if %}` ... `{% endif %}`) and differ in the else-if keyword, the
reference to an attribute, the default filter, quotes and the tests for contains / set / unset.
None of them has string escapes, so a literal takes the other quote type when it contains the
preferred one (`quote_either`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from emailexport.models.workspace import Branch, ConditionalSyntax

from ._common import DialectError, Resolve, compare_value, flat_chain, quote_either, unsupported
from .names import KLAVIYO_STANDARD

__all__ = ["BLOCK_DIALECTS", "block_conditional", "block_tag"]

_SYMBOLS = {"equals": "==", "not_equals": "!=", "greater_than": ">", "less_than": "<"}


@dataclass(frozen=True)
class BlockDialect:
    """What differs between the `{% if %}` platforms."""

    quote: str  # the quote the vendor's examples use
    elif_: str  # elsif | elif | elseif
    ref: Callable[[str, Mapping[str, str]], str]  # attribute name -> reference inside {% %}
    contains: str | None  # "{ref} contains {value}" or None when the platform has no test
    is_set: str
    is_not_set: str
    bools: tuple[str, str] = ("true", "false")


def _braze_ref(name: str, settings: Mapping[str, str]) -> str:
    # Braze's docs wrap custom attributes in {{ }} inside a tag: {% if {{custom_attribute.${x}}} == 'y' %}
    return "{{" + name + "}}" if name.startswith("custom_attribute.") else name


def _klaviyo_ref(name: str, settings: Mapping[str, str]) -> str:
    if name in KLAVIYO_STANDARD:
        return f"person.{name}"
    return f"person|lookup:{quote_either('klaviyo', name, chr(39))}"


def _mailjet_ref(name: str, settings: Mapping[str, str]) -> str:
    # An undefined variable in a Mailjet condition is an error, so every reference carries a default.
    return f'{_mailjet_namespace(settings)}:{name}:""'


def _mailjet_namespace(settings: Mapping[str, str]) -> str:
    namespace = settings.get("namespace", "data")
    if namespace not in ("data", "var"):
        raise DialectError(f"mailjet: namespace must be 'data' (contact properties) or 'var', not {namespace!r}")
    return namespace


BLOCK_DIALECTS: dict[str, BlockDialect] = {
    "braze": BlockDialect(
        quote="'", elif_="elsif", ref=_braze_ref,
        contains="{ref} contains {value}", is_set="{ref} != blank", is_not_set="{ref} == blank",
    ),
    "customerio": BlockDialect(
        quote='"', elif_="elsif", ref=lambda n, s: f"customer.{n}",
        contains="{ref} contains {value}", is_set="{ref} != blank", is_not_set="{ref} == blank",
    ),
    "klaviyo": BlockDialect(
        quote="'", elif_="elif", ref=_klaviyo_ref,
        contains="{value} in {ref}", is_set="{ref}", is_not_set="not {ref}", bools=("True", "False"),
    ),
    "brevo": BlockDialect(
        quote="'", elif_="elif", ref=lambda n, s: f"contact.{n}",
        contains="{value} in {ref}", is_set="{ref}", is_not_set="not {ref}",
    ),
    "hubspot": BlockDialect(
        quote='"', elif_="elif", ref=lambda n, s: f"contact.{n}",
        contains="{ref} is string_containing {value}", is_set="{ref}", is_not_set="not {ref}",
    ),
    "mailjet": BlockDialect(
        quote='"', elif_="elseif", ref=_mailjet_ref,
        contains=None, is_set='{ref} != ""', is_not_set='{ref} == ""',
    ),
}  # fmt: skip


def _condition(preset: str, resolve: Resolve, settings: Mapping[str, str], branch: Branch) -> str:
    """One branch rule as the expression inside `{% if ... %}`."""
    dialect = BLOCK_DIALECTS[preset]
    rule = branch.rule
    assert rule is not None
    ref = dialect.ref(resolve(rule.field), settings)
    if rule.operator == "is_set":
        return dialect.is_set.format(ref=ref)
    if rule.operator == "is_not_set":
        return dialect.is_not_set.format(ref=ref)
    value = compare_value(preset, rule, partial(quote_either, preset, preferred=dialect.quote), dialect.bools)
    if rule.operator == "contains":
        if dialect.contains is None:
            raise unsupported(preset, branch)
        return dialect.contains.format(ref=ref, value=value)
    return f"{ref} {_SYMBOLS[rule.operator]} {value}"


def block_conditional(
    preset: str, branches: Sequence[Branch], resolve: Resolve, settings: Mapping[str, str]
) -> ConditionalSyntax:
    """`{% if %}` / `{% elsif|elif|elseif %}` / `{% else %}` / `{% endif %}` for `preset`."""
    elif_ = BLOCK_DIALECTS[preset].elif_
    return flat_chain(
        preset, branches, partial(_condition, preset, resolve, settings),
        if_="{{% if {} %}}", elif_=f"{{{{% {elif_} {{}} %}}}}", else_="{% else %}", end="{% endif %}",
    )  # fmt: skip


def block_tag(preset: str, name: str, fallback: str, settings: Mapping[str, str]) -> str:
    """The output tag of `name` with `fallback` (or without a default when `fallback` is empty)."""
    quote = partial(quote_either, preset, preferred=BLOCK_DIALECTS[preset].quote)
    if preset == "braze":
        return f"{{{{ {name} | default: {quote(fallback)} }}}}" if fallback else f"{{{{ {name} }}}}"
    if preset == "customerio":
        ref = f"customer.{name}"
        return f"{{{{ {ref} | default: {quote(fallback)} }}}}" if fallback else f"{{{{ {ref} }}}}"
    if preset in ("klaviyo", "brevo"):
        ref = _klaviyo_output_ref(name) if preset == "klaviyo" else f"contact.{name}"
        # No spaces around the filter: both vendors' docs write `x|default:'y'`.
        return f"{{{{ {ref}|default:{quote(fallback)} }}}}" if fallback else f"{{{{ {ref} }}}}"
    if preset == "hubspot":
        if not fallback:
            return f"{{{{ contact.{name} }}}}"
        return f"{{{{ personalization_token({quote('contact.' + name)}, {quote(fallback)}) }}}}"
    # mailjet: the default is part of the variable; an empty one keeps an unset property from failing.
    return f"{{{{{_mailjet_namespace(settings)}:{name}:{quote(fallback)}}}}}"


def _klaviyo_output_ref(name: str) -> str:
    return name if name in KLAVIYO_STANDARD else f"person|lookup:{quote_either('klaviyo', name, chr(39))}"
