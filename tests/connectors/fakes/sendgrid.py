"""A loopback SendGrid: transactional templates and their versions on SendGrid's real v3 paths.

Every request is validated against SendGrid's own tsg_templates_v3.json (strict). Beyond the
schema, the fake does what SendGrid's reference pages describe: Bearer auth on every request,
templates listed only for the `generations` asked for (legacy when not asked), `page_size`
required and paged with a page_token, a template's first version active by itself, one active
version per template (activating one deactivates the others), and errors in SendGrid's
{"errors": [{"field", "message"}]} body. 429s carry X-RateLimit-Limit/-Remaining/-Reset (a Unix
time) and no Retry-After.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.connectors.fakes.base import FakeVendor, Handler, Reply, json_body
from tests.connectors.spec import RecordedRequest, load_spec

__all__ = ["SendGridFake"]

_LIMITS = {"name": 100, "subject": 255}
_MAX_CONTENT_BYTES = 1_048_576
_VERSION_FIELDS = ("name", "subject", "html_content", "plain_content", "generate_plain_content", "editor",
                   "test_data")


def _errors(status: int, message: str, field: str | None = None) -> Reply:
    return Reply(status, {"errors": [{"field": field, "message": message}]})


_NOT_FOUND = (404, "resource not found")


class SendGridFake(FakeVendor):
    """`templates`: id -> template with its versions, as SendGrid keeps them; `resources` is the
    contract's view of them: name, and subject/html of the active version."""

    name = "sendgrid"
    create_route = ("POST", r"/v3/templates$")
    update_route = ("PATCH", r"/v3/templates/[^/]+/versions/[^/]+$")
    lookup_route = ("GET", r"/v3/templates$")  # where the connector looks for a lost create

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.templates: dict[str, dict[str, Any]] = {}
        self._store_lock = threading.Lock()
        super().__init__(load_spec("sendgrid/tsg_templates_v3.json"))

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        with self._store_lock:
            return {tid: self._view(t) for tid, t in self.templates.items()}

    def register(self) -> None:
        version = r"/v3/templates/(?P<template_id>[^/]+)/versions/(?P<version_id>[^/]+)"
        for method, pattern, handler in [
            ("POST", r"/v3/templates", self._create),
            ("GET", r"/v3/templates", self._list),
            ("GET", r"/v3/templates/(?P<template_id>[^/]+)", self._get),
            ("PATCH", r"/v3/templates/(?P<template_id>[^/]+)", self._rename),
            ("DELETE", r"/v3/templates/(?P<template_id>[^/]+)", self._delete),
            ("POST", r"/v3/templates/(?P<template_id>[^/]+)/versions", self._create_version),
            ("PATCH", version, self._update_version),
            ("POST", version + "/activate", self._activate),
        ]:
            self.route(method, pattern, self._authorized(handler))

    # -- the vendor's own failure answers --------------------------------------------------

    def unauthorized(self) -> Reply:
        return _errors(401, "authorization required")

    def rate_limited(self, seconds: float) -> Reply:
        reset = math.ceil(time.time() + seconds)
        return Reply(429, {"errors": [{"field": None, "message": "too many requests"}]},
                     {"X-RateLimit-Limit": "150", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})

    def server_error(self) -> Reply:
        return _errors(500, "internal server error")

    def delete_resource(self, resource_id: str) -> None:
        """A user deleted the template in SendGrid's app."""
        with self._store_lock:
            del self.templates[resource_id]

    # -- templates -------------------------------------------------------------------------

    def _authorized(self, handler: Handler) -> Handler:
        def checked(request: RecordedRequest, **params: str) -> Reply:
            if request.headers.get("authorization") != f"Bearer {self.api_key}":
                return self.unauthorized()
            return handler(request, **params)
        return checked

    def _create(self, request: RecordedRequest) -> Reply:
        body = json_body(request)
        problem = _check_lengths(body, ("name",), required=("name",))
        if problem:
            return problem
        template = {"id": f"d-{uuid.uuid4().hex}", "name": body["name"],
                    "generation": body.get("generation", "legacy"), "updated_at": _now(), "versions": []}
        with self._store_lock:
            self.templates[template["id"]] = template
        self.born(template["id"])
        return Reply(201, _shown(template))

    def _list(self, request: RecordedRequest) -> Reply:
        size = request.query.get("page_size", [""])[0]
        if not size.isdigit() or not 1 <= int(size) <= 200:
            return _errors(400, "page_size must be a number between 1 and 200", "page_size")
        generations = set(request.query.get("generations", ["legacy"])[0].split(","))
        offset = int(request.query.get("page_token", ["0"])[0])
        shown = set(self.listed(list(self.templates)))
        with self._store_lock:
            matching = [t for i, t in self.templates.items() if t["generation"] in generations and i in shown]
            page = [_shown(t, lean=True) for t in matching[offset:offset + int(size)]]
        metadata: dict[str, Any] = {"self": "https://api.sendgrid.com/v3/templates", "count": len(matching)}
        if offset + int(size) < len(matching):
            metadata["next"] = f"https://api.sendgrid.com/v3/templates?page_size={size}&page_token={offset + int(size)}"
        return Reply(200, {"result": page, "_metadata": metadata})

    def _get(self, request: RecordedRequest, template_id: str) -> Reply:
        with self._store_lock:
            template = self.templates.get(template_id)
            return Reply(200, _shown(template)) if template else _errors(*_NOT_FOUND)

    def _rename(self, request: RecordedRequest, template_id: str) -> Reply:
        body = json_body(request)
        problem = _check_lengths(body, ("name",))
        if problem:
            return problem
        with self._store_lock:
            template = self.templates.get(template_id)
            if template is None:
                return _errors(*_NOT_FOUND)
            template.update(name=body.get("name", template["name"]), updated_at=_now())
            return Reply(200, _shown(template))

    def _delete(self, request: RecordedRequest, template_id: str) -> Reply:
        with self._store_lock:
            return Reply(204) if self.templates.pop(template_id, None) else _errors(*_NOT_FOUND)

    # -- versions --------------------------------------------------------------------------

    def _create_version(self, request: RecordedRequest, template_id: str) -> Reply:
        body = json_body(request)
        problem = _check_lengths(body, ("name", "subject"), required=("name", "subject"))
        if problem:
            return problem
        with self._store_lock:
            template = self.templates.get(template_id)
            if template is None:
                return _errors(*_NOT_FOUND)
            version = {"id": str(uuid.uuid4()), "template_id": template_id, "active": 0, "html_content": "",
                       "plain_content": "", "generate_plain_content": True, "editor": "code",
                       **{k: body[k] for k in _VERSION_FIELDS if k in body}}
            # The first version of a template is active by itself; active=1 takes over from the others.
            first = not template["versions"]
            template["versions"].append(version)
            if first or body.get("active") == 1:
                _make_active(template, version["id"])
            self._touch(template, version)
            return Reply(201, version)

    def _update_version(self, request: RecordedRequest, template_id: str, version_id: str) -> Reply:
        body = json_body(request)
        problem = _check_lengths(body, ("name", "subject"))
        if problem:
            return problem
        with self._store_lock:
            version = self._find_version(template_id, version_id)
            if version is None:
                return _errors(*_NOT_FOUND)
            version.update({k: body[k] for k in _VERSION_FIELDS if k in body})
            if body.get("active") == 1:
                _make_active(self.templates[template_id], version_id)
            self._touch(self.templates[template_id], version)
            return Reply(200, version)

    def _activate(self, request: RecordedRequest, template_id: str, version_id: str) -> Reply:
        with self._store_lock:
            version = self._find_version(template_id, version_id)
            if version is None:
                return _errors(*_NOT_FOUND)
            _make_active(self.templates[template_id], version_id)
            return Reply(200, version)

    def _find_version(self, template_id: str, version_id: str) -> dict[str, Any] | None:
        template = self.templates.get(template_id)
        versions = template["versions"] if template else []
        return next((v for v in versions if v["id"] == version_id), None)

    @staticmethod
    def _touch(template: dict[str, Any], version: dict[str, Any]) -> None:
        version["updated_at"] = template["updated_at"] = _now()
        if version.get("generate_plain_content", True):  # SendGrid derives the text part from the HTML
            version["plain_content"] = "(generated from html_content)"

    @staticmethod
    def _view(template: dict[str, Any]) -> dict[str, Any]:
        active = next((v for v in template["versions"] if v["active"] == 1), {})
        return {**template, "subject": active.get("subject", ""), "html": active.get("html_content", ""),
                "plaintext": active.get("plain_content", "")}


def _check_lengths(body: dict[str, Any], limited: tuple[str, ...], required: tuple[str, ...] = ()) -> Reply | None:
    for field in required:
        if not body.get(field):
            return _errors(400, f"{field} is required", field)
    for field in limited:
        if len(body.get(field) or "") > _LIMITS[field]:
            return _errors(400, f"{field} must be at most {_LIMITS[field]} characters", field)
    for field in ("html_content", "plain_content"):
        if len((body.get(field) or "").encode()) > _MAX_CONTENT_BYTES:
            return _errors(400, f"{field} must be at most {_MAX_CONTENT_BYTES} bytes", field)
    return None


def _make_active(template: dict[str, Any], version_id: str) -> None:
    for version in template["versions"]:
        version["active"] = 1 if version["id"] == version_id else 0


def _shown(template: dict[str, Any], *, lean: bool = False) -> dict[str, Any]:
    """A template as the API returns it; the list leaves the versions' content out."""
    hidden = ("html_content", "plain_content", "test_data") if lean else ()
    versions = [{k: v for k, v in version.items() if k not in hidden} for version in template["versions"]]
    return {**template, "versions": versions}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
