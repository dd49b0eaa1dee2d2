"""Workspace data: the design system and everything an email refers to (docs/domain.md, Entities)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Branch",
    "BranchRule",
    "BrandProfile",
    "CdnConnector",
    "Component",
    "ComponentField",
    "ComponentOverride",
    "Conditional",
    "ConditionalSyntax",
    "Connector",
    "DynamicContentProfile",
    "EmailDesignSystem",
    "FieldType",
    "Image",
    "LinkTrackingProfile",
    "Organization",
    "PersonalizationTag",
    "TemplateEnginePreset",
    "Workspace",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Organization(_Model):
    id: int
    name: str


class Workspace(_Model):
    id: int
    organization_id: int
    name: str


FieldType = Literal[
    "text", "number", "boolean", "color", "enum", "image", "url", "rich_text",
    "horizontal_align", "vertical_align", "code",
]  # fmt: skip


class ComponentField(_Model):
    """A variable of a component template, with how the editor and the renderer treat it."""

    variable: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    label: str = ""
    type: FieldType
    default_value: Any = None
    required: bool = False
    options: list[str] | None = None  # the allowed values of an enum field
    skip_link_tracking: bool = False  # url fields only: never add tracking parameters

    @model_validator(mode="after")
    def _enum_has_options(self) -> ComponentField:
        if self.type == "enum" and not self.options:
            raise ValueError("an enum field needs options")
        return self


class Component(_Model):
    name: str = Field(min_length=1)
    label: str = ""
    template: str
    fields: list[ComponentField] = []
    container: bool = False


class EmailDesignSystem(_Model):
    id: int
    name: str
    design_tokens: dict[str, Any] = {}
    components: list[Component]

    @model_validator(mode="after")
    def _one_container_unique_names(self) -> EmailDesignSystem:
        containers = [c.name for c in self.components if c.container]
        if len(containers) != 1:
            raise ValueError(f"a design system needs exactly one container component, found {len(containers)}")
        names = [c.name for c in self.components]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"component names must be unique, repeated: {', '.join(dupes)}")
        return self

    def component(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)

    @property
    def container(self) -> Component:
        return next(c for c in self.components if c.container)


class ComponentOverride(_Model):
    component: str
    hidden: bool = False
    field_defaults: dict[str, Any] = {}


class BrandProfile(_Model):
    id: int
    name: str = ""
    design_system_id: int
    design_tokens: dict[str, Any] = {}
    component_overrides: list[ComponentOverride] = []


class BranchRule(_Model):
    """`{field, operator, value}`: `field` is the contact attribute the rule tests."""

    field: str = Field(min_length=1)
    operator: Literal["equals", "not_equals", "contains", "is_set", "is_not_set", "greater_than", "less_than"]
    value: str | int | float | bool | None = None

    @model_validator(mode="after")
    def _value_when_needed(self) -> BranchRule:
        if self.operator not in ("is_set", "is_not_set") and self.value is None:
            raise ValueError(f"operator {self.operator} needs a value")
        return self


class Branch(_Model):
    key: str = Field(min_length=1)
    label: str = ""
    rule: BranchRule | None = None  # None: the else branch (last only)


class ConditionalSyntax(_Model):
    """Hand-written syntax: an opening tag per branch key and one closing tag."""

    branch_values: dict[str, str]
    closing: str


class Conditional(_Model):
    id: int
    label: str = ""
    branches: list[Branch] = Field(min_length=1)
    allowed_in_subject_and_preheader: bool = False
    default_syntax: ConditionalSyntax | None = None
    dynamic_content_profile_syntaxes: dict[str, ConditionalSyntax] = {}

    @model_validator(mode="after")
    def _branches_well_formed(self) -> Conditional:
        keys = [b.key for b in self.branches]
        if len(set(keys)) != len(keys):
            raise ValueError("branch keys must be unique")
        if any(b.rule is None for b in self.branches[:-1]):
            raise ValueError("only the last branch may have no rule (the else branch)")
        for name, syntax in [("default_syntax", self.default_syntax), *self.dynamic_content_profile_syntaxes.items()]:
            if syntax is not None and set(syntax.branch_values) != set(keys):
                raise ValueError(f"{name}: branch_values must name exactly the branches {keys}")
        return self


class PersonalizationTag(_Model):
    id: int
    key: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
    label: str = ""
    fallback: str = ""
    default_syntax: str | None = None  # may use {key} and {fallback}
    dynamic_content_profile_syntaxes: dict[str, str] = {}
    # (added) the attribute's name in a platform when it is not the preset's default mapping
    # of `key`, e.g. {"mailchimp": "FNAME", "ampscript": "FirstName"}.
    attribute_names: dict[str, str] = {}


TemplateEnginePreset = Literal[
    "braze", "klaviyo", "customerio", "brevo", "mailchimp", "ampscript", "sendgrid", "iterable",
    "hubspot", "marketo", "campaign_monitor", "mailjet",
]  # fmt: skip


class DynamicContentProfile(_Model):
    id: str = Field(min_length=1)
    name: str
    template_engine_preset: TemplateEnginePreset
    # (added) preset-specific switches, e.g. marketo {"editor": "classic" | "email_designer"}
    settings: dict[str, str] = {}
    # (added) tag key -> the value previews show for it (emailexport.previews); else the fallback
    sample_values: dict[str, str] = {}


class LinkTrackingProfile(_Model):
    id: int
    name: str
    parameters: dict[str, str]


class Image(_Model):
    """A library image: a public URL, stored bytes (`file` in a bundle -> `sha256` once imported), or
    both. Stored bytes are what `include_in_zip` and `use_cdn_connector` use; `use_cdn` needs the URL."""

    id: str = Field(min_length=1)
    name: str = ""
    filename: str
    public_url: str | None = Field(default=None, pattern=r"^https?://")
    # (added) a bundle's image file, relative to the bundle's folder; kept after import as provenance.
    file: str | None = None
    # (added) content hash of the library's stored copy (set by import / `images add`, never by hand).
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    width: int | None = None
    height: int | None = None
    content_type: str = "image/png"
    file_size: int | None = None

    @model_validator(mode="after")
    def _has_a_source(self) -> Image:
        if self.public_url is None and self.file is None and self.sha256 is None:
            raise ValueError("an image needs a public_url, a file, or both")
        return self

    @property
    def ref_url(self) -> str:
        """The URL rendered for this image before an export places it: its public URL, or for an image
        with stored bytes only a placeholder that placing rewrites (or that fails the locale)."""
        return self.public_url or f"emailexport-library:{self.id}"


class Connector(_Model):
    """An ESP integration. `credentials` names where the secret lives, never the secret."""

    id: int
    type: str
    name: str
    settings: dict[str, Any] = {}
    credentials: str | None = Field(default=None, description="env:VAR or block:secret/NAME")


class CdnConnector(_Model):
    id: int
    type: str = "s3"
    name: str = ""
    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    base_url: str
    credentials: str | None = None
