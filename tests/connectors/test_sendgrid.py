"""SendGrid connector: the shared contract against the loopback SendGrid, plus what is SendGrid's own."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from connectors.errors import AuthenticationError, VendorValidationError
from connectors.esp.sendgrid import SendGridConnector, sendgrid_rate_limit_reset
from emailexport.models import Connector
from tests.connectors.contract import CLIENT_TIMEOUT, ITEM, SECRET, ConnectorContract
from tests.connectors.fakes.base import Reply
from tests.connectors.fakes.sendgrid import SendGridFake
from tests.connectors.faults import FaultSequences

VERSIONS = r"/v3/templates/[^/]+/versions$"
ACTIVATE = r"/v3/templates/[^/]+/versions/[^/]+/activate$"


@pytest.fixture
def fake():
    with SendGridFake(api_key=SECRET) as server:
        yield server


@pytest.fixture
def make_connector(fake):
    made: list[SendGridConnector] = []

    def make(*, credentials: dict[str, str] | None = None, transport: httpx.BaseTransport | None = None,
             sleep: Any = None, **overrides: Any) -> SendGridConnector:
        settings = {"api_base_url": fake.url, **overrides}
        record = Connector(id=9, type="sendgrid", name="SendGrid", settings=settings,
                           credentials="env:SENDGRID_CREDENTIALS")
        connector = SendGridConnector(record, credentials or {"api_key": SECRET}, transport=transport,
                                      timeout=CLIENT_TIMEOUT, sleep=sleep)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


class TestSendGrid(ConnectorContract):
    connector_class = SendGridConnector


class TestSendGridLostCreatesAndCollisions(FaultSequences):
    """`-k "sendgrid and (lost or collision)"`: the shared fault sequences against the SendGrid fake."""



def _active(fake: SendGridFake, template_id: str) -> list[dict[str, Any]]:
    return [v for v in fake.templates[template_id]["versions"] if v["active"] == 1]


def test_every_request_carries_the_key_as_a_bearer_token(fake, make_connector):
    make_connector().push(ITEM)
    assert len(fake.requests) == 3
    assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in fake.requests)


def test_a_wrong_key_is_sendgrids_401_without_the_key(fake, make_connector):
    with pytest.raises(AuthenticationError, match="authorization required") as info:
        make_connector(credentials={"api_key": "SG.wrong-key-0000"}).push(ITEM)
    assert "SG.wrong-key-0000" not in str(info.value)
    assert fake.templates == {}


def test_create_makes_a_dynamic_template_with_one_activated_version(fake, make_connector):
    result = make_connector().push(ITEM)
    template = fake.templates[result.resource_id]
    assert template["generation"] == "dynamic" and result.resource_id.startswith("d-")
    assert [(r.method, r.path.count("/")) for r in fake.requests] == [("POST", 2), ("POST", 4), ("POST", 6)]
    assert fake.count("POST", ACTIVATE) == 1
    assert len(template["versions"]) == 1 and len(_active(fake, result.resource_id)) == 1
    assert result.resource_url == f"https://mc.sendgrid.com/dynamic-templates/{result.resource_id}"


def test_update_patches_the_active_version_in_place(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    version_id = _active(fake, first.resource_id)[0]["id"]
    connector.push(replace(ITEM, subject="Neu", html="<p>Servus, Welt</p>"), previous_resource_id=first.resource_id)
    (active,) = _active(fake, first.resource_id)
    assert (active["id"], active["subject"], active["html_content"]) == (version_id, "Neu", "<p>Servus, Welt</p>")
    assert len(fake.templates[first.resource_id]["versions"]) == 1
    assert fake.count("PATCH", rf"/versions/{version_id}$") == 1


def test_update_follows_the_version_a_user_made_active(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    fake.templates[first.resource_id]["versions"][0]["active"] = 0
    fake.templates[first.resource_id]["versions"].append({"id": "user-made", "active": 1, "name": "v2",
                                                          "subject": "by hand", "html_content": "<p>mine</p>"})
    connector.push(replace(ITEM, subject="From the export"), previous_resource_id=first.resource_id)
    assert [v["subject"] for v in _active(fake, first.resource_id)] == ["From the export"]
    assert _active(fake, first.resource_id)[0]["id"] == "user-made"


def test_a_template_without_versions_gets_a_new_active_one_on_update(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    fake.templates[first.resource_id]["versions"].clear()  # the user deleted the version in the app
    connector.push(ITEM, previous_resource_id=first.resource_id)
    assert len(_active(fake, first.resource_id)) == 1
    assert fake.count("POST", ACTIVATE) == 2


def test_update_renames_the_template_when_the_name_changed(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    connector.push(replace(ITEM, name="Renamed (de-DE)"), previous_resource_id=first.resource_id)
    assert fake.templates[first.resource_id]["name"].startswith("Renamed (de-DE) [ee-")
    assert fake.count("PATCH", r"/v3/templates/[^/]+$") == 1


def test_sendgrids_reset_header_is_honoured_without_retry_after(fake, make_connector):
    waits: list[float] = []
    fake.inject(method="POST", path=r"/v3/templates$", reply=fake.rate_limited(30))
    result = make_connector(sleep=waits.append).push(ITEM)
    assert len(waits) == 1 and 29.0 <= waits[0] <= 31.0
    assert result.resource_id in fake.templates


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"X-RateLimit-Reset": "1000"}, 40.0), ({"X-RateLimit-Reset": "900"}, 1.0),
     ({"X-RateLimit-Remaining": "0"}, None), ({"X-RateLimit-Reset": "later"}, None)],
)
def test_the_reset_header_is_a_unix_time(headers, seconds):
    assert sendgrid_rate_limit_reset(httpx.Response(429, headers=headers), now=960.0) == seconds


def test_the_eu_region_is_chosen_with_api_base_url(fake, make_connector):
    hosts: list[str] = []

    def to_the_fake(request: httpx.Request) -> httpx.Response:
        hosts.append(f"{request.url.scheme}://{request.url.host}")
        answer = httpx.request(request.method, fake.url + request.url.raw_path.decode(),
                               headers=request.headers, content=request.content)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    connector = make_connector(api_base_url="https://api.eu.sendgrid.com", transport=httpx.MockTransport(to_the_fake))
    result = connector.push(ITEM)
    assert hosts == ["https://api.eu.sendgrid.com"] * 3
    assert result.resource_id in fake.templates


def test_a_subuser_is_addressed_with_on_behalf_of(fake, make_connector):
    make_connector(on_behalf_of="shop-de").push(ITEM)
    assert {r.headers.get("on-behalf-of") for r in fake.requests} == {"shop-de"}


def test_our_plaintext_is_kept_and_the_preheader_is_not_sent(fake, make_connector):
    result = make_connector().push(ITEM)
    body = json.loads(next(r.body for r in fake.requests if r.method == "POST" and r.path.endswith("/versions")))
    assert body["generate_plain_content"] is False and "preheader" not in json.dumps(body)
    assert fake.resources[result.resource_id]["plaintext"] == ITEM.plaintext


def test_without_plaintext_sendgrid_generates_it(fake, make_connector):
    result = make_connector().push(replace(ITEM, plaintext=""))
    assert fake.resources[result.resource_id]["plaintext"] == "(generated from html_content)"


@pytest.mark.parametrize(
    ("item", "problem"),
    [(replace(ITEM, name="x" * 101), r"template name has 119 characters \(at most 100, with the 18-character marker\)"),
     (replace(ITEM, subject="s" * 256), "subject has 256 characters"),
     (replace(ITEM, fields={"test_data": "{not json"}), "test_data must be a JSON document")],
)
def test_what_sendgrid_would_reject_fails_before_any_request(fake, make_connector, item, problem):
    with pytest.raises(VendorValidationError, match=problem):
        make_connector().push(item)
    assert fake.requests == []


def test_a_rejected_version_does_not_leave_an_empty_template(fake, make_connector):
    fake.inject(method="POST", path=VERSIONS, reply=Reply(400, {"errors": [{"field": "html_content",
                                                                           "message": "invalid handlebars"}]}))
    with pytest.raises(VendorValidationError, match="html_content: invalid handlebars"):
        make_connector().push(ITEM)
    assert fake.templates == {} and fake.count("DELETE") == 1


def test_a_lost_version_create_still_ends_with_one_template(fake, make_connector):
    fake.inject(method="POST", path=VERSIONS, delay=CLIENT_TIMEOUT + 0.5, delay_after_handling=True)
    result = make_connector().push(ITEM)
    assert list(fake.templates) == [result.resource_id]
    assert [v["subject"] for v in _active(fake, result.resource_id)] == [ITEM.subject]


def test_find_by_name_pages_and_skips_legacy_templates(fake, make_connector):
    connector = make_connector()
    wanted = connector.push(replace(ITEM, name="Wanted")).resource_id
    template = fake.templates.pop(wanted)
    for n in range(250):
        fake.templates[f"d-filler{n}"] = {**template, "id": f"d-filler{n}", "name": f"filler {n}", "versions": []}
    fake.templates["legacy-1"] = {**template, "id": "legacy-1", "generation": "legacy"}  # same name, legacy
    fake.templates[wanted] = template
    assert connector.find_by_marker(replace(ITEM, name=template["name"])) == wanted
    assert fake.count("GET", r"/v3/templates$") == 2


def test_test_data_and_version_name_are_set_on_the_version(fake, make_connector):
    item = replace(ITEM, fields={"test_data": '{"first_name": "Ada"}'}, options={"version_name": "Frühling"})
    result = make_connector().push(item)
    (active,) = _active(fake, result.resource_id)
    assert (active["name"], active["test_data"]) == ("Frühling", '{"first_name": "Ada"}')


def test_a_folder_is_reported_as_not_applied(make_connector):
    result = make_connector().push(replace(ITEM, campaign_id="c-1"))
    assert result.warnings == ("SendGrid templates have no folders or campaigns; campaign_id c-1 was not applied",)


def test_an_update_without_plaintext_leaves_no_stale_text_behind(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    assert fake.resources[first.resource_id]["plaintext"] == ITEM.plaintext
    connector.push(replace(ITEM, plaintext=""), previous_resource_id=first.resource_id)
    # SendGrid derives the text from the new HTML instead of keeping the previous export's.
    assert fake.resources[first.resource_id]["plaintext"] == "(generated from html_content)"
    patch = [json.loads(r.body) for r in fake.requests if r.method == "PATCH" and "/versions/" in r.path][-1]
    assert (patch["plain_content"], patch["generate_plain_content"]) == ("", True)
