"""The one address policy and total deadline of every outbound request (images, ESP connectors, CDN).

Workspace data names the hosts this application talks to (image URLs, a connector's
`api_base_url`, a CDN's `endpoint_url`), so a workspace author could point a request at the
machine's own services or the cloud metadata endpoint (SSRF). Every outbound request therefore
goes through this module:

- **Address policy** (`refusal`, `EgressPolicy`): a host is resolved once and every address it
  resolves to is checked. Loopback, private, link-local, multicast, reserved, unspecified and other
  non-global addresses are refused unless the operator allow-lists the host (`host` or
  `host:port`); cloud metadata addresses are refused always, allow-list or not.
- **Pinning**: the connection is made to the address that was checked (`EgressBackend` resolves
  and checks inside httpcore's connect, then connects to that IP; the URL, the `Host` header and
  TLS SNI/verification keep the name), so a DNS answer that changes between check and connect
  (DNS rebinding) cannot redirect the request.
- **Total deadline** (`deadline`): httpx's timeouts bound each socket operation, so a server that
  sends one byte every 2 s never trips a 10 s read timeout. Inside `with deadline(seconds):` every
  connect, TLS handshake, write and read of the calling thread waits at most the time left, and
  fails with a timeout once it is spent: connect, headers and body share one budget.

Written by hand because no maintained library does this for httpx: `httpx` has no total-deadline
option and no hook between DNS resolution and connect; httpcore's pluggable `NetworkBackend` is the
supported seam for both, and this module is such a backend.

Settings (prefix `EMAILEXPORT_EGRESS_`): `allowed_hosts`, the allow-list of ESP and CDN endpoints
(self-hosted targets, test fakes). Images keep their own list, `EMAILEXPORT_IMAGES_ALLOWED_HOSTS`,
because an intranet image server is a different trust decision from an intranet ESP.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import socket
import threading
import time
import typing
from collections.abc import Callable, Iterable, Iterator
from typing import Annotated, Any

import httpcore
import httpx
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from emailexport.errors import TerminalError, TransientError

__all__ = [
    "METADATA_ADDRESSES",
    "EgressBackend",
    "EgressPolicy",
    "EgressRefused",
    "EgressSettings",
    "deadline",
    "egress_transport",
    "refusal",
    "system_resolver",
]

METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
    "169.254.170.2",  # AWS ECS task metadata
    "169.254.169.123",  # AWS time sync
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",  # Oracle Cloud (classic)
    "fd00:ec2::254",  # AWS IMDS over IPv6
))
METADATA = "a cloud metadata address"
ALLOW_HINT = "EMAILEXPORT_EGRESS_ALLOWED_HOSTS"

Resolver = Callable[[str, int], list[str]]


class EgressRefused(TerminalError):
    """The address policy refused a destination; retrying cannot help."""


class ResolveFailed(TransientError):
    """Name resolution failed temporarily (or ran out of the deadline)."""


def refusal(address: str) -> str | None:
    """Why an address may not be connected to (without an allow-list entry), or None."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return METADATA
    for label, flag in (("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
                        ("multicast", ip.is_multicast), ("unspecified", ip.is_unspecified),
                        ("private", ip.is_private), ("reserved", ip.is_reserved)):
        if flag:
            return f"{'an' if label[0] in 'aeiou' else 'a'} {label} address"
    return None if ip.is_global else "not a public address"


# -- the total deadline of the calling thread ---------------------------------------------------

_local = threading.local()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every egress connect/read/write of this thread inside the block shares `seconds` in total."""
    previous = getattr(_local, "deadline", None)
    end = time.monotonic() + seconds
    _local.deadline = end if previous is None else min(previous, end)
    try:
        yield
    finally:
        _local.deadline = previous


def _remaining(timeout: float | None) -> float | None:
    """The socket timeout for the next operation: `timeout`, cut to what is left of the deadline."""
    end: float | None = getattr(_local, "deadline", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        return 0.0
    return left if timeout is None else min(timeout, left)


# -- resolution -----------------------------------------------------------------------------------

_DNS = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="egress-dns")


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses (getaddrinfo, in a helper thread so the deadline bounds it too)."""
    future = _DNS.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=_remaining(30.0))
    except concurrent.futures.TimeoutError:
        raise ResolveFailed(f"resolving {host} timed out") from None
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise ResolveFailed(f"resolving {host} failed temporarily") from None
        raise EgressRefused(f"host {host} does not resolve") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def split_hosts(value: Any) -> Any:
    """An allow-list setting (`host` or `host:port`, comma-separated in the environment) -> its
    lower-cased entries; other values are left for pydantic to refuse."""
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, list | tuple):
        return [str(v).strip().lower() for v in value if str(v).strip()]
    return value


class EgressSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EMAILEXPORT_EGRESS_", env_file=".env", extra="ignore")

    # `host` or `host:port`, comma-separated in the environment: an ESP or CDN endpoint that may
    # resolve to a loopback/private address (a self-hosted MinIO, a test fake). Metadata: never.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return split_hosts(value)

    def policy(self) -> EgressPolicy:
        return EgressPolicy(self.allowed_hosts)


class EgressPolicy:
    """Resolve a host once and refuse it unless every address it resolves to may be reached."""

    def __init__(self, allowed_hosts: Iterable[str] = (), *, resolver: Resolver = system_resolver,
                 hint: str = ALLOW_HINT) -> None:
        self.allowed_hosts = frozenset(h.strip().lower() for h in allowed_hosts if h.strip())
        self.resolve = resolver
        self.hint = hint

    @classmethod
    def from_environment(cls) -> EgressPolicy:
        return EgressSettings().policy()

    def allows(self, host: str, port: int) -> bool:
        host = host.lower().strip("[]")
        return host in self.allowed_hosts or f"{host}:{port}" in self.allowed_hosts

    def check(self, host: str, port: int) -> list[str]:
        """The addresses to connect to, in resolver order; `EgressRefused` naming the reason."""
        host = host.strip("[]")
        try:
            ipaddress.ip_address(host.split("%")[0])
            addresses = [host]
        except ValueError:
            addresses = self.resolve(host, port)
        if not addresses:
            raise EgressRefused(f"host {host} does not resolve")
        allowed = self.allows(host, port)
        for address in addresses:
            reason = refusal(address)
            if reason == METADATA or (reason and not allowed):
                hint = "" if allowed or reason == METADATA else f" (an operator may allow-list the host in {self.hint})"
                raise EgressRefused(f"refused: {host} resolves to {address}, {reason}{hint}")
        return addresses


# -- the httpcore network backend -----------------------------------------------------------------


class _DeadlineStream(httpcore.NetworkStream):
    """A connected stream whose every operation waits at most what is left of the deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        left = _remaining(timeout)
        if left == 0.0:
            raise httpcore.ReadTimeout("the total deadline of the request passed")
        return self._inner.read(max_bytes, left)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        left = _remaining(timeout)
        if left == 0.0:
            raise httpcore.WriteTimeout("the total deadline of the request passed")
        self._inner.write(buffer, left)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        left = _remaining(timeout)
        if left == 0.0:
            raise httpcore.ConnectTimeout("the total deadline of the request passed")
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class EgressBackend(httpcore.NetworkBackend):
    """httpcore's sync backend with the address policy at connect (None: the caller checked and
    pinned already, as the image fetcher does) and the thread's deadline on every operation."""

    def __init__(self, policy: EgressPolicy | None) -> None:
        self.policy = policy
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: typing.Iterable[Any] | None = None) -> httpcore.NetworkStream:
        addresses = [host] if self.policy is None else self.policy.check(host, port)
        last: Exception | None = None
        for address in addresses:  # the checked addresses only, in resolver order
            left = _remaining(timeout)
            if left == 0.0:
                raise httpcore.ConnectTimeout("the total deadline of the request passed")
            try:
                stream = self._inner.connect_tcp(address, port, left, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
                continue
            return _DeadlineStream(stream)
        assert last is not None
        raise last

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: typing.Iterable[Any] | None = None) -> httpcore.NetworkStream:
        raise EgressRefused("unix sockets are not an egress destination")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def egress_transport(policy: EgressPolicy | None, **kwargs: Any) -> httpx.HTTPTransport:
    """An httpx transport through `EgressBackend` (no environment proxies: they would bypass the
    pinning). Other keyword arguments go to `httpx.HTTPTransport`."""
    transport = httpx.HTTPTransport(trust_env=False, **kwargs)
    pool = transport._pool
    if not isinstance(pool, httpcore.ConnectionPool):  # pragma: no cover - no proxy is configured above
        raise TypeError("egress transport expects a direct connection pool")
    pool._network_backend = EgressBackend(policy)
    return transport


def pinned_endpoint(url: str, policy: EgressPolicy) -> str:
    """A configured service endpoint (e.g. an S3-compatible `endpoint_url`) checked against the
    policy. A plain-http endpoint comes back with its host replaced by the checked address, so the
    client (botocore, which resolves names itself) cannot be redirected by a second DNS answer; an
    https endpoint keeps its name, because certificate verification needs it, and a rebinding to an
    internal address would then fail verification (the internal service has no certificate for the
    attacker's name)."""
    parts = httpx.URL(url)
    if parts.scheme not in ("http", "https") or not parts.host:
        raise EgressRefused(f"endpoint {url!r}: only http(s) endpoints are used")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = policy.check(parts.host, port)
    if parts.scheme == "https":
        return url
    return str(parts.copy_with(host=addresses[0]))
