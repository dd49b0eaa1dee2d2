"""Customer.io connector: the shared contract and fault sequences against the loopback Customer.io App API
(new one-time sends), plus what is Customer.io's own: translations of a named newsletter (added or updated,
never twice), translations of a named transactional message (updated only), US/EU hosts, its error bodies
and rate limit, and the example email exported through it in a flow."""

from __future__ import annotations

import base64
import json
import logging
import re
from dataclasses import replace
from typing import Any

import httpx
import pytest

from connectors.errors import (
    AuthenticationError,
    RateLimitedError,
    ResourceNotFoundError,
    ServerError,
    TerminalConnectorError,
    TimeoutConnectorError,
    VendorValidationError,
)
from connectors.esp.customerio import CustomerIoConnector, customerio_error_message
from emailexport.models import Connector
from tests.connectors.contract import CLIENT_TIMEOUT, ITEM, SECRET, ConnectorContract
from tests.connectors.fakes.base import Reply
from tests.connectors.fakes.customerio import CustomerIoFake
from tests.connectors.faults import FaultSequences
from tests.connectors.flow import export_example

SEGMENT = 7
DE = replace(ITEM, marker="ee-de0000000001")


@pytest.fixture
def fake():
    with CustomerIoFake(app_api_key=SECRET, segments=(SEGMENT,), senders=(1, 2)) as server:
        yield server


@pytest.fixture
def make_connector(fake):
    made: list[CustomerIoConnector] = []

    def make(*, credentials: dict[str, str] | None = None, sleep: Any = None, **overrides: Any) -> CustomerIoConnector:
        settings = {"api_base_url": f"{fake.url}/v1", "segment_id": SEGMENT, **overrides}
        record = Connector(id=9, type="customerio", name="Customer.io", settings=settings,
                           credentials="env:CUSTOMERIO_CREDENTIALS")
        connector = CustomerIoConnector(record, credentials or {"app_api_key": SECRET}, timeout=CLIENT_TIMEOUT,
                                        sleep=sleep)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


class TestCustomerio(ConnectorContract):
    connector_class = CustomerIoConnector


class TestCustomerioLostCreatesAndCollisions(FaultSequences):
    """`-k "customerio and (lost or collision)"`: the shared fault sequences against new one-time sends."""


def _bodies(fake: CustomerIoFake, method: str, path: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in fake.requests if r.method == method and re.search(path, r.path)]


@pytest.fixture(autouse=True)
def _customerio_fake_stays_strict(fake):
    yield
    assert fake.spec_problems == [], fake.spec_problems


# -- new one-time sends ---------------------------------------------------------------------

def test_customerio_creates_a_draft_one_time_send_with_everything_the_export_owns(fake, make_connector):
    result = make_connector(from_id=1, subscription_topic_id=5).push(DE)
    create = _bodies(fake, "POST", r"/v1/newsletters$")[0]
    assert fake.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert create == {
        "type": "email", "name": f"{ITEM.name} [{DE.marker}]",
        "recipients": {"and": [{"or": [{"segment": {"id": SEGMENT}}]}]},
        "subject": ITEM.subject, "body": ITEM.html, "preheader_text": ITEM.preheader, "body_plain": ITEM.plaintext,
        "from_id": 1, "subscription_topic_id": 5}  # never send_now / scheduled_at: a draft
    newsletter_id = int(result.resource_id.split("/")[1])
    assert fake.newsletters[newsletter_id]["sent_at"] is None
    stored = fake.resources[result.resource_id]
    assert (stored["preheader"], stored["text"]) == (ITEM.preheader, ITEM.plaintext)
    assert re.fullmatch(rf"newsletters/{newsletter_id}/templates/\d+", result.resource_id)


def test_customerio_new_one_time_send_needs_a_segment(fake, make_connector):
    with pytest.raises(TerminalConnectorError, match=r"settings\.segment_id"):
        make_connector(segment_id=None).push(DE)
    assert fake.requests == []


