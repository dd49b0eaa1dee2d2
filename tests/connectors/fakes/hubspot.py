"""A loopback HubSpot: Marketing Emails v3 and the CMS Source Code API v3 at their real paths.

HubSpot's own OpenAPI files (github HubSpot/HubSpot-public-api-spec-collection) say they are
"proprietary to HubSpot and not licensed for external use", so no contract is derived from them
(../shared/specs/README.md leaves HubSpot out for that reason). The fake validates every request
against the fields of HubSpot's public reference pages and of its Apache-2.0 Python SDK, which is
generated from those files (docs/connectors/hubspot.md lists them):

- `Authorization: Bearer <private app token>`; the token's scopes: Marketing Emails v3 takes one of
  content / marketing-email / transactional-email, the Source Code API takes content (the
  reference pages' "Scope requirements"); a missing one is HubSpot's 403 MISSING_SCOPES body;
- emails: JSON bodies with only EmailCreateRequest / EmailUpdateRequest properties and their types
  (`name` required on create; `content` only PublicEmailContent's, `from` only
  PublicEmailFromDetails'); an unknown property is the 400 HubSpot's JSON reader answers
  ("Unrecognized field"); the listing's and the read's documented query parameters, typed;
- source code: environment `draft` or `published`, a path without a leading slash, a
  multipart/form-data body with the file in the `file` part; folder metadata lists `children`.

An email's `content.templatePath` must name a published email template of this account (the fake's
own consistency check: an email built on a file that does not exist would be empty). Answers are
HubSpot's: 201 + Location and the PublicEmail on create, `{"total", "results", "paging"}` listings,
AssetFileMetadata for files, errors `{"status": "error", "message", "correlationId", "category"}`,
and `X-HubSpot-RateLimit-*` headers on every answer. A 429 names the limit hit (`policyName`); the
burst window's length (10 s at HubSpot) is the fake's parameter so tests do not sleep 10 s.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
import time
import uuid
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from tests.connectors.fakes.base import FakeVendor, Handler, Reply, json_body
from tests.connectors.spec import RecordedRequest

__all__ = ["FakeHubSpot"]

_STEADY = {
    "X-HubSpot-RateLimit-Daily": "250000", "X-HubSpot-RateLimit-Daily-Remaining": "249000",
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000", "X-HubSpot-RateLimit-Max": "190",
    "X-HubSpot-RateLimit-Remaining": "189", "X-HubSpot-RateLimit-Secondly": "19",
    "X-HubSpot-RateLimit-Secondly-Remaining": "18",
}
_EMAIL_SCOPES = {"content", "marketing-email", "transactional-email"}
_SOURCE_SCOPES = {"content"}
_OBJECT = dict
# hubspot-api-python, hubspot/marketing/emails/models/email_create_request.py / email_update_request.py
_UPDATE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "activeDomain": str, "archived": bool, "businessUnitId": int, "campaign": str, "content": _OBJECT,
    "folderIdV2": int, "from": _OBJECT, "jitterSendTime": bool, "language": str, "name": str,
    "publishDate": str, "rssData": _OBJECT, "sendOnPublish": bool, "state": str, "subcategory": str,
    "subject": str, "subscriptionDetails": _OBJECT, "testing": _OBJECT, "to": _OBJECT, "webversion": _OBJECT,
}
_CREATE_FIELDS = {**_UPDATE_FIELDS, "feedbackSurveyId": str}
# public_email_content.py and public_email_from_details.py
_CONTENT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "flexAreas": _OBJECT, "plainTextVersion": str, "smartFields": _OBJECT, "styleSettings": _OBJECT,
    "templatePath": str, "themeSettingsValues": _OBJECT, "widgetContainers": _OBJECT, "widgets": _OBJECT,
}
_FROM_FIELDS: dict[str, type | tuple[type, ...]] = {"customReplyTo": str, "fromName": str, "replyTo": str}
# marketing_emails_api.py: get_page / get_by_id / update query parameters, with their types
_BOOL, _INT, _TIME, _TEXT = "boolean", "integer", "date-time", "string"
_LIST_PARAMS = {
    "after": _TEXT, "archived": _BOOL, "campaign": _TEXT, "createdAfter": _TIME, "createdAt": _TIME,
    "createdBefore": _TIME, "includedProperties": _TEXT, "includeStats": _BOOL, "isPublished": _BOOL,
    "limit": _INT, "marketingCampaignNames": _BOOL, "publishedAfter": _TIME, "publishedAt": _TIME,
    "publishedBefore": _TIME, "sort": _TEXT, "type": _TEXT, "updatedAfter": _TIME, "updatedAt": _TIME,
    "updatedBefore": _TIME, "variantStats": _BOOL, "workflowNames": _BOOL,
}
_GET_PARAMS = {k: _LIST_PARAMS[k] for k in ("archived", "includedProperties", "includeStats",
                                             "marketingCampaignNames", "variantStats", "workflowNames")}
_PATCH_PARAMS = {"archived": _BOOL}
_ANNOTATION = re.compile(r"^\s*<!--(.*?)-->", re.DOTALL)


def _error(status: int, message: str, category: str, **extra: Any) -> Reply:
    return Reply(status, {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
                          "category": category, **extra})


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_time(value: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


class FakeHubSpot(FakeVendor):
    """`resources`: email id -> {"name", "subject", "html" (its template's source), "text", ...};
    `files`: path -> {"source", "label", "template_type", ...} (the published environment)."""

    name = "hubspot"
    create_route = ("POST", r"^/marketing/v3/emails$")
    update_route = ("PATCH", r"^/marketing/v3/emails/\d+$")
    lookup_route = ("GET", r"^/marketing/v3/emails$")

    def __init__(self, token: str, *, scopes: frozenset[str] = frozenset({"content", "marketing-email"})) -> None:
        self.token = token
        self.scopes = set(scopes)
        self.emails: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.drafts: dict[str, dict[str, Any]] = {}  # files uploaded to the draft environment
        self._paths_made: set[str] = set()
        self._ids = itertools.count(170_000_000_001)
        self._store_lock = threading.Lock()
        super().__init__(None)

    def register(self) -> None:
        emails, source = "/marketing/v3/emails", "/cms/v3/source-code/(?P<environment>[^/]+)"
        self.route("POST", emails, self._needs(_EMAIL_SCOPES, self._create_email))
        self.route("GET", emails, self._needs(_EMAIL_SCOPES, self._list_emails))
        self.route("GET", emails + r"/(?P<email_id>[^/]+)", self._needs(_EMAIL_SCOPES, self._get_email))
        self.route("PATCH", emails + r"/(?P<email_id>[^/]+)", self._needs(_EMAIL_SCOPES, self._update_email))
        self.route("PUT", source + "/content/(?P<path>.+)", self._needs(_SOURCE_SCOPES, self._put_file))
        self.route("GET", source + "/metadata/(?P<path>.+)", self._needs(_SOURCE_SCOPES, self._metadata))

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """The emails as the tests compare them: the HTML is their template's source."""
        with self._store_lock:
            return {i: {"name": e["name"], "subject": e["subject"], "text": e["plaintext"],
                        "html": self.files.get(e["template_path"], {}).get("source", ""),
                        "template_path": e["template_path"], "from": dict(e["from"]), "folder_id": e["folder_id"],
                        "campaign": e["campaign"], "updated_at": e["updated_at"]}
                    for i, e in self.emails.items()}

    def delete_resource(self, resource_id: str) -> None:
        """A user deleted the email in HubSpot (its template file stays, as in HubSpot)."""
        with self._store_lock:
            del self.emails[resource_id]

    def delete_file(self, path: str) -> None:
        with self._store_lock:
            del self.files[path]

    # -- the vendor's own failure answers --------------------------------------------------

    def unauthorized(self) -> Reply:
        return _error(401, "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
                           "you can find more details at https://developers.hubspot.com/docs/methods/auth/"
                           "oauth-overview", "INVALID_AUTHENTICATION")

    def missing_scopes(self, scopes: list[str]) -> Reply:
        return _error(403, "This app hasn't been granted all required scopes to make this call. Read more about "
                           "required scopes here: https://developers.hubspot.com/scopes.", "MISSING_SCOPES",
                      errors=[{"message": "One or more of the following scopes are required.",
                               "context": {"requiredGranularScopes": scopes}}],
                      links={"scopes": "https://developers.hubspot.com/scopes"})

    def rate_limited(self, seconds: float) -> Reply:
        """The rolling burst limit; `seconds` is the window HubSpot reports (10 s there)."""
        body = {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()), "policyName": "TEN_SECONDLY_ROLLING"}
        return Reply(429, body, {**_STEADY, "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(seconds * 1000)),
                                 "X-HubSpot-RateLimit-Remaining": "0"})

    def rate_limited_daily(self) -> Reply:
        body = {"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()), "policyName": "DAILY"}
        return Reply(429, body, {**_STEADY, "X-HubSpot-RateLimit-Daily-Remaining": "0"})

    def server_error(self) -> Reply:
        return _error(500, "internal error", "INTERNAL_ERROR")

    # -- checks ----------------------------------------------------------------------------

    def _reject(self, request: RecordedRequest, message: str) -> Reply:
        self.spec_problems.append(f"{request.method} {request.path}: {message}")
        return _error(400, message, "VALIDATION_ERROR")

    def _dispatch(self, request: RecordedRequest) -> Reply:
        reply = super()._dispatch(request)
        reply.headers = {**_STEADY, **reply.headers}
        return reply

    def _needs(self, scopes: set[str], handler: Handler) -> Handler:
        def checked(request: RecordedRequest, **params: str) -> Reply:
            header = request.headers.get("authorization", "")
            if not header.startswith("Bearer "):
                self.spec_problems.append(f"{request.method} {request.path}: no Bearer token")
                return self.unauthorized()
            if header[7:] != self.token:
                return self.unauthorized()
            if not scopes & self.scopes:
                return self.missing_scopes(sorted(scopes))
            return handler(request, **params)
        return checked

    def _query(self, request: RecordedRequest, allowed: dict[str, str]) -> Reply | None:
        for name, values in request.query.items():
            kind = allowed.get(name)
            if kind is None:
                return self._reject(request, f"Unknown query parameter {name!r}")
            for value in values:
                if (kind == _INT and not re.fullmatch(r"\d+", value)) or \
                        (kind == _BOOL and value not in ("true", "false")) or \
                        (kind == _TIME and _parse_time(value) is None):
                    return self._reject(request, f"Query parameter {name!r}: {value!r} is not a {kind}")
        return None

    def _object(self, request: RecordedRequest, value: Any, fields: dict[str, Any], where: str) -> str | None:
        """What is wrong with `value` as an object of `fields` (HubSpot's JSON reader's words)."""
        if not isinstance(value, dict):
            return f"Invalid input JSON: {where} must be an object"
        for name, item in value.items():
            if name not in fields:
                return f'Invalid input JSON on line 1: Unrecognized field "{name}" ({where})'
            kind = fields[name]
            if not isinstance(item, kind) or (kind is int and isinstance(item, bool)):
                return f"Invalid input JSON: {where}.{name} has the wrong type"
        return None

    def _email_body(self, request: RecordedRequest, *, creating: bool) -> dict[str, Any] | Reply:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return self._reject(request, "Content-Type must be application/json")
        try:
            body = json_body(request)
        except ValueError:
            return self._reject(request, "Invalid input JSON")
        problem = self._object(request, body, _CREATE_FIELDS if creating else _UPDATE_FIELDS, "(body)")
        if problem is None and "content" in body:
            problem = self._object(request, body["content"], _CONTENT_FIELDS, "content")
        if problem is None and "from" in body:
            problem = self._object(request, body["from"], _FROM_FIELDS, "from")
        if problem is None and creating and not body.get("name"):
            problem = "name is required"
        if problem:
            return self._reject(request, problem)
        path = (body.get("content") or {}).get("templatePath")
        if path is not None:
            template = self.files.get(path)
            if template is None or template["template_type"] != "email":
                # Not a malformed request: a template the account does not have (no spec problem).
                return _error(400, f"Template {path} is not a published email template", "VALIDATION_ERROR")
        return body

    # -- emails ----------------------------------------------------------------------------

    def _create_email(self, request: RecordedRequest) -> Reply:
        body = self._email_body(request, creating=True)
        if isinstance(body, Reply):
            return body
        with self._store_lock:
            email_id = str(next(self._ids))
            now = int(time.time() * 1000)
            self.emails[email_id] = {"name": body["name"], "subject": "", "template_path": "", "plaintext": "",
                                     "from": {}, "folder_id": None, "campaign": None, "state": "DRAFT",
                                     "created_at": now, "updated_at": now}
            self._apply(self.emails[email_id], body)
            shown = self._shown(email_id)
        self.born(email_id)
        return Reply(201, shown, {"Location": f"https://api.hubapi.com/marketing/v3/emails/{email_id}"})

    def _update_email(self, request: RecordedRequest, email_id: str) -> Reply:
        problem = self._query(request, _PATCH_PARAMS)
        if problem:
            return problem
        body = self._email_body(request, creating=False)
        if isinstance(body, Reply):
            return body
        with self._store_lock:
            if email_id not in self.emails:
                return _error(404, f"No email found with id {email_id}", "OBJECT_NOT_FOUND")
            self._apply(self.emails[email_id], body)
            self.emails[email_id]["updated_at"] = int(time.time() * 1000)
            return Reply(200, self._shown(email_id))

    @staticmethod
    def _apply(email: dict[str, Any], body: dict[str, Any]) -> None:
        """PATCH semantics: the properties sent replace the stored ones, nested objects key by key."""
        for key, stored in (("name", "name"), ("subject", "subject"), ("folderIdV2", "folder_id"),
                            ("campaign", "campaign")):
            if key in body:
                email[stored] = body[key]
        content = body.get("content") or {}
        if "templatePath" in content:
            email["template_path"] = content["templatePath"]
        if "plainTextVersion" in content:
            email["plaintext"] = content["plainTextVersion"]
        email["from"].update(body.get("from") or {})

    def _get_email(self, request: RecordedRequest, email_id: str) -> Reply:
        problem = self._query(request, _GET_PARAMS)
        if problem:
            return problem
        with self._store_lock:
            if email_id not in self.emails:
                return _error(404, f"No email found with id {email_id}", "OBJECT_NOT_FOUND")
            return Reply(200, self._shown(email_id))

    def _list_emails(self, request: RecordedRequest) -> Reply:
        problem = self._query(request, _LIST_PARAMS)
        if problem:
            return problem
        limit = int(request.query.get("limit", ["100"])[0])
        offset = int(request.query.get("after", ["0"])[0] or 0)
        after = request.query.get("createdAfter", [None])[0]
        since = _parse_time(after) if after else None
        with self._store_lock:
            ids = [i for i, e in sorted(self.emails.items(), key=lambda p: p[1]["created_at"])
                   if since is None or e["created_at"] > since.timestamp() * 1000]
        shown = self.listed(ids)
        with self._store_lock:
            page = [self._shown(i) for i in shown[offset:offset + limit] if i in self.emails]
        body: dict[str, Any] = {"total": len(shown), "results": page}
        if offset + limit < len(shown):
            body["paging"] = {"next": {"after": str(offset + limit),
                                       "link": f"?after={offset + limit}"}}
        return Reply(200, body)

    def _shown(self, email_id: str) -> dict[str, Any]:
        e = self.emails[email_id]
        return {"id": email_id, "name": e["name"], "subject": e["subject"], "state": e["state"],
                "type": "BATCH_EMAIL", "isAb": False, "isPublished": False, "isTransactional": False,
                "archived": False, "emailTemplateMode": "DESIGN_MANAGER",
                "content": {"templatePath": e["template_path"], "plainTextVersion": e["plaintext"],
                            "widgets": {}, "flexAreas": {}},
                "from": dict(e["from"]), "folderIdV2": e["folder_id"], "campaign": e["campaign"],
                "createdAt": _iso(e["created_at"]), "updatedAt": _iso(e["updated_at"])}

    # -- source code -----------------------------------------------------------------------

    def _put_file(self, request: RecordedRequest, environment: str, path: str) -> Reply:
        if environment not in ("draft", "published"):
            return self._reject(request, f"environment must be draft or published, not {environment!r}")
        problem = self._path_problem(path)
        if problem:
            return self._reject(request, problem)
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return self._reject(request, "the file must be sent as multipart/form-data")
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + request.body)
        parts = {str(p.get_param("name", header="content-disposition")): p for p in message.iter_parts()}
        part = parts.get("file")
        if part is None or set(parts) != {"file"} or not part.get_filename():
            return self._reject(request, "the multipart body must hold one file part named 'file'")
        payload = part.get_payload(decode=True)
        source = payload.decode("utf-8") if isinstance(payload, bytes) else str(payload)
        annotation = self._annotation(source)
        store = self.files if environment == "published" else self.drafts
        with self._store_lock:
            now = int(time.time() * 1000)
            created = store.get(path, {}).get("created_at", now)
            store[path] = {"source": source, "label": annotation.get("label", ""),
                           "template_type": annotation.get("templateType", ""), "created_at": created,
                           "updated_at": now}
        if path not in self._paths_made:  # a new file: listed in its folder as `list_late` says
            self._paths_made.add(path)
            self.born(path)
        return Reply(200, self._file_metadata(path, store[path]))

    @staticmethod
    def _path_problem(path: str) -> str | None:
        if path.startswith("/") or not path or any(part in ("", ".", "..") for part in path.split("/")):
            return f"invalid path {path!r}: top-level assets are not preceded by a /"
        return None

    @staticmethod
    def _annotation(source: str) -> dict[str, str]:
        """A coded template's annotation comment (`templateType: email`, `label: ...`)."""
        match = _ANNOTATION.match(source)
        if not match:
            return {}
        pairs = (line.split(":", 1) for line in match.group(1).splitlines() if ":" in line)
        return {key.strip(): value.strip() for key, value in pairs}

    def _metadata(self, request: RecordedRequest, environment: str, path: str) -> Reply:
        problem = self._query(request, {"properties": _TEXT})
        if problem:
            return problem
        if environment not in ("draft", "published"):
            return self._reject(request, f"environment must be draft or published, not {environment!r}")
        store = self.files if environment == "published" else self.drafts
        path = path.rstrip("/")
        with self._store_lock:
            if path in store:
                return Reply(200, self._file_metadata(path, store[path]))
            inside = sorted(p for p in store if p.startswith(path + "/"))
        if not inside:
            return _error(404, f"Couldn't find a file or folder at {path}", "OBJECT_NOT_FOUND")
        children = sorted({p[len(path) + 1:].split("/")[0] for p in self.listed(inside)})
        now = int(time.time() * 1000)
        return Reply(200, {"id": path, "name": path.rsplit("/", 1)[-1], "folder": True, "children": children,
                           "createdAt": now, "updatedAt": now})

    @staticmethod
    def _file_metadata(path: str, stored: dict[str, Any]) -> dict[str, Any]:
        return {"id": path, "name": path.rsplit("/", 1)[-1], "folder": False, "createdAt": stored["created_at"],
                "updatedAt": stored["updated_at"], "hash": format(hash(stored["source"]) & 0xFFFFFFFF, "08x")}
