"""A vendor fake: a real HTTP server on loopback that behaves like the vendor.

Subclasses register routes and keep the vendor's resources; this base records every request,
validates it against the vendor's spec when one is given (a request the spec rejects is kept in
`spec_problems`, which the tests assert empty), and injects faults: a status with the vendor's
own body and headers for the next N matching requests, or a delay before (or after) handling, so
a client timeout can happen after the vendor already created something, or (`after_handling`)
the request handled and the injected reply sent instead of the real one (a 2xx whose body is not
what the vendor documents, after the create happened). `list_late(n)` makes the vendor
eventually consistent: resources created from then on are left out of the next `n` listings
(each vendor's list/query handler passes its ids through `listed`, its create calls `born`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.connectors.spec import RecordedRequest, Spec

__all__ = ["FakeVendor", "Fault", "Handler", "Reply", "json_body"]


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, or bytes/str sent as-is
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    method: str | None
    path: re.Pattern[str] | None
    times: int
    reply: Reply | None = None  # answer this instead of handling
    delay: float = 0.0
    delay_after_handling: bool = False  # handle (e.g. create), then stall: the answer is "lost"
    after_handling: bool = False  # handle (e.g. create), then answer `reply` instead of the real answer


Handler = Callable[..., Reply]


class FakeVendor:
    """Start with `with fake:` or `start()`; `url` is its base URL."""

    name = "vendor"

    def __init__(self, spec: Spec | None = None, *, strict: bool = True) -> None:
        self.spec = spec
        self.strict = strict
        self.requests: list[RecordedRequest] = []
        self.spec_problems: list[str] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._faults: list[Fault] = []
        self._late = 0  # listings a newly created resource is left out of
        self._hidden: dict[str, int] = {}  # resource id -> listings it is still left out of
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.register()

    # -- to implement per vendor -----------------------------------------------------------

    def register(self) -> None:
        """Add routes with `self.route(method, pattern, handler)`."""

    def unauthorized(self) -> Reply:
        return Reply(401, {"message": "unauthorized"})

    def rate_limited(self, seconds: float) -> Reply:
        return Reply(429, {"message": "too many requests"}, {"Retry-After": str(int(seconds))})

    def server_error(self) -> Reply:
        return Reply(500, {"message": "internal error"})

    # -- plumbing --------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def inject(self, *, method: str | None = None, path: str | None = None, times: int = 1,
               reply: Reply | None = None, delay: float = 0.0, delay_after_handling: bool = False,
               after_handling: bool = False) -> None:
        """Make the next `times` requests matching method/path (regex) fail or stall."""
        with self._lock:
            self._faults.append(Fault(method.upper() if method else None, re.compile(path) if path else None,
                                      times, reply, delay, delay_after_handling, after_handling))

    def list_late(self, listings: int) -> None:
        """Resources created from now on appear only in the listings after the next `listings` ones;
        0: every resource is listed from now on (the vendor caught up)."""
        with self._lock:
            self._late = listings
            if not listings:
                self._hidden.clear()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def born(self, resource_id: str) -> None:
        """A vendor's create handler: register a new resource (hidden while `list_late` says so)."""
        with self._lock:
            if self._late:
                self._hidden[str(resource_id)] = self._late

    def listed(self, ids: list[Any]) -> list[Any]:
        """A vendor's list handler: `ids` without the ones not listed yet; one listing is counted."""
        with self._lock:
            shown = [i for i in ids if self._hidden.get(str(i), 0) <= 0]
            for key in list(self._hidden):
                self._hidden[key] -= 1
            return shown

    def count(self, method: str, path_regex: str = ".*") -> int:
        pattern = re.compile(path_regex)
        return sum(1 for r in self.requests if r.method == method.upper() and pattern.search(r.path))

    @property
    def url(self) -> str:
        assert self._server is not None, "fake not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeVendor:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _any(self) -> None:
                fake._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval, at every test's teardown.
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeVendor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if (fault.method is None or fault.method == method) and (fault.path is None or fault.path.search(path)):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(http.path)
        length = int(http.headers.get("content-length") or 0)
        body = http.rfile.read(length) if length else b""
        request = RecordedRequest(http.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                                  {k.lower(): v for k, v in http.headers.items()}, body)
        with self._lock:
            self.requests.append(request)
        if self.spec is not None:
            problems = self.spec.problems(request, strict=self.strict)
            with self._lock:
                self.spec_problems.extend(problems)
        fault = self._take_fault(request.method, request.path)
        if fault and fault.delay and not fault.delay_after_handling:
            time.sleep(fault.delay)
        if fault and fault.after_handling:
            self._dispatch(request)
        reply = fault.reply if fault and fault.reply is not None else self._dispatch(request)
        if fault and fault.delay and fault.delay_after_handling:
            time.sleep(fault.delay)
        self._send(http, reply)

    def _dispatch(self, request: RecordedRequest) -> Reply:
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                return handler(request, **match.groupdict())
        return Reply(404, {"message": f"no route {request.method} {request.path}"})

    @staticmethod
    def _send(http: BaseHTTPRequestHandler, reply: Reply) -> None:
        if isinstance(reply.body, bytes):
            payload = reply.body
        elif isinstance(reply.body, str):
            payload = reply.body.encode()
        elif reply.body is None:
            payload = b""
        else:
            payload = json.dumps(reply.body).encode()
        try:
            http.send_response(reply.status)
            headers = {"Content-Type": "application/json", **reply.headers}
            for name, value in headers.items():
                http.send_header(name, value)
            http.send_header("Content-Length", str(len(payload)))
            http.end_headers()
            http.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer


def json_body(request: RecordedRequest) -> Any:
    return json.loads(request.body or b"null")
