"""Adobe Marketo Engage: email assets (Asset API v1).

Auth is OAuth 2.0 client credentials against the instance's identity service
(`GET <identity>/oauth/token?grant_type=client_credentials&client_id=...&client_secret=...`); the
token travels as `Authorization: Bearer` (Marketo retires the `access_token` query parameter), is
cached until 60 s before its `expires_in`, and Marketo's token errors 601 (invalid) / 602 (expired)
fetch a new one and repeat the request once.

Marketo answers most errors with HTTP 200, `success: false` and `errors: [{code, message}]`, so
this module reads every answer's body and maps the codes to the framework's typed errors
(`marketo_error`): 606 (rate limit, 100 calls per 20 s) and 615 (10 concurrent calls) are waited
out (`rate_limit_wait` seconds: Marketo sends no Retry-After), 607 (daily quota) is a rate limit
that lasts until the quota resets, 604/608/611/713 are transient server errors (on a create: the
create may have happened), 603 is an authentication error, 610/702 "not found", and the rest
(609, 612, 701, 709, 710, 711, 1xxx) are the vendor's validation errors.

An email is created from an email template (`template_id`, as Marketo requires) with the marked
name, folder, subject and sender (`POST /rest/asset/v1/emails.json`, form-encoded); its HTML is
then replaced whole (`POST /rest/asset/v1/email/{id}/fullContent.json`, multipart), its subject
set (`/email/{id}/content.json`) and its preheader set (`/email/{id}.json`). The marker is in the
name, and Marketo keeps email names unique in a folder (error 709 on a second create of the same
name), so a lost create is found with `GET /rest/asset/v1/email/byName.json` and adopted.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.base import EspConnector, PushItem, PushResult
from connectors.errors import (
    AmbiguousCreateError,
    AuthenticationError,
    RateLimitedError,
    ResourceNotFoundError,
    ServerError,
    TerminalConnectorError,
    VendorValidationError,
    redact,
)
from connectors.http import VendorHttp, error_body
from emailexport.models import Connector
from emailexport.secrets import excerpt

__all__ = ["MarketoConnector", "MarketoCredentials", "MarketoSettings", "marketo_error", "seconds_until_quota_reset"]

TOKEN_MARGIN = 60.0  # seconds before expiry at which a cached token is no longer used
TOKEN_CODES = {"601", "602"}
RATE_CODES = {"606", "615"}
QUOTA_CODE = "607"
TRANSIENT_CODES = {"502", "604", "608", "611", "713"}
NOT_FOUND_CODES = {"610", "702"}
DENIED_CODES = {"603"}
FORM = "application/x-www-form-urlencoded"
_SCRIPT = re.compile(r"<script\b", re.IGNORECASE)
_VELOCITY = re.compile(r"#(?:if|elseif)\(|#\{end\}")


class MarketoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The REST endpoint of Admin > Web Services, e.g. https://123-ABC-456.mktorest.com
    instance_url: str
    # The identity endpoint (default: <instance_url>/identity, as Admin > Web Services shows it)
    identity_url: str | None = None
    template_id: int = Field(ge=1)  # the email template every new email is based on (Marketo requires one)
    folder_id: int = Field(ge=1)  # where emails go when an export names no folder_id
    from_name: str = Field(min_length=1)
    from_email: str = Field(min_length=3)
    reply_email: str | None = None  # default: from_email
    operational: bool = False
    # Where "open in Marketo" points: the instance's app host (e.g. https://app-ab12.marketo.com)
    app_url: str = "https://app.marketo.com"
    # Approve the email after each push (Marketo keeps API edits in a draft until approved)
    approve: bool = False
    # Seconds to wait on 606/615 (Marketo's window is 20 s and it names no wait of its own)
    rate_limit_wait: float = Field(default=20.0, ge=0.0, le=120.0)

    @property
    def identity(self) -> str:
        return (self.identity_url or f"{self.instance_url.rstrip('/')}/identity").rstrip("/")


class MarketoCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: SecretStr
    client_secret: SecretStr


def _errors(response: httpx.Response) -> list[dict[str, str]]:
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict) or body.get("success") is not False:
        return []
    return [{"code": str(e.get("code")), "message": str(e.get("message", ""))}
            for e in body.get("errors") or [] if isinstance(e, dict)] or [{"code": "", "message": "success: false"}]


def marketo_error(response: httpx.Response) -> str:
    """Marketo's error text: REST `errors[{code,message}]`, or the identity service's
    `error`/`error_description`."""
    body = error_body(response)
    if isinstance(body, str):
        return body
    if "error" in body:
        return f"{body['error']}: {body.get('error_description', '')}".rstrip(": ")
    errors = body.get("errors") or []
    return "; ".join(f"{e.get('message')} (code {e.get('code')})" for e in errors if isinstance(e, dict)) or str(body)


def seconds_until_quota_reset(now: dt.datetime | None = None) -> float:
    """Marketo's daily API quota resets at 00:00 US Central time."""
    zone = ZoneInfo("America/Chicago")
    current = (now or dt.datetime.now(dt.UTC)).astimezone(zone)
    midnight = dt.datetime.combine(current.date() + dt.timedelta(days=1), dt.time(), zone)
    return max(0.0, (midnight - current).total_seconds())


