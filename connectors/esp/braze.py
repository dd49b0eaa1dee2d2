"""Braze: email templates through the REST API (docs/connectors/braze.md).

Endpoints (https://www.braze.com/docs/api/endpoints/templates/email_templates/):
`POST /templates/email/create`, `POST /templates/email/update`, `GET /templates/email/info` and
`GET /templates/email/list`, with the REST API key as `Authorization: Bearer <key>` against the
workspace's instance URL (e.g. https://rest.iad-01.braze.com).

Braze documents no status for an unknown `email_template_id` (its 404 is documented for an unknown
API key), so an update first asks `/templates/email/info` whether the template still exists and
reads any non-success answer there as "gone". Email templates have no folders or campaigns; tags
organise them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.base import EspConnector, PushItem, PushResult
from connectors.errors import (
    ResourceNotFoundError,
    VendorValidationError,
)
from connectors.http import VendorHttp, error_body
from emailexport.models import Connector

__all__ = ["BrazeConnector", "BrazeCredentials", "BrazeSettings"]

LIST_PAGE_SIZE = 1000  # the maximum /templates/email/list accepts
# How far before our create to look for it: covers clock skew between us and Braze.
LOOKUP_SKEW = timedelta(minutes=10)


class BrazeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_base_url: str = Field("https://rest.iad-01.braze.com", description="the workspace's REST endpoint")
    dashboard_url: str | None = Field(None, description="the dashboard host; derived from api_base_url if unset")
    should_inline_css: bool | None = Field(None, description="Braze's CSS inlining; None: the workspace default")


class BrazeCredentials(BaseModel):
    model_config = ConfigDict(extra="ignore")

    api_key: SecretStr = Field(min_length=1)


def braze_rate_limit_reset(response: httpx.Response, now: Callable[[], float] = time.time) -> float | None:
    """Seconds until `X-RateLimit-Reset` (UTC epoch seconds, Braze's documented header), or None."""
    value = response.headers.get("x-ratelimit-reset")
    try:
        return max(0.0, float(value) - now()) if value else None
    except ValueError:
        return None


def braze_error_message(response: httpx.Response) -> str:
    """Braze's `{"message": ..., "errors": [...]}` body as one line."""
    body = error_body(response)
    if isinstance(body, str):
        return body
    message = str(body.get("message") or response.reason_phrase)
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        message += ": " + "; ".join(map(str, errors[:5]))
    return message


def dashboard_for(api_base_url: str) -> str | None:
    """The dashboard of the instance whose REST endpoint is `api_base_url` (Braze's instance table)."""
    host = urlsplit(api_base_url).hostname or ""
    numbered = re.fullmatch(r"rest\.(?:iad|fra)-(\d+)\.braze\.(com|eu)", host)
    if numbered:  # US-01..08 and EU-01/02: rest.iad-01.braze.com -> dashboard-01.braze.com
        return f"https://dashboard-{numbered[1]}.braze.{numbered[2]}"
    named = re.fullmatch(r"rest\.([a-z]+-\d+)\.braze\.(com|eu)", host)
    if named:  # US-10, AU-01, ID-01, JP-01: rest.us-10.braze.com -> dashboard.us-10.braze.com
        return f"https://dashboard.{named[1]}.braze.{named[2]}"
    return None


class BrazeConnector(EspConnector):
    type_name = "braze"
    integration_name = "Braze"
    preset = "braze"
    settings_model = BrazeSettings
    credentials_model = BrazeCredentials
    declared_fields: ClassVar[Mapping[str, str]] = {
        "tags": "tags: comma-separated tag names (each must already exist in Braze)",
    }
    # Braze documents that a new template can take minutes to be listed: look for up to ~3 minutes.
    lookup_waits = (0.0, 5.0, 10.0, 20.0, 30.0, 60.0, 60.0)

    settings: BrazeSettings
    credentials: BrazeCredentials

    def __init__(self, connector: Connector, credentials: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(connector, credentials, **kwargs)
        key = self.credentials.api_key.get_secret_value()
        self.page_size = LIST_PAGE_SIZE
        self._sleep = self.sleep or time.sleep
        self.http = VendorHttp(
            self.integration_name, self.settings.api_base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            secrets=[key], rate_limit_reset=braze_rate_limit_reset, error_message=braze_error_message,
            transport=self.transport, timeout=self.timeout, sleep=self._sleep,
        )

    # -- the four vendor methods -------------------------------------------------------------

    def create(self, item: PushItem) -> PushResult:
        """PushItem -> a new email template; its id and dashboard link."""
        body = self._template_fields(item, creating=True)
        response = self._http.request("POST", "/templates/email/create", json=body, creates=True)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if isinstance(answer, dict) and answer.get("message", "success") != "success":
            raise VendorValidationError(f"Braze: {braze_error_message(response)}")  # Braze said no, in a 2xx
        return self._result(self.created_id(response, "email_template_id"), item)

    def update(self, resource_id: str, item: PushItem) -> PushResult:
        """Replace the template's fields; `ResourceNotFoundError` if Braze no longer has it."""
        self._ensure_exists(resource_id)
        body = {"email_template_id": resource_id, **self._template_fields(item, creating=False)}
        # The update replaces the same fields with the same values: safe to repeat on a 5xx.
        response = self._http.request("POST", "/templates/email/update", json=body, idempotent=True)
        _successful(response)
        return self._result(resource_id, item)

    def find_by_marker(self, item: PushItem) -> str | None:
        """The newest template whose name carries the item's marker (its full marked name), paging
        through /templates/email/list (no name filter exists); only templates changed since our first
        create, when this instance sent it."""
        name = item.name
        params: dict[str, Any] = {"limit": self.page_size}
        sent = self.first_sent(item)
        if sent is not None:
            since = datetime.fromtimestamp(sent, UTC) - LOOKUP_SKEW
            params["modified_after"] = since.strftime("%Y-%m-%dT%H:%M:%S.%f")
        matches: list[dict[str, Any]] = []
        offset = 0
        while True:
            if offset:  # Braze rejects offset=0 ("Offset must be greater than 0"): omit it on page one
                params["offset"] = offset
            page = _successful(self._http.request("GET", "/templates/email/list", params=params)).get("templates") or []
            matches += [t for t in page if t.get("template_name") == name]
            if len(page) < self.page_size:
                break
            offset += len(page)
        if not matches:
            return None
        newest = max(matches, key=lambda t: str(t.get("created_at") or ""))
        return str(newest["email_template_id"])

    def resource_url(self, resource_id: str) -> str | None:
        """The template in the dashboard's Templates & Media section (path: see the docs)."""
        dashboard = self.settings.dashboard_url or dashboard_for(self.settings.api_base_url)
        if dashboard is None:
            return None
        return f"{dashboard.rstrip('/')}/engagement/templates_and_media/email_templates/{resource_id}"

    # -- helpers -------------------------------------------------------------------------------

    @property
    def _http(self) -> VendorHttp:
        assert self.http is not None
        return self.http

    def _template_fields(self, item: PushItem, *, creating: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"template_name": item.name, "subject": item.subject, "body": item.html}
        # An update sends the empty texts too, so a preheader removed from the email leaves Braze as well.
        if item.plaintext or not creating:
            body["plaintext_body"] = item.plaintext
        if item.preheader or not creating:
            body["preheader"] = item.preheader
        tags = [t.strip() for t in str(item.fields.get("tags", "")).split(",") if t.strip()]
        if tags:
            body["tags"] = tags
        if self.settings.should_inline_css is not None:
            body["should_inline_css"] = self.settings.should_inline_css
        return body

    def _ensure_exists(self, template_id: str) -> None:
        try:
            response = self._http.request("GET", "/templates/email/info", params={"email_template_id": template_id})
        except VendorValidationError as exc:  # a 400 for the only parameter sent: the id is unknown
            raise ResourceNotFoundError(str(exc), status_code=exc.status_code) from None
        body = response.json() if response.content else {}
        found = isinstance(body, dict) and (body.get("message", "success") == "success" or body.get("template_name"))
        if not found:
            raise ResourceNotFoundError(f"Braze: email template {template_id}: {braze_error_message(response)}")

    def _result(self, template_id: str, item: PushItem) -> PushResult:
        result = PushResult(template_id, self.resource_url(template_id))
        for option, value in (("folder_id", item.folder_id), ("campaign_id", item.campaign_id)):
            if value:
                result = result.warn(f"Braze email templates have no folders or campaigns; {option} {value!r} "
                                     "was not applied (use the tags field to organise templates)")
        return result


def _successful(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a 2xx answer whose `message` is "success" (Braze's fatal errors can ride on it)."""
    body = response.json() if response.content else {}
    if not isinstance(body, dict):
        raise VendorValidationError(f"Braze: unexpected answer: {str(body)[:200]}")
    if body.get("message", "success") != "success":
        raise VendorValidationError(f"Braze: {braze_error_message(response)}")
    return body

