"""HubSpot: one marketing email (or one design-manager template) per locale, with a private app
token (`Authorization: Bearer`).

HubSpot's Marketing Emails API v3 has no field for an email's whole HTML: an email is built from a
template (`content.templatePath`) and the template's modules. So the exported HTML goes into the
Design Manager as a coded email template, and the email uses it (docs/connectors/hubspot.md):

- `PUT /cms/v3/source-code/published/content/{path}` (Source Code API, multipart `file`) creates
  or replaces the template file `<template_folder>/<name>-<marker>.html`. The file starts with
  HubSpot's template annotation (`templateType: email`, `label: <marked name>`). A PUT to a path is
  create-or-replace, so it is repeated safely after a lost answer;
- `POST /marketing/v3/emails` creates the email (name, subject, `content.templatePath`,
  `content.plainTextVersion`, `from`, `folderIdV2`, `campaign`) and answers 201 with its `id`;
- an update reads the email (`GET /marketing/v3/emails/{id}`, 404 when deleted in HubSpot), puts
  the HTML into the template it uses (when that template is one of ours) and sets the email's
  fields (`PATCH /marketing/v3/emails/{id}`);
- a lost email create is found by listing `GET /marketing/v3/emails` (cursor `after`, narrowed by
  `createdAfter` when this instance sent the create) and comparing the exact marked name.

`resource: "template"` is for accounts without marketing email access (a token without the
marketing email scope, or no Marketing Hub): only the template file is made, and its path is the
resource id. A template holds no subject, plain text, folder or campaign: those become warnings.

HubSpot's errors are `{"status": "error", "message", "correlationId", "category", "errors": [...]}`
(`hubspot_error_message`). A 403 whose category is MISSING_SCOPES names the scopes HubSpot lists
(`errors[].context.requiredGranularScopes` / `requiredScopes`), and on a marketing email request
suggests `resource: "template"`. A 429 says which limit was hit (`policyName`): the rolling burst
window (`X-HubSpot-RateLimit-Interval-Milliseconds`, waited out when `X-HubSpot-RateLimit-Remaining`
is 0), the secondly limit (1 s), or the daily limit, which resets at midnight in the account's time
zone (`account_time_zone`): that wait is handed to the task's retry, which gives up when it is that
long. A `Retry-After`, when HubSpot sends one, wins (connectors/http.py).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from functools import partial
from types import MappingProxyType
from typing import Any, ClassVar, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, field_validator

from connectors.base import EspConnector, PushItem, PushResult
from connectors.errors import AuthenticationError, ResourceNotFoundError, TerminalConnectorError
from connectors.http import VendorHttp, error_body
from emailexport.models import Connector

__all__ = [
    "HubSpotConnector",
    "HubSpotCredentials",
    "HubSpotSettings",
    "hubspot_error_message",
    "hubspot_rate_limit_reset",
    "seconds_until_daily_reset",
]

EMAILS = "/marketing/v3/emails"
SOURCE_CODE = "/cms/v3/source-code/published"  # "published": an email can only use a published template
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_FOLDER = r"^[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*$"
_PAGE = 100  # the listing's default and the size HubSpot's reference shows
_CLOCK_SKEW = dt.timedelta(minutes=5)  # between us and HubSpot when narrowing a lookup by createdAfter
_SCOPE_KEYS = ("requiredGranularScopes", "requiredScopes")
# The scopes the reference pages list: Marketing Emails v3 takes one of content / marketing-email,
# the Source Code API takes content.
_EMAIL_SCOPES = "marketing-email (or content)"
_TEMPLATE_SCOPES = "content"


class HubSpotSettings(BaseModel):
    """`Connector.settings` of a HubSpot connector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    portal_id: int = Field(ge=1)  # the account's Hub ID (Settings > Account): the app's URLs carry it
    api_base_url: HttpUrl = HttpUrl("https://api.hubapi.com")
    app_url: HttpUrl = HttpUrl("https://app.hubspot.com")  # EU accounts: https://app-eu1.hubspot.com
    resource: Literal["marketing_email", "template"] = "marketing_email"
    # The Design Manager folder the templates go to (no leading slash, as the Source Code API writes paths)
    template_folder: str = Field(default="emailexport", pattern=_FOLDER, max_length=200)
    from_name: str | None = Field(default=None, min_length=1)  # the email's sender name
    reply_to: str | None = Field(default=None, pattern=_EMAIL)  # the email's reply-to address
    # The daily API limit resets at midnight in the account's time zone (Settings > Account defaults)
    account_time_zone: str = "UTC"

    @field_validator("account_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"not an IANA time zone: {value!r}") from None
        return value


class HubSpotCredentials(BaseModel):
    """The secret the connector's credentials reference resolves to: {"access_token": "..."}, a
    private app's access token (scope content: the templates need it, and marketing emails take it
    or marketing-email)."""

    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr = Field(min_length=1)


def hubspot_error_message(response: httpx.Response) -> str:
    """HubSpot's error body as one line: its message, category, the details and scopes it lists,
    and the correlation id HubSpot's support asks for."""
    body = error_body(response)
    if not isinstance(body, dict):
        return body if body else response.reason_phrase
    message = str(body.get("message") or response.reason_phrase)
    category = str(body.get("category") or body.get("errorType") or "")
    parts = [message]
    details = [str(e.get("message")) for e in body.get("errors") or [] if isinstance(e, dict) and e.get("message")]
    parts += [d for d in details[:3] if d != message]
    scopes = _missing_scopes(body)
    if category == "MISSING_SCOPES" or scopes:
        named = ", ".join(scopes) or (_EMAIL_SCOPES if response.request.url.path.startswith(EMAILS)
                                      else _TEMPLATE_SCOPES)
        parts = [f"the private app lacks the scope {named} (MISSING_SCOPES)"]
    elif category:  # first: a long message is cut to an excerpt, the category must survive it
        parts[0] = f"{category}: {message}"
    if response.status_code == 403 and response.request.url.path.startswith(EMAILS):
        parts.append('without marketing email access, set the connector\'s resource to "template"')
    if body.get("correlationId"):
        parts.append(f"correlationId {body['correlationId']}")
    return "; ".join(parts)


def _missing_scopes(body: Mapping[str, Any]) -> list[str]:
    """The scopes a MISSING_SCOPES body lists (in `errors[].context` or the top-level `context`)."""
    contexts = [body.get("context")] + [e.get("context") for e in body.get("errors") or [] if isinstance(e, dict)]
    found: list[str] = []
    for context in contexts:
        if isinstance(context, dict):
            for key in _SCOPE_KEYS:
                found += [str(s) for s in context.get(key) or [] if str(s) not in found]
    return found


def seconds_until_daily_reset(zone: str, now: dt.datetime | None = None) -> float:
    """HubSpot's daily API limit resets at midnight in the account's time zone."""
    tz = ZoneInfo(zone)
    current = (now or dt.datetime.now(dt.UTC)).astimezone(tz)
    midnight = dt.datetime.combine(current.date() + dt.timedelta(days=1), dt.time(), tz)
    return max(0.0, (midnight - current).total_seconds())


def hubspot_rate_limit_reset(response: httpx.Response, *, zone: str = "UTC") -> float | None:
    """Seconds to wait after a 429 (without Retry-After), from the limit HubSpot says was hit."""
    body = error_body(response)
    policy = str(body.get("policyName") or "") if isinstance(body, dict) else ""
    if policy == "DAILY" or response.headers.get("x-hubspot-ratelimit-daily-remaining") == "0":
        return seconds_until_daily_reset(zone)
    interval = response.headers.get("x-hubspot-ratelimit-interval-milliseconds")
    if response.headers.get("x-hubspot-ratelimit-remaining") == "0" and interval:
        try:
            return max(0.0, float(interval) / 1000)
        except ValueError:
            pass
    if policy == "SECONDLY" or response.headers.get("x-hubspot-ratelimit-secondly-remaining") == "0":
        return 1.0
    return None  # no figure: connectors/http.py backs off


class HubSpotConnector(EspConnector):
    """HubSpot marketing emails built on a coded template, or the templates alone."""

    type_name = "hubspot"
    integration_name = "HubSpot"
    preset = "hubspot"
    settings_model = HubSpotSettings
    credentials_model = HubSpotCredentials
    # export_field_values key -> what it sets in HubSpot (the settings' values are the defaults)
    declared_fields: ClassVar[Mapping[str, str]] = MappingProxyType({
        "from_name": "from.fromName: the email's sender name",
        "reply_to": "from.replyTo: the email's reply-to address",
    })
    extra_per_locale_keys = frozenset(declared_fields)
    folder_id_pattern = (r"\d+", "a number (a marketing email folder's folderIdV2)")
    campaign_id_pattern = (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
                           "a campaign's id (a UUID, as HubSpot's campaigns show it)")

    settings: HubSpotSettings
    credentials: HubSpotCredentials

    def __init__(self, connector: Connector, credentials: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(connector, credentials, **kwargs)
        token = self.credentials.access_token.get_secret_value()
        self.api = VendorHttp(
            self.integration_name,
            str(self.settings.api_base_url).rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            secrets=[token],
            rate_limit_reset=partial(hubspot_rate_limit_reset, zone=self.settings.account_time_zone),
            error_message=hubspot_error_message,
            transport=self.transport,
            timeout=self.timeout,
            sleep=self.sleep or time.sleep,
        )
        self.http = self.api

    @property
    def makes_emails(self) -> bool:
        return self.settings.resource == "marketing_email"

    # -- the four vendor methods -----------------------------------------------------------

    def create(self, item: PushItem) -> PushResult:
        """The template file, then (marketing_email) the email that uses it."""
        path = self._template_path(item)
        self._put_template(path, item)
        if not self.makes_emails:
            return self._result(path, item)
        try:
            response = self.api.request("POST", EMAILS, json=self._email(item, path, creating=True), creates=True)
        except AuthenticationError as exc:
            raise AuthenticationError(f"{exc} (the HTML is in the Design Manager already, as {path})",
                                      status_code=exc.status_code) from None
        return self._result(self.created_id(response, "id"), item)

    def update(self, resource_id: str, item: PushItem) -> PushResult:
        """Put the HTML into the email's template (or the template file) and set the email's fields;
        gone in HubSpot: ResourceNotFoundError."""
        if not self.makes_emails:
            self._template_metadata(resource_id)  # 404 when the file was deleted
            self._put_template(resource_id, item)
            return self._result(resource_id, item)
        if not resource_id.isdigit():  # e.g. a template path of an export made with resource: template
            raise ResourceNotFoundError(f"HubSpot: {resource_id!r} is not a marketing email id")
        email = self.api.request("GET", f"{EMAILS}/{resource_id}").json()
        used = str((email.get("content") or {}).get("templatePath") or "")
        # The email's own template when it is one of ours; otherwise (changed in HubSpot) a new one.
        path = used if used.startswith(self.settings.template_folder + "/") else self._template_path(item)
        self._put_template(path, item)
        # Setting fields is repeatable: safe to retry though it is a PATCH.
        self.api.request("PATCH", f"{EMAILS}/{resource_id}", json=self._email(item, path, creating=False),
                         idempotent=True)
        return self._result(resource_id, item)

    def find_by_marker(self, item: PushItem) -> str | None:
        """The email whose name is the item's marked name; for templates, the file whose name ends
        with the item's marker."""
        if not self.makes_emails:
            suffix = f"-{item.marker}.html"
            folder = self._folder_metadata()
            for child in folder.get("children") or []:
                if str(child).endswith(suffix):
                    return f"{self.settings.template_folder}/{child}"
            return None
        for email in self._emails(self.first_sent(item)):
            if email.get("name") == item.name:
                return str(email["id"])
        return None

    def resource_url(self, resource_id: str) -> str | None:
        app = str(self.settings.app_url).rstrip("/")
        if self.makes_emails:
            return f"{app}/email/{self.settings.portal_id}/edit/{resource_id}/settings"
        # The Design Manager addresses files by numeric ids the Source Code API does not return:
        # the link opens the account's Design Manager, where the file is at `resource_id`.
        return f"{app}/design-manager/{self.settings.portal_id}"

    # -- mapping ---------------------------------------------------------------------------

    def _value(self, item: PushItem, key: str) -> str | None:
        value = item.options.get(key) or item.fields.get(key) or getattr(self.settings, key)
        return str(value) if value else None

    def _template_path(self, item: PushItem) -> str:
        """`<folder>/<the user's name as a slug>-<marker>.html`: the marker keeps it unique to the
        export's locale, so a PUT repeated after a lost answer replaces the same file."""
        name = item.name.removesuffix(f" [{item.marker}]")
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60].strip("-") or "email"
        return f"{self.settings.template_folder}/{slug}-{item.marker}.html"

    def _put_template(self, path: str, item: PushItem) -> None:
        # HubSpot's template annotation: a coded email template, with the marked name as its label.
        label = " ".join(item.name.replace("--", "-").split())
        source = (f"<!--\n  templateType: email\n  isAvailableForNewContent: true\n  label: {label}\n-->\n"
                  f"{item.html}")
        content, content_type = _multipart("file", path.rsplit("/", 1)[-1], source)
        # Create-or-replace at a path that carries the marker: repeating it cannot make a second file.
        self.api.request("PUT", f"{SOURCE_CODE}/content/{quote(path)}", content=content,
                         headers={"Content-Type": content_type})

    def _email(self, item: PushItem, path: str, *, creating: bool) -> dict[str, Any]:
        # Every field the export owns, on update too: an emptied plain text leaves HubSpot as well.
        body: dict[str, Any] = {
            "name": item.name,
            "subject": item.subject,
            "content": {"templatePath": path, "plainTextVersion": item.plaintext},
        }
        sender = {k: v for k, v in (("fromName", self._value(item, "from_name")),
                                    ("replyTo", self._value(item, "reply_to"))) if v}
        if sender:
            body["from"] = sender
        if item.folder_id:
            if not item.folder_id.isdigit():  # validation refuses it first (folder_id_pattern)
                raise TerminalConnectorError(f"HubSpot takes a number as folder_id, not {item.folder_id!r}")
            body["folderIdV2"] = int(item.folder_id)
        if item.campaign_id:
            body["campaign"] = item.campaign_id
        return body

    def _result(self, resource_id: str, item: PushItem) -> PushResult:
        result = PushResult(resource_id, self.resource_url(resource_id))
        if self.makes_emails:
            return result
        held_by_email = [label for label, value in (("subject", item.subject), ("plain text", item.plaintext),
                                                    ("sender", self._value(item, "from_name")
                                                     or self._value(item, "reply_to"))) if value]
        if held_by_email:
            result = result.warn(f"HubSpot templates hold no {', '.join(held_by_email)}: set them on the email "
                                 "made from the template (resource: template)")
        for option, value in (("folder_id", item.folder_id), ("campaign_id", item.campaign_id)):
            if value:
                result = result.warn(f"HubSpot templates have no email folder or campaign; {option} {value} was "
                                     "not applied (resource: template)")
        return result

    # -- reads -----------------------------------------------------------------------------

    def _template_metadata(self, path: str) -> dict[str, Any]:
        metadata: dict[str, Any] = self.api.request("GET", f"{SOURCE_CODE}/metadata/{quote(path)}").json()
        return metadata

    def _folder_metadata(self) -> dict[str, Any]:
        try:
            return self._template_metadata(self.settings.template_folder)
        except ResourceNotFoundError:
            return {}  # no folder yet: nothing was made in it

    def _emails(self, sent: float | None) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"limit": _PAGE}
        if sent is not None:
            since = dt.datetime.fromtimestamp(sent, dt.UTC) - _CLOCK_SKEW
            params["createdAfter"] = since.strftime("%Y-%m-%dT%H:%M:%S.") + f"{since.microsecond // 1000:03d}Z"
        while True:
            page = self.api.request("GET", EMAILS, params=params).json()
            yield from page.get("results") or []
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return
            params = {**params, "after": after}


def _multipart(field: str, filename: str, text: str) -> tuple[bytes, str]:
    """One file part: the Source Code API takes the file as multipart/form-data `file`."""
    boundary = "ee-" + secrets.token_hex(12)
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: text/html; charset=utf-8\r\n\r\n").encode()
    return head + text.encode() + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