def test_customerio_reply_to_is_set_on_the_content_after_the_create(fake, make_connector):
    result = make_connector(from_id=1, reply_to_id=2).push(DE)
    assert "reply_to_id" not in _bodies(fake, "POST", r"/v1/newsletters$")[0]  # the create does not take it
    assert _bodies(fake, "PUT", r"/contents/\d+$")[0]["reply_to_id"] == 2
    assert fake.resources[result.resource_id]["reply_to_id"] == 2


def test_customerio_long_names_keep_the_whole_marker_within_190_characters(fake, make_connector):
    connector = make_connector()
    result = connector.push(replace(DE, name="N" * 300))
    name = fake.resources[result.resource_id]["name"]
    assert len(name) == 190 and name.endswith(f" [{DE.marker}]")
    assert connector.find_by_marker(replace(DE, name="N" * 300 + f" [{DE.marker}]")) == result.resource_id


def test_customerio_lookup_pages_newest_first_and_stops_at_older_newsletters(fake, make_connector):
    for n in range(250):
        older = fake.add_newsletter(f"older {n}")
        fake.newsletters[older]["created"] -= 7200  # made two hours before this push
    fake.inject(method="POST", path=r"/v1/newsletters$", delay=CLIENT_TIMEOUT + 0.5, delay_after_handling=True)
    connector = make_connector(sleep=lambda s: None)
    mine = connector.push(DE)  # its answer is lost: the marker is looked up
    assert [r.query for r in fake.requests if r.method == "GET"] == [{"limit": ["100"], "sort": ["desc"]}]
    assert any(mine.resource_id in w for w in mine.warnings)  # found on the first page, newest first
    fake.requests.clear()
    # Not there: page 1 still holds newsletters made since our first create, page 2 only older ones.
    assert connector.find_by_marker(replace(DE, name="never made")) is None
    assert len(fake.requests) == 2 and fake.requests[-1].query["start"]
    # A new process does not know when the first create was sent: it reads every page.
    assert make_connector().find_by_marker(replace(DE, name="never made")) is None
    assert len(fake.requests) == 2 + 3


# -- translations of a named newsletter ------------------------------------------------------

def test_customerio_locale_becomes_a_new_translation_of_the_named_newsletter(fake, make_connector):
    newsletter = fake.add_newsletter("Spring Sale", ("", "fr"))
    result = make_connector().push(replace(DE, campaign_id=str(newsletter)))
    add = _bodies(fake, "POST", rf"/v1/newsletters/{newsletter}/language$")
    assert add == [{"language": "de-DE", "subject": ITEM.subject, "body": ITEM.html,
                    "preheader_text": ITEM.preheader, "body_plain": ITEM.plaintext}]
    stored = fake.resources[result.resource_id]
    assert stored["language"] == "de-DE" and stored["name"] == "Spring Sale"
    assert fake.count("POST", r"/v1/newsletters$") == 0  # nothing else is created
    assert result.resource_url == f"https://fly.customer.io/env/last/composer/{result.resource_id}"


def test_customerio_existing_language_is_updated_and_the_mapping_picks_it(fake, make_connector):
    newsletter = fake.add_newsletter("Spring Sale", ("", "de", "fr"))
    connector = make_connector(message_id=newsletter, languages={"de-DE": "de", "en-US": ""})
    german = connector.push(DE)
    default = connector.push(replace(DE, locale="en-US", marker="ee-en0000000001", subject="Hello"))
    assert fake.count("POST", r"/language$") == 0
    assert fake.resources[german.resource_id]["language"] == "de"
    assert (fake.resources[default.resource_id]["language"], fake.resources[default.resource_id]["subject"]) == \
        ("", "Hello")
    french = make_connector(message_id=newsletter).push(replace(DE, options={"language": "fr"}))
    assert fake.resources[french.resource_id]["language"] == "fr"


def test_customerio_lost_translation_add_is_found_by_its_language_not_added_twice(fake, make_connector):
    newsletter = fake.add_newsletter("Spring Sale")
    fake.inject(method="POST", path=r"/language$", delay=CLIENT_TIMEOUT + 0.5, delay_after_handling=True)
    result = make_connector(sleep=lambda s: None).push(replace(DE, campaign_id=str(newsletter)))
    languages = [fake.contents[c]["language"] for c in fake.newsletters[newsletter]["content_ids"]]
    assert languages == ["", "de-DE"] and fake.count("POST", r"/language$") == 1
    assert any("found the resource it had made" in w and result.resource_id in w for w in result.warnings)


