"""Campaign Monitor connector: the shared contract and fault sequences against the loopback Campaign
Monitor, with each locale's HTML published to moto's S3 server on loopback and fetched from there
by the fake (as Campaign Monitor fetches `HtmlPageURL`); plus what is Campaign Monitor's own (the
template must hold an editable region, Basic auth with the key and "x", `{"Code", "Message"}`
errors, 4001 for a deleted template, `X-RateLimit-Reset`), and the example email exported
through it in a flow."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import replace
from typing import Any

import boto3
import httpx
import pytest

from connectors.cdn.s3 import CACHE_CONTROL
from connectors.errors import (
    AuthenticationError,
    RateLimitedError,
    ResourceNotFoundError,
    ServerError,
    TerminalConnectorError,
    TransientConnectorError,
    VendorValidationError,
)
from connectors.esp.campaign_monitor import (
    CampaignMonitorConnector,
    campaign_monitor_error_message,
    editable_template,
    rate_limit_reset,
)
from emailexport.models import Connector
from tests.connectors.contract import CLIENT_TIMEOUT, ITEM, SECRET, ConnectorContract
from tests.connectors.fakes.base import Reply
from tests.connectors.fakes.campaign_monitor import CampaignMonitorFake
from tests.connectors.faults import FaultSequences
from tests.connectors.flow import example_data, export_example

API_KEY = SECRET  # the contract checks that this value never reaches a message
CLIENT_ID = "4a397ccaaa55eb4e6aa1221e1e2d7122"
S3_KEY_ID = "AKIAEXAMPLEKEYID0042"
S3_SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYzz0042"
APP_URL = "https://northwind.createsend.com"
WRAPPED = '<multiline label="Email content">'


@pytest.fixture
def fake():
    with CampaignMonitorFake(api_key=API_KEY, client_id=CLIENT_ID) as server:
        yield server


@pytest.fixture
def hosting(s3_server, bucket) -> dict[str, Any]:
    """The html_hosting settings: the test bucket on moto's S3 server (which enforces bucket
    policies), its `cm/` prefix publicly readable as the user sets it up, read path-style."""
    policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "CampaignMonitorReadsTemplates", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/cm/*"}]}
    boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1").put_bucket_policy(
        Bucket=bucket, Policy=json.dumps(policy))
    return {"bucket": bucket, "prefix": "cm/", "region": "us-east-1", "endpoint_url": s3_server.endpoint,
            "public_base_url": f"{s3_server.endpoint}/{bucket}"}


def _credentials(**overrides: str) -> dict[str, str]:
    return {"api_key": API_KEY, "s3_access_key_id": S3_KEY_ID, "s3_secret_access_key": S3_SECRET, **overrides}


@pytest.fixture
def make_connector(fake, hosting):
    made: list[CampaignMonitorConnector] = []

    def make(*, credentials: dict[str, str] | None = None, sleep: Any = None,
             **overrides: Any) -> CampaignMonitorConnector:
        settings = {"client_id": CLIENT_ID, "app_url": APP_URL, "api_base_url": f"{fake.url}/api/v3.3",
                    "html_hosting": hosting, **overrides}
        record = Connector(id=11, type="campaign_monitor", name="Northwind CM", settings=settings,
                           credentials="env:CM_CREDENTIALS")
        connector = CampaignMonitorConnector(record, credentials or _credentials(), timeout=CLIENT_TIMEOUT,
                                             sleep=sleep)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


# The class names hold the vendor name as written in `-k campaign_monitor`.
class Test_campaign_monitor_contract(ConnectorContract):
    connector_class = CampaignMonitorConnector
    stores_subject = False  # a Campaign Monitor template is a name and a page; the subject is the campaign's


class Test_campaign_monitor_lost_creates_and_collisions(FaultSequences):
    """`-k "campaign_monitor and (lost or collision)"`: the shared fault sequences against the fake."""


def _bodies(fake: CampaignMonitorFake, method: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in fake.requests if r.method == method]


def _object(s3_server: Any, bucket: str, url: str) -> dict[str, Any]:
    key = url.split(f"/{bucket}/", 1)[1]
    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    return {"key": key, **client.head_object(Bucket=bucket, Key=key),
            "body": client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()}


# -- what is sent, and how ------------------------------------------------------------------------

def test_campaign_monitor_authenticates_with_the_api_key_and_a_dummy_password(fake, make_connector):
    make_connector().push(ITEM)
    assert {r.headers["authorization"] for r in fake.requests} == {
        "Basic " + base64.b64encode(f"{API_KEY}:x".encode()).decode()}
    assert all(r.headers["content-type"].startswith("application/json") for r in fake.requests if r.method == "POST")


def test_campaign_monitor_create_publishes_the_page_and_sends_its_url(fake, make_connector, s3_server, bucket):
    result = make_connector().push(ITEM)
    (body,) = _bodies(fake, "POST")
    assert set(body) == {"Name", "HtmlPageURL"}  # no ZipFileURL: the images keep their absolute URLs
    assert body["Name"] == fake.resources[result.resource_id]["name"]
    assert body["Name"].startswith(ITEM.name + " [ee-")
    assert fake.fetched == [body["HtmlPageURL"]]  # Campaign Monitor read the page from the bucket
    stored = _object(s3_server, bucket, body["HtmlPageURL"])
    page = editable_template(ITEM.html, "Email content")
    assert stored["body"] == page == fake.resources[result.resource_id]["html"]
    assert stored["key"] == f"cm/{hashlib.sha256(page.encode()).hexdigest()}.html"  # content-addressed
    assert stored["ContentType"] == "text/html; charset=utf-8" and stored["CacheControl"] == CACHE_CONTROL
    assert fake.requests[0].path == f"/api/v3.3/templates/{CLIENT_ID}.json"


def test_campaign_monitor_the_same_page_is_uploaded_once(fake, make_connector, s3_server, bucket):
    connector = make_connector()
    first = connector.push(ITEM)
    connector.push(replace(ITEM, name="Renamed"), previous_resource_id=first.resource_id)
    assert len(s3_server.puts(bucket)) == 1  # the object exists: the update reuses its URL
    urls = [b["HtmlPageURL"] for b in _bodies(fake, "POST") + _bodies(fake, "PUT")]
    assert len(urls) == 2 and len(set(urls)) == 1
    assert fake.resources[first.resource_id]["name"].startswith("Renamed [ee-")


def test_campaign_monitor_body_is_wrapped_in_one_multiline_region(fake, make_connector):
    html = '<!DOCTYPE html><html><head><title>x</title></head><body style="margin:0"><table><tr><td>Hi' \
           "</td></tr></table></body></html>"
    result = make_connector().push(replace(ITEM, html=html))
    assert fake.resources[result.resource_id]["html"] == (
        f'<!DOCTYPE html><html><head><title>x</title></head><body style="margin:0">{WRAPPED}<table><tr><td>Hi'
        "</td></tr></table></multiline></body></html>")


def test_campaign_monitor_a_page_with_its_own_regions_is_sent_unchanged(fake, make_connector):
    html = '<html><body><singleline label="Title">Spring</singleline><img src="https://x.example/a.png" ' \
           'width="600" editable label="Hero"></body></html>'
    for mode in ("wrap_body", "as_is"):
        result = make_connector(editable_region=mode).push(replace(ITEM, html=html, marker=f"ee-{mode}0000"))
        assert fake.resources[result.resource_id]["html"] == html


def test_campaign_monitor_as_is_refuses_a_page_without_a_region_before_uploading(fake, make_connector, s3_server,
                                                                                bucket):
    with pytest.raises(TerminalConnectorError, match=r"no editable region .* code 4101"):
        make_connector(editable_region="as_is").push(ITEM)
    assert fake.requests == [] and s3_server.puts(bucket) == []


def test_editable_template_without_a_body_wraps_the_whole_page():
    assert editable_template("<p>Hi</p>", "Main") == '<multiline label="Main"><p>Hi</p></multiline>'
    assert editable_template("<BODY><p>Hi</p></Body>", "Main") == \
        '<BODY><multiline label="Main"><p>Hi</p></multiline></Body>'


# -- the fake is Campaign Monitor: it reads the page, and refuses what Campaign Monitor refuses ---------

def test_campaign_monitor_a_page_it_cannot_fetch_is_refused_with_its_code(fake, make_connector, s3_server, hosting):
    private = {**hosting, "prefix": "private/"}  # uploaded, but outside what the bucket policy makes public
    with pytest.raises(VendorValidationError, match=r"HTTP 400: Invalid HTML Page URL \(code 4005\)"):
        make_connector(html_hosting=private).push(ITEM)
    assert httpx.get(fake.fetched[0]).status_code == 403 and fake.resources == {}
    elsewhere = {**hosting, "public_base_url": f"{s3_server.endpoint}/not-this-bucket"}
    with pytest.raises(VendorValidationError, match="code 4005"):
        make_connector(html_hosting=elsewhere).push(ITEM)
    assert len(fake.fetched) == 2 and fake.resources == {}


def test_campaign_monitor_fake_refuses_a_template_without_an_editable_region(fake, s3_server, bucket, hosting):
    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    client.put_object(Bucket=bucket, Key="cm/plain.html", Body=b"<html><body><p>Hi</p></body></html>",
                      ContentType="text/html")
    client.put_object(Bucket=bucket, Key="cm/open.html", Body=b"<html><body><multiline>Hi</body></html>",
                      ContentType="text/html")
    auth = {"Authorization": "Basic " + base64.b64encode(f"{API_KEY}:x".encode()).decode()}
    answers = [httpx.post(f"{fake.url}/api/v3.3/templates/{CLIENT_ID}.json", headers=auth,
                          json={"Name": "x", "HtmlPageURL": f"{s3_server.endpoint}/{bucket}/cm/{page}"}).json()
               for page in ("plain.html", "open.html")]
    assert [a["Code"] for a in answers] == [4101, 4131]
    assert fake.resources == {} and fake.spec_problems == []  # Campaign Monitor's refusals, not bad requests


def test_campaign_monitor_fake_is_strict_about_fields_and_auth(fake):
    auth = {"Authorization": "Basic " + base64.b64encode(f"{API_KEY}:x".encode()).decode()}
    answer = httpx.post(f"{fake.url}/api/v3.3/templates/{CLIENT_ID}.json", headers=auth,
                        json={"Name": "x", "HtmlPageURL": "https://x.example/a.html", "Html": "<p>"})
    assert answer.status_code == 400 and "Html" in answer.json()["Message"]
    assert httpx.get(f"{fake.url}/api/v3.3/clients/{CLIENT_ID}/templates.json").status_code == 401
    assert len(fake.spec_problems) == 2 and fake.resources == {}
    fake.spec_problems.clear()


# -- updates, lookups, what a template cannot hold ------------------------------------------------------

def test_campaign_monitor_a_deleted_template_is_4001_and_update_says_not_found(fake, make_connector):
    connector = make_connector()
    with pytest.raises(ResourceNotFoundError, match="template 0123456789abcdef0123456789abcdef no longer exists"):
        connector.update("0123456789abcdef0123456789abcdef", replace(ITEM, marker="ee-x", name="x [ee-x]"))
    assert fake.count("PUT") == 1 and fake.count("GET", r"/clients/") == 1  # not retried; the listing decided


def test_campaign_monitor_other_400s_on_an_update_stand(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    fake.inject(method="PUT", reply=Reply(400, {"Code": 4003, "Message": "Invalid Template Name"}))
    with pytest.raises(VendorValidationError, match=r"HTTP 400: Invalid Template Name \(code 4003\)"):
        connector.push(ITEM, previous_resource_id=first.resource_id)
    assert list(fake.resources) == [first.resource_id]


def test_campaign_monitor_find_by_marker_reads_only_its_clients_templates(fake, make_connector):
    connector = make_connector()
    mine = connector.push(ITEM).resource_id
    name = fake.resources[mine]["name"]
    fake.resources["e" * 32] = {**fake.resources[mine], "client_id": fake.other_client_id}  # same name elsewhere
    assert connector.find_by_marker(replace(ITEM, name=name)) == mine
    assert connector.find_by_marker(replace(ITEM, name="never made [ee-none]")) is None
    other = make_connector(client_id=fake.other_client_id)
    assert other.find_by_marker(replace(ITEM, name=name)) == "e" * 32


def test_campaign_monitor_warns_about_what_a_template_cannot_hold(make_connector):
    result = make_connector().push(replace(ITEM, folder_id="7", campaign_id="c9"))
    assert result.warnings == (
        "Campaign Monitor templates hold no subject, preheader, plaintext: set them on the campaign made from "
        "this template",
        "Campaign Monitor templates have no folders or campaigns; folder_id 7 was not applied",
        "Campaign Monitor templates have no folders or campaigns; campaign_id c9 was not applied")


def test_campaign_monitor_resource_url_opens_the_accounts_templates(make_connector):
    assert make_connector().resource_url("5cac213cf061dd4e008de5a82b7a3621") == \
        "https://northwind.createsend.com/templates/#5cac213cf061dd4e008de5a82b7a3621"


# -- failures ----------------------------------------------------------------------------------------

def test_campaign_monitor_wrong_key_is_a_401_without_any_form_of_a_secret(fake, make_connector):
    wrong = "wrong-key-for-campaign-monitor-0000"
    with pytest.raises(AuthenticationError, match=r"HTTP 401: Invalid API Key \(code 100\)") as info:
        make_connector(credentials=_credentials(api_key=wrong)).push(ITEM)
    token = base64.b64encode(f"{wrong}:x".encode()).decode()
    for secret in (wrong, token, S3_SECRET, S3_KEY_ID, API_KEY):
        assert secret not in str(info.value)
    assert fake.resources == {} and len(fake.requests) == 1


def test_campaign_monitor_a_client_the_key_does_not_own_is_401_code_102(make_connector):
    with pytest.raises(AuthenticationError, match=r"Invalid ClientID \(code 102\)"):
        make_connector(client_id="1" * 32).push(ITEM)


def test_campaign_monitor_a_missing_bucket_fails_before_campaign_monitor_is_called(fake, make_connector, hosting):
    with pytest.raises(TerminalConnectorError, match=r"publishing the HTML .*no-such-bucket failed: NoSuchBucket") \
            as info:
        make_connector(html_hosting={**hosting, "bucket": "no-such-bucket"}).push(ITEM)
    assert fake.requests == []
    assert S3_SECRET not in str(info.value) and S3_KEY_ID not in str(info.value)


def test_campaign_monitor_429_is_waited_out_by_x_ratelimit_reset(fake, make_connector):
    waits: list[float] = []
    fake.inject(method="POST", reply=fake.rate_limited(7))
    result = make_connector(sleep=waits.append).push(ITEM)
    assert waits == [7.0] and list(fake.resources) == [result.resource_id]
    assert rate_limit_reset(httpx.Response(429, headers={"X-RateLimit-Reset": "348"})) == 348.0
    assert rate_limit_reset(httpx.Response(429)) is None


def test_campaign_monitor_429_beyond_the_wait_bound_reaches_the_task_retry(fake, make_connector):
    fake.inject(method="POST", reply=fake.rate_limited(600))
    with pytest.raises(RateLimitedError, match=r"Rate limit exceeded \(code 429\)") as info:
        make_connector(sleep=lambda s: None).push(ITEM)
    assert info.value.retry_after == 600.0 and fake.resources == {}


def test_campaign_monitor_5xx_on_an_update_is_retried_then_reported(fake, make_connector):
    connector = make_connector(sleep=lambda s: None)
    first = connector.push(ITEM)
    fake.inject(method="PUT", reply=fake.server_error(), times=5)
    with pytest.raises(ServerError, match=r"HTTP 500: Sorry, we've run into a problem \(code 500\)"):
        connector.push(ITEM, previous_resource_id=first.resource_id)
    assert fake.count("PUT") == 3 and len(fake.resources) == 1


def test_campaign_monitor_a_timed_out_listing_fails_the_lookup_as_may_exist(fake, make_connector):
    fake.inject(method="POST", delay=CLIENT_TIMEOUT + 0.5, delay_after_handling=True)
    fake.inject(method="GET", delay=CLIENT_TIMEOUT + 0.5, times=10)
    item = replace(ITEM, marker="ee-listingslow0")
    with pytest.raises(TransientConnectorError, match="may exist: ee-listingslow0"):
        make_connector(sleep=lambda s: None).push(item)
    assert len(fake.resources) == 1 and fake.count("POST") == 1  # nothing made a second time


def test_campaign_monitor_error_bodies_are_read():
    refused = httpx.Response(400, json={"Code": 4002, "Message": "Template Name Required"})
    assert campaign_monitor_error_message(refused) == "Template Name Required (code 4002)"
    assert campaign_monitor_error_message(httpx.Response(401)) == "Unauthorized: the API key was refused"
    assert campaign_monitor_error_message(httpx.Response(502, text="Bad gateway")) == "Bad gateway"


# -- settings and credentials ---------------------------------------------------------------------------

def test_campaign_monitor_settings_are_strict(make_connector, hosting):
    for bad, field in (({"folder": "x"}, "folder"), ({"client_id": "../clients"}, "client_id"),
                       ({"editable_region": "none"}, "editable_region"),
                       ({"editable_label": 'a"b'}, "editable_label"),
                       ({"html_hosting": {**hosting, "acl": "public-read"}}, "html_hosting.acl"),
                       ({"app_url": "not a url"}, "app_url")):
        with pytest.raises(TerminalConnectorError, match=re.escape(field)):
            make_connector(**bad)


def test_campaign_monitor_s3_keys_go_together_and_are_never_shown(make_connector):
    with pytest.raises(TerminalConnectorError, match="s3_access_key_id and s3_secret_access_key go together") as info:
        make_connector(credentials={"api_key": API_KEY, "s3_secret_access_key": S3_SECRET})
    assert S3_SECRET not in str(info.value)
    with pytest.raises(TerminalConnectorError, match="credentials are missing or invalid: api_key"):
        make_connector(credentials={"s3_access_key_id": S3_KEY_ID, "s3_secret_access_key": S3_SECRET})


# -- the example email through the flow ---------------------------------------------------------------

@pytest.mark.usefixtures("prefect_harness")
def test_campaign_monitor_example_email_exports_through_the_flow(store, fake, hosting, monkeypatch):
    raw = example_data()
    connector = {"id": 6, "type": "campaign_monitor", "name": "Northwind Campaign Monitor", "credentials": "env:NW_CM",
                 "settings": {"client_id": CLIENT_ID, "app_url": APP_URL,
                              "api_base_url": f"{fake.url}/api/v3.3", "html_hosting": hosting}}
    monkeypatch.setenv("NW_CM", json.dumps(_credentials()))
    profile = next(p["id"] for p in raw["dynamic_content_profiles"]
                   if p["template_engine_preset"] == "campaign_monitor")
    # The "favourite store" conditional tests is_set, which the campaign_monitor preset refuses (only
    # equals is written): the example names a Yes/No custom field for it in this profile's syntax.
    store_conditional = next(c for c in raw["conditionals"] if c["id"] == 2)
    assert str(profile) in store_conditional["dynamic_content_profile_syntaxes"]
    run = export_example(store, connector, "campaign_monitor", raw)
    assert run.profile == str(profile)  # the profile checked above is the one exported with
    state, final, email, locales = run.state, run.final, run.email, run.locales
    assert state.is_completed() and final.status == "completed", final.export_errors
    assert final.integration_name == "Campaign Monitor"
    ids = {loc: r.resource_id for loc, r in final.results.items()}
    assert set(ids) == set(locales) and len(set(ids.values())) == len(locales)
    for locale, template_id in ids.items():
        stored = fake.resources[template_id]
        assert stored["name"].startswith(f"{email.name} ({locale}) [ee-")
        assert WRAPPED in stored["html"]
        assert "[if:loyaltytier=gold]" in stored["html"] and "[firstname,fallback=" in stored["html"]  # CM's own tags
        assert any("hold no subject" in w for w in final.warnings[locale] or [])
    assert len(fake.fetched) == len(locales)
    assert final.open_in_integration_url == f"{APP_URL}/templates/#{ids[locales[0]]}"
    assert fake.spec_problems == []
