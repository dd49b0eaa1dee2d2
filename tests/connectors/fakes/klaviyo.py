"""A loopback Klaviyo: the Templates API at its real paths, JSON:API bodies and errors.

Every request is validated against Klaviyo's own spec (klaviyo/templates.json, strict), and the
fake checks what the spec cannot: the private key, the editor type's rules for `html`, and the
filter expressions the connector sends to find a template by name. The two campaign requests are
not in that file; they are checked against the fields of their reference pages (revision
2026-07-15): "Get Message IDs for Campaign" (GET /api/campaigns/{id}/relationships/campaign-messages)
and "Assign Template to Campaign Message" (POST /api/campaign-message-assign-template, body
CampaignMessageAssignTemplateQuery).
"""

from __future__ import annotations

import re
import secrets
import string
import uuid
from datetime import UTC, datetime
from typing import Any

import jsonschema

from tests.connectors.fakes.base import FakeVendor, Reply, json_body
from tests.connectors.spec import RecordedRequest, Spec, load_spec

__all__ = ["FakeKlaviyo"]

_STEADY = {"RateLimit-Limit": "750", "RateLimit-Remaining": "749", "RateLimit-Reset": "42"}
_STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\''
_EQUALS = re.compile(rf"^equals\(name,({_STRING})\)$")
_AND_CREATED = re.compile(rf"^and\(equals\(name,({_STRING})\),greater-or-equal\(created,([^)]+)\)\)$")


ASSIGN_SCHEMA: dict[str, Any] = {  # CampaignMessageAssignTemplateQuery
    "type": "object", "additionalProperties": False, "required": ["data"],
    "properties": {"data": {
        "type": "object", "additionalProperties": False, "required": ["type", "id", "relationships"],
        "properties": {
            "type": {"enum": ["campaign-message"]}, "id": {"type": "string", "minLength": 1},
            "relationships": {
                "type": "object", "additionalProperties": False, "required": ["template"],
                "properties": {"template": {
                    "type": "object", "additionalProperties": False, "required": ["data"],
                    "properties": {"data": {
                        "type": "object", "additionalProperties": False, "required": ["type", "id"],
                        "properties": {"type": {"enum": ["template"]},
                                       "id": {"type": "string", "minLength": 1}}}}}}}}}},
}
_MESSAGES = re.compile(r"^/api/campaigns/[^/]+/relationships/campaign-messages$")


