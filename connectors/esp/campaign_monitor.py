"""Campaign Monitor: one template per locale, through the API v3.3 (docs/connectors/campaign_monitor.md).

Campaign Monitor's template API never takes HTML in a request: it *fetches* the page from a URL
(https://www.campaignmonitor.com/api/v3-3/templates/):

- `POST /api/v3.3/templates/{clientid}.json` `{"Name", "HtmlPageURL"}` -> `201 "<TemplateID>"` (the new
  id as a JSON string);
- `PUT /api/v3.3/templates/{templateid}.json` with the same body -> `200` (no body);
- `GET /api/v3.3/clients/{clientid}/templates.json` -> `[{"TemplateID", "Name", "PreviewURL",
  "ScreenshotURL"}]`, every template of the client (not paged): the lookup by marker.

So each push first publishes the locale's HTML where Campaign Monitor can read it: an object in an
S3-compatible bucket (`html_hosting`), uploaded through the CDN connector's S3 client
(`connectors.cdn.s3.S3CdnConnector`: content-addressed key `<prefix><sha256>.html`, uploaded once,
immutable; an `endpoint_url` passes the egress policy there), and hands Campaign Monitor its
public URL. `ZipFileURL` is not sent: a connector export keeps its images at absolute URLs
(`use_cdn`, `use_cdn_connector`), which Campaign Monitor reads from the page itself.

A Campaign Monitor template must hold at least one editable region of its template language
(`<singleline>`, `<multiline>`, an `editable` image); a page without one is refused (code 4101).
With `editable_region: wrap_body` (default) the content of `<body>` of a page that has none is
wrapped in one `<multiline>`, so the whole email is the template's one editable region; `as_is`
sends the page unchanged (a design system that writes Campaign Monitor's tags itself) and refuses
one without a region before anything is uploaded.

Authentication is HTTP Basic with the API key as user name and a dummy password ("x", as
Campaign Monitor's own SDKs send it). Errors are `{"Code": n, "Message": "..."}`; a template that
does not exist (deleted in the app) is a 400 with code 4001, which `update` tells from other 400s by
looking the id up in the client's listing. Campaign Monitor documents its rate limit (429 with
`X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` in seconds, no `Retry-After`)
for its transactional endpoints only; a 429 here is waited out by `X-RateLimit-Reset` all the same.

Templates have no subject, preheader, plain text, folder or campaign: each one given is a warning.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr

from connectors.base import EspConnector, PushItem, PushResult
from connectors.errors import (
    ResourceNotFoundError,
    TerminalConnectorError,
    TransientConnectorError,
    VendorValidationError,
)
from connectors.http import VendorHttp, error_body
from emailexport.errors import TerminalError, TransientError
from emailexport.models import CdnConnector, Connector
from emailexport.secrets import register_secret

if TYPE_CHECKING:
    from connectors.cdn.s3 import S3CdnConnector

__all__ = [
    "CampaignMonitorConnector",
    "CampaignMonitorCredentials",
    "CampaignMonitorSettings",
    "HtmlHosting",
    "campaign_monitor_error_message",
    "editable_template",
    "rate_limit_reset",
]

_ID = r"^[0-9A-Za-z]{1,64}$"  # Campaign Monitor ids are 32 hex characters; they go into URL paths
# Campaign Monitor's editable regions: <singleline>, <multiline>, and <img editable>.
_EDITABLE = re.compile(r"<(?:singleline|multiline)\b|<img\b[^>]*\seditable\b", re.IGNORECASE)
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
_HTML_TYPE = "text/html; charset=utf-8"


class HtmlHosting(BaseModel):
    """Where each locale's HTML is published for Campaign Monitor to fetch: an S3-compatible bucket
    whose objects are publicly readable under `public_base_url`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = Field("campaign-monitor/", pattern=r"^[A-Za-z0-9._/-]*$")
    region: str | None = None
    endpoint_url: str | None = Field(None, pattern=r"^https?://")  # MinIO, R2, ...: passes the egress policy
    # What Campaign Monitor fetches: <public_base_url>/<prefix><sha256>.html (the bucket's website or
    # virtual-host address, or a CDN in front of it).
    public_base_url: HttpUrl


