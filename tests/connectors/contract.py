"""The contract every ESP connector passes (as fsspec's shared filesystem tests).

A vendor's test module subclasses `ConnectorContract` and provides two fixtures:

- `fake`: its started `FakeVendor` (a real loopback server) exposing `resources` (id -> dict with
  at least name, subject, html), `delete_resource(id)`, and `create_route` / `update_route`
  ((method, path regex) of the vendor's create and update requests);
- `make_connector`: `make_connector(**settings_overrides) -> EspConnector` pointed at the fake,
  with a short client timeout (`CLIENT_TIMEOUT` seconds).

Every request the connector sends is checked by the fake against the vendor's spec (or, where no
spec is published, against the fields of the vendor's reference pages); `spec_problems` must stay
empty in every test.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from connectors.base import EspConnector, PushItem
from connectors.errors import AuthenticationError

CLIENT_TIMEOUT = 1.0
SECRET = "sk-live-0123456789abcdef"

ITEM = PushItem(
    locale="de-DE",
    name="Spring Sale 2026 (de-DE)",
    subject="Hallo {{ ${first_name} | default: 'there' }}",
    preheader="Neu im Frühling",
    html='<!DOCTYPE html><html lang="de-DE"><body><p>Hallo</p><a href="https://x.example/?a=1">Shop</a></body></html>',
    plaintext="Hallo\n\nShop (https://x.example/?a=1)",
)


class ConnectorContract:
    """Shared behaviour; subclasses may set `requests_before_create` (e.g. an OAuth token call)."""

    connector_class: type[EspConnector]
    # False for vendors whose templates hold no subject (Klaviyo, Mailchimp: it lives on the campaign)
    stores_subject = True

    @pytest.fixture(autouse=True)
    def _requests_match_the_vendor_spec(self, fake: Any) -> Any:
        yield
        assert fake.spec_problems == [], "requests the vendor's spec rejects:\n" + "\n".join(fake.spec_problems)

    def test_create_stores_name_subject_and_html_and_links_to_the_resource(self, fake: Any, make_connector: Any):
        result = make_connector().push(ITEM)
        stored = fake.resources[result.resource_id]
        assert stored["name"].startswith(ITEM.name + " [ee-")  # the user's name, then the push's marker
        assert "<p>Hallo</p>" in stored["html"]
        assert result.resource_url and result.resource_id in result.resource_url
        if self.stores_subject:
            assert stored["subject"] == ITEM.subject
            assert result.warnings == ()
        else:  # the user is told the subject went nowhere
            assert any("subject" in w for w in result.warnings)

    def test_update_previous_export_changes_the_same_resource(self, fake: Any, make_connector: Any):
        connector = make_connector()
        first = connector.push(ITEM)
        changed = replace(ITEM, subject="Neuer Betreff", html=ITEM.html.replace("Hallo", "Servus"))
        second = connector.push(changed, previous_resource_id=first.resource_id)
        assert second.resource_id == first.resource_id
        assert len(fake.resources) == 1
        assert "Servus" in fake.resources[first.resource_id]["html"]
        if self.stores_subject:
            assert fake.resources[first.resource_id]["subject"] == "Neuer Betreff"

    def test_a_resource_deleted_in_the_esp_is_recreated_with_a_warning(self, fake: Any, make_connector: Any):
        connector = make_connector()
        first = connector.push(ITEM)
        fake.delete_resource(first.resource_id)
        second = connector.push(ITEM, previous_resource_id=first.resource_id)
        assert second.resource_id != first.resource_id and second.resource_id in fake.resources
        assert any(first.resource_id in w and "no longer exists" in w for w in second.warnings)

    def test_a_rate_limit_is_waited_out_as_the_vendor_asks(self, fake: Any, make_connector: Any):
        method, path = fake.create_route
        fake.inject(method=method, path=path, reply=fake.rate_limited(1))
        started = time.monotonic()
        result = make_connector().push(ITEM)
        assert time.monotonic() - started >= 0.95  # the wait is observed, not skipped
        assert result.resource_id in fake.resources
        assert fake.count(method, path) == 2

    def test_a_server_error_is_retried_then_succeeds(self, fake: Any, make_connector: Any):
        connector = make_connector()
        first = connector.push(ITEM)
        method, path = fake.update_route
        fake.inject(method=method, path=path, reply=fake.server_error())
        retried = replace(ITEM, html=ITEM.html.replace("Hallo", "Zweiter Versuch"))
        second = connector.push(retried, previous_resource_id=first.resource_id)
        assert "Zweiter Versuch" in fake.resources[second.resource_id]["html"]
        assert fake.count(method, path) >= 2

    def test_a_server_error_on_create_does_not_leave_two_resources(self, fake: Any, make_connector: Any):
        method, path = fake.create_route
        fake.inject(method=method, path=path, reply=fake.server_error())
        connector = make_connector(sleep=lambda seconds: None)  # the lookups' waits are not spent
        result = connector.push(ITEM)
        assert list(fake.resources) == [result.resource_id]

    def test_bad_credentials_fail_at_once_without_retries_or_secrets(self, fake: Any, make_connector: Any):
        fake.inject(reply=fake.unauthorized(), times=20)
        with pytest.raises(AuthenticationError) as info:
            make_connector().push(ITEM)
        assert SECRET not in str(info.value)
        assert len(fake.requests) <= self.max_requests_on_auth_failure
        assert fake.resources == {}

    max_requests_on_auth_failure = 1

    def test_a_lost_create_response_does_not_leave_two_resources(self, fake: Any, make_connector: Any):
        method, path = fake.create_route
        fake.inject(method=method, path=path, delay=CLIENT_TIMEOUT + 0.5, delay_after_handling=True)
        connector = make_connector(sleep=lambda seconds: None)
        result = connector.push(ITEM)
        assert list(fake.resources) == [result.resource_id]
        assert any("marked ee-" in w and result.resource_id in w for w in result.warnings)

    def test_unknown_export_field_values_are_validation_errors(self):
        errors = self.connector_class.check_options({"no_such_field": "x"}, {"de-DE": {"nope": 1}})
        assert "options.export_field_values.no_such_field" in errors
        assert "options.per_locale_options.de-DE" in errors
        declared = dict.fromkeys(self.connector_class.declared_fields, "x")
        assert self.connector_class.check_options(declared, {"de-DE": {"resource_name": "n"}}) == {}

    def test_identity(self):
        cls = self.connector_class
        from connectors.registry import esp_connector_class

        assert esp_connector_class(cls.type_name) is cls
        assert cls.integration_name and cls.preset