class KlaviyoSpec(Spec):
    """Klaviyo's templates spec, plus the reference pages' fields for the two campaign requests."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec.data, spec.base_path)

    def problems(self, request: RecordedRequest, *, strict: bool = True) -> list[str]:
        common = [f"{request.method} {request.path}: missing header {h}" for h in ("revision", "authorization")
                  if h not in request.headers]
        if _MESSAGES.match(request.path):
            if request.method != "GET":
                return [*common, f"{request.method} {request.path}: only GET is documented"]
            return common + [f"GET {request.path}: unknown parameter {p}" for p in request.query]
        if request.path == "/api/campaign-message-assign-template":
            where = f"{request.method} /api/campaign-message-assign-template"
            if request.method != "POST":
                return [*common, f"{where}: only POST is documented"]
            if request.headers.get("content-type", "").split(";")[0] != "application/vnd.api+json":
                common.append(f"{where}: content-type must be application/vnd.api+json")
            try:
                body = json_body(request)
            except ValueError:
                return [*common, f"{where}: body is not JSON"]
            validator = jsonschema.Draft202012Validator(ASSIGN_SCHEMA)
            return common + [f"{where}: body {'/'.join(map(str, e.path)) or '(body)'}: {e.message}"
                             for e in validator.iter_errors(body)]
        return super().problems(request, strict=strict)


def _error(status: int, code: str, title: str, detail: str, pointer: str = "/data/") -> Reply:
    return Reply(status, {"errors": [{"id": str(uuid.uuid4()), "status": status, "code": code, "title": title,
                                      "detail": detail, "source": {"pointer": pointer}}]},
                 {"Content-Type": "application/vnd.api+json"})


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


class FakeKlaviyo(FakeVendor):
    name = "klaviyo"
    create_route = ("POST", r"^/api/templates$")
    update_route = ("PATCH", r"^/api/templates/[^/]+$")
    lookup_route = ("GET", r"^/api/templates$")  # where the connector looks for a lost create

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.resources: dict[str, dict[str, Any]] = {}
        # campaign id -> its message ids; message id -> the template copy assigned to it (its source id)
        self.campaigns: dict[str, list[str]] = {}
        self.assigned: dict[str, str | None] = {}
        self.sent_campaigns: set[str] = set()
        super().__init__(KlaviyoSpec(load_spec("klaviyo/templates.json")), strict=True)

    def register(self) -> None:
        self.route("POST", "/api/templates", self._create)
        self.route("GET", "/api/templates", self._list)
        self.route("GET", "/api/templates/(?P<template_id>[^/]+)", self._get)
        self.route("PATCH", "/api/templates/(?P<template_id>[^/]+)", self._update)
        self.route("GET", "/api/campaigns/(?P<campaign_id>[^/]+)/relationships/campaign-messages", self._messages)
        self.route("POST", "/api/campaign-message-assign-template", self._assign)

    def add_campaign(self, campaign_id: str, *message_ids: str, sent: bool = False) -> None:
        self.campaigns[campaign_id] = list(message_ids)
        self.assigned.update(dict.fromkeys(message_ids))
        if sent:
            self.sent_campaigns.add(campaign_id)

    # -- the vendor's own fault replies ----------------------------------------------------

    def unauthorized(self) -> Reply:
        return _error(401, "not_authenticated", "Authentication credentials were not provided.",
                      "Missing or invalid private key.")

    def rate_limited(self, seconds: float) -> Reply:
        reply = _error(429, "throttled", "Request was throttled.",
                       f"Request was throttled. Expected available in {int(seconds)} second.")
        reply.headers["Retry-After"] = str(int(seconds))  # only Retry-After on a 429, no RateLimit-*
        return reply

    def server_error(self) -> Reply:
        return _error(500, "error", "A server error occurred.", "A server error occurred.")

    def delete_resource(self, resource_id: str) -> None:
        del self.resources[resource_id]

    # -- routes ----------------------------------------------------------------------------

    def _dispatch(self, request: RecordedRequest) -> Reply:
        if request.headers.get("authorization") != f"Klaviyo-API-Key {self.api_key}":
            return self.unauthorized()
        reply = super()._dispatch(request)
        if reply.status < 400:
            reply.headers.update(_STEADY)
        return reply

    def _document(self, template_id: str) -> dict[str, Any]:
        stored = self.resources[template_id]
        attributes = {k: stored[k] for k in ("name", "editor_type", "html", "text", "amp", "created", "updated")}
        return {"type": "template", "id": template_id, "attributes": attributes,
                "links": {"self": f"https://a.klaviyo.com/api/templates/{template_id}/"}}

    def _reply(self, status: int, template_id: str) -> Reply:
        return Reply(status, {"data": self._document(template_id)}, {"Content-Type": "application/vnd.api+json"})

    def _not_found(self, template_id: str) -> Reply:
        return _error(404, "not_found", "Not found.", f"A template with id {template_id} does not exist.")

    def _create(self, request: RecordedRequest) -> Reply:
        attributes = ((json_body(request) or {}).get("data") or {}).get("attributes") or {}
        for required in ("name", "editor_type"):
            if not attributes.get(required):
                return _error(400, "invalid", "Invalid input.", f"'{required}' is a required field.",
                              f"/data/attributes/{required}")
        if attributes["editor_type"] not in ("CODE", "USER_DRAGGABLE", "SYSTEM_DRAGGABLE"):
            return _error(400, "invalid", "Invalid input.", "Invalid editor_type.", "/data/attributes/editor_type")
        if attributes["editor_type"] != "SYSTEM_DRAGGABLE" and not attributes.get("html"):
            return _error(400, "invalid", "Invalid input.", "html is required for CODE and USER_DRAGGABLE "
                          "templates.", "/data/attributes/html")
        template_id = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(6))
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self.resources[template_id] = {"name": attributes["name"], "subject": None,  # a template has none
                                       "editor_type": attributes["editor_type"], "html": attributes["html"],
                                       "text": attributes.get("text"), "amp": attributes.get("amp"),
                                       "created": now, "updated": now}
        self.born(template_id)
        return self._reply(201, template_id)

    def _messages(self, request: RecordedRequest, campaign_id: str) -> Reply:
        if campaign_id not in self.campaigns:
            return _error(404, "not_found", "Not found.", f"A campaign with id {campaign_id} does not exist.", "")
        data = [{"type": "campaign-message", "id": m} for m in self.campaigns[campaign_id]]
        return Reply(200, {"data": data, "links": {"self": f"https://a.klaviyo.com/api/campaigns/{campaign_id}/"}},
                     {"Content-Type": "application/vnd.api+json"})

    def _assign(self, request: RecordedRequest) -> Reply:
        data = (json_body(request) or {}).get("data") or {}
        message_id = data.get("id")
        template_id = (((data.get("relationships") or {}).get("template") or {}).get("data") or {}).get("id")
        if message_id not in self.assigned:
            return _error(404, "not_found", "Not found.", f"A campaign message with id {message_id} does not exist.")
        if template_id not in self.resources:
            return _error(400, "invalid", "Invalid input.", f"Template {template_id} does not exist.",
                          "/data/relationships/template/data/id")
        campaign = next(c for c, ms in self.campaigns.items() if message_id in ms)
        if campaign in self.sent_campaigns:
            return _error(400, "invalid", "Invalid input.", "Cannot update a campaign that has been sent.")
        self.assigned[message_id] = template_id
        return Reply(201, {"data": {"type": "campaign-message", "id": message_id, "attributes": {}}},
                     {"Content-Type": "application/vnd.api+json"})

    def _get(self, request: RecordedRequest, template_id: str) -> Reply:
        return self._reply(200, template_id) if template_id in self.resources else self._not_found(template_id)

    def _update(self, request: RecordedRequest, template_id: str) -> Reply:
        if template_id not in self.resources:
            return self._not_found(template_id)
        data = (json_body(request) or {}).get("data") or {}
        if data.get("id") != template_id:
            return _error(409, "conflict", "Conflict.", "The id in the body does not match the URL.", "/data/id")
        stored = self.resources[template_id]
        for key in ("name", "html", "text", "amp"):
            if key in data.get("attributes", {}):
                stored[key] = data["attributes"][key]
        stored["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
        return self._reply(200, template_id)

    def _list(self, request: RecordedRequest) -> Reply:
        expression = (request.query.get("filter") or [""])[0]
        matched = self._filter(expression)
        if matched is None:
            return _error(400, "invalid", "Invalid input.", f"Invalid filter: {expression}", "")
        matched = self.listed(matched)
        ordered = sorted(matched, key=lambda i: self.resources[i]["created"],
                         reverse=(request.query.get("sort") or [""])[0] == "-created")
        page = [self._document(i) for i in ordered[:10]]  # page[size] defaults to 10
        return Reply(200, {"data": page, "links": {"self": "https://a.klaviyo.com/api/templates/", "next": None}},
                     {"Content-Type": "application/vnd.api+json"})

    def _filter(self, expression: str) -> list[str] | None:
        """Template ids matching the name filters the connector uses; None for anything else."""
        if not expression:
            return list(self.resources)
        if match := _EQUALS.match(expression):
            name, since = _unquote(match[1]), None
        elif match := _AND_CREATED.match(expression):
            name, since = _unquote(match[1]), datetime.fromisoformat(match[2])
        else:
            return None
        return [i for i, r in self.resources.items()
                if r["name"] == name and (since is None or datetime.fromisoformat(r["created"]) >= since)]
