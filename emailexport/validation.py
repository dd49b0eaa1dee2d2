"""Validating a Create Export request: the one place the API, the CLI and the CSV mode share.

`validate_export_request` reports every problem at once, keyed by the request's field paths
(`options.locales`, `connector_id`, `options.per_locale_options.xx-XX`), as the contract's 422.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from connectors.cdn import CDN_CONNECTORS
from connectors.errors import ConnectorNotFoundError
from connectors.registry import esp_connector_class
from emailexport.errors import NotFoundError, ValidationFailed
from emailexport.locales import LOCALES
from emailexport.models import (
    CdnConnector,
    Connector,
    DynamicContentProfile,
    Email,
    ExportRequest,
    Workspace,
)
from emailexport.store import Store

__all__ = ["ValidatedExport", "validate_export_request"]



@dataclass(frozen=True)
class ValidatedExport:
    request: ExportRequest
    workspace: Workspace
    email: Email
    connector: Connector | None
    profile: DynamicContentProfile | None
    cdn_connector: CdnConnector | None

    @property
    def integration_name(self) -> str | None:
        """The ESP's display name ("Brevo") for connector exports, as the record shows it."""
        if self.request.export_type != "connector" or self.connector is None:
            return None
        return esp_connector_class(self.connector.type).integration_name


