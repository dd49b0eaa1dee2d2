"""Validate a request a connector sent against the vendor's own OpenAPI/Swagger contract.

The contracts are `tests/connectors/contracts/<vendor>.json`: the parts of each vendor's published
spec the connectors use, derived by `scripts/derive-contracts` from the vendor files in
`../shared/specs/` (see `test_contracts.py`, which checks they still match whenever that folder
is present). For each recorded request: the operation must exist for the method and path;
required path/query/header parameters and the auth header of the operation's security scheme
must be present; every path, query and header parameter sent must have a value its schema
accepts (type, enum, minimum/maximum, pattern, length, format; arrays split per the parameter's
style or collectionFormat); the JSON body must satisfy the operation's body schema (`$ref`s
resolved, OAS 3.0 `nullable` understood). In strict mode an object schema that lists its
properties also rejects properties it does not list, so a misspelt field fails the test instead
of being silently ignored by a lenient vendor.

Where a vendor's spec contradicts what its API really does, the exception is listed in `ERRATA`
with the reason, rather than edited into the contract.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema

CONTRACTS = Path(__file__).resolve().parent / "contracts"

__all__ = ["CONTRACTS", "ERRATA", "RecordedRequest", "Spec", "load_spec"]

# vendor -> {(parameter location, name): reason}: the parameter's `format` is not checked.
ERRATA: dict[str, dict[tuple[str, str], str]] = {
    "sendgrid": {
        ("path", "template_id"): "the spec says format uuid, but SendGrid's dynamic template ids are "
                                 "'d-' + 32 hex digits (its reference pages' own examples)",
    },
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes


@cache
def load_spec(relative: str, base_path: str = "") -> Spec:
    """The contract derived from the vendor's spec `<vendor>/<file>` (its path under
    `../shared/specs/`); `base_path` is stripped from request paths."""
    vendor = relative.split("/")[0]
    path = CONTRACTS / f"{vendor}.json"
    if not path.exists():
        raise FileNotFoundError(f"no contract {path.name} for {relative}: add the vendor to scripts/derive-contracts")
    data = json.loads(path.read_text(encoding="utf-8"))
    derived_from = data.get("x-contract", {}).get("derived-from")
    if derived_from != relative:
        raise ValueError(f"{path.name} is derived from {derived_from}, not {relative}")
    return Spec(data, base_path, errata=ERRATA.get(vendor, {}))


class Spec:
    def __init__(self, data: dict[str, Any], base_path: str = "",
                 errata: dict[tuple[str, str], str] | None = None) -> None:
        self.data = data
        self.base_path = base_path.rstrip("/")
        self.errata = dict(errata or {})
        self.swagger2 = str(data.get("swagger", "")).startswith("2")
        self._routes = []
        for template, item in data["paths"].items():
            names = re.findall(r"\{([^/]+?)\}", template)
            counter = iter(range(len(names)))
            pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", lambda _, c=counter: f"(?P<p{next(c)}>[^/]+)",
                                   re.escape(template.rstrip("/"))) + "/?$"
            literal = len(re.sub(r"\{[^/]+?\}", "", template))
            self._routes.append((literal, template, re.compile(pattern), item, names))
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
        template, item, op, _ = self._match(method, path)
        return template, item, op

    def _match(self, method: str, path: str) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, str]]:
        """The operation for `method path`, with the path parameters' values (URL-decoded)."""
        if self.base_path and path.startswith(self.base_path):
            path = path[len(self.base_path):] or "/"
        for _, template, pattern, item, names in self._routes:
            match = pattern.match(path.rstrip("/") or "/")
            if match and method.lower() in item:
                values = {name: unquote(match.group(f"p{i}")) for i, name in enumerate(names)}
                return template, item, item[method.lower()], values
        raise AssertionError(f"{method} {path}: no such operation in the vendor's spec")

    # -- validation ------------------------------------------------------------------------

    def problems(self, request: RecordedRequest, *, strict: bool = True) -> list[str]:
        """Everything about `request` the spec rejects (empty when it conforms)."""
        try:
            template, item, op, path_values = self._match(request.method, request.path)
        except AssertionError as exc:
            return [str(exc)]
        where = f"{request.method} {template}"
        found: list[str] = []
        # operation-level parameters override path-level ones with the same name and location
        by_key = {(p["in"], p["name"]): p for p in
                  (self.resolve(p) for p in [*item.get("parameters", []), *op.get("parameters", [])])}
        parameters = list(by_key.values())
        for p in parameters:
            sent: list[str] | None = None
            if p["in"] == "query":
                sent = request.query.get(p["name"])
            elif p["in"] == "header":
                value = request.headers.get(p["name"].lower())
                sent = None if value is None else [value]
            elif p["in"] == "path":
                sent = [path_values[p["name"]]] if p["name"] in path_values else None
            if sent is None:
                if p.get("required") and p["in"] in ("query", "header"):
                    kind = "query parameter" if p["in"] == "query" else "header"
                    found.append(f"{where}: missing required {kind} {p['name']}")
                continue
            found += [f"{where}: {p['in']} parameter {p['name']}: {problem}"
                      for problem in self._value_problems(p, sent)]
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

    def _value_problems(self, parameter: dict[str, Any], sent: list[str]) -> list[str]:
        """What the parameter's schema rejects in the values sent (query strings are text: each
        value is read as the schema's type first, arrays split as the parameter's style says)."""
        if self.swagger2:
            schema = {k: v for k, v in parameter.items() if k not in
                      ("name", "in", "required", "description", "collectionFormat", "allowEmptyValue")}
            # no split for "multi": one value per repeated parameter
            separators = {"csv": ",", "ssv": " ", "tsv": "\t", "pipes": "|"}
            array_split = separators.get(parameter.get("collectionFormat", "csv"))
        else:
            schema = dict(parameter.get("schema") or {})
            style = parameter.get("style", "form" if parameter["in"] in ("query", "cookie") else "simple")
            explode = parameter.get("explode", style == "form")
            array_split = None if explode else {"form": ",", "simple": ",", "spaceDelimited": " ",
                                                "pipeDelimited": "|"}.get(style, ",")
        if (parameter["in"], parameter["name"]) in self.errata:
            schema.pop("format", None)
        problems: list[str] = []
        if schema.get("type") == "array":
            items = schema.get("items") or {}
            raw = [part for value in sent for part in (value.split(array_split) if array_split else [value])]
            instance: Any = [self._typed(v, items, problems) for v in raw]
        else:
            if len(sent) > 1:
                return [f"sent {len(sent)} times, the spec takes one value"]
            instance = self._typed(sent[0], schema, problems)
        if problems:
            return problems
        validator_class = (jsonschema.Draft202012Validator if str(self.data.get("openapi", "")).startswith("3.1")
                           else jsonschema.Draft4Validator)
        validator = validator_class(_prepare(schema, strict=False, oas30=False),
                                    format_checker=validator_class.FORMAT_CHECKER)
        return [error.message for error in validator.iter_errors(instance)]

    @staticmethod
    def _typed(value: str, schema: dict[str, Any], problems: list[str]) -> Any:
        kind = schema.get("type")
        if kind == "integer":
            if re.fullmatch(r"-?\d+", value):
                return int(value)
            problems.append(f"{value!r} is not an integer")
        elif kind == "number":
            try:
                number = float(value)
            except ValueError:
                problems.append(f"{value!r} is not a number")
            else:
                return int(number) if number.is_integer() and re.fullmatch(r"-?\d+", value) else number
        elif kind == "boolean":
            if value in ("true", "false"):
                return value == "true"
            problems.append(f"{value!r} is not true or false")
        return value

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
