"""Twilio SendGrid: one dynamic transactional template per locale, its content in the active version.

Endpoints (SendGrid's own spec, twilio/sendgrid-oai spec/json/tsg_templates_v3.json):
create = `POST /v3/templates` (generation "dynamic"), `POST /v3/templates/{id}/versions`, then
`POST /v3/templates/{id}/versions/{version_id}/activate`; update = `GET /v3/templates/{id}` to
find the active version and `PATCH /v3/templates/{id}/versions/{version_id}` it in place (SendGrid
caps an account at 300 versions across all templates, so a new version per export would run out);
find by marker = `GET /v3/templates?generations=dynamic` paged with page_token, matching the marked
name. A version has no preheader field, and templates have no folders (docs/connectors/sendgrid.md).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, HttpUrl, SecretStr

from connectors.base import EspConnector, PushItem, PushResult
from connectors.errors import ConnectorError, VendorValidationError
from connectors.http import VendorHttp, error_body
from emailexport.models import Connector

__all__ = ["SendGridConnector", "SendGridCredentials", "SendGridSettings"]

APP_URL = "https://mc.sendgrid.com"
_PAGE = 200  # ListTemplate's page_size maximum
# SendGrid's documented limits (spec maxLength and the version reference page).
_MAX_NAME, _MAX_SUBJECT, _MAX_CONTENT_BYTES = 100, 255, 1_048_576


class SendGridSettings(BaseModel):
    """`Connector.settings` of a SendGrid connector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # https://api.eu.sendgrid.com for EU regional subusers (the spec's second server).
    api_base_url: HttpUrl = HttpUrl("https://api.sendgrid.com")
    on_behalf_of: str | None = None  # a parent account acting for a subuser ("<username>" or "account-id <id>")


class SendGridCredentials(BaseModel):
    """The secret the connector's credentials reference resolves to: {"api_key": "SG...."}."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr


def sendgrid_rate_limit_reset(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds until `X-RateLimit-Reset` (a Unix time in seconds); at least 1 s when it has passed,
    because a reset already behind us (clock skew, a window just rolling over) still needs a pause."""
    value = response.headers.get("x-ratelimit-reset")
    try:
        reset = float(value) if value is not None else None
    except ValueError:
        return None
    if reset is None:
        return None
    return max(1.0, reset - (time.time() if now is None else now))


def sendgrid_error_message(response: httpx.Response) -> str:
    """SendGrid's error body is {"errors": [{"field": ..., "message": ...}, ...]}: all of them, joined."""
    body = error_body(response)
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        return "; ".join(f"{e['field']}: {e.get('message')}" if isinstance(e, dict) and e.get("field")
                         else str(e.get("message") if isinstance(e, dict) else e) for e in errors)
    return str(body)[:300]


