"""Mailjet connector: the shared contract and fault sequences against the loopback Mailjet, plus
what is Mailjet's own (Basic auth, the two-step template, 304 on an unchanged PUT, its error
bodies), and the example email exported through it in a flow."""

from __future__ import annotations

import base64
import json
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
    VendorValidationError,
)
from connectors.esp.mailjet import MailjetConnector, mailjet_error_message
from emailexport.models import Connector
from tests.connectors.contract import CLIENT_TIMEOUT, ITEM, SECRET, ConnectorContract
from tests.connectors.fakes.base import Reply
from tests.connectors.fakes.mailjet import MailjetFake
from tests.connectors.faults import FaultSequences
from tests.connectors.flow import export_example

API_KEY = "0123456789abcdef0123456789abcdef"
SENDER = "news@shop.example"


@pytest.fixture
def fake():
    with MailjetFake(api_key=API_KEY, secret_key=SECRET) as server:
        yield server


@pytest.fixture
def make_connector(fake):
    made: list[MailjetConnector] = []

    def make(*, credentials: dict[str, str] | None = None, sleep: Any = None, **overrides: Any) -> MailjetConnector:
        settings = {"api_base_url": f"{fake.url}/v3", **overrides}
        record = Connector(id=9, type="mailjet", name="Mailjet", settings=settings,
                           credentials="env:MAILJET_CREDENTIALS")
        connector = MailjetConnector(record, credentials or {"api_key": API_KEY, "secret_key": SECRET},
                                     timeout=CLIENT_TIMEOUT, sleep=sleep)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


class TestMailjet(ConnectorContract):
    connector_class = MailjetConnector


class TestMailjetLostCreatesAndCollisions(FaultSequences):
    """`-k "mailjet and (lost or collision)"`: the shared fault sequences against the Mailjet fake."""


def _bodies(fake: MailjetFake, method: str, path: str) -> list[dict[str, Any]]:
    import re

    return [json.loads(r.body) for r in fake.requests if r.method == method and re.search(path, r.path)]


def test_mailjet_authenticates_with_basic_api_key_and_secret_key(fake, make_connector):
    make_connector().push(ITEM)
    header = fake.requests[0].headers["authorization"]
    assert header == "Basic " + base64.b64encode(f"{API_KEY}:{SECRET}".encode()).decode()


def test_mailjet_wrong_secret_is_a_401_without_any_form_of_the_secret(fake, make_connector):
    wrong = {"api_key": API_KEY, "secret_key": "not-the-secret-0000"}
    with pytest.raises(AuthenticationError, match="HTTP 401: Unauthorized") as info:
        make_connector(credentials=wrong).push(ITEM)
    token = base64.b64encode(f"{API_KEY}:not-the-secret-0000".encode()).decode()
    for secret in ("not-the-secret-0000", token, API_KEY):
        assert secret not in str(info.value)
    assert fake.resources == {} and len(fake.requests) == 1


def test_mailjet_credentials_need_both_keys(make_connector):
    with pytest.raises(TerminalConnectorError, match="credentials are missing or invalid: secret_key"):
        make_connector(credentials={"api_key": API_KEY})


def test_mailjet_create_sends_the_template_then_its_detail_content(fake, make_connector):
    connector = make_connector(sender_email=SENDER, sender_name="Shop")
    result = connector.push(replace(ITEM, fields={"reply_to": "help@shop.example"}))
    template = _bodies(fake, "POST", r"/template$")[0]
    assert template.pop("Name") == fake.resources[result.resource_id]["name"]
    assert fake.resources[result.resource_id]["name"].startswith(ITEM.name + " [ee-")
    assert template == {"Description": "", "OwnerType": "apikey", "EditMode": 2, "Purposes": ["transactional"],
                        "IsTextPartGenerationEnabled": False}
    content = _bodies(fake, "POST", r"/detailcontent$")[0]
    assert content == {"Html-part": ITEM.html, "Text-part": ITEM.plaintext,
                       "Headers": {"Subject": ITEM.subject, "From": f'"Shop" <{SENDER}>',
                                   "Reply-to": "help@shop.example"}}
    stored = fake.resources[result.resource_id]
    assert stored["text"] == ITEM.plaintext and stored["headers"]["Reply-to"] == "help@shop.example"


