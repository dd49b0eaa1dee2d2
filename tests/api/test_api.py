"""Every status code of the contract with its exact body, against the app in-process over a real
store, creating real flow runs on the test Prefect server."""

from __future__ import annotations

import httpx
import pytest

from emailexport.runs.dispatcher import Dispatcher
from emailexport.runs.flow_runs import FlowRuns
from emailexport.settings import get_settings
from tests.api.conftest import TOKENS, auth

URL = "/api/v1/workspaces/{}/exports"
BODY = {"email_id": 1, "export_type": "html", "options": {"locales": ["en-US", "de-DE"]}}
RECORD_KEYS = {
    "id", "organization_id", "connector_id", "cdn_connector_id", "email_id", "email", "dynamic_content_profile_id",
    "status", "export_type", "options", "integration_name", "metadata", "export_errors", "created_at", "updated_at",
    "download_zip_url", "download_json_url", "open_in_integration_url", "warnings", "flow_run_id", "results",
}


def test_create_returns_the_in_progress_record_and_creates_a_named_tagged_flow_run(api, workspaces, prefect_server):
    response = api.post(URL.format(3), json=BODY, headers=auth())
    assert response.status_code == 200, response.text
    record = response.json()
    assert set(record) == RECORD_KEYS
    assert record["status"] == "in_progress" and record["email"] == {"id": 1, "name": "Mini News"}
    assert record["organization_id"] == 7 and record["export_errors"] == {"base": None}
    assert record["options"]["image_mode"] == "use_cdn" and record["options"]["locales"] == ["en-US", "de-DE"]
    assert record["created_at"].endswith("Z") and len(record["created_at"]) == 24
    assert record["flow_run_id"] is None  # accepted: the dispatcher creates the run
    assert Dispatcher(workspaces, FlowRuns(prefect_server), get_settings()).dispatch_once().created == 1
    record = api.get(f"{URL.format(3)}/{record['id']}", headers=auth()).json()
    run = httpx.get(f"{prefect_server}/flow_runs/{record['flow_run_id']}").json()
    assert run["name"] == f"export-{record['id']}-mini-news"
    assert run["parameters"] == {"export_id": record["id"]}
    assert {"emailexport", "workspace:3", "type:html"} <= set(run["tags"])
    shown = api.get(f"{URL.format(3)}/{record['id']}", headers=auth())
    assert shown.status_code == 200 and shown.json()["status"] == "in_progress"  # Scheduled: still alive


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"},
     {"Authorization": "Bearer"}, {"Authorization": f"Bearer {TOKENS['ws3']} extra"}, {"Authorization": TOKENS["ws3"]}],
    ids=["missing", "unknown", "basic", "empty", "two-words", "no-scheme"],
)
@pytest.mark.parametrize("method", ["post", "get-list", "get-one"])
def test_missing_wrong_and_malformed_tokens_get_401(api, headers, method):
    if method == "post":
        response = api.post(URL.format(3), json=BODY, headers=headers)
    else:
        response = api.get(URL.format(3) + ("/1" if method == "get-one" else ""), headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"message"} and body["message"]
    assert TOKENS["ws3"] not in body["message"]


def test_a_token_for_workspace_1_gets_403_on_workspace_2(api):
    assert api.get(URL.format(1), headers=auth("ws1")).status_code == 200
    for response in (api.post(URL.format(2), json=BODY, headers=auth("ws1")),
                     api.get(URL.format(2), headers=auth("ws1"))):
        assert response.status_code == 403
        assert response.json() == {"message": "This token may not use workspace 2"}


def test_unknown_workspace_and_records_are_404(api, workspaces):
    not_found = {"message": "Record not found"}
    assert api.post(URL.format(99), json=BODY, headers=auth("ghost")).json() == not_found
    assert api.post(URL.format(99), json=BODY, headers=auth("ghost")).status_code == 404
    assert api.get(f"{URL.format(3)}/12345", headers=auth()).json() == not_found
    assert api.get(f"{URL.format(3)}/abc", headers=auth()).status_code == 404
    # a record of another workspace is not found through this one
    created = api.post(URL.format(3), json=BODY, headers=auth()).json()
    workspaces.add_token("both", [1, 3])
    response = api.get(f"{URL.format(1)}/{created['id']}", headers={"Authorization": "Bearer both"})
    assert (response.status_code, response.json()) == (404, not_found)
    # no file yet (the run has not executed): downloads are 404 too
    download = api.get(f"{URL.format(3)}/{created['id']}/download/zip", headers=auth())
    assert (download.status_code, download.json()) == (404, not_found)
    assert api.get(f"{URL.format(3)}/{created['id']}/download/../../x", headers=auth()).status_code == 404


