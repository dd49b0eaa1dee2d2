"""Salesforce Marketing Cloud: Content Builder HTML email assets (assetType htmlemail, 208).

Auth is OAuth 2.0 client credentials against the tenant's auth host (`/v2/token`); the answer
names the REST host (`rest_instance_url`) this connector then talks to. The token is cached until
60 s before it expires, and a 401 from the REST API refreshes it once and repeats the request once.

Every asset's `customerKey` is the item's marker (unique to the export's locale, the same in every
attempt of its push; SFMC requires a customerKey and keeps it unique in the instance): when a
create's answer is lost, the asset is looked up by that key, so a same-named asset of another
export is never mistaken for ours, and a second create of the same key is refused by SFMC itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from connectors.base import EspConnector, PushItem, PushResult
from connectors.errors import AuthenticationError, TerminalConnectorError
from connectors.http import VendorHttp, error_body
from emailexport.models import Connector

__all__ = ["SalesforceMarketingCloudConnector", "SfmcCredentials", "SfmcSettings"]

HTML_EMAIL = {"name": "htmlemail", "id": 208}
TOKEN_MARGIN = 60.0  # seconds before expiry at which a cached token is no longer used


class SfmcSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subdomain: str | None = None  # the tenant subdomain of https://<subdomain>.auth.marketingcloudapis.com
    auth_base_url: str | None = None  # the full auth base URI, instead of `subdomain`
    # The MID of the business unit to work in (default: the package's). Salesforce's token reference
    # types account_id as a number, so it is sent as one; a numeric string in the settings is accepted.
    account_id: int | None = Field(default=None, ge=1)
    api_base_url: str | None = None  # overrides the token's rest_instance_url (not normally needed)
    app_url: str = "https://mc.exacttarget.com/cloud/#app/Content%20Builder"

    @model_validator(mode="after")
    def _auth_host(self) -> SfmcSettings:
        if not (self.subdomain or self.auth_base_url):
            raise ValueError("set subdomain (or auth_base_url) from the API integration's Authentication Base URI")
        return self

    @property
    def auth_url(self) -> str:
        return (self.auth_base_url or f"https://{self.subdomain}.auth.marketingcloudapis.com").rstrip("/")


class SfmcCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: SecretStr
    client_secret: SecretStr


def sfmc_error(response: httpx.Response) -> str:
    """SFMC's error bodies (REST: message/errorcode/validationErrors; OAuth: error/error_description)."""
    body = error_body(response)
    if isinstance(body, str):
        return body
    if "error" in body:
        return f"{body['error']}: {body.get('error_description', '')}".rstrip(": ")
    text = f"{body.get('message', '')} (errorcode {body.get('errorcode')})"
    details = [f"{e.get('message')} (errorcode {e.get('errorcode')})" for e in body.get("validationErrors") or []]
    return "; ".join([text, *details])


def sfmc_retry_after(response: httpx.Response) -> float | None:
    """SFMC's 429 body repeats the wait as `retryAfter` (seconds); used when the header is missing."""
    try:
        return float(response.json()["retryAfter"])
    except (ValueError, KeyError, TypeError):
        return None


