"""Fetching a library image is network input from workspace data, so it is fetched defensively.

- http(s) only; the host is resolved and every address checked: loopback, private, link-local,
  multicast, reserved, unspecified and other non-global addresses are refused unless the operator
  allow-lists the host (`ImageSettings.allowed_hosts`); cloud metadata addresses are refused always.
- The connection is pinned to the checked address (the URL's host is swapped for the IP, the
  `Host` header and TLS SNI/verification keep the name), so a DNS answer that changes between the
  check and the connect (DNS rebinding) cannot redirect the request. Environment proxies are
  ignored for the same reason.
- Redirects are followed by hand, each hop checked again, at most `max_redirects` hops.
- The address policy (`refusal`) and the total deadline are the shared ones of `emailexport.egress`,
  also used by the ESP connectors and the CDN.
- The byte cap is enforced while streaming; one attempt has a total deadline (connect, headers and
  body of every hop, enforced on each socket operation) as well as the connect/read timeouts, so a
  server trickling bytes, even one header byte at a time, cannot hold a worker.
- The declared content type must be image/* and the magic bytes PNG, JPEG, GIF or WebP. SVG is
  refused: it can carry script and external references, and most email clients do not show it.
- Conditional fetches (`fetch_if_changed`) send the last fetch's `If-None-Match` /
  `If-Modified-Since` on every hop; a 304 is `NotModified` and downloads no body. A 304 to a request
  without validators is an error, like any other unexpected status.
- Timeouts, connection errors, 429 (honouring Retry-After) and 5xx are retried with exponential
  backoff and jitter; anything else fails the image at once. Errors name the image id and its URL
  without query string or userinfo (signed URLs carry credentials there).
"""

from __future__ import annotations

import email.utils
import hashlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from emailexport.egress import (
    METADATA,
    EgressRefused,
    ResolveFailed,
    deadline,
    egress_transport,
    refusal,
    system_resolver,
)
from emailexport.errors import TerminalError, TransientError
from emailexport.images.naming import EXTENSIONS
from emailexport.images.settings import ImageSettings

__all__ = ["FetchedImage", "ImageFetchError", "ImageFetcher", "NotModified", "display_url", "sniff_image_type"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
Resolver = Callable[[str, int], list[str]]


class ImageFetchError(TerminalError):
    """An image could not be fetched and retrying will not help."""


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class FetchedImage:
    """The verified bytes of one library image."""

    image_id: str
    data: bytes
    content_type: str  # from the magic bytes
    sha256: str
    etag: str | None = None  # the response's validators, for a conditional fetch next time
    last_modified: str | None = None
    origin: str = "downloaded"  # or "not_modified" (a 304: stored bytes), "library" (the library's copy)

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.content_type]


@dataclass(frozen=True)
class NotModified:
    """A conditional fetch answered 304: the bytes of the last fetch are still current."""

    image_id: str
    etag: str | None  # as the 304 restated them (a server may refresh them), else as sent
    last_modified: str | None


def display_url(url: str) -> str:
    """A URL safe for messages: scheme, host, port and path (no userinfo, query or fragment)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def sniff_image_type(data: bytes) -> str | None:
    """The image type the first bytes prove, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _system_resolver(host: str, port: int) -> list[str]:
    try:
        return system_resolver(host, port)
    except ResolveFailed as exc:
        raise _Retry(str(exc)) from None
    except EgressRefused as exc:
        raise ImageFetchError(str(exc)) from None


_SEMAPHORES: dict[int, threading.BoundedSemaphore] = {}
_SEMAPHORES_LOCK = threading.Lock()


def _semaphore(limit: int) -> threading.BoundedSemaphore:
    """One process-wide bound per configured limit: every fetch of the process shares it."""
    with _SEMAPHORES_LOCK:
        return _SEMAPHORES.setdefault(limit, threading.BoundedSemaphore(limit))