class CampaignMonitorSettings(BaseModel):
    """`Connector.settings` of a Campaign Monitor connector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(pattern=_ID)  # the client whose templates these are (Client settings, or GET /clients)
    # The address the account signs in at, https://<account>.createsend.com: the root of "open in" links.
    app_url: HttpUrl
    api_base_url: HttpUrl = HttpUrl("https://api.createsend.com/api/v3.3")
    html_hosting: HtmlHosting
    editable_region: Literal["wrap_body", "as_is"] = "wrap_body"
    # The label Campaign Monitor's editor shows for the wrapped region (an attribute value: no quotes).
    editable_label: str = Field("Email content", pattern=r"^[^\"<>&]{1,100}$")


class CampaignMonitorCredentials(BaseModel):
    """The secret the connector's credentials reference resolves to: {"api_key": "...", and, unless
    the process's own AWS credentials (environment, instance role) may write to the bucket,
    "s3_access_key_id" and "s3_secret_access_key" (optionally "s3_session_token")}."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(min_length=1)
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_session_token: SecretStr | None = None


def campaign_monitor_error_message(response: httpx.Response) -> str:
    """Campaign Monitor's `{"Code", "Message"}` body as "Message (code n)"."""
    body = error_body(response)
    if isinstance(body, dict) and body.get("Message"):
        code = body.get("Code")
        return f"{body['Message']} (code {code})" if code is not None else str(body["Message"])
    if response.status_code == 401 and not response.content:
        return "Unauthorized: the API key was refused"
    return str(body)[:300]


def rate_limit_reset(response: httpx.Response) -> float | None:
    """Seconds until Campaign Monitor's rate-limit window resets (`X-RateLimit-Reset`), or None."""
    try:
        return max(0.0, float(response.headers["x-ratelimit-reset"]))
    except (KeyError, ValueError):
        return None


def editable_template(html: str, label: str) -> str:
    """`html` with the content of its `<body>` wrapped in one `<multiline>` region, unless it already
    has an editable region (then unchanged). Without a `<body>` tag the whole page is wrapped."""
    if _EDITABLE.search(html):
        return html
    opening = f'<multiline label="{label}">'
    start = _BODY_OPEN.search(html)
    ends = list(_BODY_CLOSE.finditer(html))
    if start is None or not ends or ends[-1].start() < start.end():
        return f"{opening}{html}</multiline>"
    end = ends[-1].start()
    return f"{html[:start.end()]}{opening}{html[start.end():end]}</multiline>{html[end:]}"


