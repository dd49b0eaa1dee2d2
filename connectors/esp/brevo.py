"""Brevo: one transactional (SMTP) email template per locale, through the v3 REST API.

Endpoints (Brevo's own spec, getbrevo/brevo-go api/swagger.yaml): `POST /smtp/templates`
(createSmtpTemplate), `PUT /smtp/templates/{templateId}` (updateSmtpTemplate) and
`GET /smtp/templates` (getSmtpTemplates, paged with limit/offset) to find a template by its marker after
a lost create. An SMTP template holds a name, subject, sender, HTML and a few extras (tag,
reply-to, "To" personalisation, attachment URL); it has no preheader, no plain-text part and no
folders, so those are not sent (docs/connectors/brevo.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, model_validator

from connectors.base import EspConnector, PushItem, PushResult
from connectors.http import VendorHttp, error_body
from emailexport.models import Connector

__all__ = ["BrevoConnector", "BrevoCredentials", "BrevoSettings"]

APP_URL = "https://my.brevo.com"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_PAGE = 1000  # getSmtpTemplates allows up to 1000 templates a page
_LOOKUP_SKEW = 600.0  # seconds of clock skew between us and Brevo when narrowing a lookup


def _epoch(value: Any) -> float | None:
    """Brevo's createdAt ("2017-05-01T12:30:00Z") as epoch seconds, or None."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


class BrevoSettings(BaseModel):
    """`Connector.settings` of a Brevo connector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_base_url: HttpUrl = HttpUrl("https://api.brevo.com/v3")
    # Brevo takes the sender by email or by id, never both (dedicated-IP accounts pick by id).
    sender_email: str | None = Field(default=None, pattern=_EMAIL)
    sender_id: int | None = Field(default=None, ge=1)
    sender_name: str | None = None
    activate: bool = True  # isActive: only active templates can be sent through the API

    @model_validator(mode="after")
    def _one_sender(self) -> BrevoSettings:
        if (self.sender_email is None) == (self.sender_id is None):
            raise ValueError("set exactly one of sender_email and sender_id (Brevo templates need a sender)")
        return self


class BrevoCredentials(BaseModel):
    """The secret the connector's credentials reference resolves to: {"api_key": "xkeysib-..."}."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr


def brevo_rate_limit_reset(response: httpx.Response) -> float | None:
    """Seconds until Brevo's window resets: `x-sib-ratelimit-reset` counts down in seconds."""
    value = response.headers.get("x-sib-ratelimit-reset")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def brevo_error_message(response: httpx.Response) -> str:
    """Brevo's error body is {"code": "...", "message": "..."}; a proxy may answer in plain text."""
    body = error_body(response)
    if isinstance(body, dict) and body.get("message"):
        code = body.get("code")
        return f"{code}: {body['message']}" if code else str(body["message"])
    return str(body)[:300]


class BrevoConnector(EspConnector):
    """Brevo SMTP templates: create, update, find by marker."""

    type_name = "brevo"
    integration_name = "Brevo"
    preset = "brevo"
    settings_model = BrevoSettings
    credentials_model = BrevoCredentials
    # export_field_values key -> the createSmtpTemplate/updateSmtpTemplate field it sets
    declared_fields: ClassVar[Mapping[str, str]] = MappingProxyType({
        "tag": "tag",
        "reply_to": "replyTo",
        "to_field": "toField",  # the personalised To, e.g. {{contact.FIRSTNAME}}
        "attachment_url": "attachmentUrl",
    })
    # The same keys per locale override export_field_values for that locale (e.g. a reply-to per language).
    extra_per_locale_keys = frozenset(declared_fields)

    settings: BrevoSettings
    credentials: BrevoCredentials

    def __init__(self, connector: Connector, credentials: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(connector, credentials, **kwargs)
        key = self.credentials.api_key.get_secret_value()
        self.api = VendorHttp(
            self.integration_name,
            str(self.settings.api_base_url).rstrip("/"),
            headers={"api-key": key, "accept": "application/json"},
            secrets=[key],
            rate_limit_reset=brevo_rate_limit_reset,
            error_message=brevo_error_message,
            transport=self.transport,
            timeout=self.timeout,
            sleep=self.sleep or time.sleep,
        )
        self.http = self.api

    # -- the four vendor methods -----------------------------------------------------------

    def create(self, item: PushItem) -> PushResult:
        """POST /smtp/templates -> the new template's id and page."""
        response = self.api.request("POST", "/smtp/templates", json=self._body(item), creates=True)
        return self._result(self.created_id(response, "id"), item)

    def update(self, resource_id: str, item: PushItem) -> PushResult:
        """PUT /smtp/templates/{id}; a template deleted in Brevo answers 404 -> ResourceNotFoundError."""
        self.api.request("PUT", f"/smtp/templates/{resource_id}", json=self._body(item))
        return self._result(resource_id, item)

    def find_by_marker(self, item: PushItem) -> str | None:
        """The newest template whose name carries the item's marker (its full marked name; Brevo has
        no name filter: page through, newest first, stopping at templates older than our first create)."""
        sent = self.first_sent(item)
        for template in self._templates():
            if template.get("name") == item.name:
                return str(template["id"])
            created = _epoch(template.get("createdAt"))
            if sent is not None and created is not None and created < sent - _LOOKUP_SKEW:
                return None  # newest first: everything after this is older than our create
        return None

    def resource_url(self, resource_id: str) -> str | None:
        return f"{APP_URL}/camp/template/{resource_id}/message-setup"

    # -- mapping ---------------------------------------------------------------------------

    def _body(self, item: PushItem) -> dict[str, Any]:
        """A PushItem -> the createSmtpTemplate / updateSmtpTemplate body (the two share fields)."""
        body: dict[str, Any] = {
            "templateName": item.name,
            "subject": item.subject,
            "htmlContent": item.html,
            "sender": self._sender(),
            "isActive": self.settings.activate,
        }
        for key, api_field in self.declared_fields.items():
            value = item.options.get(key) or item.fields.get(key)
            if value:
                body[api_field] = str(value)
        return body

    def _sender(self) -> dict[str, Any]:
        sender: dict[str, Any] = {"email": self.settings.sender_email} if self.settings.sender_email \
            else {"id": self.settings.sender_id}
        if self.settings.sender_name:
            sender["name"] = self.settings.sender_name
        return sender

    def _result(self, template_id: str, item: PushItem) -> PushResult:
        result = PushResult(template_id, self.resource_url(template_id))
        # Brevo SMTP templates have no folders or campaigns: say so rather than drop it silently.
        for option, value in (("folder_id", item.folder_id), ("campaign_id", item.campaign_id)):
            if value:
                result = result.warn(f"Brevo templates have no folders or campaigns; {option} {value} was not applied")
        return result

    def _templates(self) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self.api.request("GET", "/smtp/templates",
                                    params={"limit": _PAGE, "offset": offset, "sort": "desc"}).json()
            templates = page.get("templates") or []
            yield from templates
            offset += len(templates)
            if not templates or offset >= int(page.get("count") or 0):
                return
