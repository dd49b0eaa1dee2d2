"""What one locale's render depends on, and nothing else (so it can be the cache key).

`LocaleRenderInput` holds the email's content *sliced to the locale*: for every value, the
locale's own entry, and the default locale's entry only where the locale has none. Changing a
value of one locale therefore changes that locale's input alone. The export id is not in here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from emailexport.models import (
    BrandProfile,
    Conditional,
    DynamicContentProfile,
    EmailContent,
    EmailDesignSystem,
    Image,
    Instance,
    LinkTrackingProfile,
    LocalizedText,
    PersonalizationTag,
)

__all__ = ["ConnectorRef", "LocaleRenderInput", "slice_content"]


class ConnectorRef(BaseModel):
    model_config = ConfigDict(frozen=True)
    type: str
    name: str


class LocaleRenderInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    locale: str
    default_locale: str
    email_id: int
    email_name: str
    content: EmailContent
    design_system: EmailDesignSystem
    brand_profile: BrandProfile | None = None
    conditionals: dict[int, Conditional] = {}
    tags: dict[str, PersonalizationTag] = {}
    profile: DynamicContentProfile | None = None
    link_tracking: LinkTrackingProfile | None = None
    images: dict[str, Image] = {}
    export_type: Literal["html", "connector", "json", "pdf"] = "html"
    connector: ConnectorRef | None = None
    minify_html: bool = False
    image_mode: str = "use_cdn"
    # public_url -> where the image is in this export (zip path or CDN URL); empty for use_cdn.
    # Part of the cache key on purpose: a new CDN location must re-render the locale.
    image_urls: dict[str, str] = {}


def _slice_instance(instance: Instance, locale: str, default_locale: str) -> Instance:
    values = {}
    for branch, by_locale in instance.field_values.items():
        own = by_locale.get(locale, {})
        fallback = {k: v for k, v in by_locale.get(default_locale, {}).items() if k not in own}
        kept = {loc: vals for loc, vals in ((locale, own), (default_locale, fallback)) if vals}
        values[branch] = kept
    hidden = {locale: True} if instance.hidden_from_locales.get(locale) else {}
    return instance.model_copy(update={"field_values": values, "hidden_from_locales": hidden})


def _slice_text(text: LocalizedText, locale: str, default_locale: str) -> LocalizedText:
    content = {}
    for branch, by_locale in text.branch_content.items():
        if locale in by_locale:
            content[branch] = {locale: by_locale[locale]}
        elif default_locale in by_locale:
            content[branch] = {default_locale: by_locale[default_locale]}
    return text.model_copy(update={"branch_content": content})


def slice_content(content: EmailContent, locale: str, default_locale: str) -> EmailContent:
    """`content` keeping only what rendering `locale` can read."""
    return EmailContent(
        subject=_slice_text(content.subject, locale, default_locale),
        preheader=_slice_text(content.preheader, locale, default_locale),
        container=_slice_instance(content.container, locale, default_locale),
        instances=[_slice_instance(i, locale, default_locale) for i in content.instances],
    )
