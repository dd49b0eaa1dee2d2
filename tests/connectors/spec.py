"""Validate a request a connector sent against the vendor's own OpenAPI/Swagger file.

The specs live in ../shared/specs/ (read-only, never copied here). For each recorded request:
the operation must exist for the method and path; required path/query/header parameters and the
auth header of the operation's security scheme must be present; the JSON body must satisfy the
operation's body schema (`$ref`s resolved, OAS 3.0 `nullable` understood). In strict mode an
object schema that lists its properties also rejects properties it does not list, so a misspelt
field fails the test instead of being silently ignored by a lenient vendor.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs"

__all__ = ["SPECS", "RecordedRequest", "Spec", "load_spec"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes


@cache
def load_spec(relative: str, base_path: str = "") -> Spec:
    """The spec at `../shared/specs/<relative>`; `base_path` is stripped from request paths."""
    path = SPECS / relative
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    return Spec(data, base_path)


class Spec:
    def __init__(self, data: dict[str, Any], base_path: str = "") -> None:
        self.data = data
        self.base_path = base_path.rstrip("/")
        self.swagger2 = str(data.get("swagger", "")).startswith("2")
        self._routes = []
        for template, item in data["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template.rstrip("/"))) + "/?$"
            literal = len(re.sub(r"\{[^/]+?\}", "", template))
            self._routes.append((literal, template, re.compile(pattern), item))
        self._routes.sort(key=lambda r: -r[0])  # literal segments win over parameters

    # -- $ref resolution -------------------------------------------------------------------

    def resolve(self, node: Any, depth: int = 0) -> Any:
        if depth > 40:
            return {}  # recursive schemas: deep enough for any body a connector sends
        if isinstance(node, dict):
            if "$ref" in node:
                target: Any = self.data
                for part in node["$ref"].lstrip("#/").split("/"):
                    target = target[part.replace("~1", "/").replace("~0", "~")]
                return self.resolve(target, depth + 1)
            return {k: self.resolve(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v, depth + 1) for v in node]
        return node

    # -- finding the operation -------------------------------------------------------------

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        if self.base_path and path.startswith(self.base_path):
            path = path[len(self.base_path):] or "/"
        for _, template, pattern, item in self._routes:
            if pattern.match(path.rstrip("/") or "/") and method.lower() in item:
                return template, item, item[method.lower()]
        raise AssertionError(f"{method} {path}: no such operation in the vendor's spec")

    # -- validation ------------------------------------------------------------------------

    def problems(self, request: RecordedRequest, *, strict: bool = True) -> list[str]:
        """Everything about `request` the spec rejects (empty when it conforms)."""
        try:
            template, item, op = self.operation(request.method, request.path)
        except AssertionError as exc:
            return [str(exc)]
        where = f"{request.method} {template}"
        found: list[str] = []
        parameters = [self.resolve(p) for p in [*item.get("parameters", []), *op.get("parameters", [])]]
        for p in parameters:
            if not p.get("required"):
                continue
            if p["in"] == "query" and p["name"] not in request.query:
                found.append(f"{where}: missing required query parameter {p['name']}")
            if p["in"] == "header" and p["name"].lower() not in request.headers:
                found.append(f"{where}: missing required header {p['name']}")
        found += self._security(where, op, request)
        schema, media_types = self._body_schema(op, parameters)
        if schema is not None:
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            if media_types and content_type not in media_types:
                found.append(f"{where}: content-type {content_type!r} not in {sorted(media_types)}")
            try:
                body = json.loads(request.body or b"null")
            except ValueError:
                return [*found, f"{where}: body is not JSON"]
            prepared = _prepare(schema, strict=strict, oas30=not self.swagger2 and
                                str(self.data.get("openapi", "")).startswith("3.0"))
            validator = jsonschema.Draft202012Validator(prepared) if str(self.data.get("openapi", "")).startswith(
                "3.1") else jsonschema.Draft4Validator(prepared)
            for error in sorted(validator.iter_errors(body), key=lambda e: list(e.path)):
                location = "/".join(map(str, error.path)) or "(body)"
                found.append(f"{where}: body {location}: {error.message}")
        return found

    def _security(self, where: str, op: dict[str, Any], request: RecordedRequest) -> list[str]:
        requirements = op.get("security", self.data.get("security"))
        if not requirements:
            return []
        schemes = (self.data.get("securityDefinitions") if self.swagger2
                   else self.data.get("components", {}).get("securitySchemes")) or {}
        for requirement in requirements:
            if all(_satisfies(schemes.get(name, {}), request) for name in requirement):
                return []
        return [f"{where}: no credentials of any security scheme the operation accepts ({requirements})"]

    def _body_schema(self, op: dict[str, Any], parameters: list[dict[str, Any]]) -> tuple[Any, set[str]]:
        if self.swagger2:
            body = next((p for p in parameters if p.get("in") == "body"), None)
            return (body["schema"] if body else None), set(op.get("consumes", self.data.get("consumes", [])))
        request_body = self.resolve(op.get("requestBody")) if op.get("requestBody") else None
        if not request_body:
            return None, set()
        content = request_body.get("content", {})
        json_like = {m: c for m, c in content.items() if "json" in m}
        if not json_like:
            return None, set(content)
        first = next(iter(json_like.values()))
        return first.get("schema"), set(json_like)


def _satisfies(scheme: dict[str, Any], request: RecordedRequest) -> bool:
    if scheme.get("type") == "apiKey" and scheme.get("in") == "header":
        return bool(request.headers.get(scheme["name"].lower()))
    bearer = scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "bearer"
    if bearer or scheme.get("type") == "oauth2":
        return request.headers.get("authorization", "").lower().startswith("bearer ")
    if scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "basic":
        return request.headers.get("authorization", "").lower().startswith("basic ")
    return False


def _prepare(schema: Any, *, strict: bool, oas30: bool) -> Any:
    """OAS 3.0 `nullable` -> JSON Schema types; strict: listed properties only."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        node = {k: walk(v) for k, v in node.items()}
        for key in ("example", "x-nullable", "discriminator", "xml", "externalDocs", "readOnly", "writeOnly"):
            node.pop(key, None)  # annotations JSON Schema does not know (or knows differently)
        nullable = node.pop("nullable", False) or False
        if oas30 and nullable and "type" in node:
            node["type"] = [node["type"], "null"] if isinstance(node["type"], str) else [*node["type"], "null"]
        if strict and node.get("type") == "object" and "properties" in node and "additionalProperties" not in node \
                and not any(k in node for k in ("allOf", "anyOf", "oneOf")):
            node["additionalProperties"] = False
        return node

    return walk(schema)
