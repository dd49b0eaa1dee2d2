"""A loopback Salesforce Marketing Cloud: the auth host's `/v2/token` and Content Builder assets.

One server plays both hosts: the token answer's `rest_instance_url` points back at it. Asset
requests are validated against SFMC's own spec (sfmc-openapi-v2.json, strict). Two requests the
connector sends are not in that file, so they are checked against the fields of the reference
pages instead (problems land in `spec_problems` too):
- POST /v2/token: "Access Token for Server-to-Server Integrations";
- POST /asset/v1/content/assets/query: "POST /asset/v1/content/assets/query" (advanced query).
The fake also enforces what SFMC enforces beyond the schema: unique customerKey (at most 36
characters), unique names per category and asset type, and existing categories.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from tests.connectors.fakes.base import FakeVendor, Reply, json_body
from tests.connectors.spec import RecordedRequest, Spec, load_spec

__all__ = ["FakeSfmc"]

DOCS = "https://developer.salesforce.com/docs/atlas.en-us.mc-apis.meta/mc-apis/error-handling.htm"
TOKEN_FIELDS = {"grant_type", "client_id", "client_secret", "scope", "account_id"}
QUERY_FIELDS = {"query", "page", "sort", "fields"}
OPERAND_FIELDS = {"property", "simpleOperator", "value", "values"}
OPERATORS = {"equal", "notEqual", "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual", "like",
             "isNull", "isNotNull", "contains", "mustContain", "in", "where"}


def _api_error(status: int, message: str, errorcode: int | None = None, **extra: Any) -> Reply:
    body: dict[str, Any] = {"message": message, "documentation": DOCS, **extra}
    if errorcode is not None:
        body["errorcode"] = errorcode
    return Reply(status, body)


class ReferencePageSpec(Spec):
    """SFMC's spec for the paths it covers; the reference pages' fields for the two it does not."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec.data, spec.base_path)

    def problems(self, request: RecordedRequest, *, strict: bool = True) -> list[str]:
        if request.path == "/v2/token":
            return _token_problems(request)
        if request.path == "/asset/v1/content/assets/query":
            return _query_problems(request)
        return super().problems(request, strict=strict)


def _json_object(request: RecordedRequest, where: str) -> tuple[dict[str, Any], list[str]]:
    found = [] if request.headers.get("content-type", "").startswith("application/json") else [
        f"{where}: content-type must be application/json"]
    body = json_body(request) if request.body else None
    if not isinstance(body, dict):
        return {}, [*found, f"{where}: body must be a JSON object"]
    return body, found


def _token_problems(request: RecordedRequest) -> list[str]:
    where = f"{request.method} /v2/token"
    if request.method != "POST":
        return [f"{where}: only POST is documented"]
    body, found = _json_object(request, where)
    found += [f"{where}: missing required field {f}" for f in ("grant_type", "client_id", "client_secret")
              if not body.get(f)]
    found += [f"{where}: unknown field {f}" for f in body if f not in TOKEN_FIELDS]
    # The token reference types account_id (the business unit's MID) as a number, the rest as strings.
    found += [f"{where}: {f} must be a string" for f, v in body.items() if f != "account_id" and not isinstance(v, str)]
    if "account_id" in body and (isinstance(body["account_id"], bool) or not isinstance(body["account_id"], int)):
        found.append(f"{where}: account_id must be a number (the MID)")
    if body.get("grant_type") not in (None, "client_credentials"):
        found.append(f"{where}: grant_type must be client_credentials for server-to-server integrations")
    return found


def _operand_problems(node: Any, where: str) -> list[str]:
    if not isinstance(node, dict):
        return [f"{where}: must be an object"]
    if "leftOperand" in node:
        found = [] if node.get("logicalOperator") in ("AND", "OR") else [f"{where}: logicalOperator must be AND/OR"]
        return found + _operand_problems(node.get("leftOperand"), where) + _operand_problems(
            node.get("rightOperand"), where)
    found = [f"{where}: unknown field {f}" for f in node if f not in OPERAND_FIELDS]
    if not isinstance(node.get("property"), str):
        found.append(f"{where}: property is required")
    if node.get("simpleOperator") not in OPERATORS:
        found.append(f"{where}: simpleOperator {node.get('simpleOperator')!r} is not documented")
    return found


