"""Iterable: one email template per locale, through Iterable's REST API (`Api-Key` header).

Endpoints (Iterable's own Swagger 2.0 file, `../shared/specs/iterable/api-docs.json`, derived into
`tests/connectors/contracts/iterable.json`):

- `POST /api/templates/email/upsert` (upsertEmailTemplate) creates the template, keyed by
  `clientTemplateId`: the connector sends the export locale's marker there. Iterable's upsert
  updates every template that already carries that `clientTemplateId` instead of making another
  one, so even a create sent twice leaves one template;
- `POST /api/templates/email/update` (updateEmailTemplate) replaces the fields the export owns of
  the template with that `templateId` (renaming it, and moving its `clientTemplateId`, to the
  current export's marker);
- `GET /api/templates/getByClientTemplateId` (getByClientTemplateId) is `find_by_marker`: an exact
  lookup, no listing or name comparison.

An Iterable email template holds name, subject, preheader, HTML, plain text and sender fields;
it has no folders, and campaigns are made from templates in Iterable (a template is not attached to
an existing campaign by this API): `folder_id` and `campaign_id` become warnings
(docs/connectors/iterable.md). US projects use `api.iterable.com`, EU projects `api.eu.iterable.com`
(`region`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr

from connectors.base import EspConnector, PushItem, PushResult
from connectors.errors import AmbiguousCreateError, ResourceNotFoundError, VendorValidationError
from connectors.http import VendorHttp, error_body
from emailexport.models import Connector

__all__ = ["IterableConnector", "IterableCredentials", "IterableSettings"]

API_HOSTS = {"us": "https://api.iterable.com", "eu": "https://api.eu.iterable.com"}
APP_HOSTS = {"us": "https://app.iterable.com", "eu": "https://app.eu.iterable.com"}
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# Iterable's limits are per second per project ("100 requests/second, per project" on the template
# reads); a 429 without Retry-After is waited out for one window.
_RATE_WINDOW = 1.0
_IDS_IN_MESSAGE = re.compile(r"IDs?:\s*\[?([\d,\s]+)")


class IterableSettings(BaseModel):
    """`Connector.settings` of an Iterable connector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: Literal["us", "eu"] = "us"  # the project's data center
    api_base_url: HttpUrl | None = None  # overrides the region's API host (a proxy, the tests' fake)
    from_email: str | None = Field(default=None, pattern=_EMAIL)  # must be an authorized sender in Iterable
    from_name: str | None = None
    reply_to_email: str | None = Field(default=None, pattern=_EMAIL)
    message_type_id: int | None = Field(default=None, ge=1)  # the template's message type (subscription channel)


class IterableCredentials(BaseModel):
    """The secret the connector's credentials reference resolves to: {"api_key": "..."} (a server-side key)."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr


def iterable_rate_limit_reset(response: httpx.Response) -> float | None:
    """Iterable documents per-second limits and no reset header: wait one window (Retry-After, when an
    edge sends one, is read first by connectors/http.py)."""
    return _RATE_WINDOW if response.status_code == 429 else None


def iterable_error_message(response: httpx.Response) -> str:
    """Iterable's error body is {"msg": "...", "code": "BadParams", "params": ...}; an edge may answer in text."""
    body = error_body(response)
    if isinstance(body, dict) and (body.get("msg") or body.get("code")):
        code, msg = body.get("code"), body.get("msg")
        return f"{code}: {msg}" if code and msg else str(msg or code)
    return str(body)[:300]


