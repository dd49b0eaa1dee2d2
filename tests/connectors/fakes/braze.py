"""A Braze REST API fake: the email template endpoints on their real paths.

Braze publishes no spec file, so each request is checked against the fields of the reference pages
(schemas below, from https://www.braze.com/docs/api/endpoints/templates/email_templates/): the
bearer key, the JSON content type, required fields with their types, and no unknown field. A
problem is recorded in `spec_problems` and answered as Braze answers bad input: 400 with
`{"message": ...}`.

Braze documents no answer for an unknown `email_template_id`; `missing` picks one of the three
plausible ones (a 200 carrying a non-success message, as braze-sync observed; a 400; a 404), and the
tests run the connector against each.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from datetime import UTC, datetime
from typing import Any, Literal

import jsonschema

from tests.connectors.fakes.base import FakeVendor, Reply
from tests.connectors.spec import RecordedRequest

__all__ = ["CREATE_SCHEMA", "UPDATE_SCHEMA", "FakeBraze", "schema_problems"]

_FIELDS: dict[str, Any] = {
    "template_name": {"type": "string", "minLength": 1},
    "subject": {"type": "string"},
    "body": {"type": "string"},
    "plaintext_body": {"type": "string"},
    "preheader": {"type": "string"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "should_inline_css": {"type": "boolean"},
}
CREATE_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "properties": _FIELDS,
    "required": ["template_name", "subject", "body"],
}
UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "minProperties": 2,  # the id and at least one field
    "properties": {"email_template_id": {"type": "string", "minLength": 1}, **_FIELDS},
    "required": ["email_template_id"],
}
_LIST_PARAMS = {"limit", "offset", "modified_after", "modified_before"}

Missing = Literal["message", "400", "404"]


def schema_problems(where: str, schema: dict[str, Any], request: RecordedRequest, content_type: str) -> list[str]:
    """What the reference page's fields reject in `request`'s JSON body (empty when it conforms)."""
    sent_type = request.headers.get("content-type", "").split(";")[0].strip()
    if sent_type != content_type:
        return [f"{where}: content-type {sent_type!r}, expected {content_type!r}"]
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        return [f"{where}: body is not JSON"]
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{where}: body {'/'.join(map(str, e.path)) or '(body)'}: {e.message}"
            for e in sorted(validator.iter_errors(body), key=lambda e: list(e.path))]


class FakeBraze(FakeVendor):
    name = "braze"
    create_route = ("POST", "/templates/email/create")
    update_route = ("POST", "/templates/email/update")
    lookup_route = ("GET", "/templates/email/list")  # where the connector looks for a lost create

    def __init__(self, api_key: str, *, missing: Missing = "message") -> None:
        self.api_key = api_key
        self.missing = missing
        self.resources: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        super().__init__()

    def register(self) -> None:
        self.route("POST", "/templates/email/create", self._authorized(self._create))
        self.route("POST", "/templates/email/update", self._authorized(self._update))
        self.route("GET", "/templates/email/info", self._authorized(self._info))
        self.route("GET", "/templates/email/list", self._authorized(self._list))

    # -- the vendor's own answers ------------------------------------------------------------

    def unauthorized(self) -> Reply:
        return Reply(401, {"message": "Unknown or missing REST API Key"})

    def rate_limited(self, seconds: float) -> Reply:
        reset = math.ceil(time.time() + seconds)  # Braze: the window's end in UTC epoch seconds
        return Reply(429, {"message": "Rate Limited"},
                     {"X-RateLimit-Limit": "250000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})

    def server_error(self) -> Reply:
        return Reply(500, {"message": "Internal Server Error"})

    def not_found(self, template_id: str) -> Reply:
        message = f"No email template with id '{template_id}' found"
        return {"message": Reply(200, {"message": message}), "400": Reply(400, {"message": message}),
                "404": Reply(404, {"message": message})}[self.missing]

    def delete_resource(self, resource_id: str) -> None:
        """What a user archiving/deleting the template in the dashboard leaves behind."""
        del self.resources[resource_id]

    def add_template(self, name: str, **fields: Any) -> str:
        """Put a template into the account as if made elsewhere (for lookup tests)."""
        template_id = f"tpl-{next(self._ids):04d}"
        now = _now()
        self.resources[template_id] = {"name": name, "subject": "", "html": "", "plaintext": "", "preheader": "",
                                       "tags": [], "created_at": now, "updated_at": now, **fields}
        return template_id

    # -- routes ------------------------------------------------------------------------------

    def _authorized(self, handler: Any) -> Any:
        def check(request: RecordedRequest, **kw: str) -> Reply:
            header = request.headers.get("authorization", "")
            if not header.startswith("Bearer "):
                self.spec_problems.append(f"{request.method} {request.path}: no 'Authorization: Bearer <key>' header")
            if header != f"Bearer {self.api_key}":
                return self.unauthorized()
            return handler(request, **kw)
        return check

    def _invalid(self, problems: list[str]) -> Reply | None:
        if not problems:
            return None
        self.spec_problems.extend(problems)
        return Reply(400, {"message": problems[0]})

    def _create(self, request: RecordedRequest) -> Reply:
        rejected = self._invalid(schema_problems("POST /templates/email/create", CREATE_SCHEMA, request,
                                                 "application/json"))
        if rejected:
            return rejected
        body = json.loads(request.body)
        template_id = self.add_template(body["template_name"])
        self._apply(template_id, body)
        self.born(template_id)
        return Reply(200, {"email_template_id": template_id, "message": "success"})

    def _update(self, request: RecordedRequest) -> Reply:
        rejected = self._invalid(schema_problems("POST /templates/email/update", UPDATE_SCHEMA, request,
                                                 "application/json"))
        if rejected:
            return rejected
        body = json.loads(request.body)
        if body["email_template_id"] not in self.resources:
            return self.not_found(body["email_template_id"])
        self._apply(body["email_template_id"], body)
        return Reply(200, {"message": "success"})

    def _info(self, request: RecordedRequest) -> Reply:
        template_id = (request.query.get("email_template_id") or [""])[0]
        problems = [f"GET /templates/email/info: unknown parameter {p}" for p in request.query
                    if p != "email_template_id"]
        if not template_id:
            problems.append("GET /templates/email/info: email_template_id is required")
        rejected = self._invalid(problems)
        if rejected:
            return rejected
        if template_id not in self.resources:
            return self.not_found(template_id)
        t = self.resources[template_id]
        return Reply(200, {"email_template_id": template_id, "template_name": t["name"], "description": "",
                           "subject": t["subject"], "preheader": t["preheader"], "body": t["html"],
                           "plaintext_body": t["plaintext"], "tags": t["tags"], "created_at": t["created_at"],
                           "updated_at": t["updated_at"], "message": "success"})

    def _list(self, request: RecordedRequest) -> Reply:
        query = {k: v[0] for k, v in request.query.items()}
        problems = [f"GET /templates/email/list: unknown parameter {p}" for p in query if p not in _LIST_PARAMS]
        limit = _int(query.get("limit", "100"))
        offset = _int(query.get("offset", "1"))
        if limit is None or not 1 <= limit <= 1000:
            problems.append("GET /templates/email/list: limit must be a number from 1 to 1000")
        if offset is None or offset < 1:
            problems.append("GET /templates/email/list: Offset must be greater than 0.")
        after = _iso(query.get("modified_after"), problems)
        rejected = self._invalid(problems)
        if rejected or limit is None:
            return rejected or Reply(400, {"message": "bad limit"})
        shown = set(self.listed(list(self.resources)))
        templates = [{"email_template_id": i, "template_name": t["name"], "created_at": t["created_at"],
                      "updated_at": t["updated_at"], "tags": t["tags"]}
                     for i, t in self.resources.items()
                     if i in shown and (after is None or t["updated_at"] >= after)]
        page = templates[int(query.get("offset", 0)):][:limit]
        return Reply(200, {"count": len(page), "templates": page, "message": "success"})

    def _apply(self, template_id: str, body: dict[str, Any]) -> None:
        stored = self.resources[template_id]
        for field, key in (("template_name", "name"), ("subject", "subject"), ("body", "html"),
                           ("plaintext_body", "plaintext"), ("preheader", "preheader"), ("tags", "tags"),
                           ("should_inline_css", "should_inline_css")):
            if field in body:
                stored[key] = body[field]
        stored["updated_at"] = _now()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _iso(value: str | None, problems: list[str]) -> str | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%dT%H:%M:%S.%f")
    except ValueError:
        problems.append(f"GET /templates/email/list: modified_after {value!r} is not ISO-8601")
        return None