class SalesforceMarketingCloudConnector(EspConnector):
    type_name: ClassVar[str] = "salesforce_marketing_cloud"
    integration_name: ClassVar[str] = "Salesforce Marketing Cloud"
    preset: ClassVar[str] = "ampscript"
    settings_model: ClassVar[type[BaseModel]] = SfmcSettings
    credentials_model: ClassVar[type[BaseModel]] = SfmcCredentials
    declared_fields: ClassVar[Mapping[str, str]] = {
        "description": "description: the asset's description in Content Builder",
        "tags": "tags: comma-separated Content Builder tags",
    }

    rejects_duplicate_marker: ClassVar[bool] = True  # customerKey is unique in the instance
    # category.id is an integer in SFMC's Asset schema: anything else is refused at validation.
    folder_id_pattern: ClassVar[tuple[str, str] | None] = (r"[1-9][0-9]{0,17}",
                                                           "a Content Builder category id (a number)")

    settings: SfmcSettings
    credentials: SfmcCredentials

    def __init__(self, connector: Connector, credentials: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(connector, credentials, **kwargs)
        self._secrets = [self.credentials.client_id.get_secret_value(),
                         self.credentials.client_secret.get_secret_value()]
        self.auth_http = self._client(self.settings.auth_url)
        # The REST host is only known from the token, unless the settings pin it.
        self.http = self._client(self.settings.api_base_url) if self.settings.api_base_url else None
        self.clock: Callable[[], float] = time.monotonic
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def _client(self, base_url: str) -> VendorHttp:
        return VendorHttp(self.integration_name, base_url.rstrip("/"), secrets=self._secrets,
                          rate_limit_reset=sfmc_retry_after, error_message=sfmc_error,
                          transport=self.transport, timeout=self.timeout, sleep=self.sleep or time.sleep)

    def close(self) -> None:
        self.auth_http.close()
        super().close()

    # -- auth --------------------------------------------------------------------------------

    def _rest(self, *, stale: str | None = None) -> VendorHttp:
        """The REST client with a valid token; `stale` is a token the REST API just refused."""
        with self._lock:  # one token request at a time, shared by every locale's push
            if self._token is None or self._token == stale or self.clock() >= self._expires_at - TOKEN_MARGIN:
                self._fetch_token()
            assert self.http is not None
            return self.http

    def _fetch_token(self) -> None:
        body: dict[str, Any] = {
            "grant_type": "client_credentials", "client_id": self.credentials.client_id.get_secret_value(),
            "client_secret": self.credentials.client_secret.get_secret_value()}
        if self.settings.account_id:
            body["account_id"] = self.settings.account_id
        try:
            answer = self.auth_http.request("POST", "/v2/token", json=body).json()
        except TerminalConnectorError as exc:
            # A rejected token request is a credentials problem whatever status SFMC chose.
            raise AuthenticationError(f"getting an access token: {exc}", status_code=exc.status_code) from None
        if self.http is None:
            self.http = self._client(answer["rest_instance_url"])
        self._token = str(answer["access_token"])
        self._expires_at = self.clock() + float(answer.get("expires_in", 1080))
        self.http.set_header("Authorization", f"Bearer {self._token}", secret=True)

    def _call(self, method: str, path: str, *, json: Any = None, creates: bool = False,
              idempotent: bool | None = None) -> httpx.Response:
        """One REST request; a 401 refreshes the token once and repeats the request once."""
        http = self._rest()
        used = self._token
        try:
            return http.request(method, path, json=json, creates=creates, idempotent=idempotent)
        except AuthenticationError as exc:
            if exc.status_code != 401:
                raise  # 403: the package lacks a permission; a new token will not have it either
        return self._rest(stale=used).request(method, path, json=json, creates=creates, idempotent=idempotent)

    # -- assets ------------------------------------------------------------------------------

    def _asset(self, item: PushItem, customer_key: str) -> dict[str, Any]:
        # Every view, empty ones included: a PATCH replaces the views it names, so one left out
        # would keep the previous export's preheader or text.
        views: dict[str, Any] = {"html": {"content": item.html}, "subjectline": {"content": item.subject},
                                 "preheader": {"content": item.preheader}, "text": {"content": item.plaintext}}
        asset: dict[str, Any] = {
            "customerKey": customer_key, "name": item.name, "assetType": HTML_EMAIL, "views": views,
            "description": item.fields.get("description") or f"Exported by emailexport ({item.locale})",
        }
        if item.folder_id:
            asset["category"] = {"id": int(item.folder_id)}
        if tags := [t.strip() for t in item.fields.get("tags", "").split(",") if t.strip()]:
            asset["tags"] = tags
        return asset

    def _result(self, asset_id: str, item: PushItem) -> PushResult:
        result = PushResult(asset_id, self.resource_url(asset_id))
        if item.campaign_id:
            result = result.warn(f"campaign_id {item.campaign_id} was not used: Content Builder assets are "
                                 "associated with campaigns in the Campaigns app")
        return result

    def create(self, item: PushItem) -> PushResult:
        response = self._call("POST", "/asset/v1/content/assets", json=self._asset(item, item.marker), creates=True)
        return self._result(self.created_id(response, "id"), item)

    def update(self, resource_id: str, item: PushItem) -> PushResult:
        # The spec's Asset requires customerKey on a PATCH too: keep the one the asset has.
        current = self._call("GET", f"/asset/v1/content/assets/{resource_id}").json()
        body = self._asset(item, str(current["customerKey"]))
        self._call("PATCH", f"/asset/v1/content/assets/{resource_id}", json=body, idempotent=True)
        return self._result(resource_id, item)

    def find_by_marker(self, item: PushItem) -> str | None:
        """The HTML email asset whose customerKey is the item's marker."""
        simple = {"property": "customerKey", "simpleOperator": "equal", "value": item.marker}
        query = {"query": {"leftOperand": simple, "logicalOperator": "AND",
                           "rightOperand": {"property": "assetType.id", "simpleOperator": "equal",
                                            "value": HTML_EMAIL["id"]}},
                 "page": {"page": 1, "pageSize": 2}, "fields": ["id", "name", "customerKey"],
                 "sort": [{"property": "id", "direction": "DESC"}]}
        # The query is a read: safe to repeat, though it is a POST.
        answer = self._call("POST", "/asset/v1/content/assets/query", json=query, idempotent=True)
        items = answer.json().get("items") or []
        return str(items[0]["id"]) if items else None

    def resource_url(self, resource_id: str) -> str | None:
        return f"{self.settings.app_url.rstrip('/')}/{resource_id}"
