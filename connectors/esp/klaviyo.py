"""Klaviyo: HTML templates through the JSON:API Templates API (`revision` header, private key).

A Klaviyo template holds a name, the HTML, the plain text and an optional AMP version. The
subject and preview text belong to a campaign message or flow email, not to a template, so they
are not sent (docs/connectors/klaviyo.md). Templates have no folders.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from connectors.base import EspConnector, PushItem, PushResult
from connectors.http import VendorHttp
from emailexport.models import Connector

__all__ = ["KlaviyoConnector", "KlaviyoCredentials", "KlaviyoSettings"]

JSON_API = "application/vnd.api+json"
# How far before our own clock a lost create may have been stamped by Klaviyo's clock.
_CLOCK_SKEW = timedelta(minutes=5)

T = TypeVar("T")


class KlaviyoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_base_url: str = "https://a.klaviyo.com"
    revision: str = "2026-07-15"  # the API revision the connector was checked against
    editor_type: Literal["CODE", "USER_DRAGGABLE"] = "CODE"
    app_url: str = "https://www.klaviyo.com"


class KlaviyoCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr  # a private API key with templates:read and templates:write


def klaviyo_error(response: httpx.Response) -> str:
    """Klaviyo's JSON:API error body -> "code: detail (at pointer)" for its first error."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
    except (ValueError, AttributeError, IndexError, TypeError):
        return response.text[:300].strip()
    where = (first.get("source") or {}).get("pointer") or (first.get("source") or {}).get("parameter")
    text = f"{first.get('code', '')}: {first.get('detail') or first.get('title', '')}".strip(": ")
    return f"{text} (at {where})" if where else text


def klaviyo_reset(response: httpx.Response) -> float | None:
    """Seconds until the steady window resets (`RateLimit-Reset`), when Retry-After is absent."""
    try:
        return float(response.headers["ratelimit-reset"])
    except (KeyError, ValueError):
        return None


def name_filter(name: str, created_after: datetime | None = None) -> str:
    """Klaviyo's filter expression for templates called `name` (created after a moment)."""
    quote = "'" if '"' in name and "'" not in name else '"'
    escaped = name.replace("\\", "\\\\").replace(quote, "\\" + quote)
    expression = f"equals(name,{quote}{escaped}{quote})"
    if created_after is None:
        return expression
    # Datetimes are written without quotes in Klaviyo's filter syntax.
    return f"and({expression},greater-or-equal(created,{created_after.isoformat(timespec='seconds')}))"


class KlaviyoConnector(EspConnector):
    type_name: ClassVar[str] = "klaviyo"
    integration_name: ClassVar[str] = "Klaviyo"
    preset: ClassVar[str] = "klaviyo"
    settings_model: ClassVar[type[BaseModel]] = KlaviyoSettings
    credentials_model: ClassVar[type[BaseModel]] = KlaviyoCredentials
    declared_fields: ClassVar[Mapping[str, str]] = {
        "amp": "data.attributes.amp: the AMP version of the template (AMP must be enabled in the account)",
    }
    supports_lookup_by_name: ClassVar[bool] = True

    settings: KlaviyoSettings
    credentials: KlaviyoCredentials

    def __init__(self, connector: Connector, credentials: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(connector, credentials, **kwargs)
        key = self.credentials.api_key.get_secret_value()
        self.http = VendorHttp(
            self.integration_name, self.settings.api_base_url.rstrip("/"),
            headers={"Authorization": f"Klaviyo-API-Key {key}", "revision": self.settings.revision,
                     "Accept": JSON_API},
            secrets=[key], rate_limit_reset=klaviyo_reset, error_message=klaviyo_error,
            transport=self.transport, timeout=self.timeout, sleep=self.sleep or time.sleep,
        )
        # name -> when we last sent a create whose answer was lost: narrows the lookup to it
        self._create_sent_at: dict[str, datetime] = {}

    def _attributes(self, item: PushItem) -> dict[str, Any]:
        attributes: dict[str, Any] = {"name": item.name, "html": item.html}
        if item.plaintext:
            attributes["text"] = item.plaintext
        if item.fields.get("amp"):
            attributes["amp"] = item.fields["amp"]
        return attributes

    def _notes(self, result: PushResult, item: PushItem) -> PushResult:
        # Klaviyo has neither template folders nor campaign assignment through templates, and the
        # subject and preheader live on the campaign message: say so instead of dropping them silently.
        if item.subject or item.preheader:
            result = result.warn("Klaviyo templates hold no subject or preheader: set them on the campaign "
                                 "message that uses this template")
        if item.folder_id:
            result = result.warn(f"Klaviyo templates have no folders; folder_id {item.folder_id} was not used")
        if item.campaign_id:
            result = result.warn(f"campaign_id {item.campaign_id} was not used: assign template "
                                 f"{result.resource_id} to the campaign message in Klaviyo")
        return result

    def _send(self, method: str, path: str, body: Any, *, creates: bool = False,
              idempotent: bool | None = None) -> httpx.Response:
        assert self.http is not None
        return self.http.request(method, path, content=json.dumps(body).encode(), creates=creates,
                                 idempotent=idempotent, headers={"Content-Type": JSON_API})

    def create(self, item: PushItem) -> PushResult:
        body = {"data": {"type": "template",
                         "attributes": {**self._attributes(item), "editor_type": self.settings.editor_type}}}
        self._create_sent_at[item.name] = datetime.now(UTC)
        response = self._send("POST", "/api/templates", body, creates=True)
        self._create_sent_at.pop(item.name, None)
        template_id = str(response.json()["data"]["id"])
        return self._notes(PushResult(template_id, self.resource_url(template_id)), item)

    def update(self, resource_id: str, item: PushItem) -> PushResult:
        body = {"data": {"type": "template", "id": resource_id, "attributes": self._attributes(item)}}
        # The PATCH sets every attribute we own to absolute values: repeating it is harmless.
        self._send("PATCH", f"/api/templates/{resource_id}", body, idempotent=True)
        return self._notes(PushResult(resource_id, self.resource_url(resource_id)), item)

    def find_by_name(self, name: str) -> str | None:
        """The newest template called `name` (created since our lost create, when there was one)."""
        assert self.http is not None
        sent_at = self._create_sent_at.pop(name, None)
        params = {"filter": name_filter(name, sent_at - _CLOCK_SKEW if sent_at else None),
                  "sort": "-created", "fields[template]": "name,created"}
        found = self.http.request("GET", "/api/templates", params=params).json().get("data") or []
        return str(found[0]["id"]) if found else None

    def resource_url(self, resource_id: str) -> str | None:
        return f"{self.settings.app_url.rstrip('/')}/email-template-editor/{resource_id}"
