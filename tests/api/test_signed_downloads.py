"""Signed, expiring download links (issue 13): a link from a record or an artifact opens without a
token until it expires; any change to it, or an expired one, is a 403; the bearer download stays."""

from __future__ import annotations

import stat
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from deployments.supervisor import free_port
from emailexport.api import create_app
from emailexport.runs.flow_runs import FlowRuns
from emailexport.runtime import open_storage
from emailexport.settings import Settings, get_settings
from emailexport.signing import KEY_FILE, sign, sign_download_url, signing_key
from tests.api.conftest import auth
from tests.helpers import create_export

BASE = "http://testserver"
ZIP = b"PK\x05\x06" + b"\0" * 18  # an empty zip


@pytest.fixture
def served_export(workspaces, monkeypatch):
    """A completed export whose zip is on local storage, its link written the way the flow writes it."""
    from tasks.package import output_keys

    monkeypatch.setenv("EMAILEXPORT_PUBLIC_BASE_URL", BASE)
    get_settings.cache_clear()
    record = create_export(workspaces, 3, 1, ["en-US"])
    storage = open_storage()
    key = output_keys(record)["zip"]
    storage.write(key, ZIP)
    url = storage.download_url(key, f"/api/v1/workspaces/3/exports/{record.id}/download/zip")
    record = workspaces.update_export(record.id, status="completed", download_zip_url=url)
    app = create_app(get_settings(), store=workspaces, flow_runs=FlowRuns(f"http://127.0.0.1:{free_port()}/api"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, record


def _query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_the_link_the_flow_writes_opens_without_a_token(served_export):
    client, record = served_export
    url = record.download_zip_url
    assert url.startswith(f"{BASE}/api/v1/workspaces/3/exports/{record.id}/download/zip?expires=")
    expires = int(_query(url)["expires"])
    assert abs(expires - (time.time() + 86400)) < 60  # EMAILEXPORT_DOWNLOAD_URL_EXPIRY_SECONDS
    response = client.get(url)
    assert response.status_code == 200 and response.content == ZIP
    assert response.headers["content-type"] == "application/zip"
    assert client.get(url.split("?")[0]).status_code == 401  # unsigned: the bearer token is needed
    assert client.get(url.split("?")[0], headers=auth()).content == ZIP  # and still works


def test_an_expired_link_is_a_403(served_export):
    client, record = served_export
    expired = sign_download_url(record.download_zip_url, get_settings(), now=time.time() - 86400 - 1)
    response = client.get(expired)
    assert response.status_code == 403
    assert response.json() == {"message": "This download link has expired; read the export again for a fresh link"}
    almost = sign_download_url(record.download_zip_url, get_settings(), now=time.time() - 86400 + 30)
    assert client.get(almost).status_code == 200


def test_a_changed_link_is_a_403(served_export, workspaces):
    client, record = served_export
    url = record.download_zip_url
    path, query = url.split("?")
    expires, signature = int(_query(url)["expires"]), _query(url)["signature"]
    other = create_export(workspaces, 3, 1, ["en-US"])
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    foreign_key = sign(record.id, "zip", expires, b"another machine's key")
    tampered = [
        f"{path}?expires={expires + 3600}&signature={signature}",  # a longer life
        f"{path}?expires={expires}&signature={flipped}",
        f"{path[:-3]}json?{query}",  # another kind
        f"{path.replace(f'/exports/{record.id}/', f'/exports/{other.id}/')}?{query}",  # another export
        f"{path}?expires={expires}&signature={foreign_key}",
        f"{path}?expires={expires}",
        f"{path}?signature={signature}",
        f"{path}?expires={expires}&signature=%C3%A9t%C3%A9",  # non-ASCII (found by the fuzz test: was a 500)
        f"{path}?expires={expires}&signature=%ED%A0%80",  # not even UTF-8
    ]
    for link in tampered:
        response = client.get(link)
        assert response.status_code == 403, link
        assert response.json() == {"message": "Invalid download link signature"}


def test_records_read_from_the_api_carry_a_freshly_signed_link(served_export, workspaces):
    client, record = served_export
    stale = sign_download_url(record.download_zip_url, get_settings(), now=time.time() - 86400 - 1)
    workspaces.update_export(record.id, download_zip_url=stale)
    shown = client.get(f"/api/v1/workspaces/3/exports/{record.id}", headers=auth()).json()
    listed = client.get("/api/v1/workspaces/3/exports", headers=auth()).json()["results"]
    for url in (shown["download_zip_url"], next(r for r in listed if r["id"] == record.id)["download_zip_url"]):
        assert int(_query(url)["expires"]) > time.time() + 86000
        assert client.get(url).status_code == 200


def test_the_generated_key_is_private_and_the_setting_overrides_it(data_dir):
    settings = Settings()
    key = signing_key(settings)
    path = data_dir / KEY_FILE
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing_key(Settings()) == key  # created once, then read
    configured = Settings(download_signing_secret="a shared secret of the team")
    assert signing_key(configured) == b"a shared secret of the team" != key
    url = "http://x/api/v1/workspaces/3/exports/5/download/zip"
    assert _query(sign_download_url(url, settings))["signature"] != _query(sign_download_url(url, configured))[
        "signature"]
    assert sign_download_url("s3://bucket/exports/5.zip?X-Amz-Signature=abc", settings) == \
        "s3://bucket/exports/5.zip?X-Amz-Signature=abc"
