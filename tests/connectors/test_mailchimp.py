"""Mailchimp Marketing: the shared contract against a loopback Mailchimp, plus what only Mailchimp does.

Mailchimp templates hold no subject, so the three contract tests that read a stored subject are
replaced here by versions that check the name and HTML and the warning that the subject was not sent.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from connectors.errors import AuthenticationError, ResourceNotFoundError, TerminalConnectorError, VendorValidationError
from connectors.esp.mailchimp import MailchimpConnector, data_center
from emailexport.models import Connector
from tests.connectors.contract import CLIENT_TIMEOUT, ITEM, SECRET, ConnectorContract
from tests.connectors.fakes.mailchimp import FakeMailchimp, problem
from tests.connectors.faults import FaultSequences

KEY = f"{SECRET}-us21"


def _connector(fake: FakeMailchimp, api_key: str = KEY, sleep: Any = None, **settings: object) -> MailchimpConnector:
    record = Connector(id=9, type="mailchimp", name="Mailchimp",
                       settings={"api_base_url": f"{fake.url}/3.0", **settings})
    return MailchimpConnector(record, {"api_key": api_key}, timeout=CLIENT_TIMEOUT, sleep=sleep)


@pytest.fixture
def fake():
    with FakeMailchimp(KEY) as server:
        yield server


@pytest.fixture
def make_connector(fake):
    return lambda **overrides: _connector(fake, **overrides)


class TestMailchimp(ConnectorContract):
    connector_class = MailchimpConnector

    stores_subject = False  # Mailchimp templates hold HTML only; subject and preheader live on campaigns


class TestMailchimpLostCreatesAndCollisions(FaultSequences):
    """`-k "mailchimp and (lost or collision)"`: the shared fault sequences against the Mailchimp fake."""



def test_the_link_and_the_warning_say_where_the_template_is_and_what_it_cannot_hold(fake):
    result = _connector(fake).push(ITEM)
    assert result.resource_url == f"https://us21.admin.mailchimp.com/templates/edit?id={result.resource_id}"
    assert result.warnings == ("Mailchimp templates hold no subject, preheader, plaintext: set them on the "
                               "campaign that uses this template",)


def _sent(fake: FakeMailchimp, method: str) -> list[dict]:
    return [json.loads(r.body) for r in fake.requests if r.method == method]


# -- the key and its data centre ----------------------------------------------------------------

@pytest.mark.parametrize(("key", "dc"), [("0123abcd-us21", "us21"), ("f00-us1", "us1"), ("abc", None),
                                         ("abc-", None), ("abc-21", None)])
def test_the_data_centre_is_the_keys_suffix(key, dc):
    assert data_center(key) == dc


def test_the_default_base_url_and_app_link_follow_the_data_centre():
    record = Connector(id=1, type="mailchimp", name="M", settings={})
    connector = MailchimpConnector(record, {"api_key": "0123abcd-us6"})
    assert str(connector._http._client.base_url) == "https://us6.api.mailchimp.com/3.0/"
    assert connector.resource_url("42") == "https://us6.admin.mailchimp.com/templates/edit?id=42"


def test_a_key_without_a_data_centre_is_a_clear_credentials_error():
    record = Connector(id=4, type="mailchimp", name="M", settings={})
    with pytest.raises(TerminalConnectorError, match="no data-centre suffix") as info:
        MailchimpConnector(record, {"api_key": SECRET})
    assert SECRET not in str(info.value)


# -- what is sent -------------------------------------------------------------------------------

def test_basic_auth_carries_the_key_as_password(fake):
    _connector(fake).push(ITEM)
    scheme, _, token = fake.requests[0].headers["authorization"].partition(" ")
    assert scheme == "Basic" and base64.b64decode(token).decode().split(":", 1)[1] == KEY


def test_the_folder_is_sent(fake):
    result = _connector(fake).push(replace(ITEM, folder_id="a4b830b"))
    sent = _sent(fake, "POST")[0]
    assert sent["name"].startswith(ITEM.name + " [ee-")
    assert (sent["html"], sent["folder_id"]) == (ITEM.html, "a4b830b")
    assert fake.resources[result.resource_id]["folder_id"] == "a4b830b"


def test_a_campaign_gets_the_exported_html_as_its_content_on_create_and_update(fake):
    fake.campaigns["42694e9e57"] = {"status": "save", "html": "<p>draft</p>", "plain_text": "draft"}
    connector = _connector(fake)
    first = connector.push(replace(ITEM, campaign_id="42694e9e57"))
    assert fake.campaigns["42694e9e57"]["html"] == ITEM.html
    assert fake.campaigns["42694e9e57"]["plain_text"] == ITEM.plaintext
    assert not any("campaign 42694e9e57" in w for w in first.warnings)
    changed = replace(ITEM, campaign_id="42694e9e57", html=ITEM.html.replace("Hallo", "Servus"))
    connector.push(changed, previous_resource_id=first.resource_id)
    assert "Servus" in fake.campaigns["42694e9e57"]["html"]
    assert fake.count("PUT", "/3.0/campaigns/42694e9e57/content$") == 2


@pytest.mark.parametrize(("campaigns", "reason"), [
    ({}, "Resource Not Found"),
    ({"c9": {"status": "sent", "html": "<p>old</p>", "plain_text": ""}}, "already been sent"),
])
def test_a_campaign_mailchimp_will_not_change_is_a_warning_and_the_template_stays(fake, campaigns, reason):
    fake.campaigns.update(campaigns)
    result = _connector(fake).push(replace(ITEM, campaign_id="c9"))
    assert result.resource_id in fake.resources
    assert any("campaign c9" in w and reason in w for w in result.warnings), result.warnings


def test_nothing_mailchimp_cannot_hold_is_sent(fake):
    connector = _connector(fake)
    first = connector.push(ITEM)
    connector.push(ITEM, previous_resource_id=first.resource_id)
    assert all(set(body) == {"name", "html"} for body in _sent(fake, "POST") + _sent(fake, "PATCH"))


def test_a_deleted_template_gets_mailchimps_404(fake):
    connector = _connector(fake)
    first = connector.push(ITEM)
    fake.delete_resource(first.resource_id)
    with pytest.raises(ResourceNotFoundError, match="Resource Not Found: The requested resource could not be found"):
        connector.update(first.resource_id, ITEM)


# -- problem+json errors ------------------------------------------------------------------------

def test_a_wrong_key_surfaces_mailchimps_detail(fake):
    with pytest.raises(AuthenticationError, match="API Key Invalid: Your API key may be invalid") as info:
        _connector(fake, api_key="ffff0000-us21").push(ITEM)
    assert "ffff0000" not in str(info.value)


def test_validation_errors_surface_title_detail_and_field_errors(fake):
    fake.inject(method="POST", reply=problem(400, "Invalid Resource", "The resource submitted could not be validated.",
                                             errors=[{"field": "html", "message": "This value should not be blank."}]))
    with pytest.raises(VendorValidationError, match=r"HTTP 400: Invalid Resource: The resource submitted could not be "
                                                    r"validated\. \(html: This value should not be blank\.\)"):
        _connector(fake).push(ITEM)
    assert len(fake.requests) == 1  # terminal: not retried


# -- lookup by name -----------------------------------------------------------------------------

def test_lookup_by_name_pages_with_count_and_offset(fake):
    for n in range(5):
        fake.add_template(f"Other {n}")
    fake.add_template("Wanted", template_type="base")  # not a user template: never a match
    wanted = fake.add_template("Wanted")
    connector = _connector(fake)
    connector.page_size = 2
    assert connector.find_by_marker(replace(ITEM, name="Wanted")) == wanted
    pages = [r.query for r in fake.requests if r.path == "/3.0/templates"]
    assert [(p["count"], p["offset"]) for p in pages] == [(["2"], ["0"]), (["2"], ["2"]), (["2"], ["4"])]
    assert all(p["type"] == ["user"] for p in pages)
    assert connector.find_by_marker(replace(ITEM, name="Nobody")) is None


def test_after_a_lost_create_only_templates_created_since_are_listed(fake):
    fake.inject(method="POST", path="/3.0/templates$", delay=CLIENT_TIMEOUT + 0.5, delay_after_handling=True)
    result = _connector(fake).push(ITEM)
    listing = next(r for r in fake.requests if r.method == "GET")
    assert "since_date_created" in listing.query and list(fake.resources) == [result.resource_id]


# -- rate limits: no header, a bounded wait, at most 10 connections ------------------------------

def test_a_429_without_headers_waits_the_configured_time(fake):
    waits: list[float] = []
    fake.inject(method="POST", reply=fake.rate_limited(1))
    record = Connector(id=9, type="mailchimp", name="M",
                       settings={"api_base_url": f"{fake.url}/3.0", "rate_limit_wait_seconds": 5})
    MailchimpConnector(record, {"api_key": KEY}, timeout=CLIENT_TIMEOUT, sleep=waits.append).push(ITEM)
    assert waits == [5.0]


def test_in_flight_requests_stay_within_mailchimps_ten_connections(fake):
    assert _connector(fake)._http._slots._value == 10  # type: ignore[attr-defined]


# -- the fake itself rejects what Mailchimp would ------------------------------------------------

@pytest.mark.parametrize(("body", "problem"), [
    ({"name": "n"}, "'html' is a required property"),
    ({"name": "n", "html": "<p/>", "subject": "s"}, "'subject' was unexpected"),
    ({"name": "n", "html": "<p/>", "folder_id": 5}, "5 is not of type 'string'"),
])
def test_the_fake_rejects_what_the_reference_page_does(fake, body, problem):
    response = httpx.post(f"{fake.url}/3.0/templates", json=body, auth=("x", KEY))
    assert response.status_code == 400 and response.headers["content-type"].startswith("application/problem+json")
    assert any(problem in e["message"] for e in response.json()["errors"])
    fake.spec_problems.clear()


def test_the_fake_wants_basic_auth(fake):
    response = httpx.get(f"{fake.url}/3.0/templates", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 401 and fake.spec_problems
    fake.spec_problems.clear()


@pytest.mark.parametrize(("key", "value"), [("campaign_id", "../lists/1"), ("folder_id", "a b"), ("campaign_id", "")])
def test_ids_mailchimp_cannot_take_are_refused_at_validation_naming_the_field(key, value):
    errors = MailchimpConnector.check_options({}, {}, **{key: value})
    if value:
        assert list(errors) == [f"options.{key}"] and repr(value) in errors[f"options.{key}"][0]
    else:
        assert errors == {}
