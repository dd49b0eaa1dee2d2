"""Exports use the library's stored bytes (include_in_zip, use_cdn_connector: no request at all;
use_cdn: needs a public URL), and URL images are re-fetched conditionally: a re-export of an
unchanged email sends only conditional requests and downloads no body. The flow runs on the
session's Prefect harness; the image server and moto's S3 run on loopback."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
import yaml

from emailexport.bundle import import_bundle, load_bundle, read_bundle_file
from emailexport.images.collect import collect_image_urls
from emailexport.images.library import library_key
from emailexport.models import Image
from emailexport.runtime import open_storage
from flows.export_email import export_email
from tests.images.conftest import create_image_export
from tests.images.servers import png_bytes

pytestmark = pytest.mark.usefixtures("prefect_harness")

EXTERNAL = "https://external.example.net/ext.png"
HERO, LOGO = png_bytes("hero-from-file"), png_bytes("logo-from-file")


@pytest.fixture(autouse=True)
def _patient_fetches(images, monkeypatch):
    """These tests count requests and bytes, not slowness: on a loaded machine the images fixture's
    1.2 s timeout turns a slow loopback answer into a retry or a failed image, so allow 10 s."""
    monkeypatch.setenv("EMAILEXPORT_IMAGES_TIMEOUT_SECONDS", "10")


def _run(store, locales, image_mode="include_in_zip", **kwargs):
    record = create_image_export(store, locales, image_mode, **kwargs)
    state = export_email(record.id, return_state=True)
    return store.require_export(record.id), state


def _zip(url: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(Path(urlsplit(url).path).read_bytes()))


def _import_with_files(store, data, folder: Path, bucket: str | None = None):
    """The images workspace with img-hero as bytes only (a file, no URL) and img-logo as a file besides
    its URL (the container template names that URL literally), imported from `folder`."""
    (folder / "pics").mkdir()
    (folder / "pics" / "hero.png").write_bytes(HERO)
    (folder / "pics" / "logo.png").write_bytes(LOGO)
    for image in data["images"]:
        if image["id"] == "img-hero":
            image["file"] = "pics/hero.png"
            del image["public_url"]
        if image["id"] == "img-logo":
            image["file"] = "pics/logo.png"
    if bucket:
        data["cdn_connectors"][0]["bucket"] = bucket
    path = folder / "bundle.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    import_bundle(store, load_bundle(read_bundle_file(path)), base_dir=folder)
    return store


def test_include_in_zip_reads_the_library_copy_and_fetches_nothing_for_it(store, images_data, images, tmp_path):
    _import_with_files(store, images_data, tmp_path)
    record, _ = _run(store, ["en-US", "de-DE", "fr-FR"])
    assert record.status == "completed", record.export_errors
    assert "/img/hero.png" not in images.hits and "/img/logo.png" not in images.hits  # never fetched
    assert set(images.hits) == {"/img/de.png", "/img/fr.png", "/img/bg.png"}
    archive = _zip(record.download_zip_url)
    hero = f"images/{hashlib.sha256(HERO).hexdigest()[:16]}-hero.png"
    logo = f"images/{hashlib.sha256(LOGO).hexdigest()[:16]}-logo.png"
    assert archive.read(hero) == HERO and archive.read(logo) == LOGO
    for locale in ("en-US", "de-DE", "fr-FR"):
        page = archive.read(f"{locale}/index.html").decode()
        assert "emailexport-library:" not in page and images.url("/img/logo.png") not in page
        refs = collect_image_urls(page)
        assert f"../{logo}" in refs and (locale == "de-DE") != (f"../{hero}" in refs)
        assert all(r == EXTERNAL or r.removeprefix("../") in archive.namelist() for r in refs)
    assert "img-hero" in record.metadata.image_ids and "img-logo" in record.metadata.image_ids


def test_use_cdn_with_bytes_only_fails_the_locales_using_it_saying_what_to_do(store, images_data, images, tmp_path):
    _import_with_files(store, images_data, tmp_path)
    record, state = _run(store, ["en-US", "de-DE"], image_mode="use_cdn")
    assert state.is_failed() and record.status == "failed"
    assert record.results["de-DE"].status == "completed"  # de-DE shows img-de instead of the hero
    assert record.export_errors["en-US"] == [
        "image failed: image img-hero has stored bytes only and no public URL, which use_cdn links to: export "
        "with image_mode include_in_zip or use_cdn_connector, or set a public_url on the image"]
    assert sum(images.hits.values()) == 0


def test_use_cdn_connector_uploads_the_library_copy_without_fetching(store, images_data, images, tmp_path, s3_server,
                                                                     bucket):
    _import_with_files(store, images_data, tmp_path, bucket)
    record, _ = _run(store, ["en-US"], image_mode="use_cdn_connector", cdn_connector_id=4)
    assert record.status == "completed", record.export_errors
    assert "/img/hero.png" not in images.hits and "/img/logo.png" not in images.hits
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    key = f"email-images/{hashlib.sha256(HERO).hexdigest()}.png"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == HERO
    page = _zip(record.download_zip_url).read("en-US/index.html").decode()
    assert f"https://cdn.example.com/{key}" in collect_image_urls(page)


def test_a_missing_library_copy_fails_the_locales_using_it(store, images_data, images, tmp_path):
    _import_with_files(store, images_data, tmp_path)
    (Path(open_storage().root) / library_key(hashlib.sha256(HERO).hexdigest(), "image/png")).unlink()
    record, _ = _run(store, ["en-US", "de-DE"])
    assert record.results["de-DE"].status == "completed" and record.results["en-US"].status == "failed"
    assert "the library's copy" in record.export_errors["en-US"][0]
    assert "missing from the output storage" in record.export_errors["en-US"][0]


# -- conditional re-fetch of URL images -----------------------------------------------------------------


def _routed(data, route: str):
    """Every library URL of the workspace served by `route` (etag or lastmod) instead of /img/."""
    return json.loads(json.dumps(data).replace("/img/", f"/{route}/"))


@pytest.mark.parametrize("route", ["etag", "lastmod"])
def test_a_re_export_of_an_unchanged_email_downloads_no_body(store, images_data, images, route):
    import_bundle(store, load_bundle(_routed(images_data, route)))
    locales = ["en-US", "de-DE", "fr-FR"]
    first, _ = _run(store, locales)
    assert first.status == "completed", first.export_errors
    paths = {f"/{route}/{n}.png" for n in ("hero", "de", "fr", "logo", "bg")}
    # (a fetch retried for slowness on a loaded machine would count twice: at least one each)
    assert set(images.hits) == paths and sum(images.conditional.values()) == 0
    assert images.body_bytes >= sum(len(png_bytes(f"{n}.png-v0")) for n in ("hero", "de", "fr", "logo", "bg"))

    images.reset()
    second, _ = _run(store, locales)
    assert second.status == "completed", second.export_errors
    assert set(images.hits) == paths  # a request per image ...
    assert images.conditional == images.hits  # ... every one conditional ...
    assert images.body_bytes == 0  # ... and answered 304: no body
    old, new = _zip(first.download_zip_url), _zip(second.download_zip_url)
    images_of = lambda archive: {n: archive.read(n) for n in archive.namelist() if n.startswith("images/")}  # noqa: E731
    assert images_of(old) == images_of(new) and len(images_of(new)) == 5
    assert all(old.read(f"{loc}/index.html") == new.read(f"{loc}/index.html") for loc in locales)

    images.reset()
    images.versions["hero.png"] = 1  # the hero changes on the server
    third, _ = _run(store, locales)
    assert third.status == "completed"
    assert set(images.body_bytes_by_path) == {f"/{route}/hero.png"}  # only the changed image is downloaded
    assert images.body_bytes_by_path[f"/{route}/hero.png"] % len(png_bytes("hero.png-v1")) == 0  # (or retried)
    hero_entries = [n for n in _zip(third.download_zip_url).namelist() if n.endswith("-hero.png")]
    assert [_zip(third.download_zip_url).read(n) for n in hero_entries] == [png_bytes("hero.png-v1")]


def test_validators_and_hash_are_kept_per_url_without_query_secrets(store, images_data, images):
    data = _routed(images_data, "etag")
    for image in data["images"]:
        if image["id"] == "img-hero":
            image["public_url"] += "?signature=SECRET"
    import_bundle(store, load_bundle(data))
    _run(store, ["en-US"])
    row = store.image_fetch(images.url("/etag/hero.png?signature=SECRET"))
    assert row is not None and row.etag == '"hero.png-v0"' and row.url == images.url("/etag/hero.png")
    assert row.sha256 == hashlib.sha256(png_bytes("hero.png-v0")).hexdigest()
    with store.session() as session:
        from sqlalchemy import text

        dumped = json.dumps([list(r) for r in session.execute(text("select * from image_fetches"))], default=str)
    assert "SECRET" not in dumped


def test_a_url_without_validators_is_downloaded_every_time(store, images_data, images):
    import_bundle(store, load_bundle(images_data))  # /img/ sends neither ETag nor Last-Modified
    _run(store, ["fr-FR"])
    images.reset()
    _run(store, ["fr-FR"])
    assert sum(images.conditional.values()) == 0 and images.body_bytes > 0
    assert store.image_fetch(images.url("/img/fr.png")) is None


def test_a_cached_url_still_passes_the_address_policy(store, images_data, images, monkeypatch):
    import_bundle(store, load_bundle(_routed(images_data, "etag")))
    first, _ = _run(store, ["fr-FR"])
    assert first.status == "completed"
    monkeypatch.setenv("EMAILEXPORT_IMAGES_ALLOWED_HOSTS", "")  # localhost is no longer allowed
    images.reset()
    second, _ = _run(store, ["fr-FR"])
    assert second.status == "failed" and sum(images.hits.values()) == 0
    assert "refused: localhost resolves to 127.0.0.1, a loopback address" in second.export_errors["fr-FR"][0]


def test_a_lost_stored_copy_means_a_full_fetch(store, images_data, images):
    import_bundle(store, load_bundle(_routed(images_data, "etag")))
    _run(store, ["fr-FR"])
    row = store.image_fetch(images.url("/etag/fr.png"))
    assert row is not None
    (Path(open_storage().root) / library_key(row.sha256, row.content_type)).unlink()
    images.reset()
    record, _ = _run(store, ["fr-FR"])
    assert record.status == "completed"
    assert images.conditional["/etag/fr.png"] == 0 and images.hits["/etag/fr.png"] == 1
    assert images.conditional["/etag/hero.png"] == 1  # the others were still conditional
    assert store.list_documents(3, Image)  # sanity: the workspace is there