class MarketoConnector(EspConnector):
    type_name: ClassVar[str] = "marketo"
    integration_name: ClassVar[str] = "Marketo"
    preset: ClassVar[str] = "marketo"
    settings_model: ClassVar[type[BaseModel]] = MarketoSettings
    credentials_model: ClassVar[type[BaseModel]] = MarketoCredentials
    declared_fields: ClassVar[Mapping[str, str]] = {
        "description": "description: the email asset's description",
        "from_name": "fromName: the sender name (overrides the connector's)",
        "from_email": "fromEmail: the sender address (overrides the connector's)",
        "reply_email": "replyEmail: the reply-to address (overrides the connector's)",
    }
    # Marketo keeps email names unique in a folder: a second create of the marked name is refused (709).
    rejects_duplicate_marker: ClassVar[bool] = True
    folder_id_pattern: ClassVar[tuple[str, str] | None] = (r"[1-9][0-9]{0,9}", "a Marketo folder id (a number)")

    settings: MarketoSettings
    credentials: MarketoCredentials

    max_rate_limit_waits = 3

    def __init__(self, connector: Connector, credentials: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(connector, credentials, **kwargs)
        self._secrets = [self.credentials.client_id.get_secret_value(),
                         self.credentials.client_secret.get_secret_value()]
        self.auth_http = self._client(self.settings.identity)
        self.http = self._client(self.settings.instance_url)
        self.clock: Callable[[], float] = time.monotonic
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def _client(self, base_url: str) -> VendorHttp:
        return VendorHttp(self.integration_name, base_url.rstrip("/"), secrets=self._secrets,
                          error_message=marketo_error, transport=self.transport, timeout=self.timeout,
                          sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        (self.sleep or time.sleep)(seconds)

    def close(self) -> None:
        self.auth_http.close()
        super().close()

    # -- auth --------------------------------------------------------------------------------

    def _rest(self, *, stale: str | None = None) -> VendorHttp:
        with self._lock:  # one token request at a time, shared by every locale's push
            if self._token is None or self._token == stale or self.clock() >= self._expires_at - TOKEN_MARGIN:
                self._fetch_token()
            assert self.http is not None
            return self.http

    def _fetch_token(self) -> None:
        params = {"grant_type": "client_credentials", "client_id": self.credentials.client_id.get_secret_value(),
                  "client_secret": self.credentials.client_secret.get_secret_value()}
        try:
            response = self.auth_http.request("GET", "/oauth/token", params=params)
            answer = response.json()
            token = str(answer["access_token"])
        except TerminalConnectorError as exc:
            # A refused token request is a credentials problem whatever status the identity service chose.
            raise AuthenticationError(f"getting an access token: {exc}", status_code=exc.status_code) from None
        except (ValueError, KeyError, TypeError):
            raise ServerError(self._fail("GET /identity/oauth/token: an answer without access_token")) from None
        self._token = token
        self._expires_at = self.clock() + float(answer.get("expires_in", 3600))
        assert self.http is not None
        self.http.set_header("Authorization", f"Bearer {token}", secret=True)

    def _fail(self, text: str) -> str:
        return redact(f"{self.integration_name}: {text}", self._secrets + ([self._token] if self._token else []))

    # -- requests ----------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, form: Mapping[str, Any] | None = None,
              params: Mapping[str, Any] | None = None, multipart: tuple[str, str, str] | None = None,
              creates: bool = False, idempotent: bool | None = None) -> dict[str, Any]:
        """One REST request; Marketo's `success:false` codes become typed errors. Token errors
        fetch a new token and repeat the request once; rate limits are waited out."""
        content: bytes | None = None
        headers: dict[str, str] = {}
        if form is not None:
            content = urlencode({k: v for k, v in form.items() if v is not None}).encode()
            headers["Content-Type"] = FORM
        elif multipart is not None:
            content, headers["Content-Type"] = _multipart(*multipart)
        safe = (method == "GET" if idempotent is None else idempotent) and not creates
        refreshed = waits = failures = 0
        stale: str | None = None
        while True:
            http = self._rest(stale=stale)
            used = self._token
            response = http.request(method, path, params=params, content=content, headers=headers,
                                    creates=creates, idempotent=idempotent)
            errors = _errors(response)
            if not errors:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    if creates:
                        raise AmbiguousCreateError(self._fail(f"{method} {path}: an answer that is not Marketo's "
                                                              "JSON; the create may have happened"))
                    raise ServerError(self._fail(f"{method} {path}: an answer that is not Marketo's JSON"))
                return body
            codes = {e["code"] for e in errors}
            text = excerpt(self._fail(f"{method} {path}: " + "; ".join(
                f"{e['message']} (code {e['code']})" for e in errors)))
            if codes & TOKEN_CODES:
                if refreshed:
                    raise AuthenticationError(text)
                refreshed, stale = 1, used
                continue
            if codes & RATE_CODES:
                wait = self.settings.rate_limit_wait
                if waits < self.max_rate_limit_waits:
                    waits += 1
                    self._sleep(wait)
                    continue
                raise RateLimitedError(text, retry_after=wait, status_code=None)
            if QUOTA_CODE in codes:
                raise RateLimitedError(text, retry_after=seconds_until_quota_reset(), status_code=None)
            if codes & TRANSIENT_CODES:
                if creates:
                    raise AmbiguousCreateError(text + "; the create may have happened")
                if safe and failures < 2:
                    failures += 1
                    self._sleep(min(10.0, 0.5 * 2 ** failures))
                    continue
                raise ServerError(text)
            if codes & DENIED_CODES:
                raise AuthenticationError(text)
            if codes & NOT_FOUND_CODES:
                raise ResourceNotFoundError(text)
            raise VendorValidationError(text)

    # -- emails ------------------------------------------------------------------------------

    def _sender(self, item: PushItem) -> tuple[str, str, str]:
        s = self.settings
        from_name = item.fields.get("from_name") or s.from_name
        from_email = item.fields.get("from_email") or s.from_email
        reply = item.fields.get("reply_email") or s.reply_email or from_email
        return from_name, from_email, reply

    def _folder(self, item: PushItem) -> str:
        folder = int(item.folder_id) if item.folder_id else self.settings.folder_id
        return json.dumps({"id": folder, "type": "Folder"})

    @staticmethod
    def _name(item: PushItem) -> str:
        """The name Marketo keeps: its asset API cannot look up a name containing a comma, so commas
        become semicolons (the lookup by marker must find what the create made)."""
        return item.name.replace(",", ";")

    def _description(self, item: PushItem) -> str:
        return item.fields.get("description") or f"Exported by emailexport ({item.locale})"

    @staticmethod
    def _check_html(item: PushItem) -> None:
        """Refuse before anything is made what Marketo's full-content update refuses ("File cannot
        include JavaScript or script tags"), so a create does not leave an email without its HTML."""
        if _SCRIPT.search(item.html):
            raise VendorValidationError(f"Marketo: the HTML of {item.locale} has a <script> tag, which Marketo "
                                        "does not accept in an email's content")

    def create(self, item: PushItem) -> PushResult:
        self._check_html(item)
        from_name, from_email, reply = self._sender(item)
        form = {"name": self._name(item), "folder": self._folder(item), "template": self.settings.template_id,
                "subject": item.subject, "fromName": from_name, "fromEmail": from_email, "replyEmail": reply,
                "description": self._description(item), "operational": str(self.settings.operational).lower()}
        body = self._call("POST", "/rest/asset/v1/emails.json", form=form, creates=True)
        try:
            email_id = str(body["result"][0]["id"])
        except (KeyError, IndexError, TypeError):
            raise AmbiguousCreateError(self._fail("POST /rest/asset/v1/emails.json: success without the new "
                                                  "email's id; the create may have happened")) from None
        # From here the email exists: a retry of this push updates it instead of creating another.
        self._made[item.marker] = email_id
        try:
            return self._fill(email_id, item, created=True)
        except VendorValidationError as exc:
            # Not a refusal of the create (which the shared push would read as "this marker exists"):
            # the email was made and a later step was refused; a retry finishes this email.
            raise TerminalConnectorError(f"{exc} (email {email_id} was created; a retry of the export updates "
                                         "it)", status_code=exc.status_code) from None

    def update(self, resource_id: str, item: PushItem) -> PushResult:
        self._check_html(item)
        if not resource_id.isdigit():
            raise ResourceNotFoundError(f"Marketo email ids are numbers, not {resource_id!r}")
        # Fails with 702/610 (not found) when the email was deleted: the push then creates one.
        # (Marketo's asset API also answers a missing id with success and an empty result.)
        found = self._call("GET", f"/rest/asset/v1/email/{resource_id}.json")
        if not found.get("result"):
            raise ResourceNotFoundError(f"Marketo: email {resource_id} no longer exists ({found.get('warnings')})")
        result = self._fill(resource_id, item, created=False)
        folder = (found["result"][0].get("folder") or {}).get("id")
        if item.folder_id and str(folder) != str(item.folder_id):
            result = result.warn(f"Marketo email {resource_id} stays in folder {folder}: the API cannot move an "
                                 f"email, so folder_id {item.folder_id} applies to new emails only")
        return result

    def _fill(self, email_id: str, item: PushItem, *, created: bool) -> PushResult:
        base = f"/rest/asset/v1/email/{email_id}"
        self._call("POST", f"{base}/fullContent.json", multipart=("content", f"{item.locale}.html", item.html),
                   idempotent=True)
        from_name, from_email, reply = self._sender(item)
        header = {"subject": {"type": "Text", "value": item.subject},
                  "fromName": {"type": "Text", "value": from_name},
                  "fromEmail": {"type": "Text", "value": from_email},
                  "replyTO": {"type": "Text", "value": reply}}
        self._call("POST", f"{base}/content.json", form={k: json.dumps(v) for k, v in header.items()},
                   idempotent=True)
        # Name (an update may carry a new one), description and preheader (emptied when the export has none).
        meta = {"name": self._name(item), "description": self._description(item), "preHeader": item.preheader,
                "autoCopyToText": "true"}
        self._call("POST", f"{base}.json", form=meta, idempotent=True)
        if self.settings.approve:
            self._call("POST", f"{base}/approveDraft.json", idempotent=True)
        result = PushResult(email_id, self.resource_url(email_id))
        if "," in item.name:
            result = result.warn("Marketo cannot look up asset names containing commas: the email is named "
                                 f"{self._name(item)!r}")
        if _VELOCITY.search(item.html) or _VELOCITY.search(item.subject):
            result = result.warn("the email holds Velocity conditionals (#if ... #{end}), which Marketo runs only "
                                 "inside an Email Script token: they were pushed inline, where Marketo shows them "
                                 "as text; move each into a {{my.}} script token of the program")
        # The export's plain text is itself derived from the HTML; Marketo's v1 API has no field for
        # an email's whole text version, so autoCopyToText has Marketo derive it from the same HTML
        # (docs/connectors/marketo.md, "Text version").
        if item.campaign_id:
            result = result.warn(f"campaign_id {item.campaign_id} was not used: Marketo emails belong to a "
                                 "program through their folder; set folder_id to the program's folder")
        return result

    def find_by_marker(self, item: PushItem) -> str | None:
        """The email whose name is the item's marked name (the marker makes it unique to this
        export's locale); Marketo answers 702 "No data found" when there is none."""
        name = self._name(item)
        params: dict[str, Any] = {"name": name}
        try:
            body = self._call("GET", "/rest/asset/v1/email/byName.json", params=params)
        except ResourceNotFoundError:
            return None
        for email in body.get("result") or []:
            if email["name"] == name and item.marker in email["name"]:
                return str(email["id"])
        return None

    def resource_url(self, resource_id: str) -> str | None:
        return f"{self.settings.app_url.rstrip('/')}/#EM{resource_id}A1"


def _multipart(field: str, filename: str, text: str) -> tuple[bytes, str]:
    """One file part (Marketo's fullContent takes the HTML as a multipart file)."""
    boundary = "ee-" + secrets.token_hex(12)
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: text/html; charset=utf-8\r\n\r\n").encode()
    return head + text.encode() + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"

