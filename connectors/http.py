"""The one HTTP boundary every ESP connector talks through (httpx).

It turns every network and HTTP failure into a typed connector error (transient or terminal),
honours the vendor's rate-limit signals (Retry-After, or the reset header a vendor documents)
by waiting, retries what is safe to retry with exponential backoff and jitter, bounds the number
of requests in flight, and never lets a credential into a message or a log line.

Every request passes the shared address policy (`emailexport.egress`: the vendor's host is
resolved once, loopback/private/link-local/metadata addresses are refused unless the operator
allow-lists the host in `EMAILEXPORT_EGRESS_ALLOWED_HOSTS`, and the connection is pinned to the
checked address), and each attempt has a total deadline (`timeout`) covering connect, headers and
body, so a vendor (or anything posing as one) trickling bytes cannot hold an export. A vendor's
error body reaches messages only as a short, cleaned, redacted excerpt (`excerpt`), never whole.

A create (a POST that makes a resource) is never blindly retried: if its answer is lost (a
timeout after the request was sent, a dropped connection, a 5xx), it raises
`AmbiguousCreateError` and the shared push decides (look the resource up by its marker first,
connectors/base.py).
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from connectors.errors import (
    AmbiguousCreateError,
    AuthenticationError,
    RateLimitedError,
    ResourceNotFoundError,
    ServerError,
    TerminalConnectorError,
    TimeoutConnectorError,
    TransientConnectorError,
    VendorValidationError,
    redact,
)
from emailexport.egress import EgressPolicy, EgressRefused, ResolveFailed, deadline, egress_transport
from emailexport.secrets import excerpt, register_secret

__all__ = ["VendorHttp", "error_body", "retry_after_seconds"]

logger = logging.getLogger("emailexport.connectors")

_IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}


def retry_after_seconds(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (now if now is not None else time.time()))


def error_body(response: httpx.Response) -> dict[str, Any] | str:
    """An error response's JSON object, or (no JSON object) the start of its text, for messages."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    return body if isinstance(body, dict) else str(body)[:300]


def _vendor_message(response: httpx.Response) -> str:
    """The vendor's own error text from common body shapes, else the start of the body."""
    body = error_body(response)
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "detail", "errors", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, list) and value:
                first = value[0]
                if isinstance(first, dict):
                    return str(first.get("detail") or first.get("message") or first.get("title") or first)
                return str(first)
            if isinstance(value, dict) and value:
                return str(value.get("message") or value)
    return str(body)[:300]