class IterableConnector(EspConnector):
    """Iterable email templates: upsert by clientTemplateId, update by templateId, find by clientTemplateId."""

    type_name = "iterable"
    integration_name = "Iterable"
    preset = "iterable"
    settings_model = IterableSettings
    credentials_model = IterableCredentials
    # export_field_values key -> the upsert/update field it sets (per locale too, overriding the settings)
    declared_fields: ClassVar[Mapping[str, str]] = MappingProxyType({
        "from_email": "fromEmail",
        "from_name": "fromName",
        "reply_to_email": "replyToEmail",
        "google_analytics_campaign_name": "googleAnalyticsCampaignName",
    })
    extra_per_locale_keys = frozenset(declared_fields)

    settings: IterableSettings
    credentials: IterableCredentials

    def __init__(self, connector: Connector, credentials: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(connector, credentials, **kwargs)
        key = self.credentials.api_key.get_secret_value()
        base = str(self.settings.api_base_url).rstrip("/") if self.settings.api_base_url \
            else API_HOSTS[self.settings.region]
        self.api = VendorHttp(
            self.integration_name,
            base,
            headers={"Api-Key": key, "accept": "application/json"},
            secrets=[key],
            rate_limit_reset=iterable_rate_limit_reset,
            error_message=iterable_error_message,
            transport=self.transport,
            timeout=self.timeout,
            sleep=self.sleep or time.sleep,
        )
        self.http = self.api

    # -- the four vendor methods -----------------------------------------------------------

    def create(self, item: PushItem) -> PushResult:
        """POST /api/templates/email/upsert with clientTemplateId = the marker -> the template's id."""
        body = {"clientTemplateId": item.marker, **self._content(item)}
        if self.settings.message_type_id is not None:
            body["messageTypeId"] = self.settings.message_type_id
        response = self.api.request("POST", "/api/templates/email/upsert", json=body, creates=True)
        return self._result(self._upserted_id(response), item)

    def update(self, resource_id: str, item: PushItem) -> PushResult:
        """POST /api/templates/email/update (idempotent: it sets values). An unknown templateId is
        ResourceNotFoundError (Iterable answers 404 NotFound, or a 400 whose code is NotFound)."""
        try:
            template_id = int(resource_id)
        except ValueError:
            raise ResourceNotFoundError(f"Iterable: {resource_id!r} is not an Iterable template id") from None
        body: dict[str, Any] = {"templateId": template_id, "clientTemplateId": item.marker, **self._content(item)}
        if self.settings.message_type_id is not None:
            body["messageTypeId"] = self.settings.message_type_id
        try:
            self.api.request("POST", "/api/templates/email/update", json=body, idempotent=True)
        except VendorValidationError as exc:
            if "NotFound:" in str(exc):
                raise ResourceNotFoundError(str(exc), status_code=exc.status_code) from None
            raise
        return self._result(str(template_id), item)

    def find_by_marker(self, item: PushItem) -> str | None:
        """GET /api/templates/getByClientTemplateId?clientTemplateId=<marker>: the template itself, not a
        campaign's copy of it (entries with a campaignId); the newest when several carry it."""
        try:
            page = self.api.request("GET", "/api/templates/getByClientTemplateId",
                                    params={"clientTemplateId": item.marker}).json()
        except ResourceNotFoundError:
            return None  # no template carries the marker
        entries = [t for t in page["templates"] if t.get("templateId") is not None]
        own = [t for t in entries if not t.get("campaignId")] or entries
        if not own:
            return None
        return str(max(int(t["templateId"]) for t in own))

    def resource_url(self, resource_id: str) -> str | None:
        return f"{APP_HOSTS[self.settings.region]}/templates/editor?templateId={resource_id}"

    # -- mapping ---------------------------------------------------------------------------

    def _content(self, item: PushItem) -> dict[str, Any]:
        """The fields the export owns, for upsert and update alike (empty strings clear them)."""
        body: dict[str, Any] = {
            "name": item.name,
            "subject": item.subject,
            "preheaderText": item.preheader,
            "html": item.html,
            "plainText": item.plaintext,
        }
        defaults = {"from_email": self.settings.from_email, "from_name": self.settings.from_name,
                    "reply_to_email": self.settings.reply_to_email}
        for key, api_field in self.declared_fields.items():
            value = item.options.get(key) or item.fields.get(key) or defaults.get(key)
            if value:
                body[api_field] = str(value)
        return body

    def _upserted_id(self, response: httpx.Response) -> str:
        """The template id in upsert's answer: `params.templateIds` (or the ids its `msg` lists);
        an answer without one is a lost create (the shared push looks the marker up)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("code") == "Success":
            params = body.get("params")
            ids = params.get("templateIds") if isinstance(params, dict) else None
            if isinstance(ids, list) and len(ids) == 1 and str(ids[0]).isdigit():
                return str(ids[0])
            listed = _IDS_IN_MESSAGE.search(str(body.get("msg") or ""))
            found = re.findall(r"\d+", listed.group(1)) if listed else []
            if len(found) == 1:
                return found[0]
        raise AmbiguousCreateError(
            f"Iterable: POST /api/templates/email/upsert answered {response.status_code} without one template id "
            f"({response.text[:120]!r}); the create may have happened")

    def _result(self, template_id: str, item: PushItem) -> PushResult:
        result = PushResult(template_id, self.resource_url(template_id))
        if item.folder_id:
            result = result.warn(f"Iterable templates have no folders; folder_id {item.folder_id} was not applied")
        if item.campaign_id:
            result = result.warn(f"Iterable templates are not attached to existing campaigns by its API (create the "
                                 f"campaign from template {template_id}); campaign_id {item.campaign_id} was not "
                                 "applied")
        return result
