"""Klaviyo: HTML templates through the JSON:API Templates API (`revision` header, private key).

A Klaviyo template holds a name, the HTML, the plain text and an optional AMP version. The
subject and preview text belong to a campaign message or flow email, not to a template, so they
are not sent (docs/connectors/klaviyo.md). Templates have no folders. A campaign_id assigns the
template to that campaign's messages (campaign-message-assign-template).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from connectors.base import EspConnector, PushItem, PushResult
from connectors.errors import TerminalConnectorError
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


class SteadyWindow:
    """Klaviyo's steady-window reset, from the headers it sends: `RateLimit-Reset` (seconds to the end
    of the window) rides on successful responses only; a 429 carries `Retry-After` alone. So the
    last success's reset is remembered, and a 429 without Retry-After waits until that window ends."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._ends_at: float | None = None

    def saw(self, response: httpx.Response) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._ends_at = self._clock() + float(response.headers["ratelimit-reset"])

    def reset(self, response: httpx.Response) -> float | None:
        """Seconds until the remembered window ends (for a 429 without Retry-After), or None."""
        if self._ends_at is None:
            return None
        return max(0.0, self._ends_at - self._clock())


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

    # The id goes into a URL path (GET /api/campaigns/{id}/...): Klaviyo's campaign ids are alphanumeric.
    campaign_id_pattern: ClassVar[tuple[str, str] | None] = (r"[A-Za-z0-9]{1,64}",
                                                             "a campaign id (letters and digits, e.g. 01J9...)")

    settings: KlaviyoSettings
    credentials: KlaviyoCredentials

    def __init__(self, connector: Connector, credentials: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(connector, credentials, **kwargs)
        key = self.credentials.api_key.get_secret_value()
        self.window = SteadyWindow()
        self.http = VendorHttp(
            self.integration_name, self.settings.api_base_url.rstrip("/"),
            headers={"Authorization": f"Klaviyo-API-Key {key}", "revision": self.settings.revision,
                     "Accept": JSON_API},
            secrets=[key], rate_limit_reset=self.window.reset, error_message=klaviyo_error,
            transport=self.transport, timeout=self.timeout, sleep=self.sleep or time.sleep,
        )

    def _attributes(self, item: PushItem, *, creating: bool) -> dict[str, Any]:
        attributes: dict[str, Any] = {"name": item.name, "html": item.html}
        # An update sets text and amp to null when the export has none, so the previous export's
        # plain text (or AMP) does not stay behind; a create leaves them out.
        if item.plaintext or not creating:
            attributes["text"] = item.plaintext or None
        if item.fields.get("amp") or not creating:
            attributes["amp"] = item.fields.get("amp") or None
        return attributes

    def _notes(self, result: PushResult, item: PushItem) -> PushResult:
        # Klaviyo has no template folders, and the subject and preheader live on the campaign
        # message: say so instead of dropping them silently.
        if item.subject or item.preheader:
            result = result.warn("Klaviyo templates hold no subject or preheader: set them on the campaign "
                                 "message that uses this template")
        if item.folder_id:
            result = result.warn(f"Klaviyo templates have no folders; folder_id {item.folder_id} was not used")
        return result

    def _campaign(self, result: PushResult, item: PushItem) -> PushResult:
        """With a campaign_id: assign the template to that campaign's messages.

        `GET /api/campaigns/{id}/relationships/campaign-messages` names the messages, and
        `POST /api/campaign-message-assign-template` gives each a copy of the template (Klaviyo copies
        it: a later update of the template reaches the campaign only by assigning it again, which
        every push with the campaign_id does). A campaign Klaviyo does not know or will not change
        is a warning, since the template itself was pushed; a transient failure fails the push, and
        its retry updates the same template and assigns it again."""
        if not item.campaign_id:
            return result
        try:
            listed = self._get(f"/api/campaigns/{item.campaign_id}/relationships/campaign-messages")
            messages = [m["id"] for m in listed.json().get("data") or [] if isinstance(m, dict) and m.get("id")]
            if not messages:
                return result.warn(f"Klaviyo campaign {item.campaign_id} has no message to assign template "
                                   f"{result.resource_id} to")
            for message_id in messages:
                body = {"data": {"type": "campaign-message", "id": message_id, "relationships": {
                    "template": {"data": {"type": "template", "id": result.resource_id}}}}}
                self._send("POST", "/api/campaign-message-assign-template", body)
        except TerminalConnectorError as exc:
            return result.warn(f"Klaviyo campaign {item.campaign_id}: template {result.resource_id} was not "
                               f"assigned: {exc}")
        return result

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        assert self.http is not None
        response = self.http.request("GET", path, params=params)
        self.window.saw(response)
        return response

    def _send(self, method: str, path: str, body: Any, *, creates: bool = False,
              idempotent: bool | None = None) -> httpx.Response:
        assert self.http is not None
        response = self.http.request(method, path, content=json.dumps(body).encode(), creates=creates,
                                     idempotent=idempotent, headers={"Content-Type": JSON_API})
        self.window.saw(response)
        return response

    def create(self, item: PushItem) -> PushResult:
        body = {"data": {"type": "template",
                         "attributes": {**self._attributes(item, creating=True),
                                        "editor_type": self.settings.editor_type}}}
        response = self._send("POST", "/api/templates", body, creates=True)
        template_id = self.created_id(response, "data", "id")
        return self._campaign(self._notes(PushResult(template_id, self.resource_url(template_id)), item), item)

    def update(self, resource_id: str, item: PushItem) -> PushResult:
        body = {"data": {"type": "template", "id": resource_id, "attributes": self._attributes(item, creating=False)}}
        # The PATCH sets every attribute we own to absolute values: repeating it is harmless.
        self._send("PATCH", f"/api/templates/{resource_id}", body, idempotent=True)
        return self._campaign(self._notes(PushResult(resource_id, self.resource_url(resource_id)), item), item)

    def find_by_marker(self, item: PushItem) -> str | None:
        """The newest template whose name carries the item's marker (Klaviyo filters names by
        equality: the full marked name), created since our first create when this instance sent it."""
        sent = self.first_sent(item)
        since = datetime.fromtimestamp(sent, UTC) - _CLOCK_SKEW if sent is not None else None
        params = {"filter": name_filter(item.name, since), "sort": "-created", "fields[template]": "name,created"}
        found = self._get("/api/templates", params).json().get("data") or []
        return str(found[0]["id"]) if found else None

    def resource_url(self, resource_id: str) -> str | None:
        return f"{self.settings.app_url.rstrip('/')}/email-template-editor/{resource_id}"
