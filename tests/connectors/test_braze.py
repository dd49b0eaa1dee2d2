"""Braze: the shared contract against a loopback Braze, plus what only Braze does."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from connectors.errors import TerminalConnectorError
from connectors.esp.braze import BrazeConnector, braze_rate_limit_reset, dashboard_for
from emailexport.models import Connector
from tests.connectors.contract import CLIENT_TIMEOUT, ITEM, SECRET, ConnectorContract
from tests.connectors.fakes.braze import FakeBraze
from tests.connectors.faults import FaultSequences

DASHBOARD = "https://dashboard-01.braze.com"


def _connector(fake: FakeBraze, api_key: str = SECRET, sleep: Any = None, **settings: object) -> BrazeConnector:
    record = Connector(id=7, type="braze", name="Braze",
                       settings={"api_base_url": fake.url, "dashboard_url": DASHBOARD, **settings})
    return BrazeConnector(record, {"api_key": api_key}, timeout=CLIENT_TIMEOUT, sleep=sleep)


@pytest.fixture
def fake():
    with FakeBraze(SECRET) as server:
        yield server


@pytest.fixture
def make_connector(fake):
    return lambda **overrides: _connector(fake, **overrides)


class TestBraze(ConnectorContract):
    connector_class = BrazeConnector


class TestBrazeLostCreatesAndCollisions(FaultSequences):
    """`-k "braze and (lost or collision)"`: the shared fault sequences against the Braze fake."""



def _bodies(fake: FakeBraze, path: str) -> list[dict]:
    return [json.loads(r.body) for r in fake.requests if r.path == path]


# -- what is sent -------------------------------------------------------------------------------

def test_the_rest_key_is_a_bearer_token_on_every_request(fake):
    connector = _connector(fake)
    first = connector.push(ITEM)
    connector.push(ITEM, previous_resource_id=first.resource_id)
    assert {r.headers["authorization"] for r in fake.requests} == {f"Bearer {SECRET}"}
    assert fake.count("GET", "/templates/email/info") == 1


def test_every_template_field_reaches_braze(fake):
    item = replace(ITEM, fields={"tags": "spring, de"})
    result = _connector(fake, should_inline_css=False).push(item)
    stored = fake.resources[result.resource_id]
    assert stored["preheader"] == ITEM.preheader and stored["plaintext"] == ITEM.plaintext
    assert stored["tags"] == ["spring", "de"] and stored["should_inline_css"] is False


def test_folder_and_campaign_are_not_braze_concepts_and_say_so(fake):
    result = _connector(fake).push(replace(ITEM, folder_id="f1", campaign_id="c1"))
    assert len(result.warnings) == 2 and all("no folders or campaigns" in w for w in result.warnings)
    assert "folder_id" not in _bodies(fake, "/templates/email/create")[0]


def test_an_empty_preheader_is_cleared_on_update_but_not_sent_on_create(fake):
    connector = _connector(fake)
    first = connector.push(replace(ITEM, preheader=""))
    assert "preheader" not in _bodies(fake, "/templates/email/create")[0]
    fake.resources[first.resource_id]["preheader"] = "stale"
    connector.push(replace(ITEM, preheader=""), previous_resource_id=first.resource_id)
    assert fake.resources[first.resource_id]["preheader"] == ""


# -- instance URL -------------------------------------------------------------------------------

@pytest.mark.parametrize(("rest", "dashboard"), [
    ("https://rest.iad-01.braze.com", "https://dashboard-01.braze.com"),
    ("https://rest.iad-08.braze.com/", "https://dashboard-08.braze.com"),
    ("https://rest.fra-02.braze.eu", "https://dashboard-02.braze.eu"),
    ("https://rest.us-10.braze.com", "https://dashboard.us-10.braze.com"),
    ("http://127.0.0.1:8080", None),
])
def test_the_dashboard_follows_the_instance_url(rest, dashboard):
    assert dashboard_for(rest) == dashboard


def test_the_instance_url_setting_is_where_requests_go(fake):
    # The fake's URL *is* the setting: nothing reaches it unless the connector uses the setting.
    result = _connector(fake).push(ITEM)
    assert fake.count("POST", "/templates/email/create") == 1
    assert result.resource_url == f"{DASHBOARD}/engagement/templates_and_media/email_templates/{result.resource_id}"


def test_without_a_dashboard_setting_the_link_is_derived_from_the_instance():
    record = Connector(id=1, type="braze", name="B", settings={"api_base_url": "https://rest.fra-01.braze.eu"})
    connector = BrazeConnector(record, {"api_key": SECRET})
    assert connector.resource_url("abc").startswith("https://dashboard-01.braze.eu/")


def test_a_missing_key_is_a_credentials_error_that_names_no_value():
    record = Connector(id=3, type="braze", name="B", settings={})
    with pytest.raises(TerminalConnectorError, match="credentials are missing or invalid: api_key"):
        BrazeConnector(record, {"key": SECRET})


def test_a_wrong_key_gets_brazes_401_without_leaking_it(fake):
    with pytest.raises(TerminalConnectorError) as info:
        _connector(fake, api_key="wrong-key-123456").push(ITEM)
    assert "Unknown or missing REST API Key" in str(info.value) and "wrong-key-123456" not in str(info.value)


# -- lookup by name -----------------------------------------------------------------------------

def test_lookup_by_name_pages_through_the_list(fake):
    for n in range(5):
        fake.add_template(f"Other {n}")
    wanted = fake.add_template("Wanted")
    connector = _connector(fake)
    connector.page_size = 2
    assert connector.find_by_marker(replace(ITEM, name="Wanted")) == wanted
    pages = [r.query for r in fake.requests if r.path == "/templates/email/list"]
    assert [p.get("offset") for p in pages] == [None, ["2"], ["4"], ["6"]]  # offset=0 is never sent
    assert all(p["limit"] == ["2"] for p in pages)
    assert connector.find_by_marker(replace(ITEM, name="Nobody")) is None


def test_after_a_lost_create_only_recent_templates_are_listed(fake):
    fake.inject(method="POST", path="/templates/email/create", delay=CLIENT_TIMEOUT + 0.5, delay_after_handling=True)
    result = _connector(fake).push(ITEM)
    listing = next(r for r in fake.requests if r.path == "/templates/email/list")
    assert "modified_after" in listing.query
    assert list(fake.resources) == [result.resource_id]


# -- a template deleted in Braze, in each way Braze might say so ---------------------------------

@pytest.mark.parametrize("missing", ["message", "400", "404"])
def test_a_deleted_template_is_recreated_whatever_braze_answers(missing):
    with FakeBraze(SECRET, missing=missing) as fake:
        connector = _connector(fake)
        first = connector.push(ITEM)
        fake.delete_resource(first.resource_id)
        second = connector.push(ITEM, previous_resource_id=first.resource_id)
        assert second.resource_id in fake.resources and any("no longer exists" in w for w in second.warnings)
        assert fake.count("POST", "/templates/email/update") == 0
        assert fake.spec_problems == []


# -- rate limits --------------------------------------------------------------------------------

def test_the_reset_header_is_honoured_without_retry_after(fake):
    waits: list[float] = []
    fake.inject(method="POST", path="/templates/email/create", reply=fake.rate_limited(30))
    record = Connector(id=7, type="braze", name="Braze", settings={"api_base_url": fake.url})
    result = BrazeConnector(record, {"api_key": SECRET}, timeout=CLIENT_TIMEOUT, sleep=waits.append).push(ITEM)
    assert len(waits) == 1 and 28 <= waits[0] <= 31
    assert result.resource_id in fake.resources


def test_reset_reading():
    response = httpx.Response(429, headers={"X-RateLimit-Reset": "1000"})
    assert braze_rate_limit_reset(response, now=lambda: 990.0) == 10.0
    assert braze_rate_limit_reset(response, now=lambda: 2000.0) == 0.0
    assert braze_rate_limit_reset(httpx.Response(429)) is None


# -- the fake itself rejects what Braze would ----------------------------------------------------

@pytest.mark.parametrize(("body", "problem"), [
    ({"template_name": "n", "subject": "s"}, "'body' is a required property"),
    ({"template_name": "n", "subject": "s", "body": "b", "html": "x"}, "'html' was unexpected"),
    ({"template_name": "n", "subject": "s", "body": "b", "tags": "a,b"}, "is not of type 'array'"),
])
def test_the_fake_rejects_what_the_reference_page_does(fake, body, problem):
    response = httpx.post(f"{fake.url}/templates/email/create", json=body,
                          headers={"Authorization": f"Bearer {SECRET}"})
    assert response.status_code == 400 and problem in response.json()["message"]
    assert any(problem in p for p in fake.spec_problems)
    fake.spec_problems.clear()


def test_the_fake_wants_a_bearer_header(fake):
    key = base64.b64encode(f"x:{SECRET}".encode()).decode()
    response = httpx.get(f"{fake.url}/templates/email/list", headers={"Authorization": f"Basic {key}"})
    assert response.status_code == 401 and fake.spec_problems
    fake.spec_problems.clear()


def test_the_fake_rejects_offset_zero_like_braze(fake):
    response = httpx.get(f"{fake.url}/templates/email/list", params={"offset": 0},
                         headers={"Authorization": f"Bearer {SECRET}"})
    assert response.status_code == 400 and "Offset must be greater than 0" in response.json()["message"]
    fake.spec_problems.clear()

