"""A locale's render input -> the same input rendered for eyes instead of for an ESP.

A preview shows what a recipient sees, so every ESP construct the renderer would emit is replaced
by what it stands for:

- a personalization tag becomes its sample value: the dynamic content profile's
  `sample_values[key]` when the profile gives one, else the tag's fallback, else its label or key
  (an empty fallback would print "Hi ," which previews nothing);
- a conditional shows its default branch (the rule-less else branch, or the first one), and each
  other branch is a *variant*: the same input with that branch chosen.

Everything else (values, design system, images, link tracking, minify) is the export's own input,
and the result goes through the same transform stage, so a preview differs from what ships only
in the tokens. Raw ESP syntax an author typed into a template stays as written (it is not one of
the product's tokens, so there is nothing to substitute for it).
"""

from __future__ import annotations

from dataclasses import dataclass

from emailexport.models import Conditional, PersonalizationTag
from emailexport.render.inputs import LocaleRenderInput

__all__ = ["Variant", "preview_input", "variants_of"]


@dataclass(frozen=True)
class Variant:
    """One non-default branch of one conditional: `name` is a file-safe `<conditional>-<branch>`."""

    conditional_id: int
    branch_key: str
    label: str

    @property
    def name(self) -> str:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.branch_key)
        return f"{self.conditional_id}-{safe}"


def _sample(tag: PersonalizationTag, samples: dict[str, str]) -> str:
    return samples.get(tag.key) or tag.fallback or tag.label or tag.key


def _default_branch_key(conditional: Conditional) -> str:
    return next((b.key for b in conditional.branches if b.rule is None), conditional.branches[0].key)


def preview_input(inp: LocaleRenderInput, choose: dict[int, str] | None = None) -> LocaleRenderInput:
    """`inp` with tags as sample text and each conditional on its default branch, or on the branch
    `choose[conditional_id]` names."""
    samples = dict(inp.profile.sample_values) if inp.profile is not None else {}
    tags = {
        key: tag.model_copy(update={"default_syntax": None, "dynamic_content_profile_syntaxes": {},
                                    "fallback": _sample(tag, samples)})
        for key, tag in inp.tags.items()
    }
    conditionals: dict[int, Conditional] = {}
    for cid, conditional in inp.conditionals.items():
        update: dict[str, object] = {"default_syntax": None, "dynamic_content_profile_syntaxes": {}}
        chosen = (choose or {}).get(cid)
        branch = next((b for b in conditional.branches if b.key == chosen), None)
        if branch is not None:
            # No syntax renders the first rule-less branch: make the chosen branch the only one.
            update["branches"] = [branch.model_copy(update={"rule": None})]
        conditionals[cid] = conditional.model_copy(update=update)
    return inp.model_copy(update={"profile": None, "tags": tags, "conditionals": conditionals})


def variants_of(inp: LocaleRenderInput, used: list[int]) -> list[Variant]:
    """Every non-default branch of the conditionals the locale's render used, in branch order."""
    out: list[Variant] = []
    for cid in used:
        conditional = inp.conditionals.get(cid)
        if conditional is None:
            continue
        default = _default_branch_key(conditional)
        for branch in conditional.branches:
            if branch.key != default:
                label = f"{conditional.label or f'conditional {cid}'}: {branch.label or branch.key}"
                out.append(Variant(cid, branch.key, label))
    return out
