"""Real servers on loopback for the image tests: an image server with failure injection and
validators (ETag / Last-Modified routes that answer conditional requests with 304, counting requests,
conditional requests and body bytes), and moto's S3 server with a request log (to count PUTs)."""

from __future__ import annotations

import email.utils
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["CountingMotoServer", "ImageServer", "png_bytes"]


def png_bytes(name: str, size: int = 0) -> bytes:
    """A real, distinct PNG per name (1x1, with `name` in a text chunk), optionally padded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = chunk(b"IHDR", (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0]))
    text = chunk(b"tEXt", b"name\x00" + name.encode() + b"\x00" * size)
    pixels = chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
    return b"\x89PNG\r\n\x1a\n" + header + text + pixels + chunk(b"IEND", b"")


class _Handler(BaseHTTPRequestHandler):
    server: ImageServer  # type: ignore[assignment]

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        srv = self.server
        kind = self.path.split("/")[1]
        held = kind == "hold"  # only these count as in flight (a slow test's sleepers may outlive it)
        with srv.lock:
            srv.hits[self.path] += 1
            count = srv.hits[self.path]
            if self.headers.get("If-None-Match") or self.headers.get("If-Modified-Since"):
                srv.conditional[self.path] += 1
            srv.in_flight += held
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            self.route(kind, self.path.split("?")[0].rsplit("/", 1)[-1], count)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on purpose (size cap, timeout)
        finally:
            with srv.lock:
                srv.in_flight -= held

    def send(self, status: int, body: bytes, content_type: str = "image/png", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()  # no Content-Length: the body ends when the connection closes (HTTP/1.0)
        if status != 304:
            with self.server.lock:
                self.server.body_bytes += len(body)
                self.server.body_bytes_by_path[self.path] += len(body)
            self.wfile.write(body)

    def route(self, kind: str, name: str, count: int) -> None:
        base = f"http://{self.headers['Host']}"
        port = self.server.server_address[1]
        if kind == "img":
            self.send(200, png_bytes(name))
        elif kind == "etag":  # strong ETag per version; If-None-Match with it -> 304; ?pad=N adds N bytes
            version = self.server.versions[name]
            tag = f'"{name}-v{version}"'
            pad = self.path.partition("?pad=")[2]
            if tag in [t.strip() for t in (self.headers.get("If-None-Match") or "").split(",")]:
                self.send(304, b"", ETag=tag)
            else:
                self.send(200, png_bytes(f"{name}-v{version}", size=int(pad) if pad.isdigit() else 0), ETag=tag)
        elif kind == "always304":  # a broken cache in front of the origin
            self.send(304, b"")
        elif kind == "lastmod":  # Last-Modified per version; If-Modified-Since not older -> 304
            version = self.server.versions[name]
            stamp = email.utils.formatdate(1_767_225_600 + 3600 * version, usegmt=True)
            since = self.headers.get("If-Modified-Since")
            if since and email.utils.parsedate_to_datetime(since) >= email.utils.parsedate_to_datetime(stamp):
                self.send(304, b"", Last_Modified=stamp)
            else:
                self.send(200, png_bytes(f"{name}-v{version}"), Last_Modified=stamp)
        elif kind == "hold":  # slow enough for fetches to overlap
            time.sleep(0.15)
            self.send(200, png_bytes(name))
        elif kind == "flaky" and count == 1:
            self.send(500, b"oops", "text/plain")
        elif kind == "throttle" and count == 1:
            self.send(429, b"slow down", "text/plain", Retry_After="1")
        elif kind in ("flaky", "throttle"):
            self.send(200, png_bytes(name))
        elif kind == "down":
            self.send(500, b"oops", "text/plain")
        elif kind == "slow":
            time.sleep(2)
            self.send(200, png_bytes(name))
        elif kind == "big":
            self.send(200, png_bytes(name, size=500_000))
        elif kind == "page":
            self.send(200, b"<html><body>not an image</body></html>", "text/html")
        elif kind == "fakepng":
            self.send(200, b"<html><body>not an image</body></html>", "image/png")
        elif kind == "svg":
            self.send(200, b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "image/svg+xml")
        elif kind == "to-loopback":
            self.send(302, b"", "text/plain", Location=f"http://127.0.0.1:{port}/img/{name}")
        elif kind == "to-metadata":
            self.send(302, b"", "text/plain", Location="http://169.254.169.254/latest/meta-data/")
        elif kind == "hop":
            self.send(302, b"", "text/plain", Location=f"{base}/img/{name}")
        elif kind == "loop":
            self.send(302, b"", "text/plain", Location=f"/loop/{name}")
        else:
            self.send(404, b"not found", "text/plain")


class ImageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.hits: Counter[str] = Counter()
        self.conditional: Counter[str] = Counter()  # requests that carried If-None-Match / If-Modified-Since
        self.body_bytes = 0  # response body bytes sent (304s send none)
        self.body_bytes_by_path: Counter[str] = Counter()
        self.versions: Counter[str] = Counter()  # bump to change what /etag/<name>, /lastmod/<name> serve
        self.in_flight = 0
        self.max_in_flight = 0
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str, host: str = "localhost") -> str:
        return f"http://{host}:{self.port}{path}"

    def reset(self) -> None:
        with self.lock:
            self.hits.clear()
            self.conditional.clear()
            self.body_bytes = 0
            self.body_bytes_by_path.clear()
            self.versions.clear()
            self.max_in_flight = 0


class CountingMotoServer:
    """moto's S3 in server mode on a free loopback port: the app and request handler
    `moto.server.ThreadedMotoServer` runs, wrapped to log every request (method, path)."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        self.requests: list[tuple[str, str]] = []
        app = DomainDispatcherApplication(create_backend_app)

        def logged(environ: dict[str, Any], start_response: Any) -> Any:
            self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
            return app(environ, start_response)

        self.server = make_server("127.0.0.1", 0, logged, threaded=True, request_handler=MotoRequestHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def puts(self, bucket: str) -> list[str]:
        """Paths of the PUTs of objects into `bucket` so far."""
        return [path for method, path in self.requests if method == "PUT" and path.startswith(f"/{bucket}/")]

    def stop(self) -> None:
        self.server.shutdown()
