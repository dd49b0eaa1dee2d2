"""HubSpot connector: the shared contract and fault sequences against the loopback HubSpot, plus
what is HubSpot's own (a marketing email built on an uploaded coded template, the template-only
resource, its error bodies and scopes, its rate-limit policies), and the example email exported
through it in a flow."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import replace
from email.parser import BytesParser
from email.policy import HTTP
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
from connectors.esp.hubspot import (
    HubSpotConnector,
    hubspot_error_message,
    hubspot_rate_limit_reset,
    seconds_until_daily_reset,
)
from emailexport.models import Connector
from tests.connectors.contract import CLIENT_TIMEOUT, ITEM, SECRET, ConnectorContract
from tests.connectors.fakes.base import Reply
from tests.connectors.fakes.hubspot import FakeHubSpot
from tests.connectors.faults import FaultSequences
from tests.connectors.flow import export_example

PORTAL = 4242
CAMPAIGN = "1b7f51a6-33c1-44d6-ba28-fe81f655dced"


@pytest.fixture
def fake():
    with FakeHubSpot(token=SECRET) as server:
        yield server


@pytest.fixture
def make_connector(fake):
    made: list[HubSpotConnector] = []

    def make(*, credentials: dict[str, str] | None = None, sleep: Any = None, **overrides: Any) -> HubSpotConnector:
        settings = {"api_base_url": fake.url, "portal_id": PORTAL, **overrides}
        record = Connector(id=11, type="hubspot", name="HubSpot", settings=settings,
                           credentials="env:HUBSPOT_CREDENTIALS")
        connector = HubSpotConnector(record, credentials or {"access_token": SECRET}, timeout=CLIENT_TIMEOUT,
                                     sleep=sleep)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


class TestHubSpot(ConnectorContract):
    connector_class = HubSpotConnector


class TestHubSpotLostCreatesAndCollisions(FaultSequences):
    """`-k "hubspot and (lost or collision)"`: the shared fault sequences against the HubSpot fake."""


def _json(fake: FakeHubSpot, method: str, path: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in fake.requests if r.method == method and re.search(path, r.path)]


def _uploads(fake: FakeHubSpot) -> list[tuple[str, str, str]]:
    """(path, file name, source) of every Source Code PUT."""
    found = []
    for r in fake.requests:
        if r.method == "PUT" and r.path.startswith("/cms/v3/source-code/"):
            message = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {r.headers['content-type']}\r\n\r\n".encode() + r.body)
            part = next(iter(message.iter_parts()))
            found.append((r.path, str(part.get_filename()), str(part.get_content())))
    return found


def test_hubspot_sends_the_private_app_token_as_bearer_on_every_request(fake, make_connector):
    make_connector().push(ITEM)
    assert {r.headers["authorization"] for r in fake.requests} == {f"Bearer {SECRET}"}


def test_hubspot_create_uploads_a_coded_email_template_then_the_email_that_uses_it(fake, make_connector):
    result = make_connector(from_name="Northwind", reply_to="help@shop.example").push(ITEM)
    marker = re.search(r"\[(ee-[a-z2-7]{12})\]", fake.resources[result.resource_id]["name"]).group(1)
    path = f"emailexport/spring-sale-2026-de-de-{marker}.html"
    [(url, filename, source)] = _uploads(fake)
    assert url == f"/cms/v3/source-code/published/content/{path}" and filename == path.rsplit("/", 1)[1]
    assert source.startswith("<!--\n  templateType: email\n  isAvailableForNewContent: true\n"
                             f"  label: {ITEM.name} [{marker}]\n-->\n")
    assert source.endswith(ITEM.html)
    assert fake.files[path]["template_type"] == "email"
    [email] = _json(fake, "POST", r"^/marketing/v3/emails$")
    assert email == {"name": f"{ITEM.name} [{marker}]", "subject": ITEM.subject,
                     "content": {"templatePath": path, "plainTextVersion": ITEM.plaintext},
                     "from": {"fromName": "Northwind", "replyTo": "help@shop.example"}}
    assert [r.method for r in fake.requests] == ["PUT", "POST"]
    assert result.resource_url == f"https://app.hubspot.com/email/{PORTAL}/edit/{result.resource_id}/settings"


def test_hubspot_update_replaces_the_html_of_the_emails_template_and_every_field_the_export_owns(
        fake, make_connector):
    connector = make_connector()
    first = connector.push(replace(ITEM, marker="ee-firstexport01"))
    path = fake.resources[first.resource_id]["template_path"]
    second = connector.push(replace(ITEM, marker="ee-nextexport002", plaintext="", subject="Neu",
                                    html=ITEM.html.replace("Hallo", "Moin")),
                            previous_resource_id=first.resource_id)
    stored = fake.resources[second.resource_id]
    assert second.resource_id == first.resource_id and len(fake.emails) == 1
    assert stored["template_path"] == path and list(fake.files) == [path]  # the same file, rewritten
    assert "Moin" in stored["html"] and f"label: {ITEM.name} [ee-nextexport002]" in stored["html"]
    assert stored["name"] == f"{ITEM.name} [ee-nextexport002]"  # renamed to the current export's marker
    assert stored["text"] == "" and stored["subject"] == "Neu"  # an emptied plain text leaves HubSpot too
    assert [r.method for r in fake.requests[2:]] == ["GET", "PUT", "PATCH"]


def test_hubspot_update_of_an_email_switched_to_another_template_uploads_the_export_again(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    fake.files["@hubspot/email/dnd/plain_text.html"] = {**fake.files[fake.resources[first.resource_id]
                                                                       ["template_path"]]}
    fake.emails[first.resource_id]["template_path"] = "@hubspot/email/dnd/plain_text.html"  # changed in the app
    connector.push(replace(ITEM, marker="ee-nextexport002"), previous_resource_id=first.resource_id)
    stored = fake.resources[first.resource_id]
    assert stored["template_path"] == "emailexport/spring-sale-2026-de-de-ee-nextexport002.html"
    assert "<p>Hallo</p>" in stored["html"]


def test_hubspot_update_of_a_deleted_email_reads_hubspots_404(fake, make_connector):
    with pytest.raises(ResourceNotFoundError, match=r"HTTP 404: OBJECT_NOT_FOUND: No email found with id "
                                                    r"170000000999; correlationId [0-9a-f-]{36}"):
        make_connector().update("170000000999", replace(ITEM, marker="ee-x", name="x"))
    assert fake.count("GET") == 1 and fake.count("PATCH") == 0  # a 404 is not retried
    with pytest.raises(ResourceNotFoundError, match="not a marketing email id"):
        make_connector().update("emailexport/x-ee-x.html", ITEM)


def test_hubspot_missing_marketing_email_scope_names_it_and_suggests_the_template_resource(fake, make_connector):
    method, path = fake.create_route
    fake.inject(method=method, path=path, reply=fake.missing_scopes(["marketing-email"]))
    with pytest.raises(AuthenticationError) as info:
        make_connector().push(ITEM)
    message = str(info.value)
    assert "HTTP 403: the private app lacks the scope marketing-email (MISSING_SCOPES)" in message
    assert 'without marketing email access, set the connector\'s resource to "template"' in message
    assert "the HTML is in the Design Manager already, as emailexport/spring-sale-2026-de-de-ee-" in message
    assert info.value.status_code == 403 and fake.count(method, path) == 1 and fake.emails == {}
    assert SECRET not in message


def test_hubspot_token_without_the_content_scope_is_told_which_scope_the_templates_need(fake, make_connector):
    fake.scopes = {"marketing-email"}
    with pytest.raises(AuthenticationError, match=r"HTTP 403: the private app lacks the scope content "
                                                  r"\(MISSING_SCOPES\)") as info:
        make_connector().push(ITEM)
    assert "template" not in str(info.value).split("MISSING_SCOPES")[1].split("correlationId")[0]
    assert len(fake.requests) == 1 and fake.files == {}


def test_hubspot_wrong_token_is_a_401_without_the_token_in_messages_or_logs(fake, make_connector, caplog):
    wrong = "pat-na1-00000000-1111-2222-3333-444444444444"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError, match="HTTP 401: INVALID_AUTHENTICATION: Authentication "
                                                          "credentials not found") as info:
        make_connector(credentials={"access_token": wrong}).push(ITEM)
    for text in (str(info.value), caplog.text):
        assert wrong not in text and wrong[8:20] not in text
    assert len(fake.requests) == 1 and fake.files == {} and fake.emails == {}


def test_hubspot_400_is_a_validation_error_with_hubspots_message_and_details(fake, make_connector):
    body = {"status": "error", "message": "Property values were not valid", "correlationId": "8f0b3b2a-0000-4000-8000-"
            "000000000001", "category": "VALIDATION_ERROR",
            "errors": [{"message": "Subject must be under 255 characters", "in": "subject"}]}
    fake.inject(method="POST", path=r"/marketing/v3/emails$", reply=Reply(400, body))
    with pytest.raises(VendorValidationError) as info:
        make_connector().push(ITEM)
    assert ("HTTP 400: VALIDATION_ERROR: Property values were not valid; Subject must be under 255 characters; "
            "correlationId 8f0b3b2a-0000-4000-8000-000000000001") in str(info.value)
    assert info.value.status_code == 400 and fake.emails == {}


def test_hubspot_error_message_reads_the_shapes_hubspot_answers():
    def answer(status: int, body: Any, path: str = "/marketing/v3/emails") -> httpx.Response:
        request = httpx.Request("POST", f"https://api.hubapi.com{path}")
        return httpx.Response(status, json=body, request=request) if not isinstance(body, str) else \
            httpx.Response(status, text=body, request=request)

    assert hubspot_error_message(answer(502, "Bad gateway")) == "Bad gateway"
    scopes_in_context = {"status": "error", "message": "This app hasn't been granted all required scopes.",
                         "category": "MISSING_SCOPES", "context": {"requiredScopes": ["content"]}}
    assert hubspot_error_message(answer(403, scopes_in_context, "/cms/v3/source-code/published/content/a.html")) == \
        "the private app lacks the scope content (MISSING_SCOPES)"
    unnamed = {"status": "error", "message": "This app hasn't been granted all required scopes.",
               "category": "MISSING_SCOPES"}
    assert hubspot_error_message(answer(403, unnamed)).startswith(
        "the private app lacks the scope marketing-email (or content) (MISSING_SCOPES); without marketing email")
    limited = {"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT",
               "policyName": "DAILY", "correlationId": "c0"}
    assert hubspot_error_message(answer(429, limited)) == "RATE_LIMIT: You have reached your daily limit.; " \
                                                         "correlationId c0"


def test_hubspot_burst_limit_is_waited_out_for_the_window_hubspot_reports(fake, make_connector):
    waits: list[float] = []
    fake.inject(method="POST", path=r"/marketing/v3/emails$", reply=fake.rate_limited(10))
    result = make_connector(sleep=waits.append).push(ITEM)
    assert waits == [10.0] and list(fake.emails) == [result.resource_id]


def test_hubspot_retry_after_wins_over_the_rate_limit_headers(fake, make_connector):
    waits: list[float] = []
    reply = fake.rate_limited(10)
    reply.headers["Retry-After"] = "3"
    fake.inject(method="PUT", reply=reply)
    make_connector(sleep=waits.append).push(ITEM)
    assert waits == [3.0]


def test_hubspot_daily_limit_reaches_the_task_retry_with_the_wait_until_midnight_in_the_account_zone(
        fake, make_connector):
    fake.inject(method="POST", path=r"/marketing/v3/emails$", reply=fake.rate_limited_daily(), times=5)
    with pytest.raises(RateLimitedError, match="You have reached your daily limit") as info:
        make_connector(sleep=lambda s: None, account_time_zone="America/New_York").push(ITEM)
    expected = seconds_until_daily_reset("America/New_York")
    assert abs(info.value.retry_after - expected) < 5 and fake.count("POST") == 1  # not slept in the request
    assert fake.emails == {}


def test_hubspot_rate_limit_reset_reads_the_policy_and_headers():
    def answer(body: dict[str, Any], **headers: str) -> httpx.Response:
        return httpx.Response(429, json=body, headers=headers)

    assert hubspot_rate_limit_reset(answer({"policyName": "SECONDLY"})) == 1.0
    assert hubspot_rate_limit_reset(answer({"policyName": "TEN_SECONDLY_ROLLING"}, **{
        "X-HubSpot-RateLimit-Remaining": "0", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})) == 10.0
    assert hubspot_rate_limit_reset(answer({"policyName": "TEN_SECONDLY_ROLLING"})) is None  # backoff instead
    noon = dt.datetime(2026, 3, 7, 12, 0, tzinfo=dt.UTC)
    assert seconds_until_daily_reset("UTC", noon) == 12 * 3600
    assert seconds_until_daily_reset("Asia/Tokyo", noon) == 3 * 3600  # 21:00 in Tokyo
    assert seconds_until_daily_reset("America/New_York", noon) == 17 * 3600  # 07:00 in New York


def test_hubspot_5xx_on_the_patch_is_retried_then_reported(fake, make_connector):
    connector = make_connector(sleep=lambda s: None)
    first = connector.push(ITEM)
    fake.inject(method="PATCH", reply=fake.server_error(), times=5)
    with pytest.raises(ServerError, match="HTTP 500: INTERNAL_ERROR: internal error"):
        connector.push(ITEM, previous_resource_id=first.resource_id)
    assert fake.count("PATCH") == 3 and len(fake.emails) == 1


def test_hubspot_lost_template_upload_is_repeated_without_a_second_file_or_email(fake, make_connector):
    fake.inject(method="PUT", delay=CLIENT_TIMEOUT + 0.5, delay_after_handling=True)
    result = make_connector(sleep=lambda s: None).push(ITEM)
    assert fake.count("PUT") == 2 and len(fake.files) == 1  # the PUT replaced the file it had made
    assert list(fake.emails) == [result.resource_id] and result.warnings == ()


def test_hubspot_find_by_marker_pages_through_emails_and_narrows_to_its_own_creates(fake, make_connector):
    connector = make_connector()
    mine = connector.push(replace(ITEM, marker="ee-minemine0001")).resource_id
    target = replace(ITEM, marker="ee-minemine0001", name=fake.emails[mine]["name"])
    for n in range(150):  # more than one page of 100, all made before ours
        fake.emails[str(160_000_000_000 + n)] = {**fake.emails[mine], "name": f"filler {n}", "from": {},
                                                 "created_at": fake.emails[mine]["created_at"] - 3_600_000}
    fresh = make_connector()  # a new process: it never sent this create, so it lists everything
    assert fresh.find_by_marker(target) == mine
    pages = [r.query for r in fake.requests if r.method == "GET"]
    assert pages == [{"limit": ["100"]}, {"limit": ["100"], "after": ["100"]}]
    fake.requests.clear()
    assert connector.find_by_marker(target) == mine  # it sent the create: only what was made since
    [query] = [r.query for r in fake.requests]
    assert set(query) == {"limit", "createdAfter"} and query["createdAfter"][0].endswith("Z")
    assert connector.find_by_marker(replace(ITEM, name="never made")) is None


def test_hubspot_folder_campaign_and_per_locale_sender_reach_the_email(fake, make_connector):
    item = replace(ITEM, folder_id="55012", campaign_id=CAMPAIGN, fields={"reply_to": "all@shop.example"},
                   options={"reply_to": "de@shop.example", "from_name": "Northwind DE"})
    result = make_connector(from_name="Northwind").push(item)
    [email] = _json(fake, "POST", r"/marketing/v3/emails$")
    assert email["folderIdV2"] == 55012 and email["campaign"] == CAMPAIGN
    assert email["from"] == {"fromName": "Northwind DE", "replyTo": "de@shop.example"}
    assert result.warnings == ()


def test_hubspot_check_options_refuses_ids_hubspot_cannot_take():
    errors = HubSpotConnector.check_options({}, {"de-DE": {"campaign_id": "summer"}}, folder_id="inbox")
    assert errors == {
        "options.folder_id": ["HubSpot takes a number (a marketing email folder's folderIdV2) as folder_id, not "
                              "'inbox'"],
        "options.per_locale_options.de-DE.campaign_id": [
            "HubSpot takes a campaign's id (a UUID, as HubSpot's campaigns show it) as campaign_id, not 'summer'"],
    }
    assert HubSpotConnector.check_options({"reply_to": "a@b.example"}, {"de-DE": {"from_name": "X"}},
                                          folder_id="12", campaign_id=CAMPAIGN) == {}


def test_hubspot_settings_and_credentials_are_strict(make_connector):
    with pytest.raises(TerminalConnectorError, match="portal_id: Field required"):
        HubSpotConnector(Connector(id=1, type="hubspot", name="h", settings={}), {"access_token": SECRET})
    with pytest.raises(TerminalConnectorError, match="account_time_zone"):
        make_connector(account_time_zone="Mars/Olympus")
    with pytest.raises(TerminalConnectorError, match="template_folder"):
        make_connector(template_folder="/abs/../path")
    with pytest.raises(TerminalConnectorError, match="resource"):
        make_connector(resource="landing_page")
    with pytest.raises(TerminalConnectorError, match="api_key"):
        make_connector(api_key="x")
    with pytest.raises(TerminalConnectorError, match="credentials are missing or invalid: access_token") as info:
        make_connector(credentials={"token": SECRET})
    assert SECRET not in str(info.value)


def test_hubspot_resource_url_follows_the_app_host(make_connector):
    assert make_connector(app_url="https://app-eu1.hubspot.com").resource_url("170000000001") == \
        f"https://app-eu1.hubspot.com/email/{PORTAL}/edit/170000000001/settings"
    assert make_connector(resource="template").resource_url("emailexport/a.html") == \
        f"https://app.hubspot.com/design-manager/{PORTAL}"


def test_hubspot_template_resource_makes_only_the_design_manager_file_and_says_what_it_cannot_hold(
        fake, make_connector):
    result = make_connector(resource="template", template_folder="brand/exports").push(
        replace(ITEM, marker="ee-templateonly1", folder_id="7", campaign_id=CAMPAIGN))
    assert result.resource_id == "brand/exports/spring-sale-2026-de-de-ee-templateonly1.html"
    assert fake.emails == {} and fake.files[result.resource_id]["label"] == f"{ITEM.name} [ee-templateonly1]"
    assert result.resource_url == f"https://app.hubspot.com/design-manager/{PORTAL}"
    assert result.warnings == (
        "HubSpot templates hold no subject, plain text: set them on the email made from the template "
        "(resource: template)",
        "HubSpot templates have no email folder or campaign; folder_id 7 was not applied (resource: template)",
        f"HubSpot templates have no email folder or campaign; campaign_id {CAMPAIGN} was not applied "
        "(resource: template)")


def test_hubspot_template_resource_update_rewrites_the_file_and_recreates_a_deleted_one(fake, make_connector):
    connector = make_connector(resource="template")
    first = connector.push(replace(ITEM, marker="ee-templatefirst"))
    second = connector.push(replace(ITEM, marker="ee-templatenext1", html=ITEM.html.replace("Hallo", "Moin")),
                            previous_resource_id=first.resource_id)
    assert second.resource_id == first.resource_id and list(fake.files) == [first.resource_id]
    assert "Moin" in fake.files[first.resource_id]["source"]
    assert fake.files[first.resource_id]["label"] == f"{ITEM.name} [ee-templatenext1]"
    fake.delete_file(first.resource_id)
    third = connector.push(replace(ITEM, marker="ee-templatethird"), previous_resource_id=first.resource_id)
    assert list(fake.files) == [third.resource_id] and third.resource_id.endswith("-ee-templatethird.html")
    assert any(first.resource_id in w and "no longer exists" in w for w in third.warnings)


def test_hubspot_template_resource_finds_only_the_file_carrying_its_marker(fake, make_connector):
    connector = make_connector(resource="template", sleep=lambda s: None)
    ours = replace(ITEM, marker="ee-templatelost1")
    assert connector.find_by_marker(ours) is None  # no folder yet
    other = connector.push(replace(ITEM, marker="ee-otherexport1")).resource_id  # same name, another export
    assert connector.find_by_marker(ours) is None
    made = connector.push(ours).resource_id
    assert connector.find_by_marker(ours) == made != other
    assert fake.count("GET", r"/cms/v3/source-code/published/metadata/emailexport$") == 3


def test_hubspot_fake_is_strict_about_unknown_properties_and_multipart_uploads(fake):
    headers = {"Authorization": f"Bearer {SECRET}"}
    answer = httpx.post(f"{fake.url}/marketing/v3/emails", json={"name": "x", "html": "<p>"}, headers=headers)
    assert answer.status_code == 400 and 'Unrecognized field "html"' in answer.json()["message"]
    upload = httpx.put(f"{fake.url}/cms/v3/source-code/published/content/a.html", content=b"<p>",
                       headers={**headers, "Content-Type": "text/html"})
    assert upload.status_code == 400 and upload.json()["category"] == "VALIDATION_ERROR"
    assert len(fake.spec_problems) == 2 and fake.emails == {} and fake.files == {}
    fake.spec_problems.clear()


@pytest.mark.usefixtures("prefect_harness")
def test_hubspot_example_email_exports_through_the_flow(store, fake, monkeypatch):
    connector = {"id": 6, "type": "hubspot", "name": "Northwind HubSpot", "credentials": "env:NW_HUBSPOT",
                 "settings": {"api_base_url": fake.url, "portal_id": PORTAL, "from_name": "Northwind",
                              "reply_to": "news@northwind.example"}}
    monkeypatch.setenv("NW_HUBSPOT", json.dumps({"access_token": SECRET}))
    run = export_example(store, connector, "hubspot")
    state, final, email, locales = run.state, run.final, run.email, run.locales
    assert state.is_completed() and final.status == "completed", final.export_errors
    assert final.integration_name == "HubSpot"
    ids = {loc: r.resource_id for loc, r in final.results.items()}
    assert set(ids) == set(locales) and len(set(ids.values())) == len(locales)
    for locale, email_id in ids.items():
        stored = fake.resources[email_id]
        assert stored["name"].startswith(f"{email.name} ({locale}) [ee-") and stored["subject"] and stored["text"]
        assert stored["template_path"].startswith("emailexport/") and stored["html"].startswith("<!--\n")
        assert "personalization_token(" in stored["html"] or "{% if contact." in stored["html"]  # HubL
        assert stored["from"] == {"fromName": "Northwind", "replyTo": "news@northwind.example"}
    assert len(fake.files) == len(locales)
    assert final.open_in_integration_url == f"https://app.hubspot.com/email/{PORTAL}/edit/{ids[locales[0]]}/settings"
    assert fake.spec_problems == []
