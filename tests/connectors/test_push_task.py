"""The push task: its retries honour the vendor's requested wait, and a task retry after an
unanswered create finds the resource by its marker instead of creating a second one (on the
session's Prefect test harness, against the loopback Brevo)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prefect.states import Failed

import tasks.push
from connectors.base import make_marker
from connectors.errors import RateLimitedError, ServerError, VendorValidationError
from emailexport.bundle import import_bundle, load_bundle
from emailexport.errors import ValidationFailed
from emailexport.models import format_timestamp
from emailexport.validation import validate_export_request
from flows.export_email import export_email
from tests.connectors.fakes.base import Reply
from tests.connectors.fakes.brevo import BrevoFake

KEY = "xkeysib-test-0123456789"
SENDER = "news@mini.example"


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(tasks.push, "_sleep", waits.append)
    return waits


@pytest.mark.parametrize(("error", "retried", "waits"), [
    (RateLimitedError("429", retry_after=42.0), True, [42.0]),  # the vendor's wait, then the backoff
    (RateLimitedError("429 hourly window", retry_after=3300.0), False, []),  # longer than MAX: fail now
    (ServerError("502"), True, []),
    (VendorValidationError("400"), False, []),
])
def test_a_retry_waits_what_the_vendor_asked(slept, error, retried, waits):
    assert tasks.push.retry_push(None, None, Failed(data=error)) is retried
    assert slept == waits


def test_the_marker_is_the_same_for_every_attempt_of_an_export_locale_and_differs_otherwise():
    one = make_marker(3, 17, "2026-12-02T06:00:00+00:00", "de-DE")
    assert one == make_marker(3, 17, "2026-12-02T06:00:00+00:00", "de-DE")
    others = {make_marker(3, 18, "2026-12-02T06:00:00+00:00", "de-DE"),
              make_marker(3, 17, "2026-12-02T06:00:00+00:00", "en-US"),
              make_marker(4, 17, "2026-12-02T06:00:00+00:00", "de-DE")}
    assert one not in others and len(others) == 3 and one.startswith("ee-") and len(one) == 15


@pytest.fixture
def brevo():
    with BrevoFake(api_key=KEY, senders={1: SENDER}) as server:
        yield server


@pytest.fixture
def with_brevo(mini: Any, mini_data: Any, brevo: BrevoFake, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MINI_BREVO", json.dumps({"api_key": KEY}))
    mini_data["connectors"] = [{"id": 4, "type": "brevo", "name": "Mini Brevo", "credentials": "env:MINI_BREVO",
                                "settings": {"api_base_url": f"{brevo.url}/v3", "sender_email": SENDER}}]
    import_bundle(mini, load_bundle(mini_data))
    return mini


@pytest.mark.usefixtures("prefect_harness")
def test_brevo_lost_create_then_a_prefect_task_retry_finds_it_by_its_marker(with_brevo, brevo):
    # The create happens but answers a proxy page (no id); every lookup of that attempt fails, so the
    # task fails "may exist"; Prefect's retry looks again, finds it and makes nothing new.
    brevo.inject(method="POST", path=r"/v3/smtp/templates$", reply=Reply(200, "<html>gateway</html>",
                                                                         {"Content-Type": "text/html"}),
                 after_handling=True)
    brevo.inject(method="GET", path=r"/v3/smtp/templates$", reply=brevo.server_error(), times=3)
    checked = validate_export_request(with_brevo, 3, {
        "email_id": 1, "export_type": "connector", "connector_id": 4, "dynamic_content_profile_id": "p-braze",
        "options": {"locales": ["en-US"]}})
    record = with_brevo.create_export(workspace=checked.workspace, email=checked.email, export_type="connector",
                                      options=checked.request.options, connector_id=4,
                                      dynamic_content_profile_id="p-braze", integration_name=checked.integration_name)
    export_email(record.id)
    done = with_brevo.require_export(record.id)
    assert done.status == "completed", done.export_errors
    assert list(brevo.resources) == [done.results["en-US"].resource_id]
    assert brevo.count("POST", r"/v3/smtp/templates$") == 1
    marker = make_marker(done.workspace_id, done.id, format_timestamp(done.created_at), "en-US")
    assert brevo.resources[done.results["en-US"].resource_id]["name"].endswith(f"[{marker}]")
    assert any(marker in w for w in done.warnings["en-US"] or [])


def test_a_non_numeric_sfmc_folder_id_is_a_422_naming_the_field(mini: Any, mini_data: Any):
    mini_data["connectors"] = [{"id": 5, "type": "salesforce_marketing_cloud", "name": "SFMC",
                                "settings": {"subdomain": "mc123"}}]
    import_bundle(mini, load_bundle(mini_data))
    with pytest.raises(ValidationFailed) as info:
        validate_export_request(mini, 3, {
            "email_id": 1, "export_type": "connector", "connector_id": 5, "dynamic_content_profile_id": "p-braze",
            "options": {"locales": ["en-US"], "folder_id": "Exports",
                        "per_locale_options": {"en-US": {"folder_id": "12x"}}}})
    errors = info.value.errors
    assert "category id" in errors["options.folder_id"][0] and "'Exports'" in errors["options.folder_id"][0]
    assert "'12x'" in errors["options.per_locale_options.en-US.folder_id"][0]