def parse_body(body: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """A request body -> a dict; malformed JSON or a non-object is a `ValidationFailed`."""
    if isinstance(body, Mapping):
        return dict(body)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed({"body": [f"malformed JSON: {exc}"]}) from None
    except RecursionError:  # the parser's own nesting limit (about 1,000 levels)
        raise ValidationFailed({"body": [f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep"]}) from None
    if _too_deep(data):
        raise ValidationFailed({"body": [f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep"]})
    if not isinstance(data, dict):
        raise ValidationFailed({"body": ["the request body must be a JSON object"]})
    return data


MAX_JSON_DEPTH = 32  # a Create Export body is at most 4 levels deep; later recursion stays far from the limit


def _too_deep(value: Any) -> bool:
    """Whether `value` nests deeper than MAX_JSON_DEPTH (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _path(loc: tuple[Any, ...]) -> str:
    # Array positions are dropped (`options.locales`, not `options.locales.2`): the message says
    # which element; mapping keys (per_locale_options.xx-XX) are kept.
    return ".".join(str(part) for part in loc if not isinstance(part, int)) or "body"


def suggest_locale(value: Any) -> str | None:
    """The supported locale a mistyped code most likely means: `en-us` and `en_US` -> `en-US`."""
    if not isinstance(value, str):
        return None
    wanted = value.strip().replace("_", "-").lower()
    return next((code for code in LOCALES if code.lower() == wanted), None)


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "literal_error" and "locales" in error["loc"]:
        suggestion = suggest_locale(error["input"])
        hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
        shown = str(error["input"])
        shown = shown if len(shown) <= 40 else f"{shown[:40]}... ({len(shown)} characters)"
        return f"{shown!r} is not a supported locale{hint}"
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "extra_forbidden":
        return "is not a known field"
    return str(error["msg"])


def _normalize(data: dict[str, Any]) -> dict[str, Any]:
    """Accept `options.cdn_connector_id` (some clients send it there) as the top-level field."""
    options = data.get("options")
    if isinstance(options, dict) and "cdn_connector_id" in options:
        options = dict(options)
        inner = options.pop("cdn_connector_id")
        if data.get("cdn_connector_id") is None:
            data = {**data, "cdn_connector_id": inner}
        data = {**data, "options": options}
    return data


def validate_export_request(store: Store, workspace_id: int, body: bytes | str | Mapping[str, Any]) -> ValidatedExport:
    """Check a request body against the contract and the workspace; raise `ValidationFailed` with
    every problem, or `NotFoundError` for an unknown workspace."""
    workspace = store.workspace(workspace_id)
    if workspace is None:
        raise NotFoundError(f"workspace {workspace_id} not found")  # the API answers its 404 "Record not found"
    data = _normalize(parse_body(body))
    errors: dict[str, list[str]] = defaultdict(list)
    request: ExportRequest | None = None
    try:
        request = ExportRequest.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            errors[_path(error["loc"])].append(_message(error))
    checked = _cross_check(store, workspace_id, data, errors)
    if errors or request is None:
        raise ValidationFailed(errors)
    return ValidatedExport(request=request, workspace=workspace, **checked)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _cross_check(store: Store, workspace_id: int, data: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    """Rules that need the workspace's records; reads raw values defensively so they run even when
    other fields failed type validation."""
    raw_options = data.get("options")
    options: dict[str, Any] = raw_options if isinstance(raw_options, dict) else {}
    export_type = data.get("export_type")
    found: dict[str, Any] = {"email": None, "connector": None, "profile": None, "cdn_connector": None}

    for path in _nul_paths(data):
        errors[path].append("must not contain NUL characters")
    image_mode = options.get("image_mode", "use_cdn")
    if image_mode == "include_in_zip" and export_type == "connector":
        errors["options.image_mode"].append("include_in_zip is not valid for connector exports")

    email_id = _int_or_none(data.get("email_id"))
    if email_id is not None:
        found["email"] = store.get(workspace_id, Email, email_id)
        if found["email"] is None:
            errors["email_id"].append(f"email {email_id} not found in this workspace")

    locales = options.get("locales")
    if isinstance(locales, list):
        _check_locales(locales, found["email"], errors)
        per_locale = options.get("per_locale_options")
        if isinstance(per_locale, dict):
            for key in per_locale:
                if key not in locales:
                    errors[f"options.per_locale_options.{key}"].append(f"{key} is not among options.locales")

    connector_id = _int_or_none(data.get("connector_id"))
    if export_type == "connector" and data.get("connector_id") is None:
        errors["connector_id"].append("is required when export_type is connector")
    if connector_id is not None:
        found["connector"] = store.get(workspace_id, Connector, connector_id)
        if found["connector"] is None:
            errors["connector_id"].append(f"connector {connector_id} not found in this workspace")
        elif export_type == "connector":
            _check_connector_options(found["connector"], options, errors)
    if options.get("previews") is True and export_type not in ("html", "pdf"):
        errors["options.previews"].append("previews go into the zip of html and pdf exports only")
    if export_type != "connector" and options.get("export_field_values"):
        errors["options.export_field_values"].append("is only used by connector exports")

    profile_id = data.get("dynamic_content_profile_id")
    if isinstance(profile_id, str):
        found["profile"] = store.get(workspace_id, DynamicContentProfile, profile_id)
        if found["profile"] is None:
            errors["dynamic_content_profile_id"].append(f"dynamic content profile {profile_id} not found")

    cdn_id = _int_or_none(data.get("cdn_connector_id"))
    if image_mode == "use_cdn_connector" and data.get("cdn_connector_id") is None:
        errors["cdn_connector_id"].append("is required when options.image_mode is use_cdn_connector")
    if cdn_id is not None:
        found["cdn_connector"] = store.get(workspace_id, CdnConnector, cdn_id)
        if found["cdn_connector"] is None:
            errors["cdn_connector_id"].append(f"CDN connector {cdn_id} not found in this workspace")
        elif found["cdn_connector"].type not in CDN_CONNECTORS:
            errors["cdn_connector_id"].append(
                f"CDN connector {cdn_id} has type {found['cdn_connector'].type!r}, which is not supported "
                f"(known types: {', '.join(sorted(CDN_CONNECTORS))})")
    return found


def _check_connector_options(connector: Connector, options: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """The connector's type must exist; export_field_values and per_locale_options must be what
    that connector declares."""
    try:
        cls = esp_connector_class(connector.type)
    except ConnectorNotFoundError as exc:
        errors["connector_id"].append(f"connector {connector.id}: {exc}")
        return
    fields = options.get("export_field_values")
    per_locale = options.get("per_locale_options")
    fields = fields if isinstance(fields, dict) else {}
    per_locale = {k: v for k, v in per_locale.items() if isinstance(v, dict)} if isinstance(per_locale, dict) else {}
    for path, messages in cls.check_options(fields, per_locale, folder_id=options.get("folder_id"),
                                            campaign_id=options.get("campaign_id")).items():
        errors[path].extend(messages)


def _nul_paths(value: Any, path: str = "") -> list[str]:
    """Field paths whose string (or key) holds a NUL character: PostgreSQL cannot store one."""
    if isinstance(value, str):
        return [path or "body"] if "\x00" in value else []
    if isinstance(value, dict):
        found = []
        for key, inner in value.items():
            shown = str(key).replace("\x00", "\\0")
            inner_path = f"{path}.{shown}" if path else shown
            found += [inner_path] if "\x00" in str(key) else _nul_paths(inner, inner_path)
        return found
    if isinstance(value, list):
        return [p for item in value for p in _nul_paths(item, path)]
    return []


def _check_locales(locales: list[Any], email: Email | None, errors: dict[str, list[str]]) -> None:
    if not locales:
        errors["options.locales"].append("must name at least one locale")
    seen: set[Any] = set()
    for locale in locales:
        if locale in seen:
            errors["options.locales"].append(f"{locale} is listed more than once")
        seen.add(locale)
    if email is not None:
        outside = [loc for loc in dict.fromkeys(locales) if loc in LOCALES and loc not in email.locales]
        for locale in outside:
            errors["options.locales"].append(
                f"{locale} is not a locale of email {email.id} (its locales: {', '.join(email.locales)})"
            )
