"""The example workspace (examples/workspace.yaml) is valid and covers what it promises."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from jinja2.sandbox import SandboxedEnvironment

from emailexport.bundle_model import WorkspaceBundle
from emailexport.models import NULL_BRANCH, Component, Email, EmailDesignSystem, Instance, TemplateEnginePreset

EXAMPLE = Path(__file__).parents[1] / "examples" / "workspace.yaml"

REQUIRED_COMPONENTS = {
    "container", "header", "hero", "text", "button", "two_column", "product_card", "spacer", "footer",
}  # fmt: skip
ALL_FIELD_TYPES = {
    "text", "number", "boolean", "color", "enum", "image", "url", "rich_text",
    "horizontal_align", "vertical_align", "code",
}  # fmt: skip


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    with EXAMPLE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def bundle(raw: dict[str, Any]) -> WorkspaceBundle:
    return WorkspaceBundle.model_validate(raw)


@pytest.fixture(scope="module")
def design_system(bundle: WorkspaceBundle) -> EmailDesignSystem:
    return bundle.design_systems[0]


@pytest.fixture(scope="module")
def email(bundle: WorkspaceBundle) -> Email:
    return bundle.emails[0]


def _all_instances(email: Email) -> list[Instance]:
    return [email.content.container, *email.content.instances]


def test_ids(bundle: WorkspaceBundle) -> None:
    assert bundle.organization.id == 1
    assert bundle.workspace.id == 1
    assert bundle.workspace.organization_id == 1
    assert [ds.id for ds in bundle.design_systems] == [1]
    assert bundle.design_systems[0].name == "Northwind"
    assert [bp.id for bp in bundle.brand_profiles] == [1]
    assert [e.id for e in bundle.emails] == [1]


def test_components(design_system: EmailDesignSystem) -> None:
    names = {c.name for c in design_system.components}
    assert len(design_system.components) >= 9
    assert names >= REQUIRED_COMPONENTS
    containers = [c for c in design_system.components if c.container]
    assert [c.name for c in containers] == ["container"]
    assert "{{ children }}" in containers[0].template
    used_types = {f.type for c in design_system.components for f in c.fields}
    assert used_types == ALL_FIELD_TYPES


def test_component_html_is_email_grade(design_system: EmailDesignSystem) -> None:
    container = design_system.container.template
    for needle in (
        "<!DOCTYPE html>", "x-apple-disable-message-reformatting", 'name="color-scheme"',
        "<title>{{ subject }}</title>", "@media (max-width:", "@media (prefers-color-scheme: dark)",
        "<style data-embed>", "[data-ogsc]", "<o:OfficeDocumentSettings>", "{{ preheader }}", "mso-hide:all",
    ):  # fmt: skip
        assert needle in container, needle
    for component in design_system.components:
        if component.container:
            continue
        assert component.template.lstrip().startswith(("<tr", "{%")), component.name
    button = design_system.component("button")
    assert button is not None
    assert "<v:roundrect" in button.template and "<!--[if mso]>" in button.template
    assert "<!--[if !mso]><!-->" in button.template
    footer = design_system.component("footer")
    assert footer is not None
    fields = {f.variable: f for f in footer.fields}
    assert fields["unsubscribe_url"].default_value == "https://example.com/unsubscribe"
    assert fields["view_in_browser_url"].skip_link_tracking is True


def test_templates_compile_in_a_sandbox(design_system: EmailDesignSystem) -> None:
    env = SandboxedEnvironment(autoescape=True)
    for component in design_system.components:
        env.from_string(component.template)  # raises TemplateSyntaxError when broken
        assert "|safe" not in component.template.replace(" ", ""), component.name
        assert "[[tag:" not in component.template, component.name


def test_brand_profile(bundle: WorkspaceBundle, design_system: EmailDesignSystem) -> None:
    profile = bundle.brand_profiles[0]
    assert profile.design_system_id == design_system.id
    assert set(profile.design_tokens) <= set(design_system.design_tokens)
    assert profile.design_tokens
    for override in profile.component_overrides:
        component = design_system.component(override.component)
        assert component is not None
        assert set(override.field_defaults) <= {f.variable for f in component.fields}
    assert any(o.field_defaults for o in profile.component_overrides)


def test_every_preset_has_a_profile(bundle: WorkspaceBundle) -> None:
    presets = [p.template_engine_preset for p in bundle.dynamic_content_profiles]
    assert sorted(presets) == sorted(get_args(TemplateEnginePreset))
    assert len({p.id for p in bundle.dynamic_content_profiles}) == len(presets)


def test_loyalty_conditional(bundle: WorkspaceBundle, email: Email) -> None:
    conditional = next(c for c in bundle.conditionals if c.id == 1)
    assert [b.key for b in conditional.branches] == ["gold", "silver", "standard"]
    assert conditional.branches[-1].rule is None
    assert conditional.allowed_in_subject_and_preheader
    assert conditional.default_syntax is not None
    assert email.content.subject.conditional_id == 1
    assert set(email.content.subject.branch_content) == {"gold", "silver", "standard"}
    for texts in email.content.subject.branch_content.values():
        assert set(texts) == set(email.locales)
    assert any(i.conditional_id == 1 for i in email.content.instances)
    for profile_id in conditional.dynamic_content_profile_syntaxes:
        assert profile_id in {p.id for p in bundle.dynamic_content_profiles}


def test_personalization_tags(bundle: WorkspaceBundle, email: Email) -> None:
    tags = {t.key: t for t in bundle.personalization_tags}
    assert set(tags) == {"first_name", "city", "loyalty_points"}
    assert tags["first_name"].fallback == "there"
    assert all(t.fallback and t.default_syntax for t in tags.values())
    assert any("'" in t.fallback for t in tags.values())
    subject = " ".join(t for b in email.content.subject.branch_content.values() for t in b.values())
    preheader = " ".join(t for b in email.content.preheader.branch_content.values() for t in b.values())
    assert "[[tag:first_name]]" in subject and "[[tag:first_name]]" in preheader
    used_in_urls = used_in_text = False
    for instance in email.content.instances:
        component = _component(bundle, instance)
        types = {f.variable: f.type for f in component.fields}
        for locales in instance.field_values.values():
            for values in locales.values():
                for variable, fv in values.items():
                    if isinstance(fv.value, str) and "[[tag:" in fv.value:
                        used_in_urls |= types[variable] == "url"
                        used_in_text |= types[variable] in ("text", "rich_text")
    assert used_in_urls and used_in_text


def test_links_and_connectors(bundle: WorkspaceBundle, email: Email) -> None:
    assert [p.id for p in bundle.link_tracking_profiles] == [email.link_tracking_profile_id]
    assert bundle.link_tracking_profiles[0].parameters == {
        "utm_source": "emailexport", "utm_medium": "email", "utm_campaign": "spring-sale",
    }  # fmt: skip
    own_params = [
        fv for i in email.content.instances for b in i.field_values.values()
        for v in b.values() for fv in v.values() if fv.link_tracking_parameters
    ]  # fmt: skip
    assert own_params
    (connector,) = bundle.connectors
    assert connector.type == "brevo" and connector.credentials == "env:BREVO_CREDENTIALS"
    (cdn,) = bundle.cdn_connectors
    assert cdn.type == "s3" and cdn.prefix == "emails/"
    assert cdn.credentials == "env:EMAILEXPORT_CDN_CREDENTIALS"


def test_email_locales(bundle: WorkspaceBundle, email: Email) -> None:
    assert email.name == "Spring Sale 2026"
    assert email.design_system_id == bundle.design_systems[0].id
    assert email.brand_profile_id == bundle.brand_profiles[0].id
    assert email.default_locale == "en-US"
    assert {"ar-SA", "ja-JP"} <= set(email.locales)
    assert len(email.locales) >= 6
    for texts in email.content.preheader.branch_content.values():
        assert set(texts) == set(email.locales)
    hidden = [i for i in email.content.instances if any(i.hidden_from_locales.values())]
    assert hidden
    assert len(email.content.instances) >= 10
    used = {i.component for i in email.content.instances}
    assert {c.name for c in bundle.design_systems[0].components if not c.container} <= used


def _component(bundle: WorkspaceBundle, instance: Instance) -> Component:
    component = bundle.design_systems[0].component(instance.component)
    assert component is not None, f"instance {instance.id}: unknown component {instance.component}"
    return component


def test_instances_refer_to_what_exists(bundle: WorkspaceBundle, email: Email) -> None:
    image_ids = {i.id for i in bundle.images}
    conditionals = {c.id: c for c in bundle.conditionals}
    assert len(image_ids) >= 6
    assert all(i.public_url.startswith("https://cdn.northwind.example/") for i in bundle.images)
    external = 0
    instance_ids = [i.id for i in _all_instances(email)]
    assert len(set(instance_ids)) == len(instance_ids)
    assert email.content.container.component == bundle.design_systems[0].container.name
    for instance in _all_instances(email):
        component = _component(bundle, instance)
        fields = {f.variable: f for f in component.fields}
        if instance.conditional_id is None:
            assert set(instance.field_values) <= {NULL_BRANCH}
        else:
            keys = {b.key for b in conditionals[instance.conditional_id].branches}
            assert set(instance.field_values) == keys
        for locales in instance.field_values.values():
            assert set(locales) <= set(email.locales)
            for values in locales.values():
                for variable, fv in values.items():
                    assert variable in fields, f"{component.name} has no field {variable}"
                    field = fields[variable]
                    if field.type == "image":
                        assert set(fv.value) in ({"image_id"}, {"url"})
                        if "image_id" in fv.value:
                            assert fv.value["image_id"] in image_ids
                        else:
                            external += 1
                    if field.type == "enum":
                        assert fv.value in (field.options or [])
    assert external >= 1


def test_es_es_has_exactly_one_untranslated_value(email: Email) -> None:
    missing = []
    for instance in email.content.instances:
        if instance.hidden_from_locales.get("es-ES"):
            continue
        for branch, locales in instance.field_values.items():
            en = locales.get("en-US", {})
            es = locales.get("es-ES", {})
            missing += [(instance.id, branch, v) for v in en if v not in es]
    assert len(missing) == 1, missing
    for text in (email.content.subject, email.content.preheader):
        for texts in text.branch_content.values():
            assert "es-ES" in texts


def test_other_locales_are_complete(email: Email) -> None:
    """Apart from the deliberate es-ES gap, every visible instance is fully translated."""
    for instance in email.content.instances:
        for branch, locales in instance.field_values.items():
            en = set(locales.get("en-US", {}))
            for locale in email.locales:
                if locale in ("en-US", "es-ES") or instance.hidden_from_locales.get(locale):
                    continue
                assert set(locales.get(locale, {})) == en, (instance.id, branch, locale)