class ImageFetcher:
    """`fetch(image_id, url)` -> `FetchedImage`, or `ImageFetchError` / `TransientError` naming it."""

    def __init__(self, settings: ImageSettings, *, resolver: Resolver = _system_resolver,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.resolve = resolver
        self.sleep = sleep
        self.attempts = 0  # made so far, all images: what the benchmark counts

    def fetch(self, image_id: str, url: str) -> FetchedImage:
        result = self.fetch_if_changed(image_id, url)
        assert isinstance(result, FetchedImage)  # no validators sent: a 304 is refused, not returned
        return result

    def fetch_if_changed(self, image_id: str, url: str, etag: str | None = None,
                         last_modified: str | None = None) -> FetchedImage | NotModified:
        """A conditional GET (`If-None-Match` / `If-Modified-Since` from the last fetch's validators):
        `NotModified` on 304, else the verified bytes. Without validators it is a plain GET."""
        conditions = {k: v for k, v in (("If-None-Match", etag), ("If-Modified-Since", last_modified)) if v}
        label = f"image {image_id} ({display_url(url)})"
        attempts = self.settings.retry_attempts
        with _semaphore(self.settings.max_concurrent_fetches):
            for attempt in range(1, attempts + 1):
                try:
                    return self._attempt(image_id, url, conditions)
                except _Retry as exc:
                    if attempt == attempts:
                        raise TransientError(f"{label}: {exc.reason} (gave up after {attempts} attempts)") from None
                    self.sleep(self._delay(attempt, exc.retry_after))
                except ImageFetchError as exc:
                    raise ImageFetchError(f"{label}: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        base = self.settings.retry_backoff_seconds * 2 ** (attempt - 1)
        if retry_after is not None:
            base = max(base, retry_after)
        # Jitter spreads retries of many exports hitting the same failing host.
        return min(base * (1 + random.random() * 0.25), self.settings.retry_max_delay_seconds)

    def _attempt(self, image_id: str, url: str, conditions: dict[str, str]) -> FetchedImage | NotModified:
        self.attempts += 1
        total = self.settings.timeout_seconds
        timeout = httpx.Timeout(total)
        # The fetcher checks and pins addresses itself (per hop, with its own allow-list), so the
        # transport adds only the total deadline: connect, headers and body of every hop share it.
        with deadline(total), httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False,
                                           transport=egress_transport(None)) as client:
            end = time.monotonic() + total
            current = url
            for hop in range(self.settings.max_redirects + 1):
                where = "" if hop == 0 else f"redirect to {display_url(current)}: "
                try:
                    result = self._get(client, current, end, where, conditions)
                except httpx.TimeoutException:
                    raise _Retry(f"{where}timed out after {self.settings.timeout_seconds:g} s") from None
                except httpx.TransportError as exc:
                    raise _Retry(f"{where}connection failed ({type(exc).__name__})") from None
                if isinstance(result, str):
                    current = result
                    continue
                if result[0] == "":  # 304 (only possible when validators were sent)
                    return NotModified(image_id, result[2].get("etag") or conditions.get("If-None-Match"),
                                       result[2].get("last-modified") or conditions.get("If-Modified-Since"))
                return _verified(image_id, *result, where)
        raise ImageFetchError(f"more than {self.settings.max_redirects} redirect(s)")

    def _get(self, client: httpx.Client, url: str, deadline: float, where: str,
             conditions: dict[str, str]) -> str | tuple[str, bytes, dict[str, str]]:
        """One hop: the next URL of a redirect, or (declared content type, body, validators); a 304 is
        ("", b"", validators)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImageFetchError(f"{where}only http(s) URLs are fetched")
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = self._checked_addresses(host, port, where)
        last: Exception | None = None
        for address in addresses:  # in resolver order; an address that refuses the connection is skipped
            request = client.build_request(
                "GET", httpx.URL(url).copy_with(host=address),
                headers={"Host": parts.netloc.rpartition("@")[2], "Accept": "image/*", **conditions},
                extensions={"sni_hostname": host},
            )
            try:
                response = client.send(request, stream=True)
            except httpx.ConnectError as exc:
                last = exc
                continue
            try:
                return self._read(response, url, deadline, where, bool(conditions))
            finally:
                response.close()
        assert last is not None
        raise last

    def _checked_addresses(self, host: str, port: int, where: str) -> list[str]:
        addresses = self.resolve(host, port)
        if not addresses:
            raise ImageFetchError(f"{where}host {host} does not resolve")
        allowed = self.settings.allows(host, port)
        for address in addresses:
            reason = refusal(address)
            if reason == METADATA or (reason and not allowed):
                hint = "" if allowed else " (an operator may allow-list the host in EMAILEXPORT_IMAGES_ALLOWED_HOSTS)"
                raise ImageFetchError(f"{where}refused: {host} resolves to {address}, {reason}{hint}")
        return addresses

    def _read(self, response: httpx.Response, url: str, deadline: float, where: str,
              conditional: bool) -> str | tuple[str, bytes, dict[str, str]]:
        status = response.status_code
        validators = {k: response.headers[k] for k in ("etag", "last-modified") if response.headers.get(k)}
        if status in _REDIRECTS and response.headers.get("location"):
            return urljoin(url, response.headers["location"])
        if status == 304 and conditional:
            return "", b"", validators
        if status == 429 or status >= 500:
            raise _Retry(f"{where}HTTP {status}", _retry_after(response.headers.get("retry-after")))
        if status != 200:
            raise ImageFetchError(f"{where}HTTP {status}")
        declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not declared.startswith("image/"):
            raise ImageFetchError(f"{where}served as {declared or 'no content type'}, not an image")
        cap = self.settings.max_bytes
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > cap:
            raise ImageFetchError(f"{where}{int(length):,} bytes is over the {cap:,} byte limit")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > cap:
                raise ImageFetchError(f"{where}more than the {cap:,} byte limit")
            if time.monotonic() > deadline:
                raise _Retry(f"{where}timed out after {self.settings.timeout_seconds:g} s")
        return declared, bytes(body), validators


def _verified(image_id: str, declared: str, data: bytes, validators: dict[str, str], where: str) -> FetchedImage:
    if declared == "image/svg+xml":
        raise ImageFetchError(f"{where}SVG images are not supported (they can carry scripts)")
    sniffed = sniff_image_type(data)
    if sniffed is None:
        raise ImageFetchError(f"{where}served as {declared}, but the content is not a PNG, JPEG, GIF or WebP image")
    return FetchedImage(image_id=image_id, data=data, content_type=sniffed, sha256=hashlib.sha256(data).hexdigest(),
                        etag=validators.get("etag"), last_modified=validators.get("last-modified"))


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (a number or an HTTP date), or None."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        parsed: Any = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time())
