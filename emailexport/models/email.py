"""An email and its content (docs/domain.md, Content of an email)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from emailexport.locales import LocaleCode

__all__ = ["NULL_BRANCH", "Email", "EmailContent", "FieldValue", "Instance", "LocalizedText"]

NULL_BRANCH = "null_branch"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldValue(_Model):
    value: Any = None
    link_tracking_parameters: dict[str, str] = {}


class Instance(_Model):
    """One use of a component in an email, with its values per branch and locale."""

    id: str = Field(min_length=1)
    component: str
    conditional_id: int | None = None
    hidden_from_locales: dict[str, bool] = {}
    # {branch_key: {locale: {variable: FieldValue}}}
    field_values: dict[str, dict[str, dict[str, FieldValue]]] = {}


class LocalizedText(_Model):
    """Subject or preheader: `{branch_key: {locale: text}}`, optionally under a conditional."""

    conditional_id: int | None = None
    branch_content: dict[str, dict[str, str]] = {}


class EmailContent(_Model):
    subject: LocalizedText = LocalizedText()
    preheader: LocalizedText = LocalizedText()
    container: Instance
    instances: list[Instance] = []


class Email(_Model):
    id: int
    name: str = Field(min_length=1)
    design_system_id: int
    brand_profile_id: int | None = None
    link_tracking_profile_id: int | None = None
    default_locale: LocaleCode
    locales: list[LocaleCode] = Field(min_length=1)
    content: EmailContent

    @model_validator(mode="after")
    def _default_locale_listed(self) -> Email:
        if self.default_locale not in self.locales:
            raise ValueError(f"default_locale {self.default_locale} is not among the email's locales")
        if len(set(self.locales)) != len(self.locales):
            raise ValueError("locales must not repeat")
        return self
