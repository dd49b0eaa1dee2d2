"""CSV bulk mode: reading and validating rows, and the bulk-export flow in local mode."""

from __future__ import annotations

import csv
import io
import re
import tracemalloc
from pathlib import Path

import pytest

from emailexport.bulk import BulkFileError, read_rows
from flows.bulk_export import bulk_export, run_bulk

HEADER = "workspace_id,email_id,export_type,locales,dynamic_content_profile_id,minify_html,export_field_values\n"


def _write(tmp_path: Path, text: str, name: str = "rows.csv", encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return str(path)


def test_a_missing_required_column_is_named_and_nothing_is_read(tmp_path):
    url = _write(tmp_path, "workspace_id,email_id,locales\n3,1,en-US\n")
    expected = re.escape("missing the required column(s) export_type; nothing was created")
    with pytest.raises(BulkFileError, match=expected):
        list(read_rows(url))


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_an_empty_file_is_a_clear_error(tmp_path, text):
    with pytest.raises(BulkFileError, match=r"is empty|has no rows"):
        list(read_rows(_write(tmp_path, text)))


def test_unknown_columns_are_a_warning_and_ignored(tmp_path):
    warnings: list[str] = []
    rows = list(read_rows(_write(tmp_path, "workspace_id,email_id,export_type,locales,colour\n3,1,html,en-US,red\n"),
                          warnings=warnings))
    assert warnings == ["unknown column(s) ignored: colour"]
    assert "colour" not in rows[0].values and rows[0].body["options"] == {"locales": ["en-US"]}


def test_quoted_fields_with_commas_and_newlines_a_bom_and_both_locale_separators(tmp_path):
    text = ('\ufeffworkspace_id,email_id,export_type,locales,resource_name,per_locale_options\n'
            '3,1,html,"en-US|de-DE","Spring, ""big"" sale\nsecond line","{""de-DE"": {""subject"": ""Hallo, du""}}"\n'
            '3,1,json,en-US;ar-SA,,\n')
    rows = list(read_rows(_write(tmp_path, text, encoding="utf-8")))
    assert [r.number for r in rows] == [2, 3]  # spreadsheet rows: the header is row 1
    first = rows[0].body
    assert first["options"]["locales"] == ["en-US", "de-DE"]
    assert first["options"]["resource_name"] == 'Spring, "big" sale\nsecond line'
    assert first["options"]["per_locale_options"] == {"de-DE": {"subject": "Hallo, du"}}
    assert rows[1].body["options"]["locales"] == ["en-US", "ar-SA"] and rows[0].errors == rows[1].errors == {}


def test_type_errors_are_field_errors_of_their_row(tmp_path):
    text = HEADER + "x,one,html,en-US,,maybe,{not json\n"
    row = next(read_rows(_write(tmp_path, text)))
    assert row.errors == {
        "workspace_id": ["'x' is not a whole number"],
        "email_id": ["'one' is not a whole number"],
        "options.minify_html": ["'maybe' is not true or false"],
        "options.export_field_values": ["invalid JSON: Expecting property name enclosed in double quotes at "
                                        "character 1"],
    }


def test_ten_thousand_rows_are_read_in_bounded_memory(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for i in range(10_000):
            handle.write(f'3,{i},html,en-US|de-DE,,true,"{{""tag"": ""t{i}""}}"\n')
    tracemalloc.start()
    count = 0
    for row in read_rows(str(path)):
        count += 1
        assert row.errors == {}
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 10_000
    assert peak < 15 * 1024 * 1024, f"reading 10,000 rows peaked at {peak / 1e6:.1f} MB"


BULK_HEADER = "workspace_id,email_id,export_type,locales,dynamic_content_profile_id,minify_html,resource_name," \
              "export_field_values"
BAD_ROWS = {
    4: ("3,1,html,en-US|xx-XX,,,r4,", "options.locales: 'xx-XX' is not a supported locale"),
    8: ('3,1,html,en-US,,,r8,"{""x"": 1"', "options.export_field_values: invalid JSON"),
    9: ("3,77,html,en-US,,,r9,", "email_id: email 77 not found in this workspace"),
    13: ("3,1,connector,en-US,,,r13,", "connector_id: is required when export_type is connector"),
}


def _bulk_csv(tmp_path: Path) -> tuple[str, dict[int, tuple[str, str]]]:
    lines = [BULK_HEADER]
    good = [("en-US", "p-braze"), ("de-DE", "p-mailchimp"), ("ar-SA", "p-sendgrid"), ("en-US|de-DE", ""),
            ("de-DE|ar-SA", "p-braze")]
    for number in range(2, 22):
        if number in BAD_ROWS:
            lines.append(BAD_ROWS[number][0])
            continue
        locales, profile = good[number % len(good)]
        # a distinct resource_name per row: identical rows would be one export (the same row key)
        lines.append(f"3,1,html,{locales},{profile},{'true' if number % 2 else ''},row {number},")
    return _write(tmp_path, "\n".join(lines) + "\n"), BAD_ROWS


@pytest.mark.usefixtures("prefect_harness")
def test_a_csv_runs_its_good_rows_reports_bad_ones_and_reruns_create_nothing(mini, tmp_path, monkeypatch):
    url, expected_bad = _bulk_csv(tmp_path)
    state = bulk_export(csv_url=url, concurrency=4, return_state=True)
    summary = state.result(raise_on_failure=False)
    assert summary is not None, state
    assert state.is_failed() and not summary.ok  # bad rows fail the bulk run
    assert len(summary.rows) == 20 and summary.mode == "local"
    bad = {r.row: r for r in summary.rows if r.status == "invalid"}
    assert set(bad) == set(expected_bad)
    for number, (_, message) in expected_bad.items():
        assert any(message in e for e in bad[number].errors), bad[number].errors
    done = [r for r in summary.rows if r.status == "completed"]
    assert len(done) == 16 and all(r.export_id for r in done)
    records, total = mini.list_exports(3, per=100)
    assert total == 16 and all(r.status == "completed" for r in records)
    assert summary.line() == "20 rows read, 16 exports created, 16 completed, 0 failed, 0 skipped, 4 invalid"
    written = list(csv.reader(io.StringIO(Path(summary.summary_url.removeprefix("file://")).read_text())))
    assert written[0] == ["row", "export_id", "status", "errors"] and len(written) == 21

    again = run_bulk(url, concurrency=4)
    assert again.count("skipped") == 16 and again.created == 0
    assert mini.list_exports(3, per=100)[1] == 16  # no new record, so no new flow run
    forced = run_bulk(url, force=True, concurrency=4)
    assert forced.count("completed") == 16 and mini.list_exports(3, per=100)[1] == 32


@pytest.mark.usefixtures("prefect_harness")
def test_the_bulk_run_publishes_a_table_with_a_row_per_csv_row(mini, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    url = _write(tmp_path, HEADER + "3,1,html,en-US,,,\n3,1,html,xx-XX,,,\n")
    state = bulk_export(csv_url=url, return_state=True)
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    table = next(a for a in found if a.key == "bulk-export-rows")
    import json

    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert [(r["row"], r["status"]) for r in rows] == [(2, "completed"), (3, "invalid")]
    assert "'xx-XX' is not a supported locale" in rows[1]["errors"]


def test_rows_are_read_from_a_storage_url(bucket, aws_env):
    import boto3

    body = HEADER + "3,1,html,en-US|de-DE,,true,\n"
    boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1").put_object(
        Bucket=bucket, Key="in/rows.csv", Body=body.encode())
    rows = list(read_rows(f"s3://{bucket}/in/rows.csv"))
    assert [r.body["options"] for r in rows] == [{"locales": ["en-US", "de-DE"], "minify_html": True}]


def test_an_unreadable_location_is_a_clear_error(tmp_path):
    with pytest.raises(BulkFileError, match="cannot open"):
        list(read_rows(str(tmp_path / "nope.csv")))


@pytest.mark.usefixtures("prefect_harness")
def test_identical_rows_in_one_file_are_one_export(mini, tmp_path):
    url = _write(tmp_path, HEADER + "3,1,html,en-US,,,\n3,1,html,en-US,,,\n")
    summary = run_bulk(url)
    assert [r.status for r in summary.rows] == ["completed", "skipped"]
    assert summary.rows[1].errors == [f"export {summary.rows[0].export_id} still in progress"] or summary.rows[
        1].errors == [f"export {summary.rows[0].export_id} already completed"]
    assert mini.list_exports(3)[1] == 1


@pytest.mark.usefixtures("prefect_harness")
def test_local_bulk_workers_keep_one_prefect_client_each(mini, tmp_path, monkeypatch):
    """Each worker thread opens one API client for all its exports (issue 14): a client per flow run
    costs an SSL context, a connection pool and a CSRF-token request to the server."""
    from prefect.client.orchestration import SyncPrefectClient

    made: list[int] = []
    original = SyncPrefectClient.__init__

    def counting(self, *args, **kwargs):
        made.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(SyncPrefectClient, "__init__", counting)
    rows = "".join(f"3,1,html,{locale},,{minify},\n" for locale in ("en-US", "de-DE", "ar-SA")
                   for minify in ("true", ""))
    summary = run_bulk(_write(tmp_path, HEADER + rows), concurrency=2)
    assert summary.count("completed") == 6, summary.rows
    assert 1 <= len(made) <= 2  # two workers, six flow runs


def test_a_local_worker_outlives_an_export_whose_bookkeeping_fails(monkeypatch):
    """A failing `on_done` (the bulk run's store read) must not kill a worker thread: with every
    worker gone, `launch` and `close` would wait forever on the full queue."""
    import contextlib
    import threading

    from prefect.context import SyncClientContext

    from emailexport import launch
    from emailexport.models import ExportRecord

    ran: list[int] = []
    monkeypatch.setattr(launch, "ensure_prefect_api", lambda: "http://127.0.0.1:9/api")
    monkeypatch.setattr(launch, "run_export_flow", ran.append)
    monkeypatch.setattr(SyncClientContext, "get_or_create", classmethod(lambda cls: contextlib.nullcontext()))
    done: list[int] = []

    def on_done(export_id: int) -> None:
        done.append(export_id)
        raise RuntimeError("database is locked")

    launcher = launch.LocalLauncher(1)
    records = [ExportRecord.model_construct(id=n) for n in range(1, 6)]
    finished = threading.Event()

    def drive() -> None:
        for record in records:
            launcher.launch(record, on_done)
        launcher.close()
        finished.set()

    threading.Thread(target=drive, daemon=True).start()
    assert finished.wait(30), f"the bulk run hung after {done}"
    assert ran == done == [1, 2, 3, 4, 5]