def test_mailjet_update_clears_what_the_export_no_longer_has(fake, make_connector):
    connector = make_connector()
    first = connector.push(replace(ITEM, fields={"reply_to": "help@shop.example"}))
    connector.push(replace(ITEM, plaintext=""), previous_resource_id=first.resource_id)
    stored = fake.resources[first.resource_id]
    assert "Reply-to" not in stored["headers"] and stored["text"] == ""


def test_mailjet_answers_304_to_an_unchanged_name_and_the_update_goes_on(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    changed = replace(ITEM, html=ITEM.html.replace("Hallo", "Moin"))
    second = connector.push(changed, previous_resource_id=first.resource_id)
    assert second.resource_id == first.resource_id
    puts = [r for r in fake.requests if r.method == "PUT" and r.path.endswith(f"/template/{first.resource_id}")]
    assert len(puts) == 1  # answered 304 (nothing to rename), not retried, not an error
    assert "Moin" in fake.resources[first.resource_id]["html"]


def test_mailjet_rename_reaches_the_template(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    connector.push(replace(ITEM, name="Renamed"), previous_resource_id=first.resource_id)
    assert fake.resources[first.resource_id]["name"].startswith("Renamed [ee-")


def test_mailjet_deleted_template_is_a_404_and_is_recreated(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    fake.delete_resource(first.resource_id)
    second = connector.push(ITEM, previous_resource_id=first.resource_id)
    assert list(fake.resources) == [second.resource_id]
    assert fake.count("PUT", rf"/template/{first.resource_id}$") == 1  # a 404 is not retried


def test_mailjet_404_body_is_read(make_connector):
    response = httpx.Response(404, json={"ErrorInfo": "", "ErrorMessage": "Object not found", "StatusCode": 404})
    assert mailjet_error_message(response) == "Object not found"
    with_info = httpx.Response(400, json={"ErrorInfo": "Html-part", "ErrorMessage": "Invalid value", "StatusCode": 400})
    assert mailjet_error_message(with_info) == "Invalid value (Html-part)"
    assert mailjet_error_message(httpx.Response(502, text="Bad gateway")) == "Bad gateway"


def test_mailjet_update_of_a_gone_template_raises_not_found(fake, make_connector):
    with pytest.raises(ResourceNotFoundError, match="Object not found"):
        make_connector().update("424242", replace(ITEM, marker="ee-x", name="x"))


def test_mailjet_400_is_a_validation_error_with_mailjets_message(fake, make_connector):
    fake.inject(method="POST", path=r"/template$",
                reply=Reply(400, {"ErrorInfo": "", "ErrorMessage": "MJ18 A Template resource with value "
                                  "\"apikey|x\" for OwnerType|Name already exists.", "StatusCode": 400}))
    with pytest.raises(VendorValidationError, match="HTTP 400: MJ18 A Template resource") as info:
        make_connector().push(ITEM)
    assert info.value.status_code == 400
    assert fake.resources == {}


def test_mailjet_rejects_a_second_template_of_the_same_name(fake, make_connector):
    connector = make_connector()
    connector.create(replace(ITEM, marker="m1", name="Same"))
    with pytest.raises(VendorValidationError, match="already exists"):
        connector.create(replace(ITEM, marker="m2", name="Same"))
    assert fake.spec_problems == []  # a refusal of Mailjet's, not a malformed request


def test_mailjet_429_without_headers_is_backed_off_and_retried(fake, make_connector):
    waits: list[float] = []
    fake.inject(method="POST", path=r"/template$", reply=fake.rate_limited(0))
    result = make_connector(sleep=waits.append).push(ITEM)
    assert len(waits) == 1 and 0 < waits[0] <= 10
    assert list(fake.resources) == [result.resource_id]


def test_mailjet_429_beyond_the_wait_bound_reaches_the_task_retry(fake, make_connector):
    fake.inject(method="POST", path=r"/template$", reply=fake.rate_limited(600))
    with pytest.raises(RateLimitedError) as info:
        make_connector(sleep=lambda s: None).push(ITEM)
    assert info.value.retry_after == 600.0 and fake.resources == {}


def test_mailjet_5xx_on_an_update_is_retried_then_reported(fake, make_connector):
    connector = make_connector(sleep=lambda s: None)
    first = connector.push(ITEM)
    fake.inject(method="POST", path=r"/detailcontent$", reply=fake.server_error(), times=5)
    with pytest.raises(ServerError, match="HTTP 500: Internal Server Error"):
        connector.push(ITEM, previous_resource_id=first.resource_id)
    assert fake.count("POST", r"/detailcontent$") == 1 + 3  # the create's, then three attempts
    assert len(fake.resources) == 1


def test_mailjet_timeout_on_the_content_step_is_finished_by_the_retry_without_a_second_template(
        fake, make_connector):
    connector = make_connector(sleep=lambda s: None)
    item = replace(ITEM, marker="ee-contentlost01")
    fake.inject(method="POST", path=r"/detailcontent$", delay=CLIENT_TIMEOUT + 0.5, times=3)
    with pytest.raises(Exception, match="timed out"):
        connector.push(item)
    assert len(fake.resources) == 1  # the template exists, its content not yet
    result = connector.push(item, retrying=True)
    assert list(fake.resources) == [result.resource_id]
    assert fake.count("POST", r"/template$") == 1
    assert "<p>Hallo</p>" in fake.resources[result.resource_id]["html"]


def test_mailjet_find_by_marker_pages_through_its_owner_type_only(fake, make_connector):
    connector = make_connector()
    mine = connector.push(replace(ITEM, name="Mine")).resource_id
    for n in range(1100):  # more than one page of 1000
        fake.resources[str(9_000_000 + n)] = {**fake.resources[mine], "name": f"filler {n}"}
    user_owned = make_connector(owner_type="user")
    target = replace(ITEM, name=fake.resources[mine]["name"])
    assert user_owned.find_by_marker(target) is None  # another OwnerType's templates are not ours
    assert connector.find_by_marker(target) == mine
    assert connector.find_by_marker(replace(ITEM, name="never made")) is None
    pages = [r.query for r in fake.requests if r.method == "GET"]
    assert {"OwnerType": ["apikey"], "Limit": ["1000"], "Offset": ["1000"]} in pages


def test_mailjet_folder_and_campaign_are_warned_about(fake, make_connector):
    result = make_connector().push(replace(ITEM, folder_id="12", campaign_id="c9"))
    assert result.warnings == (
        "Mailjet templates have no folders or campaigns; folder_id 12 was not applied",
        "Mailjet templates have no folders or campaigns; campaign_id c9 was not applied")


def test_mailjet_settings_are_strict(make_connector):
    with pytest.raises(TerminalConnectorError, match="owner_type"):
        make_connector(owner_type="global")  # only Mailjet's privileged key may own global templates
    with pytest.raises(TerminalConnectorError, match="sender_email"):
        make_connector(sender_email="not an address")


def test_mailjet_resource_url_opens_the_template_in_the_app(make_connector):
    assert make_connector().resource_url("5000001") == "https://app.mailjet.com/template/5000001/build"


def test_mailjet_fake_is_strict_about_unknown_properties(fake):
    token = base64.b64encode(f"{API_KEY}:{SECRET}".encode()).decode()
    answer = httpx.post(f"{fake.url}/v3/REST/template", json={"Name": "x", "Subject": "nope"},
                        headers={"Authorization": f"Basic {token}"})
    assert answer.status_code == 400 and "Subject" in answer.json()["ErrorMessage"]
    assert fake.spec_problems and fake.resources == {}
    fake.spec_problems.clear()


@pytest.mark.usefixtures("prefect_harness")
def test_mailjet_example_email_exports_through_the_flow(store, fake, monkeypatch):
    connector = {"id": 5, "type": "mailjet", "name": "Northwind Mailjet", "credentials": "env:NW_MAILJET",
                 "settings": {"api_base_url": f"{fake.url}/v3", "sender_email": "news@northwind.example",
                              "sender_name": "Northwind"}}
    monkeypatch.setenv("NW_MAILJET", json.dumps({"api_key": API_KEY, "secret_key": SECRET}))
    run = export_example(store, connector, "mailjet")
    state, final, email, locales = run.state, run.final, run.email, run.locales
    assert state.is_completed() and final.status == "completed", final.export_errors
    assert final.integration_name == "Mailjet"
    ids = {loc: r.resource_id for loc, r in final.results.items()}
    assert set(ids) == set(locales) and len(set(ids.values())) == len(locales)
    for locale, template_id in ids.items():
        stored = fake.resources[template_id]
        assert stored["name"].startswith(f"{email.name} ({locale}) [ee-") and stored["subject"] and stored["text"]
        assert "{{data:" in stored["html"] or "{% if data:" in stored["html"]  # Mailjet's template language
    assert final.open_in_integration_url == f"https://app.mailjet.com/template/{ids[locales[0]]}/build"
    assert fake.spec_problems == []
