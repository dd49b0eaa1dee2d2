"""The export-email flow end to end on the session's Prefect test harness."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import html as lxml_html

from emailexport.bundle import import_bundle, load_bundle
from flows.export_email import export_email
from tests.helpers import create_export

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _run(store, locales, **kwargs):
    record = create_export(store, 3, 1, locales, **kwargs)
    state = export_email(record.id, return_state=True)
    return store.require_export(record.id), state


def _zip(record) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(Path(urlsplit(record.download_zip_url).path).read_bytes()))


def _task_states(flow_run_id: str) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {run.name: run.state.name for run in runs}


def test_html_export_writes_every_locale_and_completes_the_record(store, mini_data, monkeypatch):
    monkeypatch.setattr("flows.export_email.PROGRESS_EVERY_S", 0.0)  # a progress artifact however fast
    # An email name no other test renders: the render cache is shared by the session, and a cache
    # hit has no task run, while this test checks the render task runs' names.
    salt = uuid.uuid4().hex[:8]
    mini_data["emails"][0]["name"] = f"{mini_data['emails'][0]['name']} {salt}"
    import_bundle(store, load_bundle(mini_data))
    record, state = _run(store, ["en-US", "de-DE", "ar-SA"], profile="p-braze")
    assert state.is_completed()
    assert record.status == "completed", record.export_errors
    assert record.export_errors == {"base": None}
    assert set(record.results) == {"en-US", "de-DE", "ar-SA"}
    assert all(r.status == "completed" and r.size_bytes > 0 for r in record.results.values())
    assert record.metadata.conditional_ids == [5] and record.metadata.personalization_tag_ids == [11]
    assert record.download_json_url is None and record.flow_run_id
    assert "untranslated: instances[0] (paragraph).link uses the en-US value" in record.warnings["de-DE"]

    archive = _zip(record)
    names = set(archive.namelist())
    assert names == {"manifest.json"} | {f"{loc}/index.{ext}" for loc in record.results for ext in ("html", "txt")}
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["export_id"] == record.id and manifest["locales"]["ar-SA"]["status"] == "completed"

    for locale in record.results:
        doc = lxml_html.fromstring(archive.read(f"{locale}/index.html"))
        assert doc.get("lang") == locale
        assert doc.get("dir") == ("rtl" if locale == "ar-SA" else "ltr")
        lead = doc.xpath("//td[@class='lead']")
        assert "color" in lead[0].get("style", "") and "#0055ff" in lead[0].get("style")  # inlined from <style>
        links = {a.text_content(): a.get("href") for a in doc.iter("a")}
        more = parse_qs(urlsplit(links["Read more"]).query)
        assert more["utm_source"] == ["mini"] and more["utm_medium"] == ["email"]
        assert links["View online"] == "https://example.com/view"  # skip_link_tracking
    en = lxml_html.fromstring(archive.read("en-US/index.html"))
    first = parse_qs(urlsplit(next(a.get("href") for a in en.iter("a"))).query)
    assert first == {"x": ["1"], "utm_content": ["hero"], "utm_source": ["mini"], "utm_medium": ["email"]}
    text = archive.read("de-DE/index.txt").decode()
    assert "Willkommen, {{ ${first_name} | default: 'there' }}!" in text
    assert "(https://example.com/more?utm_source=mini&utm_medium=email)" in text
    assert "(https://example.com/view)" in text

    states = _task_states(record.flow_run_id)
    assert {"render-en-US", "render-de-DE", "render-ar-SA"} <= set(states)
    artifacts = _artifacts(record.flow_run_id)
    # Two report artifacts and the progress, whatever the locale count (each is an API write).
    assert set(artifacts) == {f"export-{record.id}-{suffix}" for suffix in ("summary", "progress", "locales")}
    assert artifacts[f"export-{record.id}-progress"].data == 100.0
    assert _flow_run_name(record.flow_run_id) == f"export-{record.id}-mini-news-{salt}"
    summary = artifacts[f"export-{record.id}-summary"]
    assert summary.type == "markdown" and "| ar-SA | completed |" in summary.data
    table = artifacts[f"export-{record.id}-locales"]
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    untranslated = "untranslated: instances[0] (paragraph).link uses the en-US value"
    assert table.type == "table" and {"locale": "de-DE", "item": "warning", "value": untranslated} in rows
    assert {r["locale"] for r in rows} == {"en-US", "de-DE", "ar-SA"}


def _flow_run_name(flow_run_id: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).name


def _artifacts(flow_run_id: str) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        by_run = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        found = client.read_artifacts(artifact_filter=by_run)
    return {a.key: a for a in found}


def test_json_export_holds_subject_preheader_html_and_plaintext_per_locale(mini):
    record, _ = _run(mini, ["en-US", "ar-SA"], export_type="json", profile="p-mailchimp")
    assert record.status == "completed" and record.download_zip_url is None
    document = json.loads(Path(urlsplit(record.download_json_url).path).read_text(encoding="utf-8"))
    assert document["export_id"] == record.id and document["email"] == {"id": 1, "name": "Mini News"}
    en = document["locales"]["en-US"]
    assert en["subject"] == "Hello *|IF:FNAME|**|FNAME|**|ELSE:|*there*|END:IF|*"
    assert en["preheader"] == "News inside"
    assert "<html" in en["html"] and "Standard offer" in en["plaintext"]
    assert document["metadata"]["personalization_tag_ids"] == [11]


def test_unchanged_locales_come_from_the_cache_and_a_change_rerenders_one_locale(mini, mini_data):
    locales = ["en-US", "de-DE", "ar-SA"]
    first, _ = _run(mini, locales, profile="p-sendgrid")
    second, _ = _run(mini, locales, profile="p-sendgrid")
    assert second.status == "completed"
    # A cache hit costs no task run: the flow reads it before mapping the misses.
    assert not any(name.startswith("render-") for name in _task_states(second.flow_run_id))
    artifacts = _artifacts(second.flow_run_id)
    assert f"export-{second.id}-progress" not in artifacts  # nothing to render, no progress to show
    summary = artifacts[f"export-{second.id}-summary"].data
    assert all(f"| {loc} | completed |" in summary for loc in locales)
    assert summary.count("| yes |") == 3
    assert _zip(second).read("de-DE/index.html") == _zip(first).read("de-DE/index.html")
    values = mini_data["emails"][0]["content"]["instances"][0]["field_values"]["null_branch"]["de-DE"]
    values["body"] = {"value": "Hallo und willkommen, [[tag:first_name]]!"}
    import_bundle(mini, load_bundle(mini_data))
    third, _ = _run(mini, locales, profile="p-sendgrid")
    states = _task_states(third.flow_run_id)
    assert states["render-de-DE"] == "Completed"
    assert "render-en-US" not in states and "render-ar-SA" not in states
    assert "Hallo und willkommen" in _zip(third).read("de-DE/index.html").decode()


def test_a_failing_locale_fails_the_record_and_keeps_the_others(mini, mini_data):
    values = mini_data["emails"][0]["content"]["instances"][0]["field_values"]["null_branch"]
    values["ar-SA"]["body"] = {"value": "[[tag:nickname]]"}
    mini_data["personalization_tags"].append({"id": 12, "key": "nickname"})
    import_bundle(mini, load_bundle(mini_data))
    from emailexport.models import PersonalizationTag

    # the tag disappears after import, as when someone deletes it from the workspace
    with mini.session() as s:
        from emailexport.store.tables import DocumentRow

        s.delete(s.get(DocumentRow, (3, "personalization_tags", "12")))
    assert mini.get(3, PersonalizationTag, 12) is None
    record, state = _run(mini, ["en-US", "ar-SA"])
    assert state.is_failed()
    assert record.status == "failed"
    assert record.export_errors["ar-SA"] == ["unknown personalization tag [[tag:nickname]]"]
    assert record.results["en-US"].status == "completed" and record.results["ar-SA"].status == "failed"
    assert set(_zip(record).namelist()) == {"manifest.json", "en-US/index.html", "en-US/index.txt"}


def test_a_sandbox_escape_attempt_fails_the_export_with_a_clear_error(mini, mini_data):
    mini_data["design_systems"][0]["components"][1]["template"] = "<tr><td>{{ ''.__class__.__mro__ }}</td></tr>"
    import_bundle(mini, load_bundle(mini_data))
    record, _ = _run(mini, ["en-US"])
    assert record.status == "failed"
    assert "unsafe template operation blocked" in record.export_errors["en-US"][0]
    assert record.download_zip_url is None


def test_a_locale_removed_from_the_email_after_the_request_fails_under_base(mini, mini_data):
    record = create_export(mini, 3, 1, ["en-US", "ar-SA"])
    mini_data["emails"][0]["locales"] = ["en-US", "de-DE"]
    for instance in mini_data["emails"][0]["content"]["instances"]:
        for by_locale in instance["field_values"].values():
            by_locale.pop("ar-SA", None)
    mini_data["emails"][0]["content"]["subject"]["branch_content"]["null_branch"].pop("ar-SA")
    import_bundle(mini, load_bundle(mini_data))
    state = export_email(record.id, return_state=True)
    final = mini.require_export(record.id)
    assert state.is_failed() and final.status == "failed"
    assert final.export_errors["base"] == ["options.locales: ar-SA is not a locale of email 1"]


def test_an_unexpected_crash_never_leaves_the_record_in_progress(mini, monkeypatch):
    from prefect import task

    import flows.export_email as module

    @task(name="record-result")
    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(module, "record_result", broken)
    record = create_export(mini, 3, 1, ["en-US"])
    state = export_email(record.id, return_state=True)
    final = mini.require_export(record.id)
    assert state.is_failed()
    assert final.status == "failed"
    assert final.export_errors["base"][0].startswith("export flow run failed")
