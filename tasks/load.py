"""Stage 1, load: an export id -> the record and, per locale, exactly what its render depends on."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from emailexport.errors import ValidationFailed
from emailexport.models import (
    BrandProfile,
    CdnConnector,
    Conditional,
    Connector,
    DynamicContentProfile,
    Email,
    EmailContent,
    EmailDesignSystem,
    ExportRecord,
    Image,
    LinkTrackingProfile,
    PersonalizationTag,
)
from emailexport.render import TAG_RE, ConnectorRef, LocaleRenderInput, slice_content
from emailexport.runtime import open_store
from emailexport.store import Store
from tasks.retry import retry_unless_terminal

__all__ = ["ExportJob", "build_job", "load_export"]


class ExportJob(BaseModel):
    record: ExportRecord
    email: Email
    inputs: dict[str, LocaleRenderInput]
    cdn_connector: CdnConnector | None = None
    connector: Connector | None = None


def _walk(value: Any, strings: list[str], image_ids: set[str], conditional_ids: set[int]) -> None:
    if isinstance(value, dict):
        if isinstance(value.get("image_id"), str):
            image_ids.add(value["image_id"])
        if isinstance(value.get("conditional_id"), int):
            conditional_ids.add(value["conditional_id"])
        for inner in value.values():
            _walk(inner, strings, image_ids, conditional_ids)
    elif isinstance(value, list):
        for inner in value:
            _walk(inner, strings, image_ids, conditional_ids)
    elif isinstance(value, str):
        strings.append(value)


def _referenced(content: EmailContent) -> tuple[set[str], set[str], set[int], list[str]]:
    """Tag keys, image ids and conditional ids that `content` refers to, and its strings."""
    strings: list[str] = []
    image_ids: set[str] = set()
    conditional_ids: set[int] = set()
    _walk(content.model_dump(), strings, image_ids, conditional_ids)
    keys = {m.group(1) for s in strings for m in TAG_RE.finditer(s)}
    return keys, image_ids, conditional_ids, strings


def _literal_images(library: list[Image], texts: list[str]) -> set[str]:
    """Ids of library images whose public_url is written literally in `texts` (templates, code
    values): they are used as surely as an image field, so they are fetched and rewritten too."""
    blob = "\n".join(texts)
    return {image.id for image in library if image.public_url and image.public_url in blob}


def build_job(store: Store, record: ExportRecord) -> ExportJob:
    """Read what the export needs from the store; a missing record or a locale the email no longer
    has is a `ValidationFailed`/`NotFoundError` naming it."""
    ws = record.workspace_id
    email = store.require(ws, Email, record.email_id)
    outside = [loc for loc in record.options.locales if loc not in email.locales]
    if outside:
        raise ValidationFailed({"options.locales": [f"{loc} is not a locale of email {email.id}" for loc in outside]})
    design_system = store.require(ws, EmailDesignSystem, email.design_system_id)
    brand = store.require(ws, BrandProfile, email.brand_profile_id) if email.brand_profile_id is not None else None
    tracking = (store.require(ws, LinkTrackingProfile, email.link_tracking_profile_id)
                if email.link_tracking_profile_id is not None else None)
    profile = (store.require(ws, DynamicContentProfile, record.dynamic_content_profile_id)
               if record.dynamic_content_profile_id else None)
    connector = store.require(ws, Connector, record.connector_id) if record.connector_id is not None else None
    all_tags = {t.key: t for t in store.list_documents(ws, PersonalizationTag)}
    cdn = store.require(ws, CdnConnector, record.cdn_connector_id) if record.cdn_connector_id is not None else None
    library = store.list_documents(ws, Image)
    by_id = {image.id: image for image in library}
    templates = [c.template for c in design_system.components]
    if brand is not None:
        templates += [str(v) for o in brand.component_overrides for v in o.field_defaults.values()]
    templates += [str(f.default_value) for c in design_system.components for f in c.fields if f.default_value]
    inputs: dict[str, LocaleRenderInput] = {}
    known_conditionals: dict[int, Conditional | None] = {}
    for locale in record.options.locales:
        content = slice_content(email.content, locale, email.default_locale)
        keys, image_ids, conditional_ids, strings = _referenced(content)
        conditionals = {}
        for cid in sorted(conditional_ids):
            if cid not in known_conditionals:  # read once per export, not once per locale
                known_conditionals[cid] = store.get(ws, Conditional, cid)
            found = known_conditionals[cid]
            if found is not None:  # a dangling id is reported by the renderer, under the locale
                conditionals[cid] = found
        rule_fields = {b.rule.field for c in conditionals.values() for b in c.branches if b.rule}
        image_ids |= _literal_images(library, [*templates, *strings])
        images = {i: by_id[i] for i in sorted(image_ids) if i in by_id}
        inputs[locale] = LocaleRenderInput(
            locale=locale,
            default_locale=email.default_locale,
            email_id=email.id,
            email_name=email.name,
            content=content,
            design_system=design_system,
            brand_profile=brand,
            conditionals=conditionals,
            tags={k: t for k, t in all_tags.items() if k in keys or k in rule_fields},
            profile=profile,
            link_tracking=tracking,
            images=images,
            export_type=record.export_type,
            connector=ConnectorRef(type=connector.type, name=connector.name) if connector else None,
            minify_html=record.options.minify_html,
            image_mode=record.options.image_mode,
        )
    return ExportJob(record=record, email=email, inputs=inputs, cdn_connector=cdn, connector=connector)


@task(
    name="load-export", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5],
    retry_condition_fn=retry_unless_terminal,
)
def load_export(export_id: int) -> ExportJob:
    """Export id -> `ExportJob` (record, email, one render input per requested locale)."""
    store = open_store()
    return build_job(store, store.require_export(export_id))