class SendGridConnector(EspConnector):
    """SendGrid dynamic templates: create with an active version, update that version, find by marker."""

    type_name = "sendgrid"
    integration_name = "SendGrid"
    preset = "sendgrid"
    settings_model = SendGridSettings
    credentials_model = SendGridCredentials
    # export_field_values key -> the version field it sets
    declared_fields: ClassVar[Mapping[str, str]] = MappingProxyType({
        "version_name": "name",  # the version's name in SendGrid's app (default: the template's name)
        "test_data": "test_data",  # JSON shown in the editor's preview and test sends
    })
    extra_per_locale_keys = frozenset(declared_fields)  # the same keys, per locale

    settings: SendGridSettings
    credentials: SendGridCredentials

    def __init__(self, connector: Connector, credentials: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(connector, credentials, **kwargs)
        key = self.credentials.api_key.get_secret_value()
        headers = {"authorization": f"Bearer {key}", "accept": "application/json"}
        if self.settings.on_behalf_of:
            headers["on-behalf-of"] = self.settings.on_behalf_of
        self._sleep = self.sleep or time.sleep
        self.api = VendorHttp(
            self.integration_name,
            str(self.settings.api_base_url).rstrip("/"),
            headers=headers,
            secrets=[key],
            rate_limit_reset=sendgrid_rate_limit_reset,
            error_message=sendgrid_error_message,
            transport=self.transport,
            timeout=self.timeout,
            sleep=self._sleep,
        )
        self.http = self.api

    # -- the four vendor methods -----------------------------------------------------------

    def create(self, item: PushItem) -> PushResult:
        """A new dynamic template holding one active version with the item's content."""
        version = self._version(item)  # checked before anything exists in SendGrid
        response = self.api.request("POST", "/v3/templates", json={"name": item.name, "generation": "dynamic"},
                                    creates=True)
        template_id = self.created_id(response, "id")
        try:
            self._add_active_version(template_id, version)
        except ConnectorError:
            self._discard(template_id)  # an empty template would be found later and confuse
            raise
        return self._result(template_id, item)

    def update(self, resource_id: str, item: PushItem) -> PushResult:
        """Patch the active version in place (and the template's name if it changed)."""
        version = self._version(item)
        template = self.api.request("GET", f"/v3/templates/{resource_id}").json()  # 404 -> recreated
        if template.get("name") != item.name:
            self.api.request("PATCH", f"/v3/templates/{resource_id}", json={"name": item.name}, idempotent=True)
        active = next((v for v in template.get("versions") or [] if v.get("active") == 1), None)
        if active is None:  # the user deleted or deactivated every version; or a create half-happened
            self._add_active_version(resource_id, version)
        else:
            path = f"/v3/templates/{resource_id}/versions/{active['id']}"
            self.api.request("PATCH", path, json=version, idempotent=True)  # same values again: safe to repeat
        return self._result(resource_id, item)

    def find_by_marker(self, item: PushItem) -> str | None:
        """The dynamic template whose name carries the item's marker (its full marked name; the list
        has no name filter: page through)."""
        return next((str(t["id"]) for t in self._templates() if t.get("name") == item.name), None)

    def resource_url(self, resource_id: str) -> str | None:
        return f"{APP_URL}/dynamic-templates/{resource_id}"

    # -- mapping ---------------------------------------------------------------------------

    def _version(self, item: PushItem) -> dict[str, Any]:
        """A PushItem -> a TransactionalTemplateVersionCreate body; SendGrid's limits checked first."""
        name = str(item.options.get("version_name") or item.fields.get("version_name") or item.name)
        version: dict[str, Any] = {"name": name, "subject": item.subject, "html_content": item.html,
                                   "editor": "code"}  # raw HTML: the design editor could not hold it
        # Always both fields, so an update never leaves the previous export's text behind: our
        # plaintext (generate_plain_content true would overwrite it), or, when the export has none,
        # an empty one that SendGrid regenerates from the new HTML.
        version.update(plain_content=item.plaintext, generate_plain_content=not item.plaintext)
        test_data = item.options.get("test_data") or item.fields.get("test_data")
        if test_data:
            version["test_data"] = _json_text(str(test_data))
        _check_limits(item.name, version, item.marker)
        return version

    def _add_active_version(self, template_id: str, version: dict[str, Any]) -> None:
        created = self.api.request("POST", f"/v3/templates/{template_id}/versions", json=version, creates=True)
        version_id = self.created_id(created, "id")
        # SendGrid activates only a template's first version by itself; activating always also
        # deactivates whatever version was active before.
        self.api.request("POST", f"/v3/templates/{template_id}/versions/{version_id}/activate", idempotent=True)

    def _discard(self, template_id: str) -> None:
        with contextlib.suppress(ConnectorError):  # best effort: the original error is the one to report
            self.api.request("DELETE", f"/v3/templates/{template_id}")

    def _result(self, template_id: str, item: PushItem) -> PushResult:
        result = PushResult(template_id, self.resource_url(template_id))
        for option, value in (("folder_id", item.folder_id), ("campaign_id", item.campaign_id)):
            if value:
                result = result.warn(f"SendGrid templates have no folders or campaigns; {option} {value} "
                                     "was not applied")
        return result

    def _templates(self) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"generations": "dynamic", "page_size": _PAGE}
        while True:
            page = self.api.request("GET", "/v3/templates", params=params).json()
            yield from page.get("result") or []
            token = parse_qs(urlsplit((page.get("_metadata") or {}).get("next") or "").query).get("page_token")
            if not token:
                return
            params = {**params, "page_token": token[0]}


def _json_text(value: str) -> str:
    try:
        json.loads(value)
    except ValueError:
        raise VendorValidationError("SendGrid: test_data must be a JSON document (it is the preview data)") from None
    return value


def _check_limits(template_name: str, version: Mapping[str, Any], marker: str = "") -> None:
    problems = []
    for what, text in (("template name", template_name), ("version name", version["name"])):
        if len(text) > _MAX_NAME:
            suffix = f" [{marker}]"
            note = f", with the {len(suffix)}-character marker" if marker and text.endswith(suffix) else ""
            problems.append(f"the {what} has {len(text)} characters (at most {_MAX_NAME}{note})")
    if len(version["subject"]) > _MAX_SUBJECT:
        problems.append(f"the subject has {len(version['subject'])} characters (at most {_MAX_SUBJECT})")
    for field in ("html_content", "plain_content"):
        size = len(version.get(field, "").encode())
        if size > _MAX_CONTENT_BYTES:
            problems.append(f"{field} is {size} bytes (at most {_MAX_CONTENT_BYTES})")
    if problems:
        raise VendorValidationError("SendGrid would reject this template: " + "; ".join(problems))
