"""A loopback Mailjet: templates and their detail content on Mailjet's v3 REST paths.

Mailjet publishes no OpenAPI file, so the fake validates every request against the fields of
Mailjet's reference pages (docs/connectors/mailjet.md lists them): HTTP Basic auth with the API
key and secret key, JSON bodies holding only the resource's documented properties with their
types (Name required on a template; EditMode 1-4; OwnerType apikey/user/global; Purposes from
marketing/transactional/automation; detail content Html-part / Text-part / Headers / MJMLContent,
set by POST and read by GET only, as Mailjet's SDKs list them),
(OwnerType, Name) unique, and the listing's filters (OwnerType, Limit up to 1000, Offset). A request
outside that is answered with Mailjet's 400 and recorded in `spec_problems` (which the tests
assert empty). Answers are Mailjet's `{"Count", "Data", "Total"}` envelopes, errors its
`{"ErrorInfo", "ErrorMessage", "StatusCode"}` body, a 401 is empty with a WWW-Authenticate
header, and a PUT that changes nothing answers 304 as Mailjet documents.
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
from typing import Any

from tests.connectors.fakes.base import FakeVendor, Handler, Reply, json_body
from tests.connectors.spec import RecordedRequest

__all__ = ["MailjetFake"]

_TEMPLATE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "Author": str, "Categories": list, "Copyright": str, "Description": str, "EditMode": int,
    "IsStarred": bool, "IsTextPartGenerationEnabled": bool, "Locale": str, "Name": str, "OwnerId": int,
    "OwnerType": str, "Presets": str, "Purposes": list,
}
_CONTENT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "Html-part": str, "Text-part": str, "Headers": dict, "MJMLContent": (str, dict),
}
# Header names of a template (Mailjet's .NET SDK TemplateDetailcontent: From, Subject, Reply-to;
# SenderName / SenderEmail as the app stores them), compared without case as mail headers are.
_HEADER_NAMES = {"subject", "from", "reply-to", "sendername", "senderemail"}
_LIST_FILTERS = {"OwnerType", "Limit", "Offset", "EditMode", "Purposes", "Locale", "Name", "Countonly", "Sort"}
_OWNER_TYPES = {"apikey", "user", "global"}
_PURPOSES = {"marketing", "transactional", "automation"}


def _error(status: int, message: str, info: str = "") -> Reply:
    return Reply(status, {"ErrorInfo": info, "ErrorMessage": message, "StatusCode": status})


def _envelope(*data: dict[str, Any]) -> dict[str, Any]:
    return {"Count": len(data), "Data": list(data), "Total": len(data)}


class MailjetFake(FakeVendor):
    """`resources`: template id -> {"name", "subject", "html", "text", "headers", "owner_type", ...}."""

    name = "mailjet"
    create_route = ("POST", r"/v3/REST/template$")
    update_route = ("POST", r"/v3/REST/template/\d+/detailcontent$")  # content is (re)set by POST
    lookup_route = ("GET", r"/v3/REST/template$")

    def __init__(self, api_key: str, secret_key: str) -> None:
        self.api_key = api_key
        self.secret_key = secret_key
        self.resources: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(5_000_001)
        self._store_lock = threading.Lock()
        super().__init__(None)

    def register(self) -> None:
        self.route("POST", r"/v3/REST/template", self._authorized(self._create))
        self.route("GET", r"/v3/REST/template", self._authorized(self._list))
        self.route("GET", r"/v3/REST/template/(?P<template_id>[^/]+)", self._authorized(self._get))
        self.route("PUT", r"/v3/REST/template/(?P<template_id>[^/]+)", self._authorized(self._rename))
        self.route("POST", r"/v3/REST/template/(?P<template_id>[^/]+)/detailcontent",
                   self._authorized(self._set_content))
        self.route("GET", r"/v3/REST/template/(?P<template_id>[^/]+)/detailcontent",
                   self._authorized(self._get_content))

    # -- the vendor's own failure answers --------------------------------------------------

    def unauthorized(self) -> Reply:
        return Reply(401, b"", {"WWW-Authenticate": 'Basic realm="Provide an apiKey and secretKey"'})

    def rate_limited(self, seconds: float) -> Reply:
        # Mailjet documents the 429 ("calls allowed per minute") but no rate-limit header; the
        # Retry-After here is the standard one the connector honours when present (unconfirmed).
        return _error(429, "Too many requests") if seconds <= 0 else Reply(
            429, {"ErrorInfo": "", "ErrorMessage": "Too many requests", "StatusCode": 429},
            {"Retry-After": str(int(seconds))})

    def server_error(self) -> Reply:
        return _error(500, "Internal Server Error", "ErrorIdentifier: D4DF574C-0C5F-45C7-BA52-7AA8E533C3DE")

    def delete_resource(self, resource_id: str) -> None:
        """A user deleted the template in Mailjet's app."""
        with self._store_lock:
            del self.resources[resource_id]

    # -- checks ----------------------------------------------------------------------------

    def _reject(self, request: RecordedRequest, message: str) -> Reply:
        self.spec_problems.append(f"{request.method} {request.path}: {message}")
        return _error(400, message)

    def _authorized(self, handler: Handler) -> Handler:
        def checked(request: RecordedRequest, **params: str) -> Reply:
            header = request.headers.get("authorization", "")
            if not header.startswith("Basic "):
                self.spec_problems.append(f"{request.method} {request.path}: no HTTP Basic authorization")
                return self.unauthorized()
            try:
                key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return self.unauthorized()
            if (key, secret) != (self.api_key, self.secret_key):
                return self.unauthorized()
            if request.method in ("POST", "PUT") and \
                    not request.headers.get("content-type", "").startswith("application/json"):
                return self._reject(request, "Content-Type must be application/json")
            return handler(request, **params)
        return checked

    def _body(self, request: RecordedRequest, fields: dict[str, Any]) -> dict[str, Any] | Reply:
        try:
            body = json_body(request)
        except ValueError:
            return self._reject(request, "Invalid json input")
        if not isinstance(body, dict):
            return self._reject(request, "Invalid json input: an object is expected")
        for name, value in body.items():
            if name not in fields:
                return self._reject(request, f'Invalid json input: object "{name}" is not a property of this resource')
            if not isinstance(value, fields[name]) or (fields[name] is int and isinstance(value, bool)):
                return self._reject(request, f"Invalid value for property {name}")
        return body

    def _template_problem(self, request: RecordedRequest, body: dict[str, Any], creating: bool) -> Reply | None:
        if creating and not body.get("Name"):
            return self._reject(request, 'Property "Name" is required')
        if "EditMode" in body and body["EditMode"] not in (1, 2, 3, 4):
            return self._reject(request, "EditMode must be one of tool(1), html(2), snippet(3), mjml(4)")
        if "OwnerType" in body and body["OwnerType"] not in _OWNER_TYPES:
            return self._reject(request, f"Invalid OwnerType {body['OwnerType']!r}")
        if any(p not in _PURPOSES for p in body.get("Purposes", [])):
            return self._reject(request, "Purposes must be marketing, transactional or automation")
        return None

    # -- routes ----------------------------------------------------------------------------

    def _create(self, request: RecordedRequest) -> Reply:
        body = self._body(request, _TEMPLATE_FIELDS)
        if isinstance(body, Reply):
            return body
        problem = self._template_problem(request, body, creating=True)
        if problem:
            return problem
        owner = body.get("OwnerType", "apikey")
        with self._store_lock:
            if any(t["owner_type"] == owner and t["name"] == body["Name"] for t in self.resources.values()):
                # Not a malformed request: Mailjet's unique key (OwnerType, Name) refuses it.
                return _error(400, f'MJ18 A Template resource with value "{owner}|{body["Name"]}" for '
                                   "OwnerType|Name already exists.")
            template_id = str(next(self._ids))
            now = int(time.time() * 1000)
            self.resources[template_id] = {
                "name": body["Name"], "owner_type": owner, "description": body.get("Description", ""),
                "edit_mode": body.get("EditMode", 1), "purposes": body.get("Purposes", []),
                "locale": body.get("Locale", "en_US"), "subject": "", "html": "", "text": "", "headers": {},
                "created_at": now, "updated_at": now,
            }
        self.born(template_id)
        return Reply(201, _envelope(self._shown(template_id)))

    def _rename(self, request: RecordedRequest, template_id: str) -> Reply:
        body = self._body(request, _TEMPLATE_FIELDS)
        if isinstance(body, Reply):
            return body
        problem = self._template_problem(request, body, creating=False)
        if problem:
            return problem
        with self._store_lock:
            template = self.resources.get(template_id)
            if template is None:
                return _error(404, "Object not found")
            changes = {k: v for k, v in (("name", body.get("Name")), ("description", body.get("Description")))
                       if v is not None and template[k] != v}
            if not changes:
                return Reply(304)  # "The PUT request didn't affect any record."
            template.update(changes, updated_at=int(time.time() * 1000))
        return Reply(200, _envelope(self._shown(template_id)))

    def _set_content(self, request: RecordedRequest, template_id: str) -> Reply:
        body = self._body(request, _CONTENT_FIELDS)
        if isinstance(body, Reply):
            return body
        headers = body.get("Headers", {})
        unknown = {h for h in headers if str(h).lower() not in _HEADER_NAMES}
        if unknown or not all(isinstance(v, str) for v in headers.values()):
            return self._reject(request, f"Invalid Headers: {sorted(unknown) or 'values must be strings'}")
        if "Html-part" not in body and "Text-part" not in body and "MJMLContent" not in body:
            return self._reject(request, "Html-part, Text-part or MJMLContent is required")
        with self._store_lock:
            template = self.resources.get(template_id)
            if template is None:
                return _error(404, "Object not found")
            template.update(html=body.get("Html-part", template["html"]), text=body.get("Text-part", template["text"]),
                            headers=dict(headers), subject=headers.get("Subject", ""),
                            updated_at=int(time.time() * 1000))
            shown = self._content(template)
        return Reply(201, _envelope(shown))

    def _get_content(self, request: RecordedRequest, template_id: str) -> Reply:
        template = self.resources.get(template_id)
        if template is None:
            return _error(404, "Object not found")
        return Reply(200, _envelope(self._content(template)))

    def _get(self, request: RecordedRequest, template_id: str) -> Reply:
        if template_id not in self.resources:
            return _error(404, "Object not found")
        return Reply(200, _envelope(self._shown(template_id)))

    def _list(self, request: RecordedRequest) -> Reply:
        unknown = set(request.query) - _LIST_FILTERS
        if unknown:
            return self._reject(request, f"Unknown filter(s): {', '.join(sorted(unknown))}")
        try:
            limit = int(request.query.get("Limit", ["10"])[0])
            offset = int(request.query.get("Offset", ["0"])[0])
        except ValueError:
            return self._reject(request, "Limit and Offset must be integers")
        if not 0 <= limit <= 1000 or offset < 0:
            return self._reject(request, "Limit must be between 0 and 1000")
        owner = request.query.get("OwnerType", [None])[0]
        with self._store_lock:
            ids = [i for i, t in self.resources.items() if owner is None or t["owner_type"] == owner]
        shown = self.listed(ids)
        page = [self._shown(i) for i in shown[offset:offset + limit] if i in self.resources]
        return Reply(200, {"Count": len(page), "Data": page, "Total": len(shown)})

    # -- Mailjet's shapes ------------------------------------------------------------------

    def _shown(self, template_id: str) -> dict[str, Any]:
        t = self.resources[template_id]
        return {"ID": int(template_id), "Name": t["name"], "OwnerType": t["owner_type"], "OwnerId": 1,
                "Description": t["description"], "EditMode": t["edit_mode"], "Purposes": t["purposes"],
                "Locale": t["locale"], "Author": "", "Categories": [], "Copyright": "", "IsStarred": False,
                "IsTextPartGenerationEnabled": False, "Presets": "", "Previews": [],
                "CreatedAt": t["created_at"], "LastUpdatedAt": t["updated_at"]}

    @staticmethod
    def _content(template: dict[str, Any]) -> dict[str, Any]:
        return {"Headers": template["headers"], "Html-part": template["html"], "Text-part": template["text"],
                "MJMLContent": ""}
