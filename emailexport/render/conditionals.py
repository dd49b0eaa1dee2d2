"""A conditional's syntax for a profile, and the branches an instance renders."""

from __future__ import annotations

from emailexport import dialects
from emailexport.models import Branch, Conditional, ConditionalSyntax, DynamicContentProfile, PersonalizationTag

__all__ = ["branches_to_render", "conditional_syntax"]


def conditional_syntax(
    conditional: Conditional, profile: DynamicContentProfile | None, tags: dict[str, PersonalizationTag]
) -> ConditionalSyntax | None:
    """Explicit per-profile syntax, then the profile preset's rule, then `default_syntax`.

    None means "no dynamic content": only the default branch is rendered (see `branches_to_render`).
    Raises `dialects.UnsupportedRuleError` when the preset cannot express a rule.
    """
    if profile is not None:
        explicit = conditional.dynamic_content_profile_syntaxes.get(profile.id)
        if explicit is not None:
            return explicit
        overrides = {t.key: t.attribute_names for t in tags.values() if t.attribute_names}
        return dialects.conditional_syntax(
            profile.template_engine_preset, conditional.branches,
            attribute_names=overrides, settings=profile.settings,
        )
    return conditional.default_syntax


def branches_to_render(conditional: Conditional, syntax: ConditionalSyntax | None) -> list[Branch]:
    """Every branch when there is a syntax to choose between them; else the default branch alone:
    the rule-less else branch, or the first branch when every branch has a rule."""
    if syntax is not None:
        return list(conditional.branches)
    fallback = next((b for b in conditional.branches if b.rule is None), conditional.branches[0])
    return [fallback]
