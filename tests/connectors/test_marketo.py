"""Adobe Marketo Engage: the shared contract against a loopback Marketo, plus its OAuth and its
HTTP-200 error bodies."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from connectors.errors import (
    AmbiguousCreateError,
    AuthenticationError,
    RateLimitedError,
    TerminalConnectorError,
    VendorValidationError,
)
from connectors.esp.marketo import MarketoConnector, seconds_until_quota_reset
from emailexport.models import Connector
from tests.connectors.contract import CLIENT_TIMEOUT, ITEM, SECRET, ConnectorContract
from tests.connectors.fakes.base import Reply
from tests.connectors.fakes.marketo import FakeMarketo, _failure, form_fields
from tests.connectors.faults import FaultSequences

CLIENT_ID = "5f1c0a7e-marketo-client-id"
TOKEN = ("GET", "^/identity/oauth/token$")
CREATE = "^/rest/asset/v1/emails\\.json$"


@pytest.fixture
def fake():
    with FakeMarketo(CLIENT_ID, SECRET) as server:
        yield server


def _settings(fake: FakeMarketo, **overrides: Any) -> dict[str, Any]:
    return {"instance_url": fake.url, "template_id": 1044, "folder_id": 1001, "from_name": "Shop",
            "from_email": "news@shop.example", "rate_limit_wait": 1.0, **overrides}


@pytest.fixture
def make_connector(fake):
    def make(sleep: Any = None, **overrides: Any) -> MarketoConnector:
        record = Connector(id=17, type="marketo", name="Marketo", settings=_settings(fake, **overrides))
        return MarketoConnector(record, {"client_id": CLIENT_ID, "client_secret": SECRET},
                                timeout=CLIENT_TIMEOUT, sleep=sleep)

    return make


class TestMarketo(ConnectorContract):
    connector_class = MarketoConnector


class TestMarketoLostCreatesAndCollisions(FaultSequences):
    """`-k "marketo and (lost or collision)"`: the shared fault sequences against the Marketo fake."""


def _posts(fake: FakeMarketo, path_regex: str) -> list[dict[str, str]]:
    import re

    return [form_fields(r) for r in fake.requests if r.method == "POST" and re.search(path_regex, r.path)]


def test_marketo_email_is_created_from_the_template_in_the_folder_with_sender_and_preheader(fake, make_connector):
    item = replace(ITEM, folder_id="1002", fields={"description": "Spring", "reply_email": "help@shop.example"})
    result = make_connector().push(item)
    stored = fake.resources[result.resource_id]
    assert stored["folder"] == 1002 and stored["template"] == 1044 and stored["description"] == "Spring"
    assert (stored["from_name"], stored["from_email"], stored["reply_email"]) == (
        "Shop", "news@shop.example", "help@shop.example")
    assert stored["preheader"] == ITEM.preheader and stored["html"] == ITEM.html
    created = _posts(fake, CREATE)[0]
    assert created["folder"] == '{"id": 1002, "type": "Folder"}' and created["template"] == "1044"
    assert all(r.headers["content-type"] != "application/json" for r in fake.requests if r.body)


def test_marketo_token_is_fetched_once_by_get_with_query_parameters_and_sent_as_bearer(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    connector.push(replace(ITEM, name="Second"))
    connector.push(ITEM, previous_resource_id=first.resource_id)
    assert fake.count(*TOKEN) == 1
    token = fake.requests[0]
    assert token.query["grant_type"] == ["client_credentials"] and token.query["client_id"] == [CLIENT_ID]
    assert all(r.headers["authorization"].startswith("Bearer ") and "access_token" not in r.query
               for r in fake.requests[1:])


def test_marketo_token_close_to_expiry_is_renewed_before_use(fake, make_connector):
    fake.expires_in = 120
    connector = make_connector()
    now = [1000.0]
    connector.clock = lambda: now[0]
    connector.push(ITEM)
    now[0] += 59
    connector.push(replace(ITEM, name="Two"))
    assert fake.count(*TOKEN) == 1
    now[0] += 2  # inside the 60 s margin
    connector.push(replace(ITEM, name="Three"))
    assert fake.count(*TOKEN) == 2


@pytest.mark.parametrize("code", ["601", "602"])
def test_marketo_token_errors_renew_the_token_once_and_repeat_once(fake, make_connector, code):
    connector = make_connector()
    connector.push(ITEM)
    if code == "602":
        fake.expire_tokens()
    else:
        fake.tokens.clear()
    result = connector.push(replace(ITEM, name="After expiry"))
    assert result.resource_id in fake.resources
    assert [(r.method, r.path) for r in fake.requests[5:8]] == [
        ("POST", "/rest/asset/v1/emails.json"), ("GET", "/identity/oauth/token"),
        ("POST", "/rest/asset/v1/emails.json")]


def test_marketo_a_second_token_error_fails_without_a_loop_or_secrets(fake, make_connector):
    connector = make_connector()
    connector.push(ITEM)
    fake.inject(method="POST", path=CREATE, reply=_failure("601", "Access token invalid"), times=5)
    with pytest.raises(AuthenticationError, match="Access token invalid") as info:
        connector.push(replace(ITEM, name="Refused"))
    assert SECRET not in str(info.value) and CLIENT_ID not in str(info.value)
    assert fake.count(*TOKEN) == 2 and fake.count("POST", CREATE) == 3
    assert connector._token and connector._token not in str(info.value)


def test_marketo_wrong_client_secret_is_the_identity_services_401(fake):
    record = Connector(id=17, type="marketo", name="M", settings=_settings(fake))
    connector = MarketoConnector(record, {"client_id": CLIENT_ID, "client_secret": "wrong-secret-value"},
                                 timeout=CLIENT_TIMEOUT)
    with pytest.raises(AuthenticationError, match="Bad client credentials") as info:
        connector.push(ITEM)
    assert "wrong-secret-value" not in str(info.value) and len(fake.requests) == 1


def test_marketo_606_and_615_are_waited_out_then_a_rate_limit_error_carries_the_window(fake, make_connector):
    waits: list[float] = []
    connector = make_connector(sleep=waits.append, rate_limit_wait=20.0)
    fake.inject(method="POST", path=CREATE, reply=fake.rate_limited(20))
    fake.inject(method="POST", path=CREATE, reply=_failure("615", "Concurrent access limit reached"))
    assert connector.push(ITEM).resource_id in fake.resources
    assert waits == [20.0, 20.0]
    fake.inject(method="POST", path=CREATE, reply=fake.rate_limited(20), times=10)
    with pytest.raises(RateLimitedError) as info:
        connector.push(replace(ITEM, name="Limited"))
    assert info.value.retry_after == 20.0 and "606" in str(info.value)
    assert fake.count("POST", CREATE) == 3 + 4  # three sent before; now three waits, then the error


def test_marketo_daily_quota_is_a_rate_limit_until_midnight_central(fake, make_connector):
    fake.inject(method="POST", path=CREATE, reply=_failure("607", "Daily quota reached"))
    with pytest.raises(RateLimitedError, match="607") as info:
        make_connector().push(ITEM)
    assert 0 < info.value.retry_after <= 86400 and fake.resources == {}
    # 23:00 in Chicago (05:00 UTC in winter) is one hour before the reset
    assert seconds_until_quota_reset(dt.datetime(2026, 12, 2, 5, 0, tzinfo=dt.UTC)) == 3600


def test_marketo_business_rule_errors_are_validation_errors_with_marketos_words(fake, make_connector):
    with pytest.raises(VendorValidationError, match=r"Parent folder not found \(code 710\)"):
        make_connector().push(replace(ITEM, folder_id="4242"))
    with pytest.raises(VendorValidationError, match="Template 99 not found"):
        make_connector(template_id=99).push(ITEM)


def test_marketo_script_in_the_html_is_refused_as_marketo_does(fake, make_connector):
    item = replace(ITEM, html="<html><body><script>x()</script></body></html>")
    with pytest.raises(VendorValidationError, match="script"):
        make_connector().push(item)
    assert fake.resources == {} and fake.count("POST", CREATE) == 0  # refused before anything was made


def test_marketo_http_5xx_from_the_gateway_is_retried_on_updates(fake, make_connector):
    connector = make_connector(sleep=lambda s: None)
    first = connector.push(ITEM)
    fake.inject(method="POST", path=r"/fullContent\.json$", reply=Reply(502, "<html>Bad Gateway</html>",
                                                                       {"Content-Type": "text/html"}))
    again = connector.push(replace(ITEM, html=ITEM.html.replace("Hallo", "Servus")),
                           previous_resource_id=first.resource_id)
    assert "Servus" in fake.resources[again.resource_id]["html"]


def test_marketo_timeout_on_a_create_is_ambiguous_and_found_by_name(fake, make_connector):
    connector = make_connector(sleep=lambda s: None)
    fake.inject(method="POST", path=CREATE, delay=CLIENT_TIMEOUT + 0.5, delay_after_handling=True)
    result = connector.push(ITEM)
    assert list(fake.resources) == [result.resource_id]
    looked = [r for r in fake.requests if r.path.endswith("byName.json")]
    assert looked and looked[0].query["name"][0].startswith(ITEM.name + " [ee-")


def test_marketo_a_fresh_process_resending_the_create_is_refused_709_and_adopts(fake, make_connector):
    item = replace(ITEM, marker="ee-samename0000")
    first = make_connector().push(item).resource_id
    again = make_connector(sleep=lambda s: None).push(item)
    assert again.resource_id == first and list(fake.resources) == [first]
    assert any("rejected a second create" in w for w in again.warnings)


def test_marketo_update_of_a_deleted_email_answered_702_recreates(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    fake.inject(method="GET", path=r"/email/\d+\.json$", reply=_failure("702", "No data found"))
    fake.delete_resource(first.resource_id)
    second = connector.push(ITEM, previous_resource_id=first.resource_id)
    assert second.resource_id != first.resource_id and any("no longer exists" in w for w in second.warnings)


def test_marketo_update_clears_the_preheader_and_renames(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    connector.push(replace(ITEM, preheader="", name="Renamed"), previous_resource_id=first.resource_id)
    stored = fake.resources[first.resource_id]
    assert stored["preheader"] == "" and stored["name"].startswith("Renamed [ee-")


def test_marketo_campaign_is_a_warning_and_the_text_version_is_copied_from_the_html(fake, make_connector):
    result = make_connector().push(replace(ITEM, campaign_id="77"))
    assert len(result.warnings) == 1 and "campaign_id 77" in result.warnings[0]
    assert fake.resources[result.resource_id]["auto_copy"] is True


def test_marketo_access_denied_603_is_an_authentication_error(fake, make_connector):
    fake.inject(method="POST", path=CREATE, reply=_failure("603", "Access denied"))
    with pytest.raises(AuthenticationError, match="603"):
        make_connector().push(ITEM)


def test_marketo_611_on_create_then_lookups_failing_is_may_exist(fake, make_connector):
    fake.inject(method="POST", path=CREATE, reply=fake.server_error())
    fake.inject(method="GET", path="byName", reply=fake.server_error(), times=50)
    with pytest.raises(AmbiguousCreateError, match="may exist"):
        make_connector(sleep=lambda s: None).push(replace(ITEM, marker="ee-lookupfails0"))
    assert fake.resources == {}


def test_marketo_resource_url_opens_the_email_in_the_instance(make_connector, fake):
    assert make_connector(app_url="https://app-ab12.marketo.com/").resource_url("20311") == \
        "https://app-ab12.marketo.com/#EM20311A1"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"template_id": None}, "template_id"),
    ({"region": "eu"}, "region"),
    ({"from_email": ""}, "from_email"),
])
def test_marketo_settings_are_checked(fake, overrides, message):
    settings = {k: v for k, v in _settings(fake, **overrides).items() if v is not None}
    record = Connector(id=1, type="marketo", name="M", settings=settings)
    with pytest.raises(TerminalConnectorError, match=message):
        MarketoConnector(record, {"client_id": CLIENT_ID, "client_secret": SECRET})


@pytest.mark.parametrize("folder", ["Emails", "12a", "-3", "1.5"])
def test_marketo_a_folder_id_that_is_not_a_number_is_refused_at_validation(folder):
    errors = MarketoConnector.check_options({}, {"de-DE": {"folder_id": folder}}, folder_id=folder)
    assert set(errors) == {"options.folder_id", "options.per_locale_options.de-DE.folder_id"}
    assert MarketoConnector.check_options({}, {}, folder_id="1002") == {}


@pytest.mark.usefixtures("prefect_harness")
def test_marketo_flow_exports_the_example_email_to_the_fake(fake, store, monkeypatch):
    """The example workspace's email (examples/workspace.yaml), every locale, through the export
    flow to the loopback Marketo."""
    import json
    from pathlib import Path

    from emailexport.bundle import import_bundle, load_bundle, read_bundle_file
    from emailexport.cli import run_export

    example = Path(__file__).parents[2] / "examples" / "workspace.yaml"
    data = read_bundle_file(example)
    data["connectors"] = [{"id": 1, "type": "marketo", "name": "Marketo", "credentials": "env:MARKETO_CREDENTIALS",
                           "settings": _settings(fake)}]
    monkeypatch.setenv("MARKETO_CREDENTIALS", json.dumps({"client_id": CLIENT_ID, "client_secret": SECRET}))
    parsed = load_bundle(data)
    import_bundle(store, parsed, base_dir=example.parent)
    email = parsed.emails[0]
    profile = next(p.id for p in parsed.dynamic_content_profiles if p.template_engine_preset == "marketo")
    record = run_export(parsed.workspace.id, {
        "email_id": email.id, "export_type": "connector", "connector_id": 1, "dynamic_content_profile_id": profile,
        "options": {"locales": list(email.locales), "folder_id": "1002"}})
    assert record.status == "completed", record.export_errors
    assert record.integration_name == "Marketo"
    ids = {loc: r.resource_id for loc, r in record.results.items()}
    assert set(ids) == set(email.locales) and len(set(ids.values())) == len(email.locales)
    for locale, email_id in ids.items():
        stored = fake.resources[email_id]
        assert stored["folder"] == 1002 and stored["name"].endswith("]") and "[ee-" in stored["name"]
        assert stored["html"].lstrip().lower().startswith("<!doctype html") and stored["subject"]
        assert record.results[locale].resource_url == f"https://app.marketo.com/#EM{email_id}A1"
        # The example's subject is a conditional, in Velocity, which Marketo runs only in script tokens:
        # it is pushed, and the user is told.
        assert "#if(" in stored["subject"]
        assert any("Email Script token" in w for w in record.warnings[locale] or []), record.warnings
    assert fake.spec_problems == []


def test_marketo_a_name_with_a_comma_is_kept_findable_and_reported(fake, make_connector):
    item = replace(ITEM, name="Spring, Sale (de-DE)", marker="ee-comma0000000")
    fake.inject(method="POST", path=CREATE, delay=CLIENT_TIMEOUT + 0.5, delay_after_handling=True)
    result = make_connector(sleep=lambda s: None).push(item)
    assert list(fake.resources) == [result.resource_id]  # the lost create was found, not made twice
    assert fake.resources[result.resource_id]["name"] == "Spring; Sale (de-DE) [ee-comma0000000]"
    assert any("commas" in w for w in result.warnings)


def test_marketo_approve_setting_approves_the_draft_after_each_push(fake, make_connector):
    connector = make_connector(approve=True)
    first = connector.push(ITEM)
    assert fake.resources[first.resource_id]["status"] == "approved"
    connector.push(replace(ITEM, subject="Neu"), previous_resource_id=first.resource_id)
    assert fake.resources[first.resource_id]["status"] == "approved"
    assert fake.count("POST", r"/approveDraft\.json$") == 2
    plain = make_connector().push(replace(ITEM, name="Draft only"))
    assert fake.resources[plain.resource_id]["status"] == "draft"


def test_marketo_an_update_cannot_move_the_email_and_says_so(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    second = connector.push(replace(ITEM, folder_id="1002"), previous_resource_id=first.resource_id)
    assert fake.resources[first.resource_id]["folder"] == 1001
    assert any("stays in folder 1001" in w and "folder_id 1002" in w for w in second.warnings)


def test_marketo_velocity_conditionals_inline_are_a_warning(fake, make_connector):
    html = ITEM.html.replace("<p>Hallo</p>", '#if(${lead.Tier} == "gold")<p>Gold</p>#{else}<p>Hallo</p>#{end}')
    result = make_connector().push(replace(ITEM, html=html))
    assert any("Email Script token" in w for w in result.warnings)
    assert "#if(" in fake.resources[result.resource_id]["html"]  # pushed, and the user is told


def test_marketo_502_in_the_errors_array_is_retried_on_reads(fake, make_connector):
    connector = make_connector(sleep=lambda s: None)
    first = connector.push(ITEM)
    fake.inject(method="GET", path=r"/email/\d+\.json$", reply=_failure("502", "Bad Gateway"))
    again = connector.push(replace(ITEM, subject="Nach 502"), previous_resource_id=first.resource_id)
    assert again.resource_id == first.resource_id and fake.resources[first.resource_id]["subject"] == "Nach 502"


def test_marketo_a_failed_step_after_the_create_is_finished_without_a_second_email(fake, make_connector):
    connector = make_connector()
    item = replace(ITEM, marker="ee-halfdone0000")
    fake.inject(method="POST", path=r"/fullContent\.json$", reply=_failure("709", "Email is locked"))
    with pytest.raises(TerminalConnectorError, match="Email is locked") as info:
        connector.push(item)
    assert not isinstance(info.value, VendorValidationError)  # not read as "this marker was created before"
    assert len(fake.resources) == 1  # made, without its HTML
    result = connector.push(item, retrying=True)
    assert list(fake.resources) == [result.resource_id] and fake.count("POST", CREATE) == 1
    assert fake.resources[result.resource_id]["html"] == ITEM.html


def test_marketo_fake_rejects_what_marketos_spec_rejects(fake):
    from tests.connectors.spec import RecordedRequest

    def problems(method: str, path: str, body: bytes = b"", content_type: str = "application/x-www-form-urlencoded",
                 query: dict[str, list[str]] | None = None, auth: str = "Bearer t") -> list[str]:
        headers = {"content-type": content_type, "authorization": auth}
        return fake.spec.problems(RecordedRequest(method, path, query or {}, headers, body))

    good = (b"name=n&folder=%7B%22id%22%3A1001%2C%22type%22%3A%22Folder%22%7D&template=1044&subject=s"
            b"&fromName=a&fromEmail=b%40c.d&replyEmail=b%40c.d")
    assert problems("POST", "/rest/asset/v1/emails.json", good) == []
    assert any("bogus" in p for p in problems("POST", "/rest/asset/v1/emails.json", good + b"&bogus=1"))
    assert any("template" in p for p in problems("POST", "/rest/asset/v1/emails.json",
                                                 good.replace(b"template=1044", b"template=abc")))
    assert any("JSON body" in p for p in problems("POST", "/rest/asset/v1/emails.json", b'{"name": "n"}',
                                                  "application/json"))
    assert any("Bearer" in p for p in problems("GET", "/rest/asset/v1/email/1.json", auth=""))
    assert any("no such operation" in p for p in problems("PUT", "/rest/asset/v1/email/1.json"))
    assert any("client_secret" in p for p in problems("GET", "/identity/oauth/token", auth="",
                                                      query={"grant_type": ["client_credentials"],
                                                             "client_id": ["x"]}))
    header = b'subject=%7B%22value%22%3A%22s%22%7D'  # EmailHeaderField without its required type
    assert any("type" in p for p in problems("POST", "/rest/asset/v1/email/1/content.json", header))


def test_marketo_a_non_numeric_folder_id_is_a_422_naming_the_field(mini, mini_data, fake):
    from emailexport.bundle import import_bundle, load_bundle
    from emailexport.errors import ValidationFailed
    from emailexport.validation import validate_export_request

    mini_data["connectors"] = [{"id": 5, "type": "marketo", "name": "Marketo", "settings": _settings(fake)}]
    import_bundle(mini, load_bundle(mini_data))
    with pytest.raises(ValidationFailed) as info:
        validate_export_request(mini, 3, {
            "email_id": 1, "export_type": "connector", "connector_id": 5, "dynamic_content_profile_id": "p-braze",
            "options": {"locales": ["en-US"], "folder_id": "Emails",
                        "per_locale_options": {"en-US": {"folder_id": "12x"}}}})
    errors = info.value.errors
    assert "Marketo folder id" in errors["options.folder_id"][0] and "'Emails'" in errors["options.folder_id"][0]
    assert "'12x'" in errors["options.per_locale_options.en-US.folder_id"][0]
    assert fake.requests == []  # refused before anything was sent