def _query_problems(request: RecordedRequest) -> list[str]:
    where = f"{request.method} /asset/v1/content/assets/query"
    if request.method != "POST":
        return [f"{where}: only POST is documented"]
    body, found = _json_object(request, where)
    found += [f"{where}: unknown field {f}" for f in body if f not in QUERY_FIELDS]
    if "query" not in body:
        found.append(f"{where}: query is required")
    else:
        found += _operand_problems(body["query"], f"{where} query")
    page = body.get("page", {})
    if not isinstance(page, dict) or set(page) - {"page", "pageSize"} or not all(
            isinstance(v, int) for v in page.values()):
        found.append(f"{where}: page must be {{page: int, pageSize: int}}")
    if not all(isinstance(f, str) for f in body.get("fields", [])):
        found.append(f"{where}: fields must be an array of asset property names")
    return found


class FakeSfmc(FakeVendor):
    name = "salesforce-marketing-cloud"
    create_route = ("POST", r"^/asset/v1/content/assets$")
    update_route = ("PATCH", r"^/asset/v1/content/assets/\d+$")
    lookup_route = ("POST", r"^/asset/v1/content/assets/query$")  # where the connector looks for a lost create

    def __init__(self, client_id: str, client_secret: str, *, expires_in: int = 1079) -> None:
        self.client_id, self.client_secret, self.expires_in = client_id, client_secret, expires_in
        self.tokens: set[str] = set()
        self.categories = {1001: "Content Builder", 2002: "Content Builder/Exports"}
        self.resources: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(48213)
        super().__init__(ReferencePageSpec(load_spec("salesforce-marketing-cloud/sfmc-openapi-v2.json")))

    def register(self) -> None:
        self.route("POST", "/v2/token", self._token)
        self.route("POST", "/asset/v1/content/assets", self._create)
        self.route("POST", "/asset/v1/content/assets/query", self._query)
        self.route("GET", r"/asset/v1/content/assets/(?P<asset_id>\d+)", self._get)
        self.route("PATCH", r"/asset/v1/content/assets/(?P<asset_id>\d+)", self._update)

    # -- the vendor's own fault replies ----------------------------------------------------

    def unauthorized(self) -> Reply:
        return _api_error(401, "Not Authorized", 0)

    def rate_limited(self, seconds: float) -> Reply:
        reply = _api_error(429, "Rate limit exceeded", 50100, retryAfter=int(seconds))
        reply.headers["Retry-After"] = str(int(seconds))
        return reply

    def server_error(self) -> Reply:
        return _api_error(500, "An internal error occurred")

    def delete_resource(self, resource_id: str) -> None:
        del self.resources[resource_id]

    def expire_tokens(self) -> None:
        """The tokens handed out so far stop working (as when SFMC expires them early)."""
        self.tokens.clear()

    # -- auth ------------------------------------------------------------------------------

    def _dispatch(self, request: RecordedRequest) -> Reply:
        if request.path != "/v2/token":
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            if token not in self.tokens:
                return self.unauthorized()
        return super()._dispatch(request)

    def _token(self, request: RecordedRequest) -> Reply:
        body = json_body(request) if request.body else {}
        if body.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type", "error_description": "Use client_credentials.",
                               "error_uri": "https://developer.salesforce.com/docs"})
        if (body.get("client_id"), body.get("client_secret")) != (self.client_id, self.client_secret):
            return Reply(401, {"error": "invalid_client", "error_description": "Client authentication failed.",
                               "error_uri": "https://developer.salesforce.com/docs"})
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return Reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in,
                           "scope": "saved_content_read saved_content_write", "soap_instance_url": f"{self.url}/",
                           "rest_instance_url": f"{self.url}/"})

    # -- assets ----------------------------------------------------------------------------

    def _asset_problem(self, body: dict[str, Any], asset_id: str | None) -> Reply | None:
        missing = [f for f in ("customerKey", "name", "description", "assetType") if f not in body]
        if missing:
            return _api_error(400, f"Missing required field: {', '.join(missing)}", 10002)
        if body["assetType"] != {"name": "htmlemail", "id": 208}:
            return _api_error(400, "assetType must be htmlemail (208) for an HTML email", 10005)
        if not isinstance(((body.get("views") or {}).get("html") or {}).get("content"), str):
            return _api_error(400, "An htmlemail needs views.html.content", 10002)
        category = (body.get("category") or {}).get("id", 1001)
        if category not in self.categories:
            return _api_error(400, f"Category {category} does not exist", 10005)
        clashes = [("customerKey must be unique", lambda r: r["customerKey"] == body["customerKey"]),
                   ("Asset names within a category and asset type must be unique",
                    lambda r: r["name"] == body["name"] and r["category"] == category)]
        errors = [{"message": m, "errorcode": 10005} for m, clash in clashes
                  if any(clash(r) for i, r in self.resources.items() if i != asset_id)]
        if len(body["customerKey"]) > 36:
            errors.append({"message": "customerKey is longer than 36 characters", "errorcode": 10005})
        return _api_error(400, "Validation failed", 10006, validationErrors=errors) if errors else None

    def _store(self, asset_id: str, body: dict[str, Any]) -> None:
        views = body.get("views") or {}
        self.resources[asset_id] = {
            "customerKey": body["customerKey"], "name": body["name"], "description": body["description"],
            "category": (body.get("category") or {}).get("id", 1001), "tags": body.get("tags", []),
            "subject": (views.get("subjectline") or {}).get("content"),
            "preheader": (views.get("preheader") or {}).get("content"),
            "html": views["html"]["content"], "text": (views.get("text") or {}).get("content")}

    def _document(self, asset_id: str) -> dict[str, Any]:
        r = self.resources[asset_id]
        views = {"html": {"content": r["html"]}, "subjectline": {"content": r["subject"]},
                 "preheader": {"content": r["preheader"]}, "text": {"content": r["text"]}}
        return {"id": int(asset_id), "customerKey": r["customerKey"], "name": r["name"],
                "description": r["description"], "assetType": {"id": 208, "name": "htmlemail"},
                "category": {"id": r["category"]}, "tags": r["tags"], "views": views}

    def _not_found(self) -> Reply:
        return _api_error(404, "Asset not found")

    def _create(self, request: RecordedRequest) -> Reply:
        body = json_body(request) or {}
        if problem := self._asset_problem(body, None):
            return problem
        asset_id = str(next(self._ids))
        self._store(asset_id, body)
        self.born(asset_id)
        return Reply(201, self._document(asset_id))

    def _get(self, request: RecordedRequest, asset_id: str) -> Reply:
        return Reply(200, self._document(asset_id)) if asset_id in self.resources else self._not_found()

    def _update(self, request: RecordedRequest, asset_id: str) -> Reply:
        if asset_id not in self.resources:
            return self._not_found()
        body = json_body(request) or {}
        if problem := self._asset_problem(body, asset_id):
            return problem
        # A PATCH changes the views it names and keeps the others (the conservative reading of
        # SFMC's partial update): a view left out keeps the previous content.
        kept = self._document(asset_id)["views"]
        self._store(asset_id, {**body, "views": {**kept, **(body.get("views") or {})}})
        return Reply(200, self._document(asset_id))

    def _query(self, request: RecordedRequest) -> Reply:
        body = json_body(request) or {}
        matched = [i for i in self.listed(list(self.resources))
                   if self._matches(body.get("query") or {}, self._document(i))]
        matched.sort(key=int, reverse=True)
        size = (body.get("page") or {}).get("pageSize", 50)
        fields = body.get("fields")
        items = [{k: v for k, v in self._document(i).items() if not fields or k in fields or k == "id"}
                 for i in matched[:size]]
        return Reply(200, {"count": len(matched), "page": 1, "pageSize": size, "links": {}, "items": items})

    def _matches(self, query: dict[str, Any], asset: dict[str, Any]) -> bool:
        if "leftOperand" in query:
            left, right = self._matches(query["leftOperand"], asset), self._matches(query["rightOperand"], asset)
            return left and right if query["logicalOperator"] == "AND" else left or right
        value: Any = asset
        for part in query["property"].split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if query["simpleOperator"] != "equal":
            raise NotImplementedError(f"the fake answers equal queries only, not {query['simpleOperator']}")
        return str(value) == str(query["value"])
