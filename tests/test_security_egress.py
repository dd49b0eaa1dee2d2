"""Issue 18, items 2, 4 and 6: outbound requests pass one address policy and a total deadline, and
no form of a secret (nor more than an excerpt of a vendor body) reaches messages and logs.

Every attack runs against a real socket on 127.0.0.1 that records what reached it.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from connectors.errors import TerminalConnectorError, TimeoutConnectorError
from connectors.esp.brevo import BrevoConnector
from connectors.http import VendorHttp
from emailexport.egress import EgressPolicy, EgressRefused, deadline, egress_transport, pinned_endpoint
from emailexport.errors import TerminalError, TransientError
from emailexport.images.fetch import ImageFetcher
from emailexport.images.settings import ImageSettings
from emailexport.models import Connector
from emailexport.secrets import excerpt, redact, register_secret

KEY = "xkeysib-0123456789abcdef0123456789abcdef-QwErTyUiOp"


class RawServer:
    """A TCP server on 127.0.0.1 that records every connection and the bytes it received, and
    answers with `respond(connection)`."""

    def __init__(self, respond: Callable[[socket.socket], None]) -> None:
        self.respond = respond
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                data = conn.recv(65536)
                while b"\r\n\r\n" not in data:
                    more = conn.recv(65536)
                    if not more:
                        break
                    data += more
                self.received += data
                self.respond(conn)
            except OSError:
                pass

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


@pytest.fixture
def server_factory() -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    servers: list[RawServer] = []

    def make(respond: Callable[[socket.socket], None]) -> RawServer:
        servers.append(RawServer(respond))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def internal_404(conn: socket.socket) -> None:
    """An internal service answering with its secrets, and echoing the key upper-cased and cut."""
    body = ("INTERNAL-SECRET-DATA-42 " + "internal detail " * 400 + f" key={KEY.upper()} " + KEY[:14]).encode()
    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


def trickle_headers(conn: socket.socket) -> None:
    """One header byte every 2 s, for up to a minute (a per-read timeout never fires)."""
    header = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000
    for byte in header[:30]:
        conn.sendall(bytes([byte]))
        time.sleep(2)


def brevo(base_url: str) -> BrevoConnector:
    record = Connector(id=3, type="brevo", name="Brevo",
                       settings={"api_base_url": base_url, "sender_email": "shop@example.com"})
    return BrevoConnector(record, {"api_key": KEY}, sleep=lambda _s: None)


def push(connector: BrevoConnector) -> None:
    from connectors.base import PushItem

    connector.push(PushItem(locale="en-US", name="N", subject="S", preheader="", html="<p>x</p>", plaintext="x"))


# -- item 2: SSRF through connectors and CDN endpoints --------------------------------------------


def test_a_connector_pointed_at_loopback_is_refused_and_the_key_never_leaves(server_factory, monkeypatch):
    monkeypatch.delenv("EMAILEXPORT_EGRESS_ALLOWED_HOSTS", raising=False)
    server = server_factory(internal_404)
    connector = brevo(f"{server.url}/internal")
    with pytest.raises(TerminalConnectorError) as raised:
        push(connector)
    message = str(raised.value)
    assert "refused: 127.0.0.1 resolves to 127.0.0.1, a loopback address" in message
    assert "EMAILEXPORT_EGRESS_ALLOWED_HOSTS" in message
    time.sleep(0.2)
    assert server.connections == 0 and server.received == b""  # not even a TCP connection


@pytest.mark.parametrize("base_url", [
    "http://169.254.169.254/latest/meta-data", "http://[::ffff:169.254.169.254]/v3",
    "http://[fd00:ec2::254]/v3", "http://10.0.0.8/v3", "http://0.0.0.0:80/v3",
])
def test_metadata_and_private_addresses_are_refused(base_url, monkeypatch):
    # The metadata addresses stay refused even when an operator allow-lists them by mistake.
    monkeypatch.setenv("EMAILEXPORT_EGRESS_ALLOWED_HOSTS", "169.254.169.254,[::ffff:169.254.169.254],fd00:ec2::254")
    with pytest.raises(TerminalConnectorError, match="refused"):
        push(brevo(base_url))


def test_a_name_is_resolved_once_and_the_connection_pinned_to_the_checked_address(server_factory):
    # DNS rebinding: the first answer is checked; a second lookup would say 169.254.169.254.
    answers = [["127.0.0.1"], ["169.254.169.254"]]
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[len(calls) - 1]

    server = server_factory(internal_404)
    policy = EgressPolicy(["esp.test"], resolver=resolver)
    http = VendorHttp("Vendor", f"http://esp.test:{server.port}", policy=policy, max_attempts=1)
    with pytest.raises(TerminalConnectorError, match="HTTP 404"):
        http.request("GET", "/x")
    assert calls == ["esp.test"]
    assert b"Host: esp.test:" in server.received  # the name is kept; the socket went to the address


def test_an_allow_listed_self_hosted_target_works_and_its_error_body_is_an_excerpt(server_factory):
    server = server_factory(internal_404)
    http = VendorHttp("Brevo", server.url, headers={"api-key": KEY}, secrets=[KEY],
                      policy=EgressPolicy(["127.0.0.1"]), max_attempts=1)
    with pytest.raises(TerminalConnectorError) as raised:
        http.request("GET", "/internal")
    message = str(raised.value)
    assert message.startswith("Brevo: GET /internal: HTTP 404: INTERNAL-SECRET-DATA-42 internal detail")
    assert len(message) < 260  # an excerpt, not the 6 KB body
    assert KEY[:10].lower() not in message.lower() and "QWERTYUIOP" not in message.upper()


def test_a_cdn_endpoint_passes_the_policy_before_any_credential_is_used(server_factory, monkeypatch):
    from connectors.cdn.s3 import S3CdnConnector
    from emailexport.models import CdnConnector

    monkeypatch.delenv("EMAILEXPORT_EGRESS_ALLOWED_HOSTS", raising=False)
    server = server_factory(internal_404)
    for endpoint in (server.url, "http://169.254.169.254", "http://[::1]:9000"):
        config = CdnConnector(id=1, type="s3", name="CDN", bucket="b", endpoint_url=endpoint,
                              base_url="https://cdn.example.com/", credentials="env:UNUSED")
        with pytest.raises(TerminalError, match="endpoint_url refused"):
            S3CdnConnector(config, {"key": "AKIAEXAMPLEKEY", "secret": "s" * 40})
    assert server.connections == 0
    # Allow-listed by name, a plain-http endpoint is pinned to the address that was checked.
    policy = EgressPolicy(["minio.internal"], resolver=lambda host, port: ["10.1.2.3"])
    assert pinned_endpoint("http://minio.internal:9000/", policy) == "http://10.1.2.3:9000/"
    with pytest.raises(EgressRefused, match="metadata"):
        pinned_endpoint("http://minio.internal:9000/", EgressPolicy(["minio.internal"],
                                                                   resolver=lambda h, p: ["169.254.169.254"]))


# -- item 4: a total deadline per attempt -------------------------------------------------------------


def test_a_connector_attempt_is_cut_at_its_deadline_by_a_server_trickling_header_bytes(server_factory):
    server = server_factory(trickle_headers)
    http = VendorHttp("Vendor", server.url, policy=EgressPolicy(["127.0.0.1"]), timeout=4.0, max_attempts=1)
    started = time.monotonic()
    with pytest.raises(TimeoutConnectorError, match="timed out"):
        http.request("GET", "/templates")
    elapsed = time.monotonic() - started
    assert 3.5 < elapsed < 7.0, elapsed  # per-read timeouts alone: 60 s (one byte every 2 s)


def test_an_image_attempt_is_cut_at_its_deadline_by_a_server_trickling_header_bytes(server_factory):
    server = server_factory(trickle_headers)
    settings = ImageSettings(allowed_hosts=["127.0.0.1"], timeout_seconds=4.0, retry_attempts=1)
    started = time.monotonic()
    with pytest.raises(TransientError, match="timed out"):
        ImageFetcher(settings).fetch("hero", f"{server.url}/hero.png")
    elapsed = time.monotonic() - started
    assert 3.5 < elapsed < 7.0, elapsed


def test_the_deadline_covers_a_body_trickled_after_quick_headers(server_factory):
    def slow_body(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            conn.sendall(b" ")
            time.sleep(1)

    server = server_factory(slow_body)
    http = VendorHttp("Vendor", server.url, policy=EgressPolicy(["127.0.0.1"]), timeout=3.0, max_attempts=1)
    started = time.monotonic()
    with pytest.raises(TimeoutConnectorError):
        http.request("GET", "/templates")
    assert time.monotonic() - started < 6.0


def test_nested_deadlines_keep_the_earlier_end():
    import httpx

    with deadline(0.0), httpx.Client(transport=egress_transport(EgressPolicy(["127.0.0.1"]))) as client, \
            pytest.raises(httpx.TimeoutException):
        client.get("http://127.0.0.1:9/")


# -- item 6: redaction ---------------------------------------------------------------------------------


@pytest.mark.parametrize("form", [
    KEY, KEY.upper(), KEY.lower(), KEY[:8], KEY[:14], KEY[-9:], KEY[10:30].upper(), f"Bearer {KEY[3:]}",
])
def test_every_piece_of_eight_or_more_characters_of_a_secret_is_redacted_in_any_case(form):
    text = f"vendor said: invalid key '{form}' (code 401)"
    cleaned = redact(text, [KEY])
    assert "***" in cleaned and cleaned.startswith("vendor said: invalid key '") and cleaned.endswith("(code 401)")
    folded = cleaned.lower()
    for i in range(len(KEY) - 7):
        assert KEY[i:i + 8].lower() not in folded


def test_redaction_leaves_text_that_shares_less_than_eight_characters():
    # "xkeysib" (7 characters) is in every Brevo key and says nothing about this one.
    text = "xkeysib is the prefix of every Brevo key; 0123456 is not this one either"
    assert redact(text, [KEY]) == text


def test_an_excerpt_is_short_and_clean():
    body = "<html><body><h1>Error</h1>\x1b[31m\u202eevil\u202c\n\n" + "detail " * 1000 + "</body></html>"
    cut = excerpt(body)
    assert len(cut) <= 200 and cut.endswith("…")
    assert "<" not in cut and "\x1b" not in cut and "\u202e" not in cut and "  " not in cut
    assert cut.startswith("Error [31m evil detail detail")


def test_log_records_of_the_process_are_redacted_before_any_handler(caplog):
    secret = "sk_live_REDACTME0123456789abcdef"
    register_secret(secret)
    logger = logging.getLogger("prefect.flow_runs")  # the logger Prefect's API handler ships
    with caplog.at_level(logging.INFO, logger="prefect.flow_runs"):
        logger.info("vendor echoed %s and %s", secret.upper(), secret[3:15])
        try:
            raise RuntimeError(f"boom {secret[::-1][::-1].lower()}")
        except RuntimeError:
            logger.exception("push failed")
    text = caplog.text + "".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "vendor echoed *** and ***" in text and "boom ***" in text
    for i in range(len(secret) - 7):
        assert secret[i:i + 8].lower() not in text.lower()


def test_a_resolved_credential_is_registered_for_log_redaction():
    from emailexport.secrets import registered_secrets, resolve_credentials

    value = "re-9f8e7d6c5b4a3210-registered"
    resolve_credentials("env:X", {"X": f'{{"api_key": "{value}"}}'})
    assert value in registered_secrets()