def test_customerio_refused_second_translation_leads_to_the_existing_one(fake, make_connector):
    newsletter = fake.add_newsletter("Spring Sale")
    connector = make_connector(sleep=lambda s: None)
    # Another push (a parallel task, or an earlier process) added the language between our look and our add.
    fake.inject(method="GET", path=r"/contents$", reply=Reply(200, {"contents": []}))
    httpx.post(f"{fake.url}/v1/newsletters/{newsletter}/language", headers={"Authorization": f"Bearer {SECRET}"},
               json={"language": "de-DE", "subject": "theirs", "body": "<p>theirs</p>"})
    result = connector.push(replace(DE, campaign_id=str(newsletter)))
    assert fake.count("POST", r"/language$") == 2  # theirs, then ours refused with a 422 ...
    assert fake.resources[result.resource_id]["subject"] == ITEM.subject  # ... and the existing variant updated
    assert len(fake.newsletters[newsletter]["content_ids"]) == 2
    assert any("rejected a second create" in w and result.resource_id in w for w in result.warnings)


def test_customerio_sent_newsletter_refuses_a_new_language(fake, make_connector):
    newsletter = fake.add_newsletter("Sent already", sent=True)
    with pytest.raises(VendorValidationError, match="HTTP 400: the newsletter has already been sent"):
        make_connector().push(replace(DE, campaign_id=str(newsletter)))


def test_customerio_ab_tested_newsletter_is_refused(fake, make_connector):
    newsletter = fake.add_newsletter("A/B", ("", "de-DE", "de-DE"))
    with pytest.raises(TerminalConnectorError, match="2 'de-DE' variants"):
        make_connector().push(replace(DE, campaign_id=str(newsletter)))


# -- translations of a named transactional message ---------------------------------------------

def test_customerio_transactional_message_variant_is_updated_never_created(fake, make_connector):
    message = fake.add_transactional("Receipt", ("", "de-DE"))
    connector = make_connector(message="transactional", from_id=1)
    result = connector.push(replace(DE, campaign_id=str(message)))
    put = _bodies(fake, "PUT", rf"/v1/transactional/{message}/content/\d+$")
    assert put == [{"subject": ITEM.subject, "body": ITEM.html, "preheader_text": ITEM.preheader, "from_id": 1}]
    assert re.fullmatch(rf"transactional/{message}/templates/\d+", result.resource_id)
    assert fake.resources[result.resource_id]["html"] == ITEM.html
    assert result.warnings == ("Customer.io's App API has no plain-text field for transactional messages; the "
                               "exported plain text was not sent (Customer.io generates one from the HTML)",)
    assert connector.find_by_marker(DE) is None  # nothing is ever created, so a lookup finds nothing
    assert not [r for r in fake.requests if r.method == "POST"]


def test_customerio_transactional_language_it_does_not_have_is_an_error_naming_the_ones_it_has(
        fake, make_connector):
    message = fake.add_transactional("Receipt", ("", "fr"))
    with pytest.raises(TerminalConnectorError, match=r"has no 'de-DE' content.*\('', 'fr'\)"):
        make_connector(message="transactional", message_id=message).push(DE)
    with pytest.raises(TerminalConnectorError, match="cannot be created through the App API"):
        make_connector(message="transactional").push(DE)


def test_customerio_transactional_content_of_another_message_is_customerios_meta_error(fake, make_connector):
    first = fake.add_transactional("Receipt", ("",))
    other = fake.add_transactional("Reset", ("",))
    theirs = next(c for c, v in fake.tx_contents.items() if v["transactional_id"] == other)
    with pytest.raises(VendorValidationError, match="HTTP 400: content_id does not belong"):
        make_connector(message="transactional").update(f"transactional/{first}/templates/{theirs}", DE)
    with pytest.raises(ResourceNotFoundError, match="HTTP 404"):
        make_connector(message="transactional").update(f"transactional/{first}/templates/999999", DE)


# -- hosts, credentials, settings -------------------------------------------------------------

