"""Salesforce Marketing Cloud: the shared contract against a loopback SFMC, plus OAuth and assets."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from connectors.errors import AuthenticationError, TerminalConnectorError, VendorValidationError
from connectors.esp.sfmc import SalesforceMarketingCloudConnector
from emailexport.models import Connector
from tests.connectors.contract import CLIENT_TIMEOUT, ITEM, SECRET, ConnectorContract
from tests.connectors.fakes.base import json_body
from tests.connectors.fakes.sfmc import FakeSfmc
from tests.connectors.faults import FaultSequences

CLIENT_ID = "4x9q0client0id0example"
TOKEN = ("POST", "^/v2/token$")
ASSETS = "^/asset/v1/content/assets"


@pytest.fixture
def fake():
    with FakeSfmc(CLIENT_ID, SECRET) as server:
        yield server


@pytest.fixture
def make_connector(fake):
    def make(sleep: Any = None, **overrides: Any) -> SalesforceMarketingCloudConnector:
        settings = {"auth_base_url": fake.url, "account_id": "514009876", **overrides}
        record = Connector(id=9, type="salesforce_marketing_cloud", name="SFMC", settings=settings)
        return SalesforceMarketingCloudConnector(record, {"client_id": CLIENT_ID, "client_secret": SECRET},
                                                 timeout=CLIENT_TIMEOUT, sleep=sleep)

    return make


class TestSalesforceMarketingCloud(ConnectorContract):
    connector_class = SalesforceMarketingCloudConnector
    # At worst: token, REST call (401), one token refresh, the one repeat of the REST call.
    max_requests_on_auth_failure = 4


class TestSalesforceMarketingCloudLostCreatesAndCollisions(FaultSequences):
    """`-k "sfmc and (lost or collision)"`: the shared fault sequences against the SalesforceMarketingCloud fake."""



def test_an_asset_is_an_html_email_with_every_view_in_the_folder(fake, make_connector):
    item = replace(ITEM, folder_id="2002", fields={"description": "Spring", "tags": "spring, sale"})
    result = make_connector().push(item)
    stored = fake.resources[result.resource_id]
    assert stored["category"] == 2002 and stored["description"] == "Spring" and stored["tags"] == ["spring", "sale"]
    assert (stored["subject"], stored["preheader"], stored["text"]) == (ITEM.subject, ITEM.preheader, ITEM.plaintext)
    assert stored["customerKey"].startswith("ee-") and len(stored["customerKey"]) <= 36  # the push's marker
    sent = next(r for r in fake.requests if r.method == "POST" and r.path == "/asset/v1/content/assets")
    assert json_body(sent)["assetType"] == {"name": "htmlemail", "id": 208}
    assert json_body(sent)["category"] == {"id": 2002}
    assert result.resource_url == f"https://mc.exacttarget.com/cloud/#app/Content%20Builder/{result.resource_id}"


def test_a_folder_sfmc_does_not_have_is_its_validation_error(fake, make_connector):
    with pytest.raises(VendorValidationError, match="Category 777 does not exist"):
        make_connector().push(replace(ITEM, folder_id="777"))


def test_the_token_is_fetched_once_and_shared_by_several_pushes(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    connector.push(replace(ITEM, name="Second"))
    connector.push(ITEM, previous_resource_id=first.resource_id)
    assert fake.count(*TOKEN) == 1
    token_request = fake.requests[0]
    assert token_request.path == "/v2/token" and json_body(token_request)["account_id"] == 514009876
    assert all(r.headers["authorization"].startswith("Bearer ") for r in fake.requests[1:])


def test_a_token_close_to_expiry_is_refreshed_before_use(fake, make_connector):
    fake.expires_in = 120
    connector = make_connector()
    now = [1000.0]
    connector.clock = lambda: now[0]
    connector.push(ITEM)
    now[0] += 59  # 61 s left: still used
    connector.push(replace(ITEM, name="Two"))
    assert fake.count(*TOKEN) == 1
    now[0] += 2  # 59 s left: inside the 60 s margin
    connector.push(replace(ITEM, name="Three"))
    assert fake.count(*TOKEN) == 2
    assert fake.count("POST", ASSETS + "$") == 3  # no request was refused on the way


def test_a_401_refreshes_the_token_once_and_repeats_the_request_once(fake, make_connector):
    connector = make_connector()
    connector.push(ITEM)
    fake.expire_tokens()
    result = connector.push(replace(ITEM, name="After expiry"))
    assert result.resource_id in fake.resources
    assert [(r.method, r.path) for r in fake.requests[2:]] == [
        ("POST", "/asset/v1/content/assets"), ("POST", "/v2/token"), ("POST", "/asset/v1/content/assets")]


def test_a_second_401_fails_without_a_loop(fake, make_connector):
    connector = make_connector()
    connector.push(ITEM)
    fake.inject(method="POST", path=ASSETS + "$", reply=fake.unauthorized(), times=5)
    with pytest.raises(AuthenticationError, match="Not Authorized") as info:
        connector.push(replace(ITEM, name="Refused"))
    assert SECRET not in str(info.value) and CLIENT_ID not in str(info.value)
    assert fake.count(*TOKEN) == 2 and fake.count("POST", ASSETS + "$") == 3


def test_wrong_client_credentials_fail_at_the_token_with_sfmcs_message(fake, make_connector):
    record = Connector(id=9, type="salesforce_marketing_cloud", name="SFMC", settings={"auth_base_url": fake.url})
    connector = SalesforceMarketingCloudConnector(record, {"client_id": CLIENT_ID, "client_secret": "wrong-secret"},
                                                  timeout=CLIENT_TIMEOUT)
    with pytest.raises(AuthenticationError, match="invalid_client") as info:
        connector.push(ITEM)
    assert "wrong-secret" not in str(info.value) and len(fake.requests) == 1


def test_an_update_keeps_the_assets_customer_key(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    key = fake.resources[first.resource_id]["customerKey"]
    connector.push(replace(ITEM, subject="Neu"), previous_resource_id=first.resource_id)
    assert fake.resources[first.resource_id]["customerKey"] == key
    assert fake.resources[first.resource_id]["subject"] == "Neu"


def test_a_lost_create_is_found_by_its_customer_key_not_by_a_same_named_asset(fake, make_connector):
    connector = make_connector(sleep=lambda seconds: None)
    elsewhere = connector.push(replace(ITEM, folder_id="2002")).resource_id  # same name, other folder
    fake.inject(method="POST", path=ASSETS + "$", delay=CLIENT_TIMEOUT + 0.5, delay_after_handling=True)
    result = connector.push(ITEM)
    assert result.resource_id != elsewhere and len(fake.resources) == 2
    assert any("marked ee-" in w for w in result.warnings)
    query = next(r for r in fake.requests if r.path.endswith("/query"))
    assert json_body(query)["query"]["leftOperand"]["property"] == "customerKey"


def test_sfmcs_429_is_waited_out_from_its_header_or_its_body(fake, make_connector):
    waits: list[float] = []
    connector = make_connector(sleep=waits.append)
    fake.inject(method="POST", path=ASSETS + "$", reply=fake.rate_limited(5))
    body_only = fake.rate_limited(7)
    del body_only.headers["Retry-After"]
    fake.inject(method="POST", path=ASSETS + "$", reply=body_only)
    assert connector.push(ITEM).resource_id in fake.resources
    assert waits == [5.0, 7.0]


@pytest.mark.parametrize(("settings", "message"), [
    ({}, "subdomain"),
    ({"subdomain": "mcx", "region": "eu"}, "region"),
])
def test_settings_are_checked(settings, message):
    record = Connector(id=1, type="salesforce_marketing_cloud", name="S", settings=settings)
    with pytest.raises(TerminalConnectorError, match=message):
        SalesforceMarketingCloudConnector(record, {"client_id": CLIENT_ID, "client_secret": SECRET})


def test_the_auth_host_is_built_from_the_subdomain():
    record = Connector(id=1, type="salesforce_marketing_cloud", name="S", settings={"subdomain": "mc563885gzs27c5t9"})
    connector = SalesforceMarketingCloudConnector(record, {"client_id": CLIENT_ID, "client_secret": SECRET})
    assert connector.settings.auth_url == "https://mc563885gzs27c5t9.auth.marketingcloudapis.com"


def test_account_id_is_sent_as_the_number_salesforce_documents(fake, make_connector):
    make_connector(account_id="514009876").push(ITEM)  # a numeric string in the settings is accepted
    token_request = next(r for r in fake.requests if r.path == "/v2/token")
    assert json_body(token_request)["account_id"] == 514009876
    with pytest.raises(TerminalConnectorError, match="account_id"):
        make_connector(account_id="MID-514")


@pytest.mark.parametrize("folder", ["Exports", "12a", "-3", "1.5"])
def test_a_folder_id_sfmc_cannot_take_is_refused_at_validation_naming_the_field(folder):
    errors = SalesforceMarketingCloudConnector.check_options({}, {"de-DE": {"folder_id": folder}}, folder_id=folder)
    assert set(errors) == {"options.folder_id", "options.per_locale_options.de-DE.folder_id"}
    assert "category id" in errors["options.folder_id"][0] and folder in errors["options.folder_id"][0]
    assert SalesforceMarketingCloudConnector.check_options({}, {}, folder_id="2002") == {}


def test_an_update_clears_the_preheader_and_text_the_export_no_longer_has(fake, make_connector):
    connector = make_connector()
    first = connector.push(ITEM)
    connector.push(replace(ITEM, preheader="", plaintext=""), previous_resource_id=first.resource_id)
    stored = fake.resources[first.resource_id]
    assert (stored["preheader"], stored["text"]) == ("", "")


def test_lost_create_retried_by_a_fresh_process_is_refused_by_sfmc_and_found_by_its_key(fake, make_connector):
    # The first process made the asset and died before it knew; a new process, not told it is a
    # retry, sends the same customerKey: SFMC refuses it as a duplicate and the connector adopts it.
    item = replace(ITEM, marker="ee-samekey00000")
    first = make_connector().push(item).resource_id
    again = make_connector(sleep=lambda s: None).push(item)
    assert again.resource_id == first and list(fake.resources) == [first]
    assert any("rejected a second create" in w and first in w for w in again.warnings)


def test_lost_create_with_an_unexpected_listing_fails_may_exist_and_is_retried(fake, make_connector):
    from connectors.errors import AmbiguousCreateError
    from tests.connectors.fakes.base import Reply

    connector = make_connector(sleep=lambda s: None)
    item = replace(ITEM, marker="ee-oddlisting00")
    fake.inject(method="POST", path=ASSETS + "$", delay=CLIENT_TIMEOUT + 0.5, delay_after_handling=True)
    fake.inject(method="POST", path=ASSETS + "/query$", reply=Reply(200, ["not", "an", "object"]))
    with pytest.raises(AmbiguousCreateError, match="may exist: ee-oddlisting00"):
        connector.push(item)
    result = connector.push(item, retrying=True)
    assert list(fake.resources) == [result.resource_id]
