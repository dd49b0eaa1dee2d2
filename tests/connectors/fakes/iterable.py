"""A loopback Iterable: email templates on Iterable's real paths, answering as Iterable does.

Every request is validated against Iterable's own Swagger 2.0 file (the derived contract
tests/connectors/contracts/iterable.json; strict: unknown body fields fail, `clientTemplateId`
required on upsert, `templateId` on update). Beyond the schema the fake enforces what the spec's
operation descriptions say: the `Api-Key` header; upsert creates a template when no template has
the `clientTemplateId`, else updates every template that has it (never a second one); update of an
unknown templateId is a NotFound; fromEmail must be an authorized sender. Errors come in Iterable's
`IterableApiResponse` body ({"msg", "code", "params"}). A 429 carries code RateLimitExceeded and no
rate-limit headers (Iterable documents none; `retry_after=True` adds a Retry-After, as an edge may).
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from typing import Any

from tests.connectors.fakes.base import FakeVendor, Handler, Reply, json_body
from tests.connectors.spec import RecordedRequest, load_spec

__all__ = ["IterableFake"]

# Fields of ApiEmailTemplateModel the fake keeps (name as "name", HTML as "html", as the contract suite reads them).
_STORED = ("name", "subject", "preheaderText", "html", "plainText", "fromEmail", "fromName", "replyToEmail",
           "googleAnalyticsCampaignName", "messageTypeId", "clientTemplateId")


def _answer(status: int, code: str, msg: str, params: Any = None) -> Reply:
    return Reply(status, {"msg": msg, "code": code, "params": params})


class IterableFake(FakeVendor):
    """`resources`: templateId -> the template as Iterable stores it."""

    name = "iterable"
    create_route = ("POST", r"/api/templates/email/upsert$")
    update_route = ("POST", r"/api/templates/email/update$")
    lookup_route = ("GET", r"/api/templates/getByClientTemplateId$")

    def __init__(self, api_key: str, senders: tuple[str, ...] = ("news@shop.example",)) -> None:
        self.api_key = api_key
        self.senders = senders  # the project's authorized senders
        self.resources: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(500_001)
        self._store_lock = threading.Lock()
        super().__init__(load_spec("iterable/api-docs.json"))

    def register(self) -> None:
        self.route("POST", r"/api/templates/email/upsert", self._authorized(self._upsert))
        self.route("POST", r"/api/templates/email/update", self._authorized(self._update))
        self.route("GET", r"/api/templates/email/get", self._authorized(self._get))
        self.route("GET", r"/api/templates/getByClientTemplateId", self._authorized(self._by_client_id))

    # -- the vendor's own failure answers --------------------------------------------------

    def unauthorized(self) -> Reply:
        return _answer(401, "BadApiKey", "Invalid API key")

    def rate_limited(self, seconds: float = 1.0, *, retry_after: bool = False) -> Reply:
        """Iterable's 429: its limits are per second and it documents no header; `retry_after=True`
        adds the Retry-After an edge proxy may send."""
        headers = {"Retry-After": str(int(seconds))} if retry_after else {}
        return Reply(429, {"msg": "Rate limit exceeded", "code": "RateLimitExceeded", "params": None}, headers)

    def server_error(self) -> Reply:
        return Reply(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", {"Content-Type": "text/html"})

    def delete_resource(self, resource_id: str) -> None:
        """A user deleted the template in Iterable's app."""
        with self._store_lock:
            del self.resources[resource_id]

    # -- routes ----------------------------------------------------------------------------

    def _authorized(self, handler: Handler) -> Handler:
        def checked(request: RecordedRequest, **params: str) -> Reply:
            if request.headers.get("api-key") != self.api_key:
                return self.unauthorized()
            return handler(request, **params)
        return checked

    def _upsert(self, request: RecordedRequest) -> Reply:
        body = json_body(request)
        if not isinstance(body, dict) or not body.get("clientTemplateId"):
            return _answer(400, "BadParams", "clientTemplateId is required")
        problem = self._check(body)
        if problem:
            return problem
        with self._store_lock:
            ids = [i for i, t in self.resources.items() if t["clientTemplateId"] == body["clientTemplateId"]]
            now = _now()
            for template_id in ids:  # Iterable: "otherwise update all email templates that match"
                self.resources[template_id].update(self._stored(body), updatedAt=now)
            if not ids:
                template_id = str(next(self._ids))
                self.resources[template_id] = {"templateId": int(template_id), "createdAt": now, "updatedAt": now,
                                               "campaignId": None, **dict.fromkeys(_STORED, ""),
                                               **self._stored(body)}
                ids = [template_id]
                self.born(template_id)
        return _answer(200, "Success", f"Upserted {len(ids)} templates with IDs: {', '.join(ids)}",
                       {"templateIds": [int(i) for i in ids]})

    def _update(self, request: RecordedRequest) -> Reply:
        body = json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("templateId"), int):
            return _answer(400, "BadParams", "templateId is required")
        problem = self._check(body)
        if problem:
            return problem
        with self._store_lock:
            template = self.resources.get(str(body["templateId"]))
            if template is None:
                return _answer(404, "NotFound", f"Template {body['templateId']} not found")
            template.update(self._stored(body), updatedAt=_now())
        return _answer(200, "Success", f"Updated template {body['templateId']}")

    def _get(self, request: RecordedRequest) -> Reply:
        template = self.resources.get(request.query.get("templateId", [""])[0])
        if template is None:
            return _answer(404, "NotFound", "Template not found")
        return Reply(200, {k: v for k, v in template.items() if k not in ("createdAt", "updatedAt", "campaignId")})

    def _by_client_id(self, request: RecordedRequest) -> Reply:
        client_id = request.query.get("clientTemplateId", [""])[0]
        if not client_id:
            return _answer(400, "BadParams", "clientTemplateId is required")
        matching = [i for i, t in self.resources.items() if t["clientTemplateId"] == client_id]
        shown = self.listed(matching)
        entries = [{"templateId": self.resources[i]["templateId"], "locales": ["en"],
                    **({"campaignId": self.resources[i]["campaignId"]} if self.resources[i]["campaignId"] else {})}
                   for i in shown]
        return Reply(200, {"templates": entries})

    # -- Iterable's checks and storage -----------------------------------------------------

    def _check(self, body: dict[str, Any]) -> Reply | None:
        sender = body.get("fromEmail")
        if sender is not None and sender not in self.senders:
            return _answer(400, "BadParams", f"fromEmail {sender} is not an authorized sender for this project")
        return None

    @staticmethod
    def _stored(body: dict[str, Any]) -> dict[str, Any]:
        return {name: body[name] for name in _STORED if name in body}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S +00:00")
