"""Workspace bundles: read a YAML/JSON file, check it whole, import it into the store.

Every problem is reported with its path in the file (`emails[0].content.instances[3].component`),
all at once, and nothing is written unless the whole bundle is valid.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from emailexport.bundle_model import WorkspaceBundle
from emailexport.errors import ValidationFailed
from emailexport.models import NULL_BRANCH, Connector, Email, Image, Instance
from emailexport.render.isolated import check_template, limits_from_settings
from emailexport.render.tokens import TAG_RE
from emailexport.settings import get_settings
from emailexport.storage import OutputStorage
from emailexport.store import DOCUMENT_KINDS, Store, document_id
from emailexport.url_policy import url_problem

__all__ = ["ImportSummary", "check_bundle", "import_bundle", "load_bundle", "read_bundle_file"]


@dataclass(frozen=True)
class ImportSummary:
    workspace_id: int
    counts: dict[str, int]
    skipped_files: list[str] = field(default_factory=list)  # image files not read (no bundle folder)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def read_bundle_file(path: Path) -> Any:
    """Parse a bundle file (YAML or JSON by extension; YAML also reads JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationFailed({"file": [f"cannot read {path}: {exc.strerror}"]}, "Cannot read bundle") from None
    try:
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = path.suffix.lstrip(".").upper() or "YAML"
        raise ValidationFailed({"file": [f"{path.name} is not valid {kind}: {exc}"]}, "Malformed bundle") from None


def load_bundle(data: Any) -> WorkspaceBundle:
    """Parsed data -> a checked `WorkspaceBundle`, or `ValidationFailed` with every error by path."""
    if not isinstance(data, dict):
        message = "a bundle is a mapping with organization, workspace, ..."
        raise ValidationFailed({"(root)": [message]}, "Invalid bundle")
    try:
        bundle = WorkspaceBundle.model_validate(data)
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for err in exc.errors():
            errors.setdefault(_loc(err["loc"]), []).append(err["msg"])
        raise ValidationFailed(errors, "Invalid bundle") from None
    problems = check_bundle(bundle)
    if problems:
        raise ValidationFailed(problems, "Invalid bundle")
    return bundle


def check_bundle(bundle: WorkspaceBundle) -> dict[str, list[str]]:
    """Cross-references and templates of a parsed bundle -> {path: [problem, ...]} (empty if fine)."""
    problems: dict[str, list[str]] = {}
    for path, message in _problems(bundle):
        problems.setdefault(path, []).append(message)
    return problems


def _duplicates(section: str, items: list[BaseModel]) -> Iterator[tuple[str, str]]:
    seen: set[Any] = set()
    for i, item in enumerate(items):
        key = document_id(item)
        if key in seen:
            yield f"{section}[{i}].id", f"id {key} appears more than once"
        seen.add(key)


def _problems(b: WorkspaceBundle) -> Iterator[tuple[str, str]]:
    if b.workspace.organization_id != b.organization.id:
        yield "workspace.organization_id", f"must be the organization's id {b.organization.id}"
    for section in DOCUMENT_KINDS:
        yield from _duplicates(section, getattr(b, section))
    # Compiling a template runs code (constant folding), so compile and a sample render happen in
    # the bounded render worker, under the same limits as an export's render.
    settings = get_settings()
    limits = limits_from_settings(settings)
    for d, system in enumerate(b.design_systems):
        for c, component in enumerate(system.components):
            for i, f in enumerate(component.fields):
                problem = url_problem(f.default_value, _fallbacks(b)) if f.type == "url" and isinstance(
                    f.default_value, str) else None
                if problem:
                    yield f"design_systems[{d}].components[{c}].fields[{i}].default_value", problem
            for message in check_template(component, system.design_tokens, limits, settings.render_workers):
                yield f"design_systems[{d}].components[{c}].template", message
    for c, connector in enumerate(b.connectors):
        yield from _connector_problems(f"connectors[{c}]", connector)
    systems = {s.id: s for s in b.design_systems}
    for p, brand in enumerate(b.brand_profiles):
        if brand.design_system_id not in systems:
            yield f"brand_profiles[{p}].design_system_id", f"design system {brand.design_system_id} not in the bundle"
    for e, email in enumerate(b.emails):
        yield from _email_problems(b, f"emails[{e}]", email)


def _connector_problems(at: str, connector: Connector) -> Iterator[tuple[str, str]]:
    """The connector type must exist and its settings must be what that connector reads."""
    from connectors.errors import ConnectorNotFoundError
    from connectors.registry import esp_connector_class

    try:
        cls = esp_connector_class(connector.type)
    except ConnectorNotFoundError as exc:
        yield f"{at}.type", str(exc)
        return
    try:
        cls.settings_model.model_validate(connector.settings)
    except ValidationError as exc:
        for err in exc.errors():
            suffix = f".{_loc(err['loc'])}" if err["loc"] else ""
            yield f"{at}.settings{suffix}", err["msg"]


def _email_problems(b: WorkspaceBundle, at: str, email: Email) -> Iterator[tuple[str, str]]:
    system = next((s for s in b.design_systems if s.id == email.design_system_id), None)
    if system is None:
        yield f"{at}.design_system_id", f"design system {email.design_system_id} not in the bundle"
        return
    if email.brand_profile_id is not None and all(p.id != email.brand_profile_id for p in b.brand_profiles):
        yield f"{at}.brand_profile_id", f"brand profile {email.brand_profile_id} not in the bundle"
    tracking = email.link_tracking_profile_id
    if tracking is not None and all(p.id != tracking for p in b.link_tracking_profiles):
        yield f"{at}.link_tracking_profile_id", f"link tracking profile {tracking} not in the bundle"
    conditionals = {c.id: c for c in b.conditionals}
    for name in ("subject", "preheader"):
        text = getattr(email.content, name)
        cond = conditionals.get(text.conditional_id) if text.conditional_id is not None else None
        if text.conditional_id is not None and cond is None:
            yield f"{at}.content.{name}.conditional_id", f"conditional {text.conditional_id} not in the bundle"
        elif cond is not None and not cond.allowed_in_subject_and_preheader:
            yield f"{at}.content.{name}.conditional_id", f"conditional {cond.id} is not allowed in subject/preheader"
        yield from _branch_keys(f"{at}.content.{name}.branch_content", text.branch_content, cond)
        for branch, by_locale in text.branch_content.items():
            yield from _locales(f"{at}.content.{name}.branch_content.{branch}", by_locale, email)
            for locale, value in by_locale.items():
                yield from _tags(b, f"{at}.content.{name}.branch_content.{branch}.{locale}", value)
    if email.content.container.component != system.container.name:
        yield f"{at}.content.container.component", f"must be the design system's container '{system.container.name}'"
    for i, instance in enumerate(email.content.instances):
        yield from _instance_problems(b, f"{at}.content.instances[{i}]", instance, email, system, conditionals)
    yield from _instance_problems(b, f"{at}.content.container", email.content.container, email, system, conditionals)


def _instance_problems(b: WorkspaceBundle, at: str, inst: Instance, email: Email, system: Any,
                       conditionals: dict[int, Any]) -> Iterator[tuple[str, str]]:
    component = system.component(inst.component)
    if component is None:
        yield f"{at}.component", f"component '{inst.component}' is not in design system {system.id}"
        return
    if component.container and at.endswith("]"):
        yield f"{at}.component", "the container component cannot be used as an instance"
    cond = None
    if inst.conditional_id is not None:
        cond = conditionals.get(inst.conditional_id)
        if cond is None:
            yield f"{at}.conditional_id", f"conditional {inst.conditional_id} not in the bundle"
    yield from _branch_keys(f"{at}.field_values", inst.field_values, cond)
    variables = {f.variable: f for f in component.fields}
    images = {i.id for i in b.images}
    for branch, by_locale in inst.field_values.items():
        yield from _locales(f"{at}.field_values.{branch}", by_locale, email)
        for locale, values in by_locale.items():
            for variable, value in values.items():
                where = f"{at}.field_values.{branch}.{locale}.{variable}"
                field = variables.get(variable)
                if field is None:
                    yield where, f"component '{component.name}' has no field '{variable}'"
                    continue
                raw = value.value
                missing_image = isinstance(raw, dict) and "image_id" in raw and raw["image_id"] not in images
                if field.type == "image" and missing_image:
                    yield where, f"image {raw['image_id']} is not in the bundle's images"
                if field.type in ("text", "rich_text", "url") and isinstance(raw, str):
                    yield from _tags(b, where, raw)
                if field.type == "url" and isinstance(raw, str):
                    problem = url_problem(raw, _fallbacks(b))
                    if problem:
                        yield where, problem


def _fallbacks(b: WorkspaceBundle) -> Any:
    by_key = {t.key: t.fallback for t in b.personalization_tags}
    return by_key.get


def _branch_keys(at: str, by_branch: dict[str, Any], cond: Any) -> Iterator[tuple[str, str]]:
    allowed = {br.key for br in cond.branches} if cond is not None else {NULL_BRANCH}
    for key in by_branch:
        if key not in allowed:
            yield f"{at}.{key}", f"branch '{key}' is not one of {', '.join(sorted(allowed))}"


def _locales(at: str, by_locale: dict[str, Any], email: Email) -> Iterator[tuple[str, str]]:
    for locale in by_locale:
        if locale not in email.locales:
            yield f"{at}.{locale}", f"{locale} is not a locale of email {email.id}"


def _tags(b: WorkspaceBundle, at: str, text: str) -> Iterator[tuple[str, str]]:
    keys = {t.key for t in b.personalization_tags}
    for match in TAG_RE.finditer(text):
        if match.group(1) not in keys:
            yield at, f"unknown personalization tag [[tag:{match.group(1)}]]"


def import_bundle(store: Store, bundle: WorkspaceBundle, *, base_dir: Path | None = None,
                  storage: OutputStorage | None = None) -> ImportSummary:
    """Write every document of a checked bundle (insert or replace by id).

    Image files (`file:`) are read relative to `base_dir` (the bundle's folder), checked and stored in
    `storage` (default: the configured output storage) before any document is written; one bad file
    fails the import with every problem by path. Without a `base_dir` (a bundle parsed from memory)
    an image's file cannot be read: an image that also has a public URL is imported as a URL image
    (`ImportSummary.skipped_files` says so), one without is an error.
    """
    images, skipped = _library_images(bundle, base_dir, storage)
    store.put_organization(bundle.organization)
    store.put_workspace(bundle.workspace)
    counts = {}
    for section in DOCUMENT_KINDS:
        documents = images if section == "images" else getattr(bundle, section)
        store.put_documents(bundle.workspace.id, documents)
        counts[section] = len(documents)
    return ImportSummary(workspace_id=bundle.workspace.id, counts=counts, skipped_files=skipped)


def _library_images(bundle: WorkspaceBundle, base_dir: Path | None,
                    storage: OutputStorage | None) -> tuple[list[Image], list[str]]:
    """The bundle's images with their files read, checked and stored (hash, size, type recorded;
    width and height from the file unless the bundle states them), and the files not read."""
    with_files = [(i, image) for i, image in enumerate(bundle.images) if image.file is not None]
    if not with_files:
        return list(bundle.images), []
    if base_dir is None:
        problems = {f"images[{i}].file": ["an image file needs a bundle read from a folder (emailexport workspace "
                                          "import FILE); this image has no public_url to fall back on"]
                    for i, image in with_files if image.public_url is None}
        if problems:
            raise ValidationFailed(problems, "Invalid bundle")
        return list(bundle.images), [str(image.file) for _, image in with_files]
    from emailexport.images.library import ImageLibrary, LibraryImageError, inspect_image, read_bundle_image
    from emailexport.images.settings import ImageSettings
    from emailexport.runtime import open_storage

    cap = ImageSettings().max_bytes
    checked: dict[int, tuple[bytes, Any]] = {}
    errors: dict[str, list[str]] = {}
    for i, image in with_files:
        try:
            data = read_bundle_image(base_dir, str(image.file), cap)
            checked[i] = (data, inspect_image(data, cap))
        except LibraryImageError as exc:
            errors.setdefault(f"images[{i}].file", []).append(f"{image.file}: {exc}")
    if errors:
        raise ValidationFailed(errors, "Invalid bundle")
    library = ImageLibrary(storage or open_storage())
    images = list(bundle.images)
    for i, (data, info) in checked.items():
        library.put(data, cap)
        image = images[i]
        images[i] = image.model_copy(update={
            "sha256": info.sha256, "file_size": info.file_size, "content_type": info.content_type,
            "width": image.width if image.width is not None else info.width,
            "height": image.height if image.height is not None else info.height,
        })
    return images, []
