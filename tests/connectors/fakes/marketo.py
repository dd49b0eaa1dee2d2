"""A loopback Adobe Marketo Engage: the identity service's token and the Asset API's emails.

REST requests are validated against Marketo's own Swagger file (swagger-asset.json, derived to
tests/connectors/contracts/marketo.json, strict). That file declares the request bodies as JSON
schemas while the operations consume form data, so `FormSpec` reads the form-encoded (or
multipart) body, types each field as the schema says (integers, booleans, and the JSON-encoded
objects Marketo expects in a field, such as `folder={"id":N,"type":"Folder"}`), and validates that
against the schema; a body sent as JSON where the operation consumes form data is a problem.
The identity endpoint (`GET /identity/oauth/token`) is not in that file: it is checked against the
fields of Marketo's "Authentication" reference page.

Like Marketo, it answers errors with HTTP 200, `success: false` and `errors: [{code, message}]`
(601 invalid token, 602 expired token, 606 rate limit, 611 system error, 702 no data, 709
business rule, 710 folder not found), and the identity service with HTTP 401 and
`error`/`error_description`. It keeps email names unique per folder (709).
"""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import replace
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs

from tests.connectors.fakes.base import FakeVendor, Reply
from tests.connectors.spec import RecordedRequest, Spec, load_spec

__all__ = ["FakeMarketo", "form_fields"]

TOKEN_FIELDS = {"grant_type", "client_id", "client_secret"}


def _failure(code: str, message: str) -> Reply:
    return Reply(200, {"requestId": f"{secrets.token_hex(2)}#{secrets.token_hex(6)}", "success": False,
                       "errors": [{"code": code, "message": message}]})


def _success(result: list[dict[str, Any]] | None, warnings: list[str] | None = None) -> Reply:
    body: dict[str, Any] = {"requestId": f"{secrets.token_hex(2)}#{secrets.token_hex(6)}", "success": True,
                            "errors": [], "warnings": warnings or []}
    if result is not None:
        body["result"] = result
    return Reply(200, body)


def form_fields(request: RecordedRequest) -> dict[str, str]:
    """The fields of a form-encoded or multipart body, as text."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + request.body)
        fields: dict[str, str] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            fields[str(name)] = payload.decode() if isinstance(payload, bytes) else str(payload)
        return fields
    return {k: v[-1] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}


class FormSpec(Spec):
    """Marketo's spec, with form-encoded bodies read as the typed objects the schemas describe."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec.data, spec.base_path)

    def problems(self, request: RecordedRequest, *, strict: bool = True) -> list[str]:
        if request.path == "/identity/oauth/token":
            return _token_problems(request)
        found: list[str] = []
        try:
            _, _, op = self.operation(request.method, request.path)
        except AssertionError as exc:
            return [str(exc)]
        body = next((self.resolve(p) for p in op.get("parameters", []) if self.resolve(p).get("in") == "body"), None)
        if body is not None and request.body:
            content_type = request.headers.get("content-type", "")
            if content_type.startswith("application/json"):
                found.append(f"{request.method} {request.path}: a JSON body where Marketo consumes "
                             f"{op.get('consumes')}")
            else:
                typed = self._typed_form(form_fields(request), self.resolve(body["schema"]), found, request)
                request = replace(request, body=json.dumps(typed).encode())
        if not request.headers.get("authorization", "").startswith("Bearer "):
            found.append(f"{request.method} {request.path}: no Bearer access token")
        if "access_token" in request.query:
            found.append(f"{request.method} {request.path}: the token in the query string (Marketo retires it)")
        return found + super().problems(request, strict=strict)

    def _typed_form(self, fields: dict[str, str], schema: dict[str, Any], found: list[str],
                    request: RecordedRequest) -> dict[str, Any]:
        typed: dict[str, Any] = {}
        properties = schema.get("properties", {})
        for name, text in fields.items():
            prop = self.resolve(properties.get(name, {}))
            kind = prop.get("type", "object" if "properties" in prop else None)
            try:
                if kind == "integer":
                    typed[name] = int(text)
                elif kind == "boolean":
                    if text not in ("true", "false"):
                        raise ValueError(text)
                    typed[name] = text == "true"
                elif kind == "object":
                    typed[name] = json.loads(text)
                else:
                    typed[name] = text
            except ValueError:
                found.append(f"{request.method} {request.path}: field {name}={text[:40]!r} is not {kind}")
                typed[name] = text
        return typed


