"""Issue 18, item 9: hostile input sizes and shapes are refused cleanly (422, a row error, a file
error), never a 500, a partial bulk run or a megabyte echoed back."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from emailexport.bulk import BulkFileError, read_rows
from emailexport.errors import ValidationFailed
from emailexport.validation import parse_body, validate_export_request
from flows.bulk_export import run_bulk

HEADER = "workspace_id,email_id,export_type,locales,resource_name\n"


@pytest.fixture
def client(mini):
    from emailexport.api import create_app
    from emailexport.api.flow_runs import FlowRuns
    from emailexport.settings import get_settings

    mini.add_token("token-for-workspace-3", [3])
    # Validation answers before any flow run is created: no Prefect server is needed.
    app = create_app(get_settings(), store=mini, flow_runs=FlowRuns("http://127.0.0.1:9/api"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("depth", [100_000, 40])
def test_deeply_nested_json_is_a_422(client, depth):
    body = '{"email_id": 1, "export_type": "html", "options": {"locales": ["en-US"], "per_locale_options": ' + (
        "[" * depth + "]" * depth) + "}}"
    response = client.post("/api/v1/workspaces/3/exports", content=body,
                           headers={"Authorization": "Bearer token-for-workspace-3",
                                    "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert "nested more than 32 levels" in response.json()["errors"]["body"][0]


def test_parse_body_refuses_deep_nesting_without_recursing():
    with pytest.raises(ValidationFailed):
        parse_body("[" * 100_000 + "]" * 100_000)
    assert parse_body('{"a": [[1]]}') == {"a": [[1]]}


def test_a_long_resource_name_is_refused_without_being_echoed(mini):
    body = {"email_id": 1, "export_type": "html", "options": {"locales": ["en-US"], "resource_name": "x" * 1_000_000}}
    with pytest.raises(ValidationFailed) as caught:
        validate_export_request(mini, 3, body)
    message = " ".join(m for ms in caught.value.errors.values() for m in ms)
    assert "255" in message and len(message) < 500


def _csv(tmp_path, lines):
    path = tmp_path / "rows.csv"
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return str(path)


def test_a_file_that_breaks_the_parser_late_creates_nothing(mini, tmp_path):
    lines = [f"3,1,html,en-US,row {n}\n" for n in range(2, 1400)]
    lines[1200] = '3,1,html,en-US,row 1202,extra,fields\n'  # line 1202: too many fields
    url = _csv(tmp_path, lines)
    rows = read_rows(url)
    with pytest.raises(BulkFileError, match=r"line 1202.*nothing was created"):
        next(rows)  # before the first row is handed out
    with pytest.raises(BulkFileError):
        run_bulk(url, concurrency=1)
    assert mini.list_exports(3, per=10)[1] == 0


def test_a_huge_cell_is_a_row_error_and_never_echoed(tmp_path):
    huge = "A" * 1_000_000
    url = _csv(tmp_path, [f"3,1,html,en-US,{huge}\n", f"3,{huge},html,en-US,ok\n", "3,1,html,en-US,fine\n"])
    rows = list(read_rows(url))
    assert [r.number for r in rows] == [2, 3, 4]
    first, second, third = rows
    assert first.errors == {"resource_name": ["the cell is 1000000 characters, over the 1024-character limit"]}
    assert len(first.values["resource_name"]) < 100 and first.body == {}
    assert "email_id" in second.errors and all(len(m) < 200 for m in second.errors["email_id"])
    assert third.errors == {} and third.body["options"]["resource_name"] == "fine"


def test_a_huge_locale_is_not_echoed_in_the_422(mini):
    body = {"email_id": 1, "export_type": "html", "options": {"locales": ["x" * 1_000_000]}}
    with pytest.raises(ValidationFailed) as caught:
        validate_export_request(mini, 3, body)
    message = " ".join(m for ms in caught.value.errors.values() for m in ms)
    assert "1000000 characters" in message and len(message) < 500