def test_422_reports_every_problem_by_field_path_and_creates_nothing(api, workspaces):
    body = {"email_id": 1, "export_type": "connector", "bogus": 1,
            "options": {"locales": ["en-US", "en-US", "fr-FR", "xx-XX"], "per_locale_options": {"de-DE": {}}}}
    response = api.post(URL.format(3), json=body, headers=auth())
    assert response.status_code == 422
    payload = response.json()
    assert set(payload) == {"message", "errors"} and payload["message"] == "Failed to save"
    errors = payload["errors"]
    assert errors["bogus"] == ["is not a known field"]
    assert errors["connector_id"] == ["is required when export_type is connector"]
    assert "en-US is listed more than once" in errors["options.locales"]
    assert any("fr-FR is not a locale of email 1" in m for m in errors["options.locales"])
    assert "'xx-XX' is not a supported locale" in errors["options.locales"]
    assert errors["options.per_locale_options.de-DE"] == ["de-DE is not among options.locales"]
    assert workspaces.list_exports(3)[1] == 0


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_malformed_json_is_a_422_never_a_500(api, content):
    response = api.post(URL.format(3), content=content, headers={**auth(), "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["message"] == "Failed to save" and list(response.json()["errors"]) == ["body"]


def test_bad_query_and_header_values_get_the_contract_422_shape(api):
    response = api.get(URL.format(3), params={"per": 0, "page": "x"}, headers=auth())
    assert response.status_code == 422
    assert response.json()["message"] == "Failed to save" and set(response.json()["errors"]) == {"per", "page"}
    long_key = api.post(URL.format(3), json=BODY, headers={**auth(), "Idempotency-Key": "k" * 256})
    assert long_key.status_code == 422 and "Idempotency-Key" in long_key.json()["errors"]
    assert "detail" not in response.json()


def test_an_idempotency_key_returns_the_first_record(api, workspaces):
    headers = {**auth(), "Idempotency-Key": "retry-1"}
    first = api.post(URL.format(3), json=BODY, headers=headers).json()
    again = api.post(URL.format(3), json=BODY, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert again.json()["flow_run_id"] == first["flow_run_id"]
    other = api.post(URL.format(3), json=BODY, headers={**auth(), "Idempotency-Key": "retry-2"}).json()
    assert other["id"] != first["id"]
    assert workspaces.list_exports(3)[1] == 2


def test_two_posts_racing_with_one_key_make_one_record(api, workspaces, monkeypatch):
    # The second POST's lookup misses (as when both requests look before either inserts): the unique
    # constraint must turn its insert into "return the winner".
    first = api.post(URL.format(3), json=BODY, headers={**auth(), "Idempotency-Key": "race"}).json()
    real = workspaces.export_by_idempotency_key
    calls = []

    def late_lookup(workspace_id, key):
        calls.append(key)
        return None if len(calls) == 1 else real(workspace_id, key)

    monkeypatch.setattr(workspaces, "export_by_idempotency_key", late_lookup)
    second = api.post(URL.format(3), json=BODY, headers={**auth(), "Idempotency-Key": "race"})
    assert second.status_code == 200 and second.json()["id"] == first["id"]
    assert len(calls) == 2 and workspaces.list_exports(3)[1] == 1


def test_the_list_is_newest_first_and_paginated(api):
    ids = [api.post(URL.format(3), json=BODY, headers=auth()).json()["id"] for _ in range(3)]
    page = api.get(URL.format(3), params={"per": 2, "page": 1}, headers=auth()).json()
    assert [r["id"] for r in page["results"]] == ids[::-1][:2]
    assert page["pagination"] == {"per": 2, "page": 1, "total": 3}
    last = api.get(URL.format(3), params={"per": 2, "page": 2}, headers=auth()).json()
    assert [r["id"] for r in last["results"]] == [ids[0]]


def test_the_openapi_document_describes_every_status_code(api):
    document = api.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"200", "401", "403", "404", "422"} <= codes, (method, path)
            for code in codes - {"200"}:
                assert "$ref" in operation["responses"][code]["content"]["application/json"]["schema"]
    post = document["paths"]["/api/v1/workspaces/{workspace_id}/exports"]["post"]
    assert "503" not in post["responses"]  # Prefect being down is not the client's problem (the outbox)
    body_schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/ExportRequest"}
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
