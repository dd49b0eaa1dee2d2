"""use_cdn_connector and S3 output storage end to end: the flow, moto's S3 server, the image server."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from lxml import html as lxml_html

from emailexport.images.collect import collect_image_urls
from flows.export_email import export_email
from tests.images.conftest import create_image_export
from tests.images.servers import png_bytes

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _use_bucket(bucket):
    def change(data):
        data["cdn_connectors"][0]["bucket"] = bucket
    return change


def _run(store, locales, **kwargs):
    record = create_image_export(store, locales, "use_cdn_connector", cdn_connector_id=4, **kwargs)
    state = export_email(record.id, return_state=True)
    return store.require_export(record.id), state


def test_images_are_uploaded_once_and_a_second_export_uploads_nothing(load_images, images, s3_server, bucket):
    store = load_images(_use_bucket(bucket))
    record, _ = _run(store, ["en-US", "de-DE", "fr-FR"])
    assert record.status == "completed", record.export_errors
    puts = s3_server.puts(bucket)
    assert len(puts) == 5 and all(p.startswith(f"/{bucket}/email-images/") for p in puts)
    keys = {p.removeprefix(f"/{bucket}/") for p in puts}
    zipped = zipfile.ZipFile(Path(urlsplit(record.download_zip_url).path))
    assert not any(n.startswith("images/") for n in zipped.namelist())
    pages = [zipped.read(f"{loc}/index.html").decode() for loc in ("en-US", "de-DE", "fr-FR")]
    refs = {url for page in pages for url in collect_image_urls(page)}
    assert refs == {f"https://cdn.example.com/{k}" for k in keys} | {"https://external.example.net/ext.png"}
    hero = lxml_html.fromstring(zipped.read("en-US/index.html")).xpath("//img/@src")[0]
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    stored = s3.get_object(Bucket=bucket, Key=hero.removeprefix("https://cdn.example.com/"))
    assert stored["Body"].read() == png_bytes("hero.png") and stored["ContentType"] == "image/png"

    second, _ = _run(store, ["en-US", "de-DE", "fr-FR"])
    assert second.status == "completed" and s3_server.puts(bucket) == puts  # keys existed: no PUT
    assert images.hits["/img/logo.png"] == 2  # fetched once per export


def test_a_failing_upload_fails_the_record_without_leaking_the_secret(load_images, images, s3_server):
    store = load_images()  # bucket cdn-missing does not exist
    record, state = _run(store, ["en-US", "ja-JP"])
    assert state.is_failed() and record.status == "failed"
    errors = record.export_errors["en-US"]
    assert any("image img-logo" in e or "CDN connector 4 (Test CDN): uploading email-images/" in e for e in errors)
    assert "to bucket cdn-missing failed: NoSuchBucket" in " ".join(errors)
    dumped = record.model_dump_json()
    assert "s3cr3t-do-not-leak" not in dumped and "TEST_CDN_CREDENTIALS" not in dumped
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[record.flow_run_id])))
    summary = next(a for a in found if a.key == f"export-{record.id}-summary")
    assert "## Images" in summary.data and "NoSuchBucket" in summary.data
    assert all("s3cr3t-do-not-leak" not in json.dumps(a.data) for a in found)


def test_outputs_on_s3_get_presigned_urls_that_download_the_bytes(load_images, images, bucket, monkeypatch):
    monkeypatch.setenv("EMAILEXPORT_STORAGE_URL", f"s3://{bucket}/outputs")
    monkeypatch.setenv("EMAILEXPORT_DOWNLOAD_URL_EXPIRY_SECONDS", "600")
    from emailexport.settings import get_settings

    get_settings.cache_clear()
    store = load_images()
    record = create_image_export(store, ["en-US", "de-DE"], "include_in_zip", export_type="json")
    export_email(record.id, return_state=True)
    record = store.require_export(record.id)
    assert record.status == "completed", record.export_errors
    for url in (record.download_zip_url, record.download_json_url):
        assert url and parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["600"]
    document = httpx.get(record.download_json_url).raise_for_status().json()
    assert set(document["locales"]) == {"en-US", "de-DE"}
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(record.download_zip_url).raise_for_status().content))
    assert json.loads(archive.read("export.json")) == document
    assert any(n.startswith("images/") and n.endswith("-x.png") for n in archive.namelist())
