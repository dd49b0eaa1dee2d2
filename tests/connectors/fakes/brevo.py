"""A loopback Brevo: SMTP templates on Brevo's real paths, answering as Brevo does.

Every request is validated against Brevo's own swagger.yaml (strict: unknown body fields fail).
Beyond the schema, the fake enforces what Brevo's reference pages say the API checks: the api-key
header, the required fields, htmlContent of more than 10 characters, exactly one of sender
email / id and that the sender exists in the account, and answers errors in Brevo's
{"code", "message"} body. 429s carry Brevo's x-sib-ratelimit-* headers and no Retry-After.
"""

from __future__ import annotations

import itertools
import re
import threading
from datetime import UTC, datetime
from typing import Any

from tests.connectors.fakes.base import FakeVendor, Handler, Reply, json_body
from tests.connectors.spec import RecordedRequest, load_spec

__all__ = ["BrevoFake"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Fields of a template as getSmtpTemplates returns them, from the create/update body field.
_STORED = {"templateName": "name", "subject": "subject", "htmlContent": "html", "tag": "tag",
           "replyTo": "replyTo", "toField": "toField", "isActive": "isActive", "attachmentUrl": "attachmentUrl"}


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"code": code, "message": message})


class BrevoFake(FakeVendor):
    """`resources`: template id -> the template as Brevo stores it (its htmlContent kept as "html")."""

    name = "brevo"
    create_route = ("POST", r"/v3/smtp/templates$")
    update_route = ("PUT", r"/v3/smtp/templates/\d+$")
    lookup_route = ("GET", r"/v3/smtp/templates$")  # where the connector looks for a lost create

    def __init__(self, api_key: str, senders: dict[int, str] | None = None) -> None:
        self.api_key = api_key
        self.senders = senders if senders is not None else {1: "news@shop.example"}  # verified senders
        self.resources: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(101)
        self._store_lock = threading.Lock()
        super().__init__(load_spec("brevo/swagger.yaml", "/v3"))

    def register(self) -> None:
        self.route("POST", r"/v3/smtp/templates", self._authorized(self._create))
        self.route("GET", r"/v3/smtp/templates", self._authorized(self._list))
        self.route("GET", r"/v3/smtp/templates/(?P<template_id>[^/]+)", self._authorized(self._get))
        self.route("PUT", r"/v3/smtp/templates/(?P<template_id>[^/]+)", self._authorized(self._update))

    # -- the vendor's own failure answers --------------------------------------------------

    def unauthorized(self) -> Reply:
        return _error(401, "unauthorized", "Key not found")

    def rate_limited(self, seconds: float) -> Reply:
        # Brevo documents these three headers on 429 and sends no Retry-After.
        return Reply(429, {"code": "too_many_requests", "message": "The expected rate limit is exceeded."},
                     {"x-sib-ratelimit-limit": "10", "x-sib-ratelimit-remaining": "0",
                      "x-sib-ratelimit-reset": str(int(seconds))})

    def server_error(self) -> Reply:
        # Brevo's edge proxy (envoy) answers an upstream failure in plain text, not JSON.
        return Reply(503, "upstream connect error or disconnect/reset before headers", {"Content-Type": "text/plain"})

    def delete_resource(self, resource_id: str) -> None:
        """A user deleted the template in Brevo's app."""
        with self._store_lock:
            del self.resources[resource_id]

    # -- routes ----------------------------------------------------------------------------

    def _authorized(self, handler: Handler) -> Handler:
        def checked(request: RecordedRequest, **params: str) -> Reply:
            key = request.headers.get("api-key")
            if not key:
                return _error(401, "unauthorized", "authentication not found in headers")
            if key != self.api_key:
                return self.unauthorized()
            return handler(request, **params)
        return checked

    def _create(self, request: RecordedRequest) -> Reply:
        body = json_body(request)
        missing = [f for f in ("templateName", "subject", "sender") if not body.get(f)]
        if missing:
            return _error(400, "missing_parameter", f"{missing[0]} is missing")
        if "htmlContent" not in body and not body.get("htmlUrl"):
            return _error(400, "missing_parameter", "htmlContent or htmlUrl is required")
        problem = self._check(body)
        if problem:
            return problem
        with self._store_lock:
            template_id = str(next(self._ids))
            now = _now()
            self.resources[template_id] = {"id": int(template_id), "isActive": False, "testSent": False,
                                           "tag": "", "replyTo": "", "toField": "", "html": "", "createdAt": now,
                                           "modifiedAt": now, **self._stored(body)}
        self.born(template_id)
        return Reply(201, {"id": int(template_id)})

    def _update(self, request: RecordedRequest, template_id: str) -> Reply:
        body = json_body(request)
        problem = self._check(body)
        if problem:
            return problem
        with self._store_lock:
            template = self.resources.get(template_id)
            if template is None:
                return _error(404, "document_not_found", "Template ID does not exist")
            template.update(self._stored(body), modifiedAt=_now())
        return Reply(204)

    def _get(self, request: RecordedRequest, template_id: str) -> Reply:
        template = self.resources.get(template_id)
        if template is None:
            return _error(404, "document_not_found", "Template ID does not exist")
        return Reply(200, self._overview(template))

    def _list(self, request: RecordedRequest) -> Reply:
        limit = int(request.query.get("limit", ["50"])[0])
        offset = int(request.query.get("offset", ["0"])[0])
        if not 0 <= limit <= 1000:
            return _error(400, "out_of_range", "limit should be between 0 and 1000")
        newest_first = request.query.get("sort", ["desc"])[0] == "desc"
        shown = self.listed(list(self.resources))
        templates = sorted((self.resources[i] for i in shown), key=lambda t: t["id"], reverse=newest_first)
        page = [self._overview(t) for t in templates[offset:offset + limit]]
        return Reply(200, {"count": len(templates), "templates": page})

    # -- Brevo's checks and storage --------------------------------------------------------

    def _check(self, body: dict[str, Any]) -> Reply | None:
        html = body.get("htmlContent")
        if html is not None and len(html) <= 10:
            return _error(400, "invalid_parameter", "htmlContent should have more than 10 characters")
        if "replyTo" in body and not _EMAIL.match(body["replyTo"]):
            return _error(400, "invalid_parameter", "replyTo is not a valid email address")
        sender = body.get("sender")
        if sender is not None:
            return self._check_sender(sender)
        return None

    def _check_sender(self, sender: dict[str, Any]) -> Reply | None:
        if ("email" in sender) == ("id" in sender):
            return _error(400, "invalid_parameter", "Only one of sender email or sender id may be passed")
        known = sender.get("email") in self.senders.values() or sender.get("id") in self.senders
        return None if known else _error(400, "invalid_parameter", "Sender is invalid / inactive")

    def _stored(self, body: dict[str, Any]) -> dict[str, Any]:
        stored = {name: body[field] for field, name in _STORED.items() if field in body}
        if "sender" in body:
            sender = body["sender"]
            sender_id = sender.get("id") or next(i for i, e in self.senders.items() if e == sender.get("email"))
            stored["sender"] = {"name": sender.get("name", ""), "email": self.senders[sender_id], "id": sender_id}
        return stored

    @staticmethod
    def _overview(template: dict[str, Any]) -> dict[str, Any]:
        """A stored template as getSmtpTemplates shows it (no attachment URL; HTML as htmlContent)."""
        shown = {k: v for k, v in template.items() if k not in ("attachmentUrl", "html")}
        return {**shown, "htmlContent": template["html"]}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
