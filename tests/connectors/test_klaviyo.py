"""Klaviyo: the shared contract against a loopback Klaviyo, plus what is Klaviyo's own."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from connectors.errors import TerminalConnectorError
from connectors.esp.klaviyo import KlaviyoConnector, name_filter
from emailexport.models import Connector
from tests.connectors.contract import CLIENT_TIMEOUT, ITEM, SECRET, ConnectorContract
from tests.connectors.fakes.klaviyo import FakeKlaviyo
from tests.connectors.faults import FaultSequences


@pytest.fixture
def fake():
    with FakeKlaviyo(api_key=SECRET) as server:
        yield server


@pytest.fixture
def make_connector(fake):
    def make(sleep: Any = None, **overrides: Any) -> KlaviyoConnector:
        record = Connector(id=7, type="klaviyo", name="Klaviyo", settings={"api_base_url": fake.url, **overrides})
        return KlaviyoConnector(record, {"api_key": SECRET}, timeout=CLIENT_TIMEOUT, sleep=sleep)

    return make


class TestKlaviyo(ConnectorContract):
    connector_class = KlaviyoConnector

    stores_subject = False  # a Klaviyo template's subject belongs to the campaign message


class TestKlaviyoLostCreatesAndCollisions(FaultSequences):
    """`-k "klaviyo and (lost or collision)"`: the shared fault sequences against the Klaviyo fake."""



def test_create_stores_name_html_and_text_as_a_code_template(fake, make_connector):
    result = make_connector().push(ITEM)
    stored = fake.resources[result.resource_id]
    assert stored["name"].startswith(ITEM.name + " [ee-")
    assert (stored["html"], stored["text"]) == (ITEM.html, ITEM.plaintext)
    assert stored["editor_type"] == "CODE" and stored["subject"] is None
    assert result.resource_url == f"https://www.klaviyo.com/email-template-editor/{result.resource_id}"


def test_every_request_carries_the_revision_the_key_and_the_json_api_media_type(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    connector.push(ITEM, previous_resource_id=first.resource_id)
    connector.find_by_marker(ITEM)
    assert [r.method for r in fake.requests] == ["POST", "PATCH", "GET"]
    for request in fake.requests:
        assert request.headers["revision"] == "2026-07-15"
        assert request.headers["authorization"] == f"Klaviyo-API-Key {SECRET}"
        assert request.headers["accept"] == "application/vnd.api+json"
    assert all(r.headers["content-type"] == "application/vnd.api+json" for r in fake.requests[:2])


def test_a_template_deleted_in_klaviyo_is_recreated_after_its_404(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    fake.delete_resource(first.resource_id)
    second = connector.push(ITEM, previous_resource_id=first.resource_id)
    assert [(r.method, r.path) for r in fake.requests[1:]] == [
        ("PATCH", f"/api/templates/{first.resource_id}"), ("POST", "/api/templates")]
    assert list(fake.resources) == [second.resource_id]


def test_klaviyos_429_retry_after_is_waited_out(fake, make_connector):
    waits: list[float] = []
    connector = make_connector(sleep=waits.append)  # observe the wait instead of spending it
    fake.inject(method="POST", path=r"^/api/templates$", reply=fake.rate_limited(3))
    assert connector.push(ITEM).resource_id in fake.resources
    assert waits == [3.0]


def test_a_429_without_retry_after_waits_for_the_window_the_last_success_announced(fake, make_connector):
    # Klaviyo sends RateLimit-Reset on successes only; its 429 carries Retry-After alone.
    waits: list[float] = []
    connector = make_connector(sleep=waits.append)
    first = connector.push(ITEM)  # the 201 says the steady window resets in 42 s
    throttled = fake.rate_limited(1)
    del throttled.headers["Retry-After"]
    assert not any(h.lower().startswith("ratelimit") for h in throttled.headers)
    fake.inject(method="PATCH", path=r"^/api/templates/", reply=throttled)
    connector.push(ITEM, previous_resource_id=first.resource_id)
    assert len(waits) == 1 and 40.0 < waits[0] <= 42.0


def test_lookup_by_name_uses_klaviyos_filter_and_takes_the_newest(fake, make_connector):
    ours = replace(ITEM, marker="ee-sameseries0")
    older = make_connector().push(ours).resource_id
    time.sleep(1.1)  # Klaviyo stamps `created` to the second
    newer = make_connector().push(ours).resource_id  # another process, not told it is a retry
    connector = make_connector()
    connector.push(replace(ITEM, name="Other"))
    marked = replace(ours, name=fake.resources[newer]["name"])
    assert connector.find_by_marker(marked) == newer != older
    assert connector.find_by_marker(replace(ITEM, name="Nobody")) is None
    listing = next(r for r in fake.requests if r.method == "GET")
    assert listing.query["filter"] == ['equals(name,"Spring Sale 2026 (de-DE) [ee-sameseries0]")']
    assert listing.query["sort"] == ["-created"]


def test_a_lost_create_only_matches_templates_created_since_it_was_sent(fake, make_connector):
    connector = make_connector()
    fake.resources["OLD123"] = {"name": ITEM.name, "subject": None, "editor_type": "CODE", "html": "<p>old</p>",
                                "text": None, "amp": None, "created": "2020-01-01T00:00:00+00:00",
                                "updated": "2020-01-01T00:00:00+00:00"}
    fake.inject(method="POST", path=r"^/api/templates$", delay=CLIENT_TIMEOUT + 0.5, delay_after_handling=True)
    result = connector.push(ITEM)
    assert result.resource_id != "OLD123" and fake.resources["OLD123"]["html"] == "<p>old</p>"
    assert len(fake.resources) == 2
    listing = next(r for r in fake.requests if r.method == "GET")
    assert listing.query["filter"][0].startswith('and(equals(name,"Spring Sale 2026 (de-DE) [ee-')
    assert '),greater-or-equal(created,' in listing.query["filter"][0]


@pytest.mark.parametrize(("name", "expected"), [
    ("Plain", 'equals(name,"Plain")'),
    ('Say "hi"', "equals(name,'Say \"hi\"')"),
    ('Both "a" \'b\'', 'equals(name,"Both \\"a\\" \'b\'")'),
])
def test_names_are_quoted_for_klaviyos_filter_syntax(name, expected):
    assert name_filter(name) == expected


def test_a_folder_is_reported_not_silently_dropped(fake, make_connector):
    result = make_connector().push(replace(ITEM, folder_id="12"))
    assert any("no folders" in w for w in result.warnings)


def test_a_campaign_id_assigns_the_template_to_the_campaigns_message_on_create_and_update(fake, make_connector):
    fake.add_campaign("01J9CAMPAIGN", "01J9MESSAGE")
    connector = make_connector()
    item = replace(ITEM, campaign_id="01J9CAMPAIGN")
    first = connector.push(item)
    assert fake.assigned["01J9MESSAGE"] == first.resource_id
    assert not any("01J9CAMPAIGN" in w for w in first.warnings)
    fake.assigned["01J9MESSAGE"] = None
    connector.push(replace(item, html=ITEM.html.replace("Hallo", "Servus")), previous_resource_id=first.resource_id)
    assert fake.assigned["01J9MESSAGE"] == first.resource_id  # assigned again: Klaviyo assigns a copy
    assert fake.count("POST", "^/api/campaign-message-assign-template$") == 2


@pytest.mark.parametrize(("sent", "known", "reason"), [
    (False, False, "A campaign with id 01ABC does not exist"),
    (True, True, "Cannot update a campaign that has been sent"),
])
def test_a_campaign_klaviyo_will_not_change_is_a_warning_and_the_template_stays(fake, make_connector, sent, known,
                                                                                 reason):
    if known:
        fake.add_campaign("01ABC", "01MSG", sent=sent)
    result = make_connector().push(replace(ITEM, campaign_id="01ABC"))
    assert result.resource_id in fake.resources
    assert any("campaign 01ABC" in w and reason in w for w in result.warnings), result.warnings


def test_an_update_clears_the_text_and_amp_the_export_no_longer_has(fake, make_connector):
    connector = make_connector()
    first = connector.push(replace(ITEM, fields={"amp": "<html amp4email></html>"}))
    connector.push(replace(ITEM, plaintext=""), previous_resource_id=first.resource_id)
    stored = fake.resources[first.resource_id]
    assert (stored["text"], stored["amp"]) == (None, None)


def test_the_amp_field_is_sent_and_unknown_settings_are_rejected(fake, make_connector):
    result = make_connector().push(replace(ITEM, fields={"amp": "<html amp4email></html>"}))
    assert fake.resources[result.resource_id]["amp"] == "<html amp4email></html>"
    with pytest.raises(TerminalConnectorError, match="settings"):
        make_connector(folder="x")
    with pytest.raises(TerminalConnectorError, match="credentials are missing or invalid: api_key") as info:
        KlaviyoConnector(Connector(id=1, type="klaviyo", name="K"), {"key": SECRET})
    assert SECRET not in str(info.value)


def test_a_campaign_id_klaviyo_cannot_take_is_refused_at_validation_naming_the_field():
    errors = KlaviyoConnector.check_options({}, {"de-DE": {"campaign_id": "01J9/../x"}})
    assert list(errors) == ["options.per_locale_options.de-DE.campaign_id"]
    assert KlaviyoConnector.check_options({}, {}, campaign_id="01J9CAMPAIGN") == {}
