"""Iterable connector: the shared contract against the loopback Iterable, plus what is Iterable's own."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from connectors.errors import (
    AmbiguousCreateError,
    AuthenticationError,
    RateLimitedError,
    ResourceNotFoundError,
    TerminalConnectorError,
    VendorValidationError,
)
from connectors.esp.iterable import IterableConnector, iterable_error_message, iterable_rate_limit_reset
from emailexport.models import Connector
from tests.connectors.contract import CLIENT_TIMEOUT, ITEM, SECRET, ConnectorContract
from tests.connectors.fakes.base import Reply
from tests.connectors.fakes.iterable import IterableFake
from tests.connectors.faults import FaultSequences
from tests.connectors.flow import export_example

SENDER = "news@shop.example"
UPSERT = r"/api/templates/email/upsert$"
UPDATE = r"/api/templates/email/update$"
LOOKUP = r"/api/templates/getByClientTemplateId$"


@pytest.fixture
def fake():
    with IterableFake(api_key=SECRET, senders=(SENDER, "hilfe@shop.example")) as server:
        yield server


@pytest.fixture
def make_connector(fake):
    made: list[IterableConnector] = []

    def make(*, credentials: dict[str, str] | None = None, sleep: Any = None, **overrides: Any) -> IterableConnector:
        settings = {"api_base_url": fake.url, "from_email": SENDER, "from_name": "Shop", **overrides}
        record = Connector(id=9, type="iterable", name="Iterable", settings=settings,
                           credentials="env:ITERABLE_CREDENTIALS")
        connector = IterableConnector(record, credentials or {"api_key": SECRET}, timeout=CLIENT_TIMEOUT, sleep=sleep)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


class TestIterable(ConnectorContract):
    connector_class = IterableConnector


class TestIterableLostCreatesAndCollisions(FaultSequences):
    """`-k "iterable and (lost or collision)"`: the shared fault sequences against the Iterable fake."""


def _bodies(fake: IterableFake, path: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in fake.requests if r.method == "POST" and r.path.endswith(path) and r.body]


@pytest.fixture(autouse=True)
def _iterable_requests_match_the_spec(fake):
    yield
    assert fake.spec_problems == [], "\n".join(fake.spec_problems)


def test_iterable_api_key_travels_in_the_api_key_header(fake, make_connector):
    make_connector().push(ITEM)
    request = fake.requests[0]
    assert request.headers["api-key"] == SECRET
    assert "authorization" not in request.headers


def test_iterable_wrong_api_key_is_badapikey_without_the_key(fake, make_connector):
    with pytest.raises(AuthenticationError, match="BadApiKey: Invalid API key") as info:
        make_connector(credentials={"api_key": "wrong-key-0000-1111"}).push(ITEM)
    assert "wrong-key-0000-1111" not in str(info.value)
    assert fake.resources == {}


def test_iterable_create_is_an_upsert_keyed_by_the_marker(fake, make_connector):
    item = replace(ITEM, marker="ee-iterablekey01")
    result = make_connector().push(item)
    (body,) = _bodies(fake, "/upsert")
    assert body["clientTemplateId"] == "ee-iterablekey01"
    assert body["name"] == "Spring Sale 2026 (de-DE) [ee-iterablekey01]"
    stored = fake.resources[result.resource_id]
    assert (stored["preheaderText"], stored["plainText"]) == (ITEM.preheader, ITEM.plaintext)
    assert (stored["fromEmail"], stored["fromName"]) == (SENDER, "Shop")


def test_iterable_upsert_sent_twice_keeps_one_template(fake, make_connector):
    # Iterable's upsert updates the template that has the clientTemplateId: even a create the push
    # repeats (a new process knowing nothing) cannot make a second template.
    item = replace(ITEM, marker="ee-iterabletwice")
    first = make_connector().create(replace(item, name="one"))
    second = make_connector().create(replace(item, name="two"))
    assert first.resource_id == second.resource_id
    assert list(fake.resources) == [first.resource_id] and fake.resources[first.resource_id]["name"] == "two"


def test_iterable_find_by_marker_is_an_exact_lookup_by_client_template_id(fake, make_connector):
    connector = make_connector()
    ours = connector.push(replace(ITEM, marker="ee-iterablefind1")).resource_id
    connector.push(replace(ITEM, marker="ee-iterablefind2"))
    assert connector.find_by_marker(replace(ITEM, marker="ee-iterablefind1")) == ours
    assert connector.find_by_marker(replace(ITEM, marker="ee-neverexported")) is None
    lookups = [r for r in fake.requests if r.path.endswith("/getByClientTemplateId")]
    assert [r.query["clientTemplateId"] for r in lookups] == [["ee-iterablefind1"], ["ee-neverexported"]]


def test_iterable_find_prefers_the_template_over_a_campaigns_copy(fake, make_connector):
    connector = make_connector()
    item = replace(ITEM, marker="ee-iterablecopy1")
    ours = connector.push(item).resource_id
    # A campaign made from the template in Iterable keeps the clientTemplateId on its copy.
    fake.resources["900001"] = {**fake.resources[ours], "templateId": 900001, "campaignId": 77}
    assert connector.find_by_marker(item) == ours


def test_iterable_lookup_404_means_not_found(fake, make_connector):
    fake.inject(method="GET", path=LOOKUP, reply=Reply(404, {"msg": "No templates", "code": "NotFound",
                                                             "params": None}))
    assert make_connector().find_by_marker(replace(ITEM, marker="ee-iterable404aa")) is None


def test_iterable_update_renames_to_the_current_marker_and_clears_dropped_fields(fake, make_connector):
    connector = make_connector()
    first = connector.push(replace(ITEM, marker="ee-iterableold01", fields={"reply_to_email": "hilfe@shop.example"}))
    second = connector.push(replace(ITEM, marker="ee-iterablenew01", preheader=""),
                            previous_resource_id=first.resource_id)
    stored = fake.resources[first.resource_id]
    assert second.resource_id == first.resource_id
    assert stored["clientTemplateId"] == "ee-iterablenew01" and stored["name"].endswith("[ee-iterablenew01]")
    assert stored["preheaderText"] == ""
    (update,) = _bodies(fake, "/update")
    assert update["templateId"] == int(first.resource_id)


def test_iterable_a_400_notfound_on_update_also_recreates(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    fake.inject(method="POST", path=UPDATE,
                reply=Reply(400, {"msg": "Template does not exist", "code": "NotFound", "params": None}))
    fake.delete_resource(first.resource_id)
    second = connector.push(ITEM, previous_resource_id=first.resource_id)
    assert list(fake.resources) == [second.resource_id]
    assert "no longer exists" in second.warnings[0]


def test_iterable_update_of_a_non_numeric_id_is_not_found(make_connector):
    with pytest.raises(ResourceNotFoundError, match="not an Iterable template id"):
        make_connector().update("d-abc", replace(ITEM, marker="ee-iterablebadid"))


def test_iterable_badparams_is_a_validation_error_with_iterables_message(fake, make_connector):
    with pytest.raises(VendorValidationError, match=r"BadParams: fromEmail nobody@elsewhere\.example is not an"):
        make_connector(from_email="nobody@elsewhere.example").push(ITEM)
    assert fake.resources == {}


def test_iterable_fields_override_settings_per_locale(fake, make_connector):
    item = replace(ITEM, fields={"from_name": "Northwind", "google_analytics_campaign_name": "spring"},
                   options={"from_email": "hilfe@shop.example"})
    stored = fake.resources[make_connector(message_type_id=12).push(item).resource_id]
    assert (stored["fromName"], stored["fromEmail"]) == ("Northwind", "hilfe@shop.example")
    assert stored["googleAnalyticsCampaignName"] == "spring" and stored["messageTypeId"] == 12


def test_iterable_folder_and_campaign_become_warnings(fake, make_connector):
    result = make_connector().push(replace(ITEM, folder_id="12", campaign_id="345"))
    assert result.warnings == (
        "Iterable templates have no folders; folder_id 12 was not applied",
        f"Iterable templates are not attached to existing campaigns by its API (create the campaign from template "
        f"{result.resource_id}); campaign_id 345 was not applied")
    assert not {"folderId", "campaignId"} & set(_bodies(fake, "/upsert")[0])


def test_iterable_429_without_headers_waits_one_window(fake, make_connector):
    waits: list[float] = []
    fake.inject(method="POST", path=UPSERT, reply=fake.rate_limited())
    result = make_connector(sleep=waits.append).push(ITEM)
    assert waits == [1.0] and result.resource_id in fake.resources
    assert fake.count("POST", UPSERT) == 2


def test_iterable_429_with_retry_after_is_honoured_and_a_long_one_is_handed_to_the_task(fake, make_connector):
    waits: list[float] = []
    fake.inject(method="POST", path=UPSERT, reply=fake.rate_limited(7, retry_after=True))
    make_connector(sleep=waits.append).push(ITEM)
    assert waits == [7.0]
    fake.inject(method="POST", path=UPSERT, reply=fake.rate_limited(600, retry_after=True))
    with pytest.raises(RateLimitedError, match="RateLimitExceeded") as info:
        make_connector(sleep=waits.append).push(replace(ITEM, marker="ee-iterablelong1"))
    assert info.value.retry_after == 600.0


@pytest.mark.parametrize(("response", "seconds"), [
    (httpx.Response(429), 1.0), (httpx.Response(500), None)])
def test_iterable_rate_limit_reset_is_one_window(response, seconds):
    assert iterable_rate_limit_reset(response) == seconds


@pytest.mark.parametrize(("response", "message"), [
    (httpx.Response(400, json={"msg": "bad", "code": "BadParams", "params": None}), "BadParams: bad"),
    (httpx.Response(401, json={"code": "BadApiKey"}), "BadApiKey"),
    (httpx.Response(502, text="<h1>502 Bad Gateway</h1>"), "<h1>502 Bad Gateway</h1>")])
def test_iterable_error_bodies_are_read(response, message):
    assert iterable_error_message(response) == message


def test_iterable_a_5xx_on_upsert_is_ambiguous_and_the_lookup_decides(fake, make_connector):
    fake.inject(method="POST", path=UPSERT, reply=fake.server_error())
    result = make_connector(sleep=lambda s: None).push(ITEM)
    assert list(fake.resources) == [result.resource_id]
    assert fake.count("GET", LOOKUP) == 4  # every look of the bound, none found: the create is sent again


def test_iterable_an_upsert_answer_naming_no_id_is_a_lost_create(fake, make_connector):
    fake.inject(method="POST", path=UPSERT, after_handling=True,
                reply=Reply(200, {"msg": "Upserted templates", "code": "Success", "params": None}))
    connector = make_connector(sleep=lambda s: None)
    with pytest.raises(AmbiguousCreateError):
        connector.create(replace(ITEM, marker="ee-iterablenoid1"))
    assert connector.push(replace(ITEM, marker="ee-iterablenoid1")).resource_id in fake.resources
    assert len(fake.resources) == 1


def test_iterable_timeout_on_update_is_retried(fake, make_connector):
    connector = make_connector(sleep=lambda s: None)
    first = connector.push(ITEM)
    fake.inject(method="POST", path=UPDATE, delay=CLIENT_TIMEOUT + 0.5)
    connector.push(replace(ITEM, subject="Neu"), previous_resource_id=first.resource_id)
    assert fake.resources[first.resource_id]["subject"] == "Neu"
    assert fake.count("POST", UPDATE) == 2


@pytest.mark.parametrize(("region", "api", "app"), [
    ("us", "https://api.iterable.com", "https://app.iterable.com/templates/editor?templateId=42"),
    ("eu", "https://api.eu.iterable.com", "https://app.eu.iterable.com/templates/editor?templateId=42")])
def test_iterable_region_picks_the_api_host_and_the_app(region, api, app):
    record = Connector(id=9, type="iterable", name="Iterable", settings={"region": region},
                       credentials="env:ITERABLE_CREDENTIALS")
    connector = IterableConnector(record, {"api_key": SECRET})
    try:
        assert str(connector.api._client.base_url).rstrip("/") == api
        assert connector.resource_url("42") == app
    finally:
        connector.close()


@pytest.mark.parametrize("settings", [{"region": "ap"}, {"from_email": "not-an-address"}, {"apikey": "x"}])
def test_iterable_bad_settings_are_a_clear_error(settings):
    record = Connector(id=9, type="iterable", name="Iterable", settings=settings, credentials="env:X")
    with pytest.raises(TerminalConnectorError, match="Iterable connector 9: settings"):
        IterableConnector(record, {"api_key": SECRET})


def test_iterable_missing_credentials_name_the_field_only():
    record = Connector(id=9, type="iterable", name="Iterable", settings={}, credentials="env:X")
    with pytest.raises(TerminalConnectorError, match="credentials are missing or invalid: api_key"):
        IterableConnector(record, {"key": SECRET})


# -- the example email through the export flow to the fake ---------------------------------------

EXAMPLE_LOCALES = ["en-US", "de-DE", "fr-FR", "es-ES", "ar-SA", "ja-JP"]


@pytest.mark.usefixtures("prefect_harness")
def test_iterable_flow_exports_the_example_email_to_the_fake(store, fake, monkeypatch):
    monkeypatch.setenv("NORTHWIND_ITERABLE", json.dumps({"api_key": SECRET}))
    connector = {"id": 1, "type": "iterable", "name": "Iterable", "credentials": "env:NORTHWIND_ITERABLE",
                 "settings": {"api_base_url": fake.url, "from_email": SENDER, "from_name": "Northwind"}}
    run = export_example(store, connector, "iterable", locales=EXAMPLE_LOCALES,
                         options={"export_field_values": {"google_analytics_campaign_name": "spring"}})
    state, record = run.state, run.final
    assert state.is_completed() and record.status == "completed", record.export_errors
    assert record.integration_name == "Iterable"
    ids = {loc: r.resource_id for loc, r in record.results.items()}
    assert set(ids) == set(EXAMPLE_LOCALES) and len(set(ids.values())) == 6
    stored = {loc: fake.resources[ids[loc]] for loc in ids}
    assert all(t["name"].startswith("Spring Sale 2026") and "[ee-" in t["name"] for t in stored.values())
    assert all(t["clientTemplateId"] == t["name"].rsplit("[", 1)[1].rstrip("]") for t in stored.values())
    assert 'dir="rtl"' in stored["ar-SA"]["html"]
    # Iterable's Handlebars: the loyalty conditional and the first-name fallback in its syntax
    assert "{{#ifEq loyaltyTier" in stored["en-US"]["html"] and "defaultIfEmpty" in stored["en-US"]["html"]
    assert all(t["plainText"] and t["googleAnalyticsCampaignName"] == "spring" for t in stored.values())
    assert record.open_in_integration_url == record.results["en-US"].resource_url
    assert fake.spec_problems == []


@pytest.mark.parametrize(("answer", "found"), [
    ({"msg": "Upserted 1 templates with IDs: 777", "code": "Success", "params": None}, "777"),
    ({"msg": "Upserted 2 templates with IDs: 777, 778", "code": "Success", "params": None}, None),
    ({"msg": "x", "code": "Success", "params": {"templateIds": [777, 778]}}, None),
    ({"msg": "Upserted", "code": "GenericError", "params": {"templateIds": [777]}}, None)])
def test_iterable_upsert_answer_yields_one_id_or_a_lost_create(make_connector, answer, found):
    connector = make_connector()
    response = httpx.Response(200, json=answer, request=httpx.Request("POST", "http://x/api/templates/email/upsert"))
    if found is None:
        with pytest.raises(AmbiguousCreateError, match="without one template id"):
            connector._upserted_id(response)
    else:
        assert connector._upserted_id(response) == found


@pytest.mark.parametrize(("path", "body", "problem"), [
    ("/api/templates/email/upsert", {"name": "x", "html": "<p>x</p>"}, "clientTemplateId"),
    ("/api/templates/email/upsert", {"clientTemplateId": "ee-x", "folderId": 3}, "folderId"),
    ("/api/templates/email/update", {"templateId": "12", "html": "<p>x</p>"}, "templateId")])
def test_iterable_fake_rejects_what_the_spec_rejects(fake, path, body, problem):
    # The fake is strict: a request Iterable's contract refuses is recorded as a spec problem.
    httpx.post(f"{fake.url}{path}", json=body, headers={"Api-Key": SECRET})
    assert any(problem in p for p in fake.spec_problems), fake.spec_problems
    fake.spec_problems.clear()


def test_iterable_fake_needs_the_api_key_header(fake):
    response = httpx.get(f"{fake.url}/api/templates/getByClientTemplateId", params={"clientTemplateId": "ee-x"})
    assert response.status_code == 401 and response.json()["code"] == "BadApiKey"
    assert any("Api-Key" in p or "api_key" in p.lower() for p in fake.spec_problems), fake.spec_problems
    fake.spec_problems.clear()
