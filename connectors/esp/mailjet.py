"""Mailjet: one template per locale, through the v3 REST API (HTTP Basic: API key and secret key).

A Mailjet template is two resources (Mailjet API reference, "Template" and "Template detail
content"; docs/connectors/mailjet.md):

- `POST /REST/template` makes the template (Name, OwnerType, EditMode, Purposes, ...)
  and answers `{"Count", "Data": [{"ID", ...}], "Total"}`;
- `POST /REST/template/{id}/detailcontent` sets its content: `Html-part`, `Text-part` and the
  `Headers` object (`Subject`, `From`, `Reply-to`, as Mailjet's .NET SDK names them).

An update renames the template (`PUT /REST/template/{id}`; Mailjet answers 304 when nothing
changed, which is not an error) and replaces the content (`POST .../detailcontent` with every
field, so a text part or reply-to removed from the email leaves Mailjet too). A lost create is
looked up by listing `GET /REST/template?OwnerType=...` page by page and matching the exact
marked name (Mailjet keeps (OwnerType, Name) unique, so there is at most one).

Mailjet templates have no folders or campaigns: a folder_id / campaign_id is reported as a
warning. They have no preheader field either: as for the other connectors, the preheader reaches
recipients only inside the HTML (the design system's container writes it there).

Mailjet's error bodies are `{"ErrorInfo", "ErrorMessage", "StatusCode"}`; a 401 comes with an
empty body. Mailjet documents its 429 ("calls allowed per minute") without a
rate-limit header: a `Retry-After` is honoured if one comes, otherwise connectors/http.py backs off.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr

from connectors.base import EspConnector, PushItem, PushResult
from connectors.errors import ConnectorError
from connectors.http import VendorHttp, error_body
from emailexport.models import Connector

__all__ = ["MailjetConnector", "MailjetCredentials", "MailjetSettings", "mailjet_error_message"]

APP_URL = "https://app.mailjet.com"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_PAGE = 1000  # the v3 REST API's largest Limit
_HTML_MODE = 2  # EditMode: tool(1), html(2), snippet(3), mjml(4)


class MailjetSettings(BaseModel):
    """`Connector.settings` of a Mailjet connector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_base_url: HttpUrl = HttpUrl("https://api.mailjet.com/v3")
    app_url: HttpUrl = HttpUrl(APP_URL)
    # Who owns the templates: the API key (any key can) or the user (the master key only).
    owner_type: Literal["apikey", "user"] = "apikey"
    purposes: tuple[Literal["marketing", "transactional", "automation"], ...] = ("transactional",)
    # The template's From header; optional (a campaign or the Send API call can set it instead).
    sender_email: str | None = Field(default=None, pattern=_EMAIL)
    sender_name: str | None = None


class MailjetCredentials(BaseModel):
    """The secret the connector's credentials reference resolves to:
    {"api_key": "...", "secret_key": "..."} (Mailjet's API key and secret key)."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr
    secret_key: SecretStr


def mailjet_error_message(response: httpx.Response) -> str:
    """Mailjet's `{"ErrorInfo", "ErrorMessage", "StatusCode"}` body as one line; a 401 has no body."""
    body = error_body(response)
    if isinstance(body, dict) and (body.get("ErrorMessage") or body.get("ErrorInfo")):
        message, info = str(body.get("ErrorMessage") or ""), str(body.get("ErrorInfo") or "")
        return f"{message} ({info})" if message and info else message or info
    if response.status_code == 401 and not response.content:
        return "Unauthorized: the API key / secret key pair was refused"
    return str(body)[:300]


