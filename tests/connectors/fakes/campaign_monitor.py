"""A loopback Campaign Monitor: a client's templates on the API v3.3 paths, fetched from their URLs.

Campaign Monitor publishes no OpenAPI file, so the fake checks every request against the fields of
its reference pages (docs/connectors/campaign_monitor.md lists them): HTTP Basic auth with the API
key as user name (the password is not checked, as Campaign Monitor ignores it), `.json` routes,
`application/json` bodies holding only `Name`, `HtmlPageURL` and `ZipFileURL` (strings; the zip may
be null), no query parameters but `pretty`. A request outside that is recorded in `spec_problems`
(which the tests assert empty) and answered with Campaign Monitor's 400.

Like Campaign Monitor, a create or update **fetches `HtmlPageURL`** over HTTP and refuses the
request when it cannot: `4005 Invalid HTML Page URL` for a page that does not answer 200, `4101` for
a page without an editable region (`<singleline>`, `<multiline>`, an `editable` image), `4130` /
`4131` for an unclosed `<singleline>` / `<multiline>`, `4006` for a `ZipFileURL` that is not a zip.
These are Campaign Monitor's own refusals, not malformed requests: they are not spec problems.

Answers: a create is `201` with the new id as a JSON string, an update `200` without a body, the
client's listing an array of `{"TemplateID", "Name", "PreviewURL", "ScreenshotURL"}`; errors are
`{"Code", "Message"}`: 401 code 100 (API key) or 102 (a client id the key does not own), 400 code
4001 for a template id that does not exist, 429 code 429 with the `X-RateLimit-*` headers and no
`Retry-After`, 500 code 500.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from typing import Any

import httpx

from tests.connectors.fakes.base import FakeVendor, Handler, Reply, json_body
from tests.connectors.spec import RecordedRequest

__all__ = ["CampaignMonitorFake", "cm_error"]

_BASE = "/api/v3.3"
_FIELDS: dict[str, tuple[type, ...]] = {"Name": (str,), "HtmlPageURL": (str,), "ZipFileURL": (str, type(None))}
_QUERY = {"pretty"}
_EDITABLE = re.compile(r"<(?:singleline|multiline)\b|<img\b[^>]*\seditable\b", re.IGNORECASE)
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")


def cm_error(status: int, code: int, message: str) -> Reply:
    return Reply(status, {"Code": code, "Message": message})


class CampaignMonitorFake(FakeVendor):
    """`resources`: TemplateID -> {"name", "html", "html_url", "zip_url", "client_id", "preview_id",
    "fetches"}; `other_client_id` owns templates the connector's client must never see."""

    name = "campaign_monitor"
    create_route = ("POST", r"/api/v3\.3/templates/[^/]+\.json$")
    update_route = ("PUT", r"/api/v3\.3/templates/[^/]+\.json$")
    lookup_route = ("GET", r"/api/v3\.3/clients/[^/]+/templates\.json$")

    def __init__(self, api_key: str, client_id: str, other_client_id: str = "f" * 32) -> None:
        self.api_key = api_key
        self.client_id = client_id
        self.other_client_id = other_client_id
        self.resources: dict[str, dict[str, Any]] = {}
        self.fetched: list[str] = []  # every URL fetched, in order
        self._store_lock = threading.Lock()
        super().__init__(None)

    def register(self) -> None:
        template = rf"{_BASE}/templates/(?P<template_id>[^/]+)\.json"
        self.route("POST", rf"{_BASE}/templates/(?P<client_id>[^/]+)\.json", self._authorized(self._create))
        self.route("PUT", template, self._authorized(self._update))
        self.route("GET", template, self._authorized(self._get))
        self.route("DELETE", template, self._authorized(self._delete))
        self.route("GET", rf"{_BASE}/clients/(?P<client_id>[^/]+)/templates\.json", self._authorized(self._list))

    # -- the vendor's own failure answers --------------------------------------------------

    def unauthorized(self) -> Reply:
        return cm_error(401, 100, "Invalid API Key")

    def rate_limited(self, seconds: float) -> Reply:
        return Reply(429, {"Code": 429, "Message": "Rate limit exceeded"},
                     {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(seconds))})

    def server_error(self) -> Reply:
        return cm_error(500, 500, "Sorry, we've run into a problem")

    def delete_resource(self, resource_id: str) -> None:
        """A user deleted the template in Campaign Monitor's app."""
        with self._store_lock:
            del self.resources[resource_id]

    # -- checks ----------------------------------------------------------------------------

    def _reject(self, request: RecordedRequest, message: str, code: int = 400) -> Reply:
        self.spec_problems.append(f"{request.method} {request.path}: {message}")
        return cm_error(400, code, message)

    def _authorized(self, handler: Handler) -> Handler:
        def checked(request: RecordedRequest, **params: str) -> Reply:
            header = request.headers.get("authorization", "")
            if not header.startswith("Basic "):
                self.spec_problems.append(f"{request.method} {request.path}: no HTTP Basic authorization")
                return self.unauthorized()
            try:
                user = base64.b64decode(header[6:], validate=True).decode().partition(":")[0]
            except ValueError:
                return self.unauthorized()
            if user != self.api_key:
                return self.unauthorized()
            unknown = set(request.query) - _QUERY
            if unknown:
                return self._reject(request, f"unknown query parameter(s): {', '.join(sorted(unknown))}")
            if request.method in ("POST", "PUT") and \
                    not request.headers.get("content-type", "").startswith("application/json"):
                return self._reject(request, "Content-Type must be application/json")
            client = params.get("client_id")
            if client is not None and client not in (self.client_id, self.other_client_id):
                return cm_error(401, 102, "Invalid ClientID")
            return handler(request, **params)
        return checked

    def _body(self, request: RecordedRequest) -> dict[str, Any] | Reply:
        try:
            body = json_body(request)
        except ValueError:
            return self._reject(request, "The request body is not valid JSON")
        if not isinstance(body, dict):
            return self._reject(request, "The request body must be a JSON object")
        for name, value in body.items():
            if name not in _FIELDS:
                return self._reject(request, f"{name} is not a field of a template")
            if not isinstance(value, _FIELDS[name]):
                return self._reject(request, f"{name} must be a string")
        if not body.get("Name"):
            return self._reject(request, "Template Name Required", 4002)
        if not body.get("HtmlPageURL"):
            return self._reject(request, "HTML Page URL Required", 4004)
        if not _URL.match(body["HtmlPageURL"]):
            return self._reject(request, "Invalid HTML Page URL", 4005)
        return body

    def _fetch(self, url: str) -> httpx.Response | None:
        self.fetched.append(url)
        try:
            return httpx.get(url, timeout=5.0, follow_redirects=True)
        except httpx.HTTPError:
            return None

    def _import(self, body: dict[str, Any]) -> dict[str, Any] | Reply:
        """Fetch the page (and zip) as Campaign Monitor does, and check the template markup."""
        page = self._fetch(body["HtmlPageURL"])
        if page is None or page.status_code != 200:
            return cm_error(400, 4005, "Invalid HTML Page URL")
        html = page.text
        if not _EDITABLE.search(html):
            return cm_error(400, 4101, "No Editable Region in Template: a template needs at least one "
                                       "<singleline>, <multiline> or editable <img>")
        for tag, code in (("singleline", 4130), ("multiline", 4131)):
            if len(re.findall(rf"<{tag}\b", html, re.I)) != len(re.findall(rf"</{tag}\s*>", html, re.I)):
                return cm_error(400, code, f"No Closing {tag.capitalize()} tag")
        zip_url = body.get("ZipFileURL")
        if zip_url:
            archive = self._fetch(zip_url) if _URL.match(zip_url) else None
            if archive is None or archive.status_code != 200 or not archive.content.startswith(b"PK"):
                return cm_error(400, 4006, "Invalid ZIP File URL")
        return {"name": body["Name"], "html": html, "html_url": body["HtmlPageURL"], "zip_url": zip_url,
                "updated_at": time.time()}

    # -- routes ----------------------------------------------------------------------------

    def _create(self, request: RecordedRequest, client_id: str) -> Reply:
        body = self._body(request)
        if isinstance(body, Reply):
            return body
        imported = self._import(body)
        if isinstance(imported, Reply):
            return imported
        template_id = uuid.uuid4().hex
        with self._store_lock:
            self.resources[template_id] = {**imported, "client_id": client_id,
                                           "preview_id": uuid.uuid4().hex[:16].upper()}
        self.born(template_id)
        return Reply(201, json.dumps(template_id))  # the id as a JSON string, as the reference shows it

    def _update(self, request: RecordedRequest, template_id: str) -> Reply:
        if template_id not in self.resources:
            return cm_error(400, 4001, "Invalid TemplateID")
        body = self._body(request)
        if isinstance(body, Reply):
            return body
        imported = self._import(body)
        if isinstance(imported, Reply):
            return imported
        with self._store_lock:
            if template_id not in self.resources:  # deleted while the page was fetched
                return cm_error(400, 4001, "Invalid TemplateID")
            self.resources[template_id].update(imported)
        return Reply(200, b"")

    def _get(self, request: RecordedRequest, template_id: str) -> Reply:
        template = self.resources.get(template_id)
        if template is None:
            return cm_error(400, 4001, "Invalid TemplateID")
        return Reply(200, self._shown(template_id, template))

    def _delete(self, request: RecordedRequest, template_id: str) -> Reply:
        with self._store_lock:
            if self.resources.pop(template_id, None) is None:
                return cm_error(400, 4001, "Invalid TemplateID")
        return Reply(200, b"")

    def _list(self, request: RecordedRequest, client_id: str) -> Reply:
        with self._store_lock:
            ids = [i for i, t in self.resources.items() if t["client_id"] == client_id]
        shown = self.listed(ids)
        return Reply(200, [self._shown(i, self.resources[i]) for i in shown if i in self.resources])

    @staticmethod
    def _shown(template_id: str, template: dict[str, Any]) -> dict[str, Any]:
        preview = template["preview_id"]
        return {"TemplateID": template_id, "Name": template["name"],
                "PreviewURL": f"https://preview.createsend.com/templates/publicpreview/{preview}?d=r",
                "ScreenshotURL": f"https://preview.createsend.com/ts/r/{preview[:2]}/{preview[2:5]}/{preview}.jpg"}
