"""A Mailchimp Marketing API fake: templates under /3.0 on their real paths.

No machine-readable spec is usable here, so each request is checked against the fields of the
reference pages (https://mailchimp.com/developer/marketing/api/templates/): HTTP Basic auth with the
key as password, the JSON content type, `name` and `html` present as strings, `folder_id` a string,
no unknown field, and only the documented list parameters. A problem is recorded in
`spec_problems` and answered as Mailchimp answers bad input: 400 application/problem+json with
an `errors` array. Every error body is a problem document (type, title, status, detail, instance).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.connectors.fakes.base import FakeVendor, Reply
from tests.connectors.fakes.braze import schema_problems
from tests.connectors.spec import RecordedRequest

__all__ = ["TEMPLATE_SCHEMA", "FakeMailchimp", "problem"]

TEMPLATE_SCHEMA: dict[str, Any] = {  # "Add template" and "Update template": the same three fields
    "type": "object", "additionalProperties": False, "required": ["name", "html"],
    "properties": {"name": {"type": "string", "minLength": 1}, "html": {"type": "string"},
                   "folder_id": {"type": "string"}},
}
CONTENT_SCHEMA: dict[str, Any] = {  # "Set campaign content" (PUT /campaigns/{campaign_id}/content)
    "type": "object", "additionalProperties": False,
    "properties": {"archive": {"type": "object"}, "template": {"type": "object"}, "plain_text": {"type": "string"},
                   "html": {"type": "string"}, "url": {"type": "string"}, "variate_contents": {"type": "array"}},
}
_LIST_PARAMS = {"fields", "exclude_fields", "count", "offset", "created_by", "since_date_created",
                "before_date_created", "type", "category", "folder_id", "sort_field", "content_type", "sort_dir"}
_ERRORS = "https://mailchimp.com/developer/marketing/docs/errors/"
_ID = r"(?P<template_id>[^/]+)"


def problem(status: int, title: str, detail: str, **extra: Any) -> Reply:
    body = {"type": _ERRORS, "title": title, "status": status, "detail": detail, "instance": str(uuid.uuid4()),
            **extra}
    return Reply(status, body, {"Content-Type": "application/problem+json; charset=utf-8"})


class FakeMailchimp(FakeVendor):
    name = "mailchimp"
    create_route = ("POST", "/3.0/templates$")
    update_route = ("PATCH", "/3.0/templates/")
    lookup_route = ("GET", "/3.0/templates$")  # where the connector looks for a lost create

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.resources: dict[str, dict[str, Any]] = {}
        # campaign id -> {"status": "save" | "sent" | ..., "html": ..., "plain_text": ...}
        self.campaigns: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(10001)
        super().__init__()

    def register(self) -> None:
        self.route("POST", "/3.0/templates", self._authorized(self._create))
        self.route("GET", "/3.0/templates", self._authorized(self._list))
        self.route("GET", f"/3.0/templates/{_ID}", self._authorized(self._get))
        self.route("PATCH", f"/3.0/templates/{_ID}", self._authorized(self._update))
        self.route("DELETE", f"/3.0/templates/{_ID}", self._authorized(self._delete))
        self.route("PUT", "/3.0/campaigns/(?P<campaign_id>[^/]+)/content", self._authorized(self._set_content))

    # -- the vendor's own answers ------------------------------------------------------------

    def unauthorized(self) -> Reply:
        return problem(401, "API Key Invalid",
                       "Your API key may be invalid, or you've attempted to access the wrong datacenter.")

    def rate_limited(self, seconds: float) -> Reply:
        # Mailchimp's limit is on simultaneous connections; it documents no Retry-After or reset header.
        return problem(429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections.")

    def server_error(self) -> Reply:
        return problem(500, "Internal Server Error",
                       "An unexpected internal error has occurred. Please contact Support for more information.")

    def not_found(self) -> Reply:
        return problem(404, "Resource Not Found", "The requested resource could not be found.")

    def delete_resource(self, resource_id: str) -> None:
        del self.resources[resource_id]

    def add_template(self, name: str, html: str = "<p></p>", folder_id: str | None = None,
                     template_type: str = "user") -> str:
        template_id = str(next(self._ids))
        self.resources[template_id] = {"name": name, "html": html, "folder_id": folder_id, "type": template_type,
                                       "subject": None,  # Mailchimp templates have no subject
                                       "date_created": datetime.now(UTC).isoformat(timespec="seconds")}
        return template_id

    # -- routes ------------------------------------------------------------------------------

    def _authorized(self, handler: Any) -> Any:
        def check(request: RecordedRequest, **kw: str) -> Reply:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme != "Basic":
                self.spec_problems.append(f"{request.method} {request.path}: no HTTP Basic credentials")
                return self.unauthorized()
            try:
                _, _, password = base64.b64decode(token, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return self.unauthorized()
            return handler(request, **kw) if password == self.api_key else self.unauthorized()
        return check

    def _invalid(self, where: str, request: RecordedRequest) -> Reply | None:
        problems = schema_problems(where, TEMPLATE_SCHEMA, request, "application/json")
        if not problems:
            return None
        self.spec_problems.extend(problems)
        return problem(400, "Invalid Resource",
                       "The resource submitted could not be validated. For field-specific details, see the 'errors' "
                       "array.", errors=[{"field": "", "message": p} for p in problems])

    def _create(self, request: RecordedRequest) -> Reply:
        rejected = self._invalid("POST /templates", request)
        if rejected:
            return rejected
        body = json.loads(request.body)
        template_id = self.add_template(body["name"], body["html"], body.get("folder_id"))
        self.born(template_id)
        return Reply(200, self._view(template_id))

    def _update(self, request: RecordedRequest, template_id: str) -> Reply:
        if template_id not in self.resources:
            return self.not_found()
        rejected = self._invalid("PATCH /templates/{template_id}", request)
        if rejected:
            return rejected
        body = json.loads(request.body)
        self.resources[template_id].update({k: body[k] for k in ("name", "html", "folder_id") if k in body})
        return Reply(200, self._view(template_id))

    def _set_content(self, request: RecordedRequest, campaign_id: str) -> Reply:
        problems = schema_problems("PUT /campaigns/{campaign_id}/content", CONTENT_SCHEMA, request, "application/json")
        if problems:
            self.spec_problems.extend(problems)
            return problem(400, "Invalid Resource", problems[0])
        campaign = self.campaigns.get(campaign_id)
        if campaign is None:
            return self.not_found()
        if campaign["status"] != "save":
            return problem(400, "Bad Request", "This campaign cannot be updated because it has already been sent.")
        body = json.loads(request.body)
        campaign["html"] = body.get("html")
        campaign["plain_text"] = body.get("plain_text", "(generated from html)")
        return Reply(200, {"html": campaign["html"], "plain_text": campaign["plain_text"]})

    def _get(self, request: RecordedRequest, template_id: str) -> Reply:
        return Reply(200, self._view(template_id)) if template_id in self.resources else self.not_found()

    def _delete(self, request: RecordedRequest, template_id: str) -> Reply:
        if template_id not in self.resources:
            return self.not_found()
        del self.resources[template_id]
        return Reply(204)

    def _list(self, request: RecordedRequest) -> Reply:
        query = {k: v[0] for k, v in request.query.items()}
        problems = [f"GET /templates: unknown parameter {p}" for p in query if p not in _LIST_PARAMS]
        count, offset = query.get("count", "10"), query.get("offset", "0")
        if not (count.isdigit() and 1 <= int(count) <= 1000) or not offset.isdigit():
            problems.append("GET /templates: count must be 1..1000 and offset a non-negative integer")
        since = query.get("since_date_created")
        since_at: datetime | None = None
        try:
            since_at = datetime.fromisoformat(since) if since else None
        except ValueError:
            problems.append(f"GET /templates: since_date_created {since!r} is not ISO 8601")
        if problems:
            self.spec_problems.extend(problems)
            return problem(400, "Invalid Resource", problems[0])
        shown = set(self.listed(list(self.resources)))
        rows = [i for i, t in self.resources.items() if i in shown
                if query.get("type", t["type"]) == t["type"]
                and query.get("folder_id", t["folder_id"]) == t["folder_id"]
                and (since_at is None or datetime.fromisoformat(t["date_created"]) >= since_at)]
        page = rows[int(offset):][:int(count)]
        return Reply(200, {"templates": [self._view(i) for i in page], "total_items": len(rows)})

    def _view(self, template_id: str) -> dict[str, Any]:
        t = self.resources[template_id]
        return {"id": int(template_id), "type": t["type"], "name": t["name"], "folder_id": t["folder_id"] or "",
                "date_created": t["date_created"], "content_type": "html", "active": True}