def test_customerio_regions_pick_the_api_and_app_hosts():
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"contents": [{"id": 139, "language": ""}]})

    for region, api, app in (("us", "https://api.customer.io/v1", "https://fly.customer.io"),
                             ("eu", "https://api-eu.customer.io/v1", "https://fly-eu.customer.io")):
        record = Connector(id=1, type="customerio", name="c", credentials="env:X",
                           settings={"region": region, "message": "transactional", "message_id": 3,
                                     "languages": {"de-DE": ""}, "workspace_id": "109950"})
        connector = CustomerIoConnector(record, {"app_api_key": SECRET}, transport=httpx.MockTransport(answer))
        assert connector.find_by_marker(DE) is None
        result = connector.push(replace(DE, plaintext=""))
        assert str(sent[-1].url) == f"{api}/transactional/3/content/139"
        assert result.resource_url == f"{app}/env/109950/composer/transactional/3/templates/139"
        connector.close()


def test_customerio_wrong_key_is_a_401_with_customerios_message_and_no_secret(fake, make_connector, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-app-key-0000"
    fake.inject(method="POST", reply=Reply(401, {"errors": [{"code": "invalid_credentials", "status": "401",
                                                             "detail": f"invalid key Bearer {wrong}"}]}))
    with pytest.raises(AuthenticationError, match="HTTP 401: invalid_credentials: invalid key") as info:
        make_connector(credentials={"app_api_key": wrong}).push(DE)
    for form in (wrong, base64.b64encode(wrong.encode()).decode(), wrong.upper()):
        assert form not in str(info.value) and form not in caplog.text
    assert fake.newsletters == {}
    with pytest.raises(TerminalConnectorError, match="credentials are missing or invalid: app_api_key"):
        make_connector(credentials={"api_key": SECRET})


def test_customerio_settings_are_strict(make_connector):
    with pytest.raises(TerminalConnectorError, match="languages"):
        make_connector(languages={"es-419": "es_419"})
    with pytest.raises(TerminalConnectorError, match="region"):
        make_connector(region="au")
    with pytest.raises(TerminalConnectorError, match="site_id"):
        make_connector(site_id="123")  # a Track API setting, not the App API's


def test_customerio_options_are_checked_before_anything_runs():
    errors = CustomerIoConnector.check_options({"from_id": "1"}, {"de-DE": {"language": "de", "reply_to_id": "2"}},
                                               campaign_id="spring-sale")
    assert errors == {"options.campaign_id": [
        "Customer.io takes a number (the id of the newsletter or transactional message) as campaign_id, not "
        "'spring-sale'"]}


def test_customerio_locale_without_a_customerio_language_must_be_mapped(fake, make_connector):
    newsletter = fake.add_newsletter("Spring Sale")
    with pytest.raises(TerminalConnectorError, match="map locale es-419"):
        make_connector(message_id=newsletter).push(replace(DE, locale="es-419"))
    assert fake.count("POST") == 0


# -- errors, rate limits, timeouts ------------------------------------------------------------

def test_customerio_error_bodies_are_read():
    def message(status: int, body: Any) -> str:
        return customerio_error_message(httpx.Response(status, json=body))

    assert message(422, {"errors": [{"detail": "subscription_topic_id is required"}]}) == \
        "subscription_topic_id is required"
    assert message(400, {"meta": {"error": "content_id does not belong"}}) == "content_id does not belong"
    assert message(400, {"errors": [{"code": "bad_field", "detail": "bad", "status": "400",
                                     "source": {"pointer": "/body"}}]}) == "bad_field: bad (/body)"
    assert customerio_error_message(httpx.Response(404)) == "Not Found"
    assert customerio_error_message(httpx.Response(502, text="Bad gateway")) == "Bad gateway"


def test_customerio_422_is_a_validation_error_with_customerios_detail(fake, make_connector):
    with pytest.raises(VendorValidationError, match="HTTP 422: invalid from_id: sender identity 9") as info:
        make_connector(from_id=9).push(DE)
    assert info.value.status_code == 422 and fake.newsletters == {}


def test_customerio_429_with_retry_after_is_waited_out(fake, make_connector):
    waits: list[float] = []
    fake.inject(method="POST", path=r"/v1/newsletters$", reply=fake.rate_limited(2))
    result = make_connector(sleep=waits.append).push(DE)
    assert waits == [2.0] and list(fake.resources) == [result.resource_id]


def test_customerio_429_of_a_spent_daily_quota_is_backed_off_then_reported(fake, make_connector):
    waits: list[float] = []
    fake.inject(method="PUT", reply=fake.rate_limited(0), times=10)
    connector = make_connector(sleep=waits.append)
    first = connector.push(DE)
    with pytest.raises(RateLimitedError, match="rate limited to 10 requests per 1s"):
        connector.push(DE, previous_resource_id=first.resource_id)
    assert len(waits) == 3 and all(0 < w <= 10 for w in waits)  # no Retry-After: backoff, three times


def test_customerio_5xx_on_an_update_is_retried_then_reported(fake, make_connector):
    connector = make_connector(sleep=lambda s: None)
    first = connector.push(DE)
    fake.inject(method="PUT", reply=fake.server_error(), times=5)
    with pytest.raises(ServerError, match="HTTP 500: internal server error"):
        connector.push(DE, previous_resource_id=first.resource_id)
    assert fake.count("PUT") == 3 and len(fake.newsletters) == 1


def test_customerio_timeout_on_a_transactional_update_is_transient_and_creates_nothing(fake, make_connector):
    message = fake.add_transactional("Receipt", ("", "de-DE"))
    fake.inject(method="PUT", delay=CLIENT_TIMEOUT + 0.5, times=3)
    with pytest.raises(TimeoutConnectorError, match="timed out"):
        make_connector(message="transactional", message_id=message, sleep=lambda s: None).push(DE)
    assert fake.count("PUT") == 3 and len(fake.tx_contents) == 2


def test_customerio_fake_refuses_read_only_and_unknown_fields(fake):
    newsletter = fake.add_newsletter("x")
    content = fake.newsletters[newsletter]["content_ids"][0]
    answer = httpx.put(f"{fake.url}/v1/newsletters/{newsletter}/contents/{content}",
                       json={"subject": "s", "type": "email", "text": "t"},
                       headers={"Authorization": f"Bearer {SECRET}"})
    assert answer.status_code == 400
    assert any("'type' is read-only" in p for p in fake.spec_problems)
    assert any("'text' is not a property" in p for p in fake.spec_problems)
    fake.spec_problems.clear()


# -- the example email, through the flow ------------------------------------------------------

@pytest.mark.usefixtures("prefect_harness")
def test_customerio_example_email_exports_through_the_flow_as_translations(store, fake, monkeypatch):
    newsletter = fake.add_newsletter("Spring Sale 2026", ("", "fr-FR"))
    connector = {"id": 5, "type": "customerio", "name": "Northwind Customer.io", "credentials": "env:NW_CUSTOMERIO",
                 "settings": {"api_base_url": f"{fake.url}/v1", "region": "eu", "from_id": 1,
                              "languages": {"en-US": ""}}}
    monkeypatch.setenv("NW_CUSTOMERIO", json.dumps({"app_api_key": SECRET}))
    run = export_example(store, connector, "customerio", options={"campaign_id": str(newsletter)})
    state, final, locales = run.state, run.final, run.locales
    assert state.is_completed() and final.status == "completed", final.export_errors
    assert final.integration_name == "Customer.io"
    ids = {loc: r.resource_id for loc, r in final.results.items()}
    assert set(ids) == set(locales) and len(set(ids.values())) == len(locales)
    variants = {fake.resources[rid]["language"]: fake.resources[rid] for rid in ids.values()}
    assert set(variants) == {"", *[loc for loc in locales if loc != "en-US"]}  # en-US is the default content
    assert fake.count("POST", r"/language$") == len(locales) - 2  # fr-FR existed: updated, not added
    for stored in variants.values():
        assert stored["name"] == "Spring Sale 2026" and stored["subject"] and stored["from_id"] == 1
        assert "{{ customer." in stored["html"] or "{% if customer." in stored["html"]  # Customer.io's Liquid
    assert final.open_in_integration_url == f"https://fly-eu.customer.io/env/last/composer/{ids[locales[0]]}"
    assert len(fake.newsletters) == 1
