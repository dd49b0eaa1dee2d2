"""A loopback Customer.io App API: one-time sends (newsletters), their language variants, and
transactional messages' variants, on the App API's real paths, answering as Customer.io does.

Every request is checked against the operations of Customer.io's own OpenAPI file (the contract
tests/connectors/contracts/customerio.json): the operation must exist, its path and query parameters
must have the documented types and enums, and the bearer App API key must be there. Customer.io's
request bodies are unions (`oneOf`) of per-channel schemas whose branches list properties without closing
the object, so an email body also satisfies the SMS and push branches; Customer.io picks the branch by
the channel (the `type` of a new one-time send, the parent's channel for a variant), and so does the
fake: the body is validated against the email branch as a closed object (a property the branch does not
list is refused, as is a `readOnly` one), with the branch's required fields. A request outside the
contract is answered 400 and recorded in `spec_problems` (which the tests assert empty).

Beyond the schemas, the fake does what the operations' descriptions say: recipients in the strict shape
(one `and` array; segments inside `or`), unknown segments and sender ids refused with a 422, a second
variant of a language refused with a 422 ("the language variant already exists"), a sent newsletter
refused a new language (400), a `content_id` of another transactional message refused with Customer.io's
`{"meta": {"error"}}` 400, unknown ids 404. A variant update sets only the fields it carries (Customer.io:
"If you don't provide it, the existing sender is preserved"). Answers have the shapes of the operations'
200 schemas; errors the `{"errors": [{"detail", "status"}]}` body; a 429 has `Retry-After` for the
per-second limit and none for a spent daily quota.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
from typing import Any

import jsonschema

from tests.connectors.fakes.base import FakeVendor, Handler, Reply
from tests.connectors.spec import RecordedRequest, load_spec

__all__ = ["CustomerIoFake"]

_CONTENT_FIELDS = ("subject", "body", "body_plain", "preheader_text", "from_id", "reply_to_id", "body_amp",
                   "recipient")


def _errors(status: int, detail: str, code: str | None = None) -> Reply:
    error: dict[str, Any] = {"detail": f"{detail} (reference 01HX7Q3Z)", "status": str(status)}
    if code:
        error["code"] = code
    return Reply(status, {"errors": [error]})


class CustomerIoFake(FakeVendor):
    """`newsletters` / `contents` (one-time sends and their variants) and `transactional` / `tx_contents`;
    `resources` is the view the shared suites read: content path -> name, subject, html, ..."""

    name = "customerio"
    create_route = ("POST", r"/v1/newsletters$")
    update_route = ("PUT", r"/v1/newsletters/\d+/contents/\d+$")
    lookup_route = ("GET", r"/v1/newsletters$")

    def __init__(self, app_api_key: str, *, segments: tuple[int, ...] = (7,), senders: tuple[int, ...] = (1, 2),
                 subscription_center: bool = False) -> None:
        self.app_api_key = app_api_key
        self.segments = set(segments)
        self.senders = set(senders)
        self.subscription_center = subscription_center
        self.newsletters: dict[int, dict[str, Any]] = {}
        self.contents: dict[int, dict[str, Any]] = {}
        self.transactional: dict[int, dict[str, Any]] = {}
        self.tx_contents: dict[int, dict[str, Any]] = {}
        self._newsletter_ids = itertools.count(128_001)
        self._content_ids = itertools.count(4_501)
        self._store_lock = threading.RLock()
        self.contract = load_spec("customerio/journeys-app.json")
        super().__init__(None)  # the contract is applied per route (see `_checked`), not to raw bodies

    def register(self) -> None:
        self.route("GET", r"/v1/newsletters", self._checked(self._list_newsletters))
        self.route("POST", r"/v1/newsletters", self._checked(self._create_newsletter))
        self.route("GET", r"/v1/newsletters/(?P<nid>\d+)/contents", self._checked(self._list_contents))
        self.route("PUT", r"/v1/newsletters/(?P<nid>\d+)/contents/(?P<cid>\d+)", self._checked(self._put_content))
        self.route("POST", r"/v1/newsletters/(?P<nid>\d+)/language", self._checked(self._add_language))
        self.route("GET", r"/v1/transactional/(?P<tid>\d+)/contents", self._checked(self._list_tx_contents))
        self.route("PUT", r"/v1/transactional/(?P<tid>\d+)/content/(?P<cid>\d+)", self._checked(self._put_tx_content))

    # -- the vendor's own failure answers --------------------------------------------------

    def unauthorized(self) -> Reply:
        return _errors(401, "invalid credentials", "invalid_credentials")

    def rate_limited(self, seconds: float = 1.0) -> Reply:
        """The per-second limit says how long to wait; a spent daily quota (seconds=0) says nothing."""
        headers = {"Retry-After": str(int(seconds))} if seconds > 0 else {}
        return Reply(429, {"errors": [{"detail": "rate limited to 10 requests per 1s (reference a1b2c3)",
                                       "status": "429"}]}, headers)

    def server_error(self) -> Reply:
        return _errors(500, "internal server error")

    # -- seeding and the shared suites' view -----------------------------------------------

    def add_newsletter(self, name: str, languages: tuple[str, ...] = ("",), *, sent: bool = False) -> int:
        """A one-time send made in Customer.io's app, with a variant per language ("" = default)."""
        with self._store_lock:
            newsletter_id = next(self._newsletter_ids)
            now = int(time.time())
            self.newsletters[newsletter_id] = {"name": name, "type": "email", "created": now, "updated": now,
                                               "sent_at": now if sent else None, "content_ids": [],
                                               "recipient_segment_ids": [7], "tags": []}
            for language in languages:
                self._new_content(newsletter_id, language, {"subject": f"{name} {language}", "body": "<p>app</p>"})
            return newsletter_id

    def add_transactional(self, name: str, languages: tuple[str, ...] = ("",)) -> int:
        with self._store_lock:
            transactional_id = len(self.transactional) + 3
            self.transactional[transactional_id] = {"name": name, "created_at": int(time.time())}
            for language in languages:
                content_id = next(self._content_ids)
                self.tx_contents[content_id] = {"transactional_id": transactional_id, "language": language,
                                                "subject": f"{name} {language}", "body": "<p>app</p>",
                                                "preheader_text": "", "updated": int(time.time())}
            return transactional_id

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """Content path -> what it holds (name is the newsletter's or transactional message's)."""
        with self._store_lock:
            view = {}
            for content_id, content in self.contents.items():
                newsletter = self.newsletters[content["newsletter_id"]]
                view[f"newsletters/{content['newsletter_id']}/templates/{content_id}"] = {
                    "name": newsletter["name"], "language": content["language"], "subject": content["subject"],
                    "html": content["body"], "text": content.get("body_plain", ""),
                    "preheader": content.get("preheader_text", ""), "from_id": content.get("from_id"),
                    "reply_to_id": content.get("reply_to_id"), "updated": content["updated"]}
            for content_id, content in self.tx_contents.items():
                message = self.transactional[content["transactional_id"]]
                view[f"transactional/{content['transactional_id']}/templates/{content_id}"] = {
                    "name": message["name"], "language": content["language"], "subject": content["subject"],
                    "html": content["body"], "preheader": content.get("preheader_text", ""),
                    "from_id": content.get("from_id"), "reply_to_id": content.get("reply_to_id"),
                    "updated": content["updated"]}
            return view

    def delete_resource(self, resource_id: str) -> None:
        """A user deleted it in Customer.io's app: a newsletter's default content goes with the newsletter."""
        match = re.fullmatch(r"(newsletters|transactional)/(\d+)/templates/(\d+)", resource_id)
        assert match, resource_id
        kind, message_id, content_id = match.group(1), int(match.group(2)), int(match.group(3))
        with self._store_lock:
            if kind == "transactional":
                del self.tx_contents[content_id]
                return
            content = self.contents.pop(content_id)
            newsletter = self.newsletters[message_id]
            newsletter["content_ids"].remove(content_id)
            if content["language"] == "":
                for other in newsletter["content_ids"]:
                    del self.contents[other]
                del self.newsletters[message_id]

    # -- checks ----------------------------------------------------------------------------

    def _reject(self, request: RecordedRequest, message: str, status: int = 400) -> Reply:
        self.spec_problems.append(f"{request.method} {request.path}: {message}")
        return _errors(status, message)

    def _checked(self, handler: Handler) -> Handler:
        def checked(request: RecordedRequest, **params: str) -> Reply:
            if request.headers.get("authorization") != f"Bearer {self.app_api_key}":
                if not request.headers.get("authorization", "").startswith("Bearer "):
                    self.spec_problems.append(f"{request.method} {request.path}: no bearer App API key")
                return self.unauthorized()
            try:
                template, _, operation = self.contract.operation(request.method, request.path)
            except AssertionError as exc:
                return self._reject(request, str(exc), 404)
            where = f"{request.method} {template}: body"
            problems = [p for p in self.contract.problems(request) if not p.startswith(where)]
            if "requestBody" in operation:
                problems += self._body_problems(request, template, operation)
            if problems:
                return self._reject(request, "; ".join(problems))
            return handler(request, **params)
        return checked

    def _body_problems(self, request: RecordedRequest, template: str, operation: dict[str, Any]) -> list[str]:
        """The body against the email branch, closed: as Customer.io picks the branch by channel."""
        where = f"{request.method} {template}: body"
        if not request.headers.get("content-type", "").startswith("application/json"):
            return [f"{where}: Content-Type must be application/json"]
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return [f"{where}: not JSON"]
        if not isinstance(body, dict):
            return [f"{where}: a JSON object is expected"]
        schema = self.contract.resolve(operation["requestBody"]["content"]["application/json"]["schema"])
        # The email branch is the one with a preheader (no other channel has one).
        branch = next(b for b in schema.get("oneOf", [schema]) if "preheader_text" in b.get("properties", {}))
        properties = branch["properties"]
        problems = [f"{where}: {key!r} is not a property of the email schema" for key in body if key not in properties]
        problems += [f"{where}: {key!r} is read-only" for key in body if properties.get(key, {}).get("readOnly")]
        closed = {"type": "object", "properties": properties, "required": branch.get("required", [])}
        validator = jsonschema.Draft202012Validator(closed)
        problems += [f"{where} {'/'.join(map(str, e.path)) or '(body)'}: {e.message}"
                     for e in validator.iter_errors(body)]
        return problems

    @staticmethod
    def _body(request: RecordedRequest) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(request.body)
        return body

    def _senders_problem(self, body: dict[str, Any]) -> Reply | None:
        for key in ("from_id", "reply_to_id"):
            if body.get(key) is not None and body[key] not in self.senders:
                return _errors(422, f"invalid {key}: sender identity {body[key]} does not exist")
        return None

    # -- one-time sends --------------------------------------------------------------------

    def _create_newsletter(self, request: RecordedRequest) -> Reply:
        body = self._body(request)
        if body.get("send_now") and body.get("scheduled_at"):
            return _errors(422, "send_now and scheduled_at cannot both be set")
        shape = self._recipients_problem(body["recipients"])
        if shape:
            return self._reject(request, shape, 400)
        unknown = [s for s in self._segment_ids(body["recipients"]) if s not in self.segments]
        if unknown:
            return _errors(422, f"segment {unknown[0]} does not exist")
        if self.subscription_center and "subscription_topic_id" not in body:
            return _errors(422, "subscription_topic_id is required")
        if "from" in body and "from_id" in body:
            return _errors(422, "set either from or from_id, not both")
        problem = self._senders_problem(body)
        if problem:
            return problem
        with self._store_lock:
            newsletter_id = next(self._newsletter_ids)
            now = int(time.time())
            self.newsletters[newsletter_id] = {
                "name": body["name"], "type": "email", "created": now, "updated": now,
                "sent_at": now if body.get("send_now") else None, "content_ids": [],
                "recipient_segment_ids": sorted(self._segment_ids(body["recipients"])), "tags": [],
                "subscription_topic_id": body.get("subscription_topic_id"),
            }
            self._new_content(newsletter_id, "", body)
            shown = self._shown(newsletter_id)
        self.born(str(newsletter_id))
        return Reply(200, {"newsletter": shown})

    def _list_newsletters(self, request: RecordedRequest) -> Reply:
        limit = int(request.query.get("limit", ["10"])[0])
        newest_first = request.query.get("sort", ["asc"])[0] == "desc"
        start = request.query.get("start", [""])[0]
        try:
            offset = int(base64.urlsafe_b64decode(start.encode()).decode()) if start else 0
        except ValueError:
            return _errors(400, "invalid start token")
        with self._store_lock:
            ids = sorted(self.newsletters, reverse=newest_first)
        shown_ids = self.listed(ids)
        page = [self._shown(i) for i in shown_ids[offset:offset + limit] if i in self.newsletters]
        answer: dict[str, Any] = {"newsletters": page}
        if offset + limit < len(shown_ids):
            answer["next"] = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
        return Reply(200, answer)

    def _list_contents(self, request: RecordedRequest, nid: str) -> Reply:
        with self._store_lock:
            newsletter = self.newsletters.get(int(nid))
            if newsletter is None:
                return _errors(404, "newsletter not found")
            return Reply(200, {"contents": [self._content(c) for c in newsletter["content_ids"]]})

    def _put_content(self, request: RecordedRequest, nid: str, cid: str) -> Reply:
        body = self._body(request)
        problem = self._senders_problem(body)
        if problem:
            return problem
        with self._store_lock:
            content = self.contents.get(int(cid))
            if int(nid) not in self.newsletters or content is None or content["newsletter_id"] != int(nid):
                return _errors(404, "newsletter or variant not found")
            content.update({k: v for k, v in body.items() if k in _CONTENT_FIELDS}, updated=int(time.time()))
            return Reply(200, {"content": self._content(int(cid))})

    def _add_language(self, request: RecordedRequest, nid: str) -> Reply:
        body = self._body(request)
        with self._store_lock:
            newsletter = self.newsletters.get(int(nid))
            if newsletter is None:
                return _errors(404, "newsletter not found")
            if newsletter["sent_at"]:
                return _errors(400, "the newsletter has already been sent")
            if any(self.contents[c]["language"] == body["language"] for c in newsletter["content_ids"]):
                return _errors(422, f"the language variant {body['language']} already exists")
            self._new_content(int(nid), body["language"], body)
            return Reply(200, {"newsletter": self._shown(int(nid))})

    # -- transactional messages ------------------------------------------------------------

    def _list_tx_contents(self, request: RecordedRequest, tid: str) -> Reply:
        with self._store_lock:
            if int(tid) not in self.transactional:
                return Reply(404, b"")  # the operation documents no body for its 404
            ids = [c for c, content in self.tx_contents.items() if content["transactional_id"] == int(tid)]
            return Reply(200, {"contents": [self._tx_content(c) for c in ids]})

    def _put_tx_content(self, request: RecordedRequest, tid: str, cid: str) -> Reply:
        body = self._body(request)
        problem = self._senders_problem(body)
        if problem:
            return problem
        with self._store_lock:
            content = self.tx_contents.get(int(cid))
            if int(tid) not in self.transactional or content is None:
                return Reply(404, b"")
            if content["transactional_id"] != int(tid):
                return Reply(400, {"meta": {"error": "content_id does not belong to the transactional message"}})
            content.update({k: v for k, v in body.items() if k in _CONTENT_FIELDS}, updated=int(time.time()))
            return Reply(200, {"content": [self._tx_content(int(cid))]})

    # -- Customer.io's shapes --------------------------------------------------------------

    def _new_content(self, newsletter_id: int, language: str, body: dict[str, Any]) -> int:
        content_id = next(self._content_ids)
        self.contents[content_id] = {
            "newsletter_id": newsletter_id, "language": language, "updated": int(time.time()),
            **{k: body[k] for k in _CONTENT_FIELDS if k in body}}
        self.contents[content_id].setdefault("preheader_text", "")
        self.newsletters[newsletter_id]["content_ids"].append(content_id)
        return content_id

    def _shown(self, newsletter_id: int) -> dict[str, Any]:
        n = self.newsletters[newsletter_id]
        shown = {"id": newsletter_id, "name": n["name"], "type": n["type"], "created": n["created"],
                 "updated": n["updated"], "sent_at": n["sent_at"], "content_ids": list(n["content_ids"]),
                 "recipient_segment_ids": n["recipient_segment_ids"], "tags": n["tags"],
                 "deduplicate_id": f"{newsletter_id}:{n['updated']}"}
        if n.get("subscription_topic_id") is not None:
            shown["subscription_topic_id"] = n["subscription_topic_id"]
        return shown

    def _content(self, content_id: int) -> dict[str, Any]:
        c = self.contents[content_id]
        return {"id": content_id, "newsletter_id": c["newsletter_id"], "language": c["language"], "type": "email",
                "name": "", "subject": c.get("subject", ""), "body": c.get("body", ""),
                "preheader_text": c.get("preheader_text", ""), "from_id": c.get("from_id"),
                "reply_to_id": c.get("reply_to_id"), "recipient": c.get("recipient", "{{customer.email}}"),
                "deduplicate_id": f"{content_id}:{c['updated']}"}

    def _tx_content(self, content_id: int) -> dict[str, Any]:
        c = self.tx_contents[content_id]
        message = self.transactional[c["transactional_id"]]
        return {"id": content_id, "name": message["name"], "language": c["language"], "type": "email",
                "subject": c.get("subject", ""), "body": c.get("body", ""),
                "preheader_text": c.get("preheader_text", ""), "from_id": c.get("from_id"),
                "reply_to_id": c.get("reply_to_id"), "recipient": "{{customer.email}}", "updated": c["updated"]}

    @staticmethod
    def _recipients_problem(recipients: dict[str, Any]) -> str | None:
        """Customer.io's strict filter shape for this endpoint (createNewsletter's `recipients`)."""
        if list(recipients) != ["and"] or not isinstance(recipients["and"], list):
            return "Invalid filter spec: the outermost object must be a single `and` array"
        for condition in recipients["and"]:
            if not isinstance(condition, dict) or len(condition) != 1:
                return "Invalid filter spec: every condition object takes exactly one key"
            key, value = next(iter(condition.items()))
            if key == "or" and not all(isinstance(s, dict) and list(s) == ["segment"] for s in value):
                return "Invalid filter spec: `or` arrays can contain only segment conditions"
            if key == "segment":
                return "Invalid filter spec: segment conditions must be wrapped in an `or` array"
        return None

    @staticmethod
    def _segment_ids(recipients: Any) -> set[int]:
        text = json.dumps(recipients)
        return {int(m) for m in re.findall(r'"segment": \{"id": (\d+)\}', text)}