def _token_problems(request: RecordedRequest) -> list[str]:
    where = f"{request.method} /identity/oauth/token"
    if request.method != "GET":
        return [f"{where}: Marketo documents a GET with query parameters"]
    found = [f"{where}: missing {f}" for f in sorted(TOKEN_FIELDS) if not request.query.get(f)]
    found += [f"{where}: unknown parameter {f}" for f in request.query if f not in TOKEN_FIELDS]
    if request.query.get("grant_type", ["client_credentials"]) != ["client_credentials"]:
        found.append(f"{where}: grant_type must be client_credentials")
    return found


class FakeMarketo(FakeVendor):
    name = "marketo"
    create_route = ("POST", r"^/rest/asset/v1/emails\.json$")
    update_route = ("POST", r"^/rest/asset/v1/email/\d+/fullContent\.json$")
    lookup_route = ("GET", r"^/rest/asset/v1/email/byName\.json$")

    def __init__(self, client_id: str, client_secret: str, *, expires_in: int = 3599) -> None:
        self.client_id, self.client_secret, self.expires_in = client_id, client_secret, expires_in
        self.tokens: set[str] = set()
        self.expired: set[str] = set()
        self.folders = {1001: "Emails", 1002: "Spring Program"}
        self.templates = {1044}
        self.resources: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(20311)
        super().__init__(FormSpec(load_spec("marketo/swagger-asset.json")))

    def register(self) -> None:
        self.route("GET", "/identity/oauth/token", self._token)
        self.route("POST", r"/rest/asset/v1/emails\.json", self._create)
        self.route("GET", r"/rest/asset/v1/email/byName\.json", self._by_name)
        self.route("GET", r"/rest/asset/v1/email/(?P<email_id>\d+)\.json", self._get)
        self.route("POST", r"/rest/asset/v1/email/(?P<email_id>\d+)\.json", self._meta)
        self.route("POST", r"/rest/asset/v1/email/(?P<email_id>\d+)/content\.json", self._content)
        self.route("POST", r"/rest/asset/v1/email/(?P<email_id>\d+)/fullContent\.json", self._full_content)
        self.route("POST", r"/rest/asset/v1/email/(?P<email_id>\d+)/approveDraft\.json", self._approve)

    # -- the vendor's own fault replies ----------------------------------------------------

    def unauthorized(self) -> Reply:
        return Reply(401, {"error": "unauthorized", "error_description": "Bad client credentials"})

    def rate_limited(self, seconds: float) -> Reply:
        # Marketo names no wait: its window is 20 s (the connector's rate_limit_wait setting).
        return _failure("606", "Max rate limit '100' exceeded with in '20' secs")

    def server_error(self) -> Reply:
        return _failure("611", "System error")

    def delete_resource(self, resource_id: str) -> None:
        del self.resources[resource_id]

    def expire_tokens(self) -> None:
        self.expired |= self.tokens
        self.tokens.clear()

    # -- auth ------------------------------------------------------------------------------

    def _dispatch(self, request: RecordedRequest) -> Reply:
        if request.path != "/identity/oauth/token":
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            if token in self.expired:
                return _failure("602", "Access token expired")
            if token not in self.tokens:
                return _failure("601", "Access token invalid")
        return super()._dispatch(request)

    def _token(self, request: RecordedRequest) -> Reply:
        q = {k: v[-1] for k, v in request.query.items()}
        if (q.get("client_id"), q.get("client_secret")) != (self.client_id, self.client_secret):
            return self.unauthorized()
        token = f"{secrets.token_hex(16)}:ab"
        self.tokens.add(token)
        return Reply(200, {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in,
                           "scope": "api-user@example.com"})

    # -- emails ----------------------------------------------------------------------------

    def _document(self, email_id: str) -> dict[str, Any]:
        r = self.resources[email_id]
        return {"id": int(email_id), "name": r["name"], "description": r["description"],
                "folder": {"id": r["folder"], "type": "Folder", "folderName": self.folders[r["folder"]]},
                "subject": {"type": "Text", "value": r["subject"]},
                "fromName": {"type": "Text", "value": r["from_name"]},
                "fromEmail": {"type": "Text", "value": r["from_email"]},
                "replyEmail": {"type": "Text", "value": r["reply_email"]},
                "template": r["template"], "operational": r["operational"], "publishToMSI": False,
                "status": r["status"], "textOnly": False, "webView": False, "autoCopyToText": r["auto_copy"],
                "preHeader": r["preheader"], "version": 2, "workspace": "Default",
                "createdAt": "2026-12-02T08:00:00Z+0000", "updatedAt": "2026-12-02T08:00:00Z+0000"}

    def _name_taken(self, name: str, folder: int, email_id: str | None) -> bool:
        return any(r["name"] == name and r["folder"] == folder for i, r in self.resources.items() if i != email_id)

    def _create(self, request: RecordedRequest) -> Reply:
        f = form_fields(request)
        missing = [k for k in ("name", "folder", "template", "subject", "fromName", "fromEmail", "replyEmail")
                   if not f.get(k)]
        if missing:
            return _failure("701", f"{missing[0]} cannot be blank")
        folder = json.loads(f["folder"])
        if folder.get("id") not in self.folders or folder.get("type") != "Folder":
            return _failure("710", "Parent folder not found")
        if int(f["template"]) not in self.templates:
            return _failure("709", f"Template {f['template']} not found")
        if self._name_taken(f["name"], folder["id"], None):
            return _failure("709", "Asset name is already in use")
        email_id = str(next(self._ids))
        self.resources[email_id] = {
            "name": f["name"], "folder": folder["id"], "template": int(f["template"]), "subject": f["subject"],
            "from_name": f["fromName"], "from_email": f["fromEmail"], "reply_email": f["replyEmail"],
            "description": f.get("description", ""), "operational": f.get("operational") == "true",
            "html": "<html><body><div class='mktoText' id='body'>template body</div></body></html>",
            "preheader": None, "auto_copy": False, "status": "draft"}
        self.born(email_id)
        return _success([self._document(email_id)])

    def _missing(self) -> Reply:
        return _success(None, ["No assets found for the given search criteria."])

    def _get(self, request: RecordedRequest, email_id: str) -> Reply:
        return _success([self._document(email_id)]) if email_id in self.resources else self._missing()

    def _by_name(self, request: RecordedRequest) -> Reply:
        name = request.query.get("name", [""])[-1]
        if "," in name:  # "the Asset APIs are unable to search for Asset names containing commas"
            return self._missing()
        folder = json.loads(request.query["folder"][-1])["id"] if "folder" in request.query else None
        ids = [i for i in self.listed(list(self.resources))
               if self.resources[i]["name"] == name and (folder is None or self.resources[i]["folder"] == folder)]
        return _success([self._document(i) for i in ids]) if ids else self._missing()

    def _meta(self, request: RecordedRequest, email_id: str) -> Reply:
        if email_id not in self.resources:
            return _failure("702", "Email not found")
        f, r = form_fields(request), self.resources[email_id]
        if "name" in f and self._name_taken(f["name"], r["folder"], email_id):
            return _failure("709", "Asset name is already in use")
        r.update({k: f[src] for k, src in (("name", "name"), ("description", "description"),
                                          ("preheader", "preHeader")) if src in f})
        if "autoCopyToText" in f:
            r["auto_copy"] = f["autoCopyToText"] == "true"
        return _success([{"id": int(email_id)}])

    def _content(self, request: RecordedRequest, email_id: str) -> Reply:
        if email_id not in self.resources:
            return _failure("702", "Email not found")
        f, r = form_fields(request), self.resources[email_id]
        for field, key in (("subject", "subject"), ("fromName", "from_name"), ("fromEmail", "from_email"),
                           ("replyTO", "reply_email")):
            if field in f:
                value = json.loads(f[field])
                if value.get("type") != "Text":
                    return _failure("709", f"{field}: only type Text is supported here")
                r[key] = value["value"]
        return _success([{"id": int(email_id)}])

    def _approve(self, request: RecordedRequest, email_id: str) -> Reply:
        if email_id not in self.resources:
            return _failure("702", "Email not found")
        self.resources[email_id]["status"] = "approved"
        return _success([{"id": int(email_id)}])

    def _full_content(self, request: RecordedRequest, email_id: str) -> Reply:
        if email_id not in self.resources:
            return _failure("702", "Email not found")
        html = form_fields(request).get("content")
        if not html:
            return _failure("701", "content cannot be blank")
        if "<script" in html.lower():
            return _failure("709", "HTML content cannot include JavaScript or script tags")
        self.resources[email_id].update(html=html, status="draft")  # an edit makes a draft
        return _success([{"id": int(email_id)}])
