"""Render one locale of an email to HTML with ESP markers (docs/domain.md, Rendering one locale, 1-6).

The output still holds markers for ESP tokens; `emailexport.transforms` turns it into the final
HTML. Problems are collected, not raised: a locale reports every error it found at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from markupsafe import Markup

from emailexport.errors import EmailExportError
from emailexport.locales import direction_of, language_of
from emailexport.models import NULL_BRANCH, Component, Conditional, Instance, LocalizedText
from emailexport.render.conditionals import branches_to_render, conditional_syntax
from emailexport.render.inputs import LocaleRenderInput
from emailexport.render.sandbox import (
    RenderLimitExceeded,
    RenderLimits,
    budget,
    compile_template,
    render_bounded_template,
)
from emailexport.render.tokens import Context, TagResolver, TokenTable
from emailexport.render.values import convert_value, resolve_value
from emailexport.url_policy import url_problem

__all__ = ["RenderedDocument", "render_document"]


@dataclass
class RenderedDocument:
    """One locale rendered: HTML with markers, the token table, and what the render found."""

    html: str = ""
    plaintext_html: str = ""
    subject: str = ""  # with markers
    preheader: str = ""
    tokens: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    conditional_ids: set[int] = field(default_factory=set)
    tag_ids: set[int] = field(default_factory=set)
    image_ids: set[str] = field(default_factory=set)
    skip_urls: set[str] = field(default_factory=set)
    url_parameters: dict[str, dict[str, str]] = field(default_factory=dict)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if nested else value
    return merged


class _LocaleRenderer:
    def __init__(self, inp: LocaleRenderInput) -> None:
        self.inp = inp
        self.out = RenderedDocument()
        self.over_limit = False
        self.table = TokenTable(self.out.tokens)
        self.tags = TagResolver(inp.tags, inp.profile, self.table)
        brand = inp.brand_profile
        self.tokens = _merge(inp.design_system.design_tokens, brand.design_tokens if brand else {})
        overrides = brand.component_overrides if brand else []
        self.hidden = {o.component for o in overrides if o.hidden}
        self.brand_defaults = {o.component: dict(o.field_defaults) for o in overrides}
        self.context_base = {
            "locale": inp.locale,
            "language": language_of(inp.locale),
            "direction": direction_of(inp.locale),
            "email": {"id": inp.email_id, "name": inp.email_name},
            "export_type": inp.export_type,
            "connector": inp.connector.model_dump() if inp.connector else None,
        }

    # -- values -------------------------------------------------------------------------

    def fields_of(self, component: Component, instance: Instance, branch: str, where: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for f in component.fields:
            resolved = resolve_value(instance, branch, self.inp.locale, self.inp.default_locale, f,
                                     self.brand_defaults.get(component.name, {}))
            label = f"{where}.{f.variable}"
            if resolved.source == "default_locale":
                self.warn(f"untranslated: {label} uses the {self.inp.default_locale} value")
            if resolved.value is None and f.required:
                self.out.errors.append(f"{label}: required field has no value")
            try:
                if f.type == "url" and isinstance(resolved.value, str):
                    problem = url_problem(resolved.value, self.tag_fallback)
                    if problem:
                        raise ValueError(problem)
                value = convert_value(f, resolved.value, self.inp.images, self.tags.replace)
            except ValueError as exc:
                self.out.errors.append(f"{label}: {exc}")
                value = None
            if f.type == "image" and getattr(value, "image_id", None):
                self.out.image_ids.add(value.image_id)
            if f.type == "url" and value:
                if f.skip_link_tracking:
                    self.out.skip_urls.add(value)
                elif resolved.link_tracking_parameters:
                    self.out.url_parameters[value] = resolved.link_tracking_parameters
            values[f.variable] = value
        return values

    def tag_fallback(self, key: str) -> str | None:
        tag = self.inp.tags.get(key)
        return tag.fallback if tag is not None else None

    def warn(self, message: str) -> None:
        if message not in self.out.warnings:
            self.out.warnings.append(message)

    # -- templates ----------------------------------------------------------------------

    def run_template(self, component: Component, where: str, context: dict[str, Any]) -> str:
        if self.over_limit:  # the locale has failed: spend no more of its budget
            return ""
        try:
            return render_bounded_template(compile_template(component.template), context)
        except RenderLimitExceeded as exc:
            self.out.errors.append(f"{where}: render limit exceeded in component '{component.name}': {exc}")
            self.over_limit = True
        except MemoryError:
            self.out.errors.append(f"{where}: render limit exceeded in component '{component.name}': out of memory")
            self.over_limit = True
        except RecursionError:
            self.out.errors.append(
                f"{where}: render limit exceeded in component '{component.name}': recursion too deep")
        except TemplateSyntaxError as exc:
            self.out.errors.append(f"{where}: template syntax error in component '{component.name}' "
                                   f"line {exc.lineno}: {exc.message}")
        except SecurityError as exc:
            self.out.errors.append(f"{where}: unsafe template operation blocked: {exc}")
        except UndefinedError as exc:
            kind = "unsafe template operation blocked" if "unsafe" in str(exc) else "undefined variable"
            self.out.errors.append(f"{where}: {kind} in component '{component.name}': {exc}")
        except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
            self.out.errors.append(f"{where}: template error in component '{component.name}': {exc}")
        return ""

    def render_instance(self, instance: Instance, index: int, output_format: str, global_fields: dict[str, Any]) -> str:
        where = f"instances[{index}] ({instance.component})"
        component = self.inp.design_system.component(instance.component)
        if component is None:
            self.out.errors.append(f"{where}: component '{instance.component}' is not in the design system")
            return ""
        if instance.hidden_from_locales.get(self.inp.locale) or component.name in self.hidden:
            return ""
        conditional = self.conditional(instance.conditional_id, where)
        if instance.conditional_id is not None and conditional is None:
            return ""

        def render_branch(branch: str) -> str:
            context = {
                **self.fields_of(component, instance, branch, where),
                "global_fields": global_fields,
                "design_tokens": self.tokens,
                "render_context": {**self.context_base, "output_format": output_format},
            }
            return self.run_template(component, where, context)

        if conditional is None:
            return render_branch(NULL_BRANCH)
        return self.wrap(conditional, where, render_branch)

    def conditional(self, conditional_id: int | None, where: str) -> Conditional | None:
        if conditional_id is None:
            return None
        found = self.inp.conditionals.get(conditional_id)
        if found is None:
            self.out.errors.append(f"{where}: conditional {conditional_id} not found")
        return found

    def wrap(self, conditional: Conditional, where: str, render_branch: Any) -> str:
        """opening(1) + out(1) + opening(2) + out(2) + ... + closing (step 4)."""
        try:
            syntax = conditional_syntax(conditional, self.inp.profile, self.inp.tags)
        except EmailExportError as exc:
            self.out.errors.append(f"{where}: conditional {conditional.id}: {exc}")
            return ""
        self.out.conditional_ids.add(conditional.id)
        branches = branches_to_render(conditional, syntax)
        if syntax is None:
            return render_branch(branches[0].key)
        parts = [self.table.add(syntax.branch_values[b.key]) + render_branch(b.key) for b in branches]
        return "".join(parts) + self.table.add(syntax.closing)

    def text(self, name: str, text: LocalizedText, context: Context = "plain") -> str:
        """Subject or preheader, with markers, conditional applied (`context`: where it lands)."""
        where = name
        conditional = self.conditional(text.conditional_id, where)
        if conditional is not None and not conditional.allowed_in_subject_and_preheader:
            self.out.errors.append(f"{where}: conditional {conditional.id} is not allowed in subject and preheader")
            return ""

        def branch_text(branch: str) -> str:
            by_locale = text.branch_content.get(branch, {})
            if self.inp.locale in by_locale:
                return self.tags.replace(by_locale[self.inp.locale], context)
            if self.inp.default_locale in by_locale:
                self.warn(f"untranslated: {name} uses the {self.inp.default_locale} value")
                return self.tags.replace(by_locale[self.inp.default_locale], context)
            return ""

        if conditional is None:
            return branch_text(NULL_BRANCH)
        return self.wrap(conditional, where, branch_text)

    def document(self, output_format: str) -> str:
        self.tags.fallback_html = output_format == "html"
        container_instance = self.inp.content.container
        container = self.inp.design_system.container
        where = f"container ({container.name})"
        global_fields = self.fields_of(container, container_instance, NULL_BRANCH, where)
        children = "".join(
            self.render_instance(instance, i, output_format, global_fields)
            for i, instance in enumerate(self.inp.content.instances)
        )
        context = {
            **global_fields,
            "global_fields": global_fields,
            "design_tokens": self.tokens,
            "render_context": {**self.context_base, "output_format": output_format},
            "children": Markup(children),
            # In the HTML a tag's fallback is HTML text (the subject header keeps it as typed).
            "subject": Markup.escape(self.text("subject", self.inp.content.subject, "html_text")),
            "preheader": Markup.escape(self.text("preheader", self.inp.content.preheader, "html_text")),
        }
        return self.run_template(container, where, context)

    def render(self) -> RenderedDocument:
        self.out.subject = self.text("subject", self.inp.content.subject)
        self.out.preheader = self.text("preheader", self.inp.content.preheader)
        self.out.html = self.document("html")
        # A render that hit a limit has failed: do not spend the budget a second time.
        self.out.plaintext_html = "" if self.over_limit else self.document("plaintext")
        self.out.tag_ids = set(self.tags.used)
        self.out.errors.extend(self.tags.problems)
        for key in sorted(self.tags.unknown):
            self.out.errors.append(f"unknown personalization tag [[tag:{key}]]")
        if not self.out.subject.strip():
            self.warn("subject is empty")
        self.out.errors = list(dict.fromkeys(self.out.errors))
        return self.out


def render_document(inp: LocaleRenderInput, limits: RenderLimits | None = None) -> RenderedDocument:
    """Render `inp.locale`: HTML and plaintext-flavoured HTML with markers, warnings, errors, ids.

    In-process, under the sandbox's budget (`limits`: output, loops, arithmetic). The time and memory
    limits need the render worker: `emailexport.render.isolated.render_isolated`.
    """
    with budget(limits or RenderLimits()):
        return _LocaleRenderer(inp).render()