class VendorHttp:
    """An httpx client for one vendor: typed errors, rate limits, bounded concurrency."""

    def __init__(
        self,
        vendor: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        secrets: Sequence[str] = (),
        timeout: float = 30.0,
        max_in_flight: int = 4,
        max_attempts: int = 3,
        max_rate_limit_waits: int = 3,
        max_wait_seconds: float = 120.0,
        rate_limit_reset: Callable[[httpx.Response], float | None] | None = None,
        error_message: Callable[[httpx.Response], str] = _vendor_message,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        policy: EgressPolicy | None = None,
    ) -> None:
        """`timeout` bounds each socket operation and, in total, each attempt. `transport` replaces
        the network layer (tests with a mock transport): the address policy applies to the real
        network only, which is the only one workspace data can reach."""
        self.vendor = vendor
        self._secrets = [s for s in secrets if s]
        register_secret(*self._secrets)  # and out of every log record of the process
        self._timeout = timeout
        if transport is None:
            transport = egress_transport(policy or EgressPolicy.from_environment())
        self._client = httpx.Client(base_url=base_url, headers=dict(headers or {}), timeout=timeout,
                                    transport=transport, follow_redirects=False, trust_env=False)
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._max_attempts = max_attempts
        self._max_rate_limit_waits = max_rate_limit_waits
        self._max_wait = max_wait_seconds
        self._rate_limit_reset = rate_limit_reset
        self._error_message = error_message
        self._sleep = sleep

    def close(self) -> None:
        self._client.close()

    def set_header(self, name: str, value: str, *, secret: bool = False) -> None:
        """Set a default header (e.g. a refreshed bearer token); secret values are redacted."""
        self._client.headers[name] = value
        if secret:
            self._secrets.append(value)
            self._secrets.append(value.split(" ", 1)[-1])
            register_secret(value, value.split(" ", 1)[-1])

    def _fail(self, text: str) -> str:
        return redact(f"{self.vendor}: {text}", self._secrets)

    def _vendor_text(self, response: httpx.Response) -> str:
        """The vendor's error text as a short, cleaned excerpt (redacted by `_fail` with the rest)."""
        try:
            text = self._error_message(response)
        except Exception:  # a vendor parser meeting an unexpected body: fall back to the generic one
            text = _vendor_message(response)
        return excerpt(redact(text, self._secrets))

    def _backoff(self, attempt: int) -> float:
        # Exponential with full jitter, so many workers hitting one vendor do not retry in step.
        return min(10.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.5)

    def request(
        self,
        method: str,
        path: str,
        *,
        creates: bool = False,
        idempotent: bool | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send one logical request; return a 2xx response or raise a typed `ConnectorError`.

        `idempotent=True` marks a PATCH or POST that is safe to repeat (it sets a value, e.g.
        activating a version); by default only GET/HEAD/PUT/DELETE/OPTIONS are repeated.
        """
        method = method.upper()
        safe_to_repeat = (method in _IDEMPOTENT if idempotent is None else idempotent) and not creates
        waits = 0
        attempt = 0
        while True:
            attempt += 1
            try:
                # The body is read inside `request`, so connect, headers and body share the deadline.
                with self._slots, deadline(self._timeout):
                    response = self._client.request(method, path, json=json, params=params, headers=headers,
                                                    content=content)
            except EgressRefused as exc:  # nothing was sent: the check runs before the connect
                raise TerminalConnectorError(self._fail(f"{method} {path}: {exc}")) from None
            except ResolveFailed as exc:
                if attempt < self._max_attempts:
                    self._sleep(self._backoff(attempt))
                    continue
                raise TransientConnectorError(self._fail(f"{method} {path}: {exc}")) from None
            except httpx.TimeoutException as exc:
                sent = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
                error: TransientConnectorError = (
                    AmbiguousCreateError(self._fail(f"{method} {path}: no answer in time; the create may have "
                                                    "happened"))
                    if creates and sent else TimeoutConnectorError(self._fail(f"{method} {path}: timed out"))
                )
                if (safe_to_repeat or not sent) and attempt < self._max_attempts:
                    self._sleep(self._backoff(attempt))
                    continue
                raise error from None
            except httpx.TransportError as exc:
                connect_failed = isinstance(exc, httpx.ConnectError)
                if (safe_to_repeat or connect_failed) and attempt < self._max_attempts:
                    self._sleep(self._backoff(attempt))
                    continue
                if creates and not connect_failed:
                    raise AmbiguousCreateError(self._fail(f"{method} {path}: connection lost after sending; the "
                                                          "create may have happened")) from None
                raise TransientConnectorError(self._fail(f"{method} {path}: {type(exc).__name__}")) from None
            logger.debug("%s %s %s -> %s", self.vendor, method, path, response.status_code)
            if response.status_code < 400:
                return response
            if response.status_code == 429:
                wait = retry_after_seconds(response)
                if wait is None and self._rate_limit_reset is not None:
                    wait = self._rate_limit_reset(response)
                wait = wait if wait is not None else self._backoff(waits + 1)
                # A wait longer than max_wait (Braze's hourly window) is not slept through here: the
                # error carries the vendor's own figure, for the caller's retry to honour.
                if waits < self._max_rate_limit_waits and wait <= self._max_wait:
                    waits += 1
                    logger.info("%s rate limit reached; waiting %.1f s as the vendor asked", self.vendor, wait)
                    self._sleep(wait)
                    attempt -= 1  # waiting out a rate limit is not a failed attempt
                    continue
                raise RateLimitedError(self._fail(f"{method} {path}: HTTP 429: {self._vendor_text(response)}"),
                                       retry_after=wait)
            if response.status_code >= 500:
                if safe_to_repeat and attempt < self._max_attempts:
                    self._sleep(self._backoff(attempt))
                    continue
                message = self._fail(f"{method} {path}: HTTP {response.status_code}: {self._vendor_text(response)}")
                if creates:
                    raise AmbiguousCreateError(message, status_code=response.status_code)
                raise ServerError(message, status_code=response.status_code)
            raise self._terminal(method, path, response)

    def _terminal(self, method: str, path: str, response: httpx.Response) -> TerminalConnectorError:
        status = response.status_code
        message = self._fail(f"{method} {path}: HTTP {status}: {self._vendor_text(response)}")
        if status in (401, 403):
            return AuthenticationError(message, status_code=status)
        if status in (404, 410):
            return ResourceNotFoundError(message, status_code=status)
        if status in (400, 409, 413, 415, 422):
            return VendorValidationError(message, status_code=status)
        return TerminalConnectorError(message, status_code=status)
