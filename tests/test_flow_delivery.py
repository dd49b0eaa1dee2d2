"""Delivery through the export-email flow: connector pushes to a loopback ESP, PDF zips, and the
pre-export checks, on the session's Prefect test harness."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from emailexport.bundle import import_bundle, load_bundle
from emailexport.models import ExportOptions
from emailexport.validation import validate_export_request
from flows.export_email import export_email
from tests.connectors.fakes.base import Reply
from tests.connectors.fakes.brevo import BrevoFake

pytestmark = pytest.mark.usefixtures("prefect_harness")
KEY = "xkeysib-test-0123456789"
SENDER = "news@mini.example"


@pytest.fixture
def brevo():
    with BrevoFake(api_key=KEY, senders={1: SENDER}) as server:
        yield server


@pytest.fixture
def with_brevo(mini, mini_data, brevo, monkeypatch):
    monkeypatch.setenv("MINI_BREVO", json.dumps({"api_key": KEY}))
    mini_data["connectors"] = [{"id": 4, "type": "brevo", "name": "Mini Brevo", "credentials": "env:MINI_BREVO",
                                "settings": {"api_base_url": f"{brevo.url}/v3", "sender_email": SENDER}}]
    import_bundle(mini, load_bundle(mini_data))
    return mini


def _connector_export(store, locales, **options):
    checked = validate_export_request(store, 3, {
        "email_id": 1, "export_type": "connector", "connector_id": 4, "dynamic_content_profile_id": "p-braze",
        "options": {"locales": locales, **options}})
    record = store.create_export(workspace=checked.workspace, email=checked.email, export_type="connector",
                                 options=checked.request.options, connector_id=4,
                                 dynamic_content_profile_id="p-braze", integration_name=checked.integration_name)
    state = export_email(record.id, return_state=True)
    return store.require_export(record.id), state


def test_a_connector_export_pushes_every_locale_and_links_to_the_esp(with_brevo, brevo):
    record, state = _connector_export(with_brevo, ["en-US", "de-DE", "ar-SA"],
                                      per_locale_options={"de-DE": {"resource_name": "Mini DE", "tag": "de"}},
                                      export_field_values={"tag": "spring"})
    assert state.is_completed() and record.status == "completed", record.export_errors
    assert record.integration_name == "Brevo"
    ids = {loc: r.resource_id for loc, r in record.results.items()}
    assert set(ids) == {"en-US", "de-DE", "ar-SA"} and all(ids.values()) and len(set(ids.values())) == 3
    stored = {loc: brevo.resources[ids[loc]] for loc in ids}
    # The user's name, then the push's marker (docs/connectors/README.md, "Duplicates").
    assert stored["en-US"]["name"].startswith("Mini News (en-US) [ee-")
    assert stored["de-DE"]["name"].startswith("Mini DE [ee-")
    assert stored["de-DE"]["subject"] == "Hallo {{ ${first_name} | default: 'there' }}"
    assert 'dir="rtl"' in stored["ar-SA"]["html"]
    assert record.open_in_integration_url == record.results["en-US"].resource_url
    assert record.download_zip_url is None and record.download_json_url is None


def test_update_previous_export_updates_the_same_resources(with_brevo, brevo):
    first, _ = _connector_export(with_brevo, ["en-US", "de-DE"])
    second, _ = _connector_export(with_brevo, ["en-US", "de-DE"], update_previous_export=True)
    assert second.status == "completed"
    assert {k: v.resource_id for k, v in second.results.items()} == {k: v.resource_id for k, v in first.results.items()}
    assert len(brevo.resources) == 2
    assert brevo.count("PUT", r"/smtp/templates/\d+") == 2


def test_one_locale_rejected_by_the_esp_fails_alone(with_brevo, brevo):
    brevo.inject(method="POST", path=r"/smtp/templates$",
                 reply=Reply(400, {"code": "invalid_parameter", "message": "htmlContent is too large"}))
    record, state = _connector_export(with_brevo, ["en-US", "de-DE", "ar-SA"])
    assert state.is_failed() and record.status == "failed"
    failed = [loc for loc, r in record.results.items() if r.status == "failed"]
    assert len(failed) == 1
    assert record.export_errors[failed[0]] == ["Mini Brevo: Brevo: POST /smtp/templates: HTTP 400: "
                                               "invalid_parameter: htmlContent is too large"]
    assert all(r.resource_id for loc, r in record.results.items() if loc not in failed)
    assert len(brevo.resources) == 2


def test_missing_credentials_fail_every_locale_with_a_clear_reason(with_brevo, monkeypatch):
    monkeypatch.delenv("MINI_BREVO")
    record, _ = _connector_export(with_brevo, ["en-US"])
    assert record.status == "failed"
    assert record.export_errors["en-US"] == ["Mini Brevo: credentials variable MINI_BREVO is not set"]


def test_unknown_export_fields_are_refused_before_anything_runs(with_brevo):
    from emailexport.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as info:
        validate_export_request(with_brevo, 3, {"email_id": 1, "export_type": "connector", "connector_id": 4,
                                                "options": {"locales": ["en-US"], "export_field_values": {"nope": "1"},
                                                            "per_locale_options": {"en-US": {"colour": "red"}}}})
    assert "Brevo has no field 'nope'" in info.value.errors["options.export_field_values.nope"][0]
    assert "'colour' is not a per-locale option of Brevo" in info.value.errors["options.per_locale_options.en-US"][0]


def test_a_pdf_export_zips_a_pdf_per_locale(mini):
    from emailexport.models import Email

    email = mini.require(3, Email, 1)
    record = mini.create_export(workspace=mini.workspace(3), email=email, export_type="pdf",
                                options=ExportOptions(locales=["en-US", "ar-SA"]))
    state = export_email(record.id, return_state=True)
    final = mini.require_export(record.id)
    assert state.is_completed() and final.status == "completed", final.export_errors
    archive = zipfile.ZipFile(io.BytesIO(Path(urlsplit(final.download_zip_url).path).read_bytes()))
    assert sorted(archive.namelist()) == ["ar-SA.pdf", "en-US.pdf", "manifest.json"]
    assert archive.read("en-US.pdf").startswith(b"%PDF-")


def test_pre_export_checks_are_warnings_or_errors_when_blocking(mini, mini_data, monkeypatch):
    from tests.helpers import create_export

    raw = mini_data["emails"][0]["content"]["instances"][2]["field_values"]["null_branch"]["en-US"]
    raw["html"] = {"value": "<table><tr><td>layout without a role</td></tr></table>"}
    import_bundle(mini, load_bundle(mini_data))
    record = create_export(mini, 3, 1, ["en-US"])
    export_email(record.id, return_state=True)
    final = mini.require_export(record.id)
    assert any("[table_missing_role]" in w for w in final.warnings["en-US"]), final.warnings
    assert final.status == "completed"
    monkeypatch.setenv("EMAILEXPORT_CHECKS_BLOCKING", "table_missing_role")
    blocked = create_export(mini, 3, 1, ["en-US"])
    export_email(blocked.id, return_state=True)
    final = mini.require_export(blocked.id)
    assert final.status == "failed" and any("[table_missing_role]" in e for e in final.export_errors["en-US"])
