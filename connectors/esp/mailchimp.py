"""Mailchimp Marketing API: user templates in a template folder (docs/connectors/mailchimp.md).

Endpoints (https://mailchimp.com/developer/marketing/api/templates/): `POST /templates`,
`PATCH /templates/{template_id}`, `GET /templates`, on https://<dc>.api.mailchimp.com/3.0 where
<dc> is the data-centre suffix of the API key (`...-us21`), with HTTP Basic auth (any user name,
the key as password). Errors are application/problem+json documents.

A Mailchimp template is a name, HTML and a folder: it has no subject, preheader or plaintext
(those belong to a campaign), so they are not sent and the result says so.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.base import EspConnector, PushItem, PushResult
from connectors.errors import TerminalConnectorError
from connectors.http import VendorHttp, error_body
from emailexport.models import Connector

__all__ = ["MailchimpConnector", "MailchimpCredentials", "MailchimpSettings", "data_center"]

LIST_PAGE_SIZE = 1000  # the maximum `count` Mailchimp accepts
LOOKUP_SKEW = timedelta(minutes=10)  # clock skew between us and Mailchimp when narrowing a lookup
MAX_CONNECTIONS = 10  # Mailchimp's documented limit of simultaneous connections per account


class MailchimpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_base_url: str | None = Field(None, description="default https://<dc>.api.mailchimp.com/3.0 from the key")
    rate_limit_wait_seconds: float = Field(1.0, ge=0, le=120,
                                           description="wait after a 429 (Mailchimp sends no reset header)")


class MailchimpCredentials(BaseModel):
    model_config = ConfigDict(extra="ignore")

    api_key: SecretStr = Field(min_length=1)


def data_center(api_key: str) -> str | None:
    """The data centre an API key belongs to ("...-us21" -> "us21"), or None."""
    match = re.search(r"-([a-z]{2,}\d+)$", api_key)
    return match[1] if match else None


def mailchimp_error_message(response: httpx.Response) -> str:
    """A problem+json document (title, detail, field errors) as one line."""
    body = error_body(response)
    if isinstance(body, str):
        return body
    message = ": ".join(str(body[k]) for k in ("title", "detail") if body.get(k)) or response.reason_phrase
    fields = [f"{e.get('field') or '(body)'}: {e.get('message')}" for e in body.get("errors") or []
              if isinstance(e, dict)]
    return f"{message} ({'; '.join(fields[:5])})" if fields else message


class MailchimpConnector(EspConnector):
    type_name = "mailchimp"
    integration_name = "Mailchimp"
    preset = "mailchimp"
    settings_model = MailchimpSettings
    credentials_model = MailchimpCredentials

    # Ids go into URL paths (PUT /campaigns/{id}/content): Mailchimp's ids are short alphanumeric strings.
    folder_id_pattern = (r"[A-Za-z0-9_-]{1,64}", "a template folder id (letters and digits)")
    campaign_id_pattern = (r"[A-Za-z0-9_-]{1,64}", "a campaign id (letters and digits, e.g. 42694e9e57)")

    settings: MailchimpSettings
    credentials: MailchimpCredentials

    def __init__(self, connector: Connector, credentials: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(connector, credentials, **kwargs)
        key = self.credentials.api_key.get_secret_value()
        dc = data_center(key)
        if dc is None:
            raise TerminalConnectorError(
                f"Mailchimp connector {connector.id}: credentials: api_key has no data-centre suffix; Mailchimp "
                "keys end in '-<dc>' (e.g. '-us21'), as shown on the account's API keys page")
        self.dc = dc
        self.page_size = LIST_PAGE_SIZE
        self._sleep = self.sleep or time.sleep
        basic = "Basic " + base64.b64encode(f"emailexport:{key}".encode()).decode()
        wait = self.settings.rate_limit_wait_seconds
        self.http = VendorHttp(
            self.integration_name, (self.settings.api_base_url or f"https://{dc}.api.mailchimp.com/3.0").rstrip("/"),
            headers={"Authorization": basic, "Accept": "application/json"}, secrets=[key, basic],
            max_in_flight=MAX_CONNECTIONS, rate_limit_reset=lambda response: wait,
            error_message=mailchimp_error_message, transport=self.transport, timeout=self.timeout, sleep=self._sleep,
        )

    def create(self, item: PushItem) -> PushResult:
        """PushItem -> a new user template (in the folder, if one is given); its id and app link."""
        response = self._http.request("POST", "/templates", json=self._template_fields(item), creates=True)
        template_id = self.created_id(response, "id")
        return self._campaign(self._result(template_id, item), item)

    def update(self, resource_id: str, item: PushItem) -> PushResult:
        """Replace the template's name, HTML and folder; a 404 (deleted) is `ResourceNotFoundError`."""
        # A PATCH that sets the same fields again is safe to repeat on a 5xx.
        self._http.request("PATCH", f"/templates/{resource_id}", json=self._template_fields(item), idempotent=True)
        return self._campaign(self._result(resource_id, item), item)

    def find_by_marker(self, item: PushItem) -> str | None:
        """The newest user template whose name carries the item's marker (its full marked name),
        paging with count/offset (Mailchimp has no name filter), created since our first create
        when this instance sent it."""
        name = item.name
        params: dict[str, Any] = {"type": "user", "count": self.page_size,
                                  "fields": "templates.id,templates.name,templates.date_created,total_items"}
        sent = self.first_sent(item)
        if sent is not None:
            params["since_date_created"] = (datetime.fromtimestamp(sent, UTC) - LOOKUP_SKEW).isoformat(
                timespec="seconds")
        matches: list[dict[str, Any]] = []
        offset = 0
        while True:
            body = self._http.request("GET", "/templates", params={**params, "offset": offset}).json()
            page = body.get("templates") or []
            matches += [t for t in page if t.get("name") == name]
            offset += len(page)
            if not page or offset >= int(body.get("total_items") or 0):
                break
        if not matches:
            return None
        return str(max(matches, key=lambda t: str(t.get("date_created") or ""))["id"])

    def resource_url(self, resource_id: str) -> str | None:
        """The template's editor in the Mailchimp app of the key's data centre."""
        return f"https://{self.dc}.admin.mailchimp.com/templates/edit?id={resource_id}"

    @property
    def _http(self) -> VendorHttp:
        assert self.http is not None
        return self.http

    @staticmethod
    def _template_fields(item: PushItem) -> dict[str, Any]:
        body: dict[str, Any] = {"name": item.name, "html": item.html}
        if item.folder_id:
            body["folder_id"] = str(item.folder_id)
        return body

    def _result(self, template_id: str, item: PushItem) -> PushResult:
        result = PushResult(template_id, self.resource_url(template_id))
        dropped = [label for label, value in (("subject", item.subject), ("preheader", item.preheader),
                                              ("plaintext", item.plaintext)) if value]
        if dropped:
            result = result.warn(f"Mailchimp templates hold no {', '.join(dropped)}: set them on the campaign that "
                                 "uses this template")
        return result

    def _campaign(self, result: PushResult, item: PushItem) -> PushResult:
        """With a campaign_id: set that campaign's content to the exported HTML (and plain text).

        `PUT /campaigns/{id}/content` replaces the content, so repeating it is harmless. A campaign
        Mailchimp does not know (404) or will not change (400: e.g. already sent) is reported as a
        warning, since the template itself was pushed; a transient failure fails the push, whose
        retry updates the same template and sets the content again."""
        if not item.campaign_id:
            return result
        content: dict[str, Any] = {"html": item.html}
        if item.plaintext:
            content["plain_text"] = item.plaintext
        try:
            self._http.request("PUT", f"/campaigns/{item.campaign_id}/content", json=content)
        except TerminalConnectorError as exc:
            return result.warn(f"Mailchimp campaign {item.campaign_id}: its content was not set: {exc}")
        return result