class MailjetConnector(EspConnector):
    """Mailjet templates: create (template + detail content), update, find by marker."""

    type_name = "mailjet"
    integration_name = "Mailjet"
    preset = "mailjet"
    settings_model = MailjetSettings
    credentials_model = MailjetCredentials
    # export_field_values key -> what it sets in Mailjet
    declared_fields: ClassVar[Mapping[str, str]] = MappingProxyType({
        "reply_to": "Headers.Reply-to",
        "description": "template Description",
    })
    extra_per_locale_keys = frozenset(declared_fields)

    settings: MailjetSettings
    credentials: MailjetCredentials

    def __init__(self, connector: Connector, credentials: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(connector, credentials, **kwargs)
        key = self.credentials.api_key.get_secret_value()
        secret = self.credentials.secret_key.get_secret_value()
        token = base64.b64encode(f"{key}:{secret}".encode()).decode()
        self.api = VendorHttp(
            self.integration_name,
            str(self.settings.api_base_url).rstrip("/"),
            headers={"Authorization": f"Basic {token}", "Accept": "application/json"},
            secrets=[key, secret, token],
            error_message=mailjet_error_message,
            transport=self.transport,
            timeout=self.timeout,
            sleep=self.sleep or time.sleep,
        )
        self.http = self.api

    # -- the four vendor methods -----------------------------------------------------------

    def create(self, item: PushItem) -> PushResult:
        """POST /REST/template, then POST its detailcontent."""
        response = self.api.request("POST", "/REST/template", json=self._template(item, creating=True),
                                    creates=True)
        template_id = self.created_id(response, "Data", 0, "ID")
        try:
            # Setting the content is repeatable (it overwrites): safe to retry though it is a POST.
            self.api.request("POST", f"/REST/template/{template_id}/detailcontent", json=self._content(item),
                             idempotent=True)
        except ConnectorError:
            # The template exists: a retry of this push must finish it, not make a second one.
            self._made[item.marker] = template_id
            raise
        return self._result(template_id, item)

    def update(self, resource_id: str, item: PushItem) -> PushResult:
        """PUT /REST/template/{id} (the name; 304 = unchanged) and POST its detailcontent again; a template
        deleted in Mailjet answers 404 -> ResourceNotFoundError."""
        self.api.request("PUT", f"/REST/template/{resource_id}", json=self._template(item, creating=False))
        # POST sets the whole content (Mailjet's SDKs list GET and POST on detailcontent): repeatable.
        self.api.request("POST", f"/REST/template/{resource_id}/detailcontent", json=self._content(item),
                         idempotent=True)
        return self._result(resource_id, item)

    def find_by_marker(self, item: PushItem) -> str | None:
        """The template of our OwnerType whose Name is the item's marked name (unique in Mailjet)."""
        for template in self._templates():
            if template.get("Name") == item.name:
                return str(template["ID"])
        return None

    def resource_url(self, resource_id: str) -> str | None:
        return f"{str(self.settings.app_url).rstrip('/')}/template/{resource_id}/build"

    # -- mapping ---------------------------------------------------------------------------

    def _value(self, item: PushItem, key: str) -> str | None:
        value = item.options.get(key) or item.fields.get(key)
        return str(value) if value else None

    def _template(self, item: PushItem, *, creating: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"Name": item.name, "Description": self._value(item, "description") or ""}
        if creating:
            body.update({
                "OwnerType": self.settings.owner_type,
                "EditMode": _HTML_MODE,
                "Purposes": list(self.settings.purposes),
                # No Locale: the reference types it as free text (en_US) without listing what Mailjet
                # accepts, and a refused value would fail the locale for metadata only.
                "IsTextPartGenerationEnabled": not item.plaintext,
            })
        return body

    def _content(self, item: PushItem) -> dict[str, Any]:
        headers: dict[str, str] = {"Subject": item.subject}
        if self.settings.sender_email:
            name = self.settings.sender_name
            headers["From"] = f'"{name}" <{self.settings.sender_email}>' if name else self.settings.sender_email
        reply_to = self._value(item, "reply_to")
        if reply_to:
            headers["Reply-to"] = reply_to  # spelt as Mailjet's own SDK names the template header
        return {"Html-part": item.html, "Text-part": item.plaintext, "Headers": headers}

    def _result(self, template_id: str, item: PushItem) -> PushResult:
        result = PushResult(template_id, self.resource_url(template_id))
        for option, value in (("folder_id", item.folder_id), ("campaign_id", item.campaign_id)):
            if value:
                result = result.warn(f"Mailjet templates have no folders or campaigns; {option} {value} was not "
                                     "applied")
        return result

    def _templates(self) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self.api.request("GET", "/REST/template", params={
                "OwnerType": self.settings.owner_type, "Limit": _PAGE, "Offset": offset}).json()
            templates = page.get("Data") or []
            yield from templates
            offset += len(templates)
            if len(templates) < _PAGE:
                return