class CampaignMonitorConnector(EspConnector):
    """Campaign Monitor templates: publish the HTML, then create or update the template from its URL."""

    type_name = "campaign_monitor"
    integration_name = "Campaign Monitor"
    preset = "campaign_monitor"
    settings_model = CampaignMonitorSettings
    credentials_model = CampaignMonitorCredentials

    settings: CampaignMonitorSettings
    credentials: CampaignMonitorCredentials

    def __init__(self, connector: Connector, credentials: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(connector, credentials, **kwargs)
        creds = self.credentials
        if (creds.s3_access_key_id is None) != (creds.s3_secret_access_key is None):
            raise TerminalConnectorError(f"{self.integration_name} connector {connector.id}: credentials are "
                                         "missing or invalid: s3_access_key_id and s3_secret_access_key go "
                                         "together")
        key = creds.api_key.get_secret_value()
        token = base64.b64encode(f"{key}:x".encode()).decode()
        s3_secrets = [s.get_secret_value() for s in (creds.s3_access_key_id, creds.s3_secret_access_key,
                                                     creds.s3_session_token) if s is not None]
        register_secret(*s3_secrets)
        self.api = VendorHttp(
            self.integration_name,
            str(self.settings.api_base_url).rstrip("/"),
            headers={"Authorization": f"Basic {token}", "Accept": "application/json"},
            secrets=[key, token, *s3_secrets],
            rate_limit_reset=rate_limit_reset,
            error_message=campaign_monitor_error_message,
            transport=self.transport,
            timeout=self.timeout,
            sleep=self.sleep or time.sleep,
        )
        self.http = self.api
        self._hosting: S3CdnConnector | None = None
        self._hosting_lock = threading.Lock()

    # -- the four vendor methods -----------------------------------------------------------

    def create(self, item: PushItem) -> PushResult:
        """Publish the HTML, then POST /templates/{clientid}.json; the answer is the new id as a string."""
        body = self._template(item)
        response = self.api.request("POST", f"/templates/{self.settings.client_id}.json", json=body, creates=True)
        return self._result(self.created_id(response), item)

    def update(self, resource_id: str, item: PushItem) -> PushResult:
        """Publish the HTML, then PUT /templates/{id}.json (name and page). Campaign Monitor answers a
        template that no longer exists with a 400 (code 4001): a 400 for an id the client's listing no
        longer holds is `ResourceNotFoundError`."""
        body = self._template(item)
        path = f"/templates/{quote(resource_id, safe='')}.json"
        try:
            self.api.request("PUT", path, json=body)
        except VendorValidationError:
            if not any(t.get("TemplateID") == resource_id for t in self._templates()):
                raise ResourceNotFoundError(f"{self.integration_name}: template {resource_id} no longer exists "
                                            f"in client {self.settings.client_id}", status_code=400) from None
            raise
        return self._result(resource_id, item)

    def find_by_marker(self, item: PushItem) -> str | None:
        """The client's template whose Name is the item's marked name."""
        for template in self._templates():
            if template.get("Name") == item.name:
                return str(template["TemplateID"])
        return None

    def resource_url(self, resource_id: str) -> str | None:
        """The account's templates page; Campaign Monitor has no documented address per template, so
        the id rides along as the fragment (the page ignores it; it names the template for the user)."""
        return f"{str(self.settings.app_url).rstrip('/')}/templates/#{resource_id}"

    # -- mapping ---------------------------------------------------------------------------

    def _template(self, item: PushItem) -> dict[str, Any]:
        return {"Name": item.name, "HtmlPageURL": self._publish(item.html)}

    def _publish(self, html: str) -> str:
        """The public URL of `html` (made a valid Campaign Monitor template) in the hosting bucket,
        uploaded unless that exact page is there already."""
        if self.settings.editable_region == "wrap_body":
            html = editable_template(html, self.settings.editable_label)
        elif not _EDITABLE.search(html):
            raise TerminalConnectorError(
                f"{self.integration_name}: the HTML has no editable region (<singleline>, <multiline> or an "
                "editable <img>), which Campaign Monitor requires of a template (its code 4101); add one in "
                "the design system or set editable_region: wrap_body")
        data = html.encode("utf-8")
        try:
            uploaded = self._bucket().upload(data, sha256=hashlib.sha256(data).hexdigest(), extension="html",
                                             content_type=_HTML_TYPE)
        except TransientError as exc:
            raise TransientConnectorError(f"{self.integration_name}: publishing the HTML for Campaign Monitor "
                                          f"to fetch: {exc}") from None
        except TerminalError as exc:
            raise TerminalConnectorError(f"{self.integration_name}: publishing the HTML for Campaign Monitor "
                                         f"to fetch: {exc}") from None
        return uploaded.url

    def _bucket(self) -> S3CdnConnector:
        with self._hosting_lock:
            if self._hosting is None:
                from connectors.cdn.s3 import S3CdnConnector  # s3fs is heavy: loaded on the first push

                hosting = self.settings.html_hosting
                config = CdnConnector(
                    id=self.connector.id, type="s3", name=f"{self.connector.name}: html_hosting",
                    bucket=hosting.bucket, prefix=hosting.prefix, region=hosting.region,
                    endpoint_url=hosting.endpoint_url, base_url=str(hosting.public_base_url))
                creds = self.credentials
                keys = {name: secret.get_secret_value() for name, secret in (
                    ("key", creds.s3_access_key_id), ("secret", creds.s3_secret_access_key),
                    ("token", creds.s3_session_token)) if secret is not None}
                self._hosting = S3CdnConnector(config, keys)
            return self._hosting

    def _result(self, template_id: str, item: PushItem) -> PushResult:
        result = PushResult(template_id, self.resource_url(template_id))
        dropped = [label for label, value in (("subject", item.subject), ("preheader", item.preheader),
                                              ("plaintext", item.plaintext)) if value]
        if dropped:
            result = result.warn(f"Campaign Monitor templates hold no {', '.join(dropped)}: set them on the "
                                 "campaign made from this template")
        for option, value in (("folder_id", item.folder_id), ("campaign_id", item.campaign_id)):
            if value:
                result = result.warn(f"Campaign Monitor templates have no folders or campaigns; {option} {value} "
                                     "was not applied")
        return result

    def _templates(self) -> list[dict[str, Any]]:
        listing = self.api.request("GET", f"/clients/{self.settings.client_id}/templates.json").json()
        if not isinstance(listing, list):
            raise TypeError("the client's template listing is not a JSON array")
        return [t for t in listing if isinstance(t, dict)]
