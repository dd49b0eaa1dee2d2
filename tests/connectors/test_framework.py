"""The connector plumbing itself: the registry, the HTTP boundary and the spec validator."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from connectors.errors import (
    AmbiguousCreateError,
    AuthenticationError,
    ConnectorNotFoundError,
    RateLimitedError,
    ResourceNotFoundError,
    ServerError,
    VendorValidationError,
)
from connectors.http import VendorHttp, retry_after_seconds
from connectors.registry import esp_connector_class, register_esp_connector
from tests.connectors.fakes.base import FakeVendor, Reply
from tests.connectors.spec import RecordedRequest, load_spec


def test_unknown_connector_type_names_the_known_ones():
    with pytest.raises(ConnectorNotFoundError, match=r"known types: braze, brevo, (.*, )?klaviyo, mailchimp"):
        esp_connector_class("hotmail")


def test_registering_over_an_existing_name_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_esp_connector("brevo", "x:Y")


class Echo(FakeVendor):
    def register(self) -> None:
        self.route("GET", "/thing", lambda r: Reply(200, {"ok": True}))
        self.route("POST", "/things", lambda r: Reply(201, {"id": "1"}))


@pytest.fixture
def echo():
    with Echo() as fake:
        yield fake


def _client(fake, **kwargs) -> VendorHttp:
    return VendorHttp("Echo", fake.url, headers={"api-key": "secret-value-123"}, secrets=["secret-value-123"],
                      timeout=kwargs.pop("timeout", 1.0), **kwargs)


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (403, AuthenticationError), (404, ResourceNotFoundError),
     (400, VendorValidationError), (422, VendorValidationError)],
)
def test_terminal_statuses_become_typed_errors_without_retries(echo, status, error):
    echo.inject(reply=Reply(status, {"message": "nope: secret-value-123"}), times=5)
    with pytest.raises(error) as info:
        _client(echo).request("GET", "/thing")
    assert f"HTTP {status}: nope" in str(info.value)
    assert "secret-value-123" not in str(info.value)
    assert len(echo.requests) == 1


def test_server_errors_on_safe_requests_are_retried(echo):
    echo.inject(reply=Reply(503, {"message": "busy"}), times=2)
    assert _client(echo, sleep=lambda s: None).request("GET", "/thing").json() == {"ok": True}
    assert len(echo.requests) == 3


def test_server_errors_stop_after_the_attempts(echo):
    echo.inject(reply=Reply(500, {"message": "down"}), times=5)
    with pytest.raises(ServerError, match="HTTP 500: down"):
        _client(echo, sleep=lambda s: None).request("GET", "/thing")
    assert len(echo.requests) == 3


def test_a_create_is_never_blindly_repeated(echo):
    echo.inject(reply=Reply(502, {"message": "bad gateway"}))
    with pytest.raises(AmbiguousCreateError):
        _client(echo, sleep=lambda s: None).request("POST", "/things", creates=True, json={})
    assert len(echo.requests) == 1
    echo.inject(delay=1.5, delay_after_handling=True)
    with pytest.raises(AmbiguousCreateError, match="no answer in time"):
        _client(echo).request("POST", "/things", creates=True, json={})


def test_rate_limits_are_waited_out_then_given_up(echo):
    echo.inject(reply=Reply(429, {"message": "slow down"}, {"Retry-After": "1"}))
    started = time.monotonic()
    assert _client(echo).request("GET", "/thing").status_code == 200
    assert time.monotonic() - started >= 0.95
    waits: list[float] = []
    echo.inject(reply=Reply(429, {"message": "slow down"}, {"Retry-After": "7"}), times=10)
    with pytest.raises(RateLimitedError) as info:
        _client(echo, sleep=waits.append).request("GET", "/thing")
    assert waits == [7.0, 7.0, 7.0] and info.value.retry_after == 7.0


def test_a_wait_longer_than_the_request_bound_is_handed_over_with_the_vendors_own_figure(echo):
    # Braze's hourly window: sleeping 120 s (the old cap) three times would neither reach the reset
    # nor tell the task retry how long to wait.
    waits: list[float] = []
    echo.inject(reply=Reply(429, {"message": "hourly limit"}, {"Retry-After": "3300"}))
    with pytest.raises(RateLimitedError) as info:
        _client(echo, sleep=waits.append).request("GET", "/thing")
    assert waits == [] and info.value.retry_after == 3300.0


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "3"})) == 3.0
    date = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"})
    assert retry_after_seconds(date, now=1445412480.0) == 10.0
    assert retry_after_seconds(httpx.Response(429)) is None


def test_the_spec_validator_rejects_what_the_vendor_would():
    spec = load_spec("brevo/swagger.yaml", "/v3")
    good = {"templateName": "A", "subject": "S", "sender": {"email": "a@b.example"}, "htmlContent": "<p>x</p>"}
    headers = {"api-key": "k", "content-type": "application/json"}
    assert spec.problems(RecordedRequest("POST", "/v3/smtp/templates", {}, headers, json.dumps(good).encode())) == []
    bad = RecordedRequest("POST", "/v3/smtp/templates", {}, {"content-type": "application/json"},
                          json.dumps({"templateName": 1, "subjekt": "S"}).encode())
    problems = " ".join(spec.problems(bad))
    assert "no credentials" in problems and "'subject' is a required property" in problems
    assert "'subjekt' was unexpected" in problems and "1 is not of type 'string'" in problems
    assert "no such operation" in spec.problems(RecordedRequest("POST", "/v3/nowhere", {}, headers, b"{}"))[0]


def test_a_patch_marked_idempotent_is_repeated_after_a_server_error(echo):
    echo.route("PATCH", "/thing", lambda r: Reply(200, {"ok": True}))
    echo.inject(method="PATCH", reply=Reply(500, {"message": "blip"}))
    assert _client(echo, sleep=lambda s: None).request("PATCH", "/thing", idempotent=True, json={}).status_code == 200
    echo.inject(method="PATCH", reply=Reply(500, {"message": "blip"}))
    with pytest.raises(ServerError):
        _client(echo, sleep=lambda s: None).request("PATCH", "/thing", json={})
