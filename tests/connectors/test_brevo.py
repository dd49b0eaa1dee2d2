"""Brevo connector: the shared contract against the loopback Brevo, plus what is Brevo's own."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from connectors.errors import AuthenticationError, TerminalConnectorError, VendorValidationError
from connectors.esp.brevo import BrevoConnector, brevo_rate_limit_reset
from emailexport.models import Connector
from tests.connectors.contract import CLIENT_TIMEOUT, ITEM, SECRET, ConnectorContract
from tests.connectors.fakes.brevo import BrevoFake
from tests.connectors.faults import FaultSequences

SENDER = "news@shop.example"


@pytest.fixture
def fake():
    with BrevoFake(api_key=SECRET, senders={1: SENDER, 2: "service@shop.example"}) as server:
        yield server


@pytest.fixture
def make_connector(fake):
    made: list[BrevoConnector] = []

    def make(*, credentials: dict[str, str] | None = None, sleep: Any = None, **overrides: Any) -> BrevoConnector:
        settings = {"api_base_url": f"{fake.url}/v3", "sender_email": SENDER, "sender_name": "Shop", **overrides}
        record = Connector(id=7, type="brevo", name="Brevo", settings=settings, credentials="env:BREVO_CREDENTIALS")
        connector = BrevoConnector(record, credentials or {"api_key": SECRET}, timeout=CLIENT_TIMEOUT, sleep=sleep)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


class TestBrevo(ConnectorContract):
    connector_class = BrevoConnector


class TestBrevoLostCreatesAndCollisions(FaultSequences):
    """`-k "brevo and (lost or collision)"`: the shared fault sequences against the Brevo fake."""



def _bodies(fake: BrevoFake, method: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in fake.requests if r.method == method and r.body]


def test_the_api_key_travels_in_the_api_key_header(fake, make_connector):
    make_connector().push(ITEM)
    request = fake.requests[0]
    assert request.headers["api-key"] == SECRET
    assert "authorization" not in request.headers


def test_a_wrong_api_key_is_brevos_401_without_the_key(fake, make_connector):
    with pytest.raises(AuthenticationError, match="unauthorized: Key not found") as info:
        make_connector(credentials={"api_key": "xkeysib-wrong-0000"}).push(ITEM)
    assert "xkeysib-wrong-0000" not in str(info.value)
    assert fake.resources == {}


@pytest.mark.parametrize(
    ("settings", "sent", "stored_email"),
    [
        ({"sender_email": SENDER, "sender_name": "Shop"}, {"email": SENDER, "name": "Shop"}, SENDER),
        ({"sender_email": None, "sender_id": 2, "sender_name": None}, {"id": 2}, "service@shop.example"),
    ],
)
def test_the_sender_comes_from_the_settings(fake, make_connector, settings, sent, stored_email):
    result = make_connector(**settings).push(ITEM)
    assert _bodies(fake, "POST")[0]["sender"] == sent
    assert fake.resources[result.resource_id]["sender"]["email"] == stored_email


def test_a_sender_brevo_does_not_know_is_rejected(fake, make_connector):
    with pytest.raises(VendorValidationError, match="invalid_parameter: Sender is invalid"):
        make_connector(sender_email="nobody@elsewhere.example").push(ITEM)


@pytest.mark.parametrize("sender", [{}, {"sender_email": SENDER, "sender_id": 1}])
def test_settings_need_exactly_one_sender(make_connector, sender):
    with pytest.raises(TerminalConnectorError, match="exactly one of sender_email and sender_id"):
        make_connector(**{"sender_email": None, **sender})


def test_a_template_deleted_in_brevo_answers_404_and_is_recreated(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    fake.delete_resource(first.resource_id)
    second = connector.push(ITEM, previous_resource_id=first.resource_id)
    assert list(fake.resources) == [second.resource_id]
    assert fake.count("PUT", rf"/smtp/templates/{first.resource_id}$") == 1  # a 404 is not retried
    assert "no longer exists" in second.warnings[0]


def test_brevos_rate_limit_headers_are_honoured_without_retry_after(fake, make_connector):
    waits: list[float] = []
    fake.inject(method="POST", path=r"/smtp/templates$", reply=fake.rate_limited(42))
    result = make_connector(sleep=waits.append).push(ITEM)
    assert waits == [42.0]
    assert result.resource_id in fake.resources


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"x-sib-ratelimit-reset": "17", "x-sib-ratelimit-remaining": "0"}, 17.0),
     ({"x-sib-ratelimit-limit": "10"}, None), ({"x-sib-ratelimit-reset": "soon"}, None)],
)
def test_the_reset_header_is_read_as_seconds(headers, seconds):
    assert brevo_rate_limit_reset(httpx.Response(429, headers=headers)) == seconds


def test_fields_map_to_brevo_and_a_locale_can_override_them(fake, make_connector):
    item = replace(ITEM, fields={"tag": "spring", "reply_to": "help@shop.example", "to_field": "{{contact.FNAME}}"},
                   options={"reply_to": "hilfe@shop.example"})
    result = make_connector().push(item)
    stored = fake.resources[result.resource_id]
    assert stored["tag"] == "spring" and stored["toField"] == "{{contact.FNAME}}"
    assert stored["replyTo"] == "hilfe@shop.example"


def test_an_invalid_reply_to_is_brevos_validation_error(fake, make_connector):
    with pytest.raises(VendorValidationError, match="replyTo is not a valid email"):
        make_connector().push(replace(ITEM, fields={"reply_to": "not-an-address"}))


def test_preheader_plaintext_and_folder_are_not_sent_and_the_folder_is_reported(fake, make_connector):
    result = make_connector().push(replace(ITEM, folder_id="12"))
    body = _bodies(fake, "POST")[0]
    assert set(body) == {"templateName", "subject", "htmlContent", "sender", "isActive"}
    assert result.warnings == ("Brevo templates have no folders or campaigns; folder_id 12 was not applied",)


def test_update_sends_the_whole_template_again(fake, make_connector):
    connector = make_connector(activate=False)
    first = connector.push(ITEM)
    connector.push(replace(ITEM, name="Renamed"), previous_resource_id=first.resource_id)
    stored = fake.resources[first.resource_id]
    assert (stored["name"].split(" [ee-")[0], stored["isActive"]) == ("Renamed", False)


def test_find_by_name_pages_through_every_template(fake, make_connector):
    connector = make_connector()
    oldest = connector.push(replace(ITEM, name="The oldest one")).resource_id
    for n in range(1200):  # more than one page of 1000, put straight into the fake's store
        fake.resources[str(10_000 + n)] = {**fake.resources[oldest], "id": 10_000 + n, "name": f"filler {n}"}
    assert connector.find_by_marker(replace(ITEM, name=fake.resources[oldest]["name"])) == oldest
    assert fake.count("GET", r"/smtp/templates$") == 2
    assert connector.find_by_marker(replace(ITEM, name="never made")) is None


def test_the_resource_url_is_the_template_in_brevos_app(make_connector):
    assert make_connector().resource_url("42") == "https://my.brevo.com/camp/template/42/message-setup"


def test_a_task_retry_after_a_429_on_create_sends_the_create_without_a_lookup(fake, make_connector):
    # A 429 means nothing was made: the retry creates at once (no lookup, no lookup waits).
    from connectors.errors import RateLimitedError

    waits: list[float] = []
    connector = make_connector(sleep=waits.append)
    item = replace(ITEM, marker="ee-ratelimited0")
    # 600 s: beyond the 120 s one request waits out itself
    fake.inject(method="POST", path=r"/smtp/templates$", reply=fake.rate_limited(600))
    with pytest.raises(RateLimitedError) as info:
        connector.push(item)
    assert info.value.retry_after == 600.0 and waits == []  # the vendor's figure, for the task retry
    result = connector.push(item, retrying=True)
    assert list(fake.resources) == [result.resource_id]
    assert fake.count("GET", r"/smtp/templates$") == 0
