"""include_in_zip end to end: the flow on the session's Prefect harness, the image server on loopback."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from lxml import html as lxml_html

from emailexport.images.naming import zip_entry
from flows.export_email import export_email
from tests.images.conftest import create_image_export, set_image_url
from tests.images.servers import png_bytes

pytestmark = pytest.mark.usefixtures("prefect_harness")

LOCALES = ["en-US", "de-DE", "fr-FR", "es-ES", "ja-JP", "ar-SA"]
EXTERNAL = "https://external.example.net/ext.png"


def _run(store, locales, image_mode="include_in_zip", **kwargs):
    record = create_image_export(store, locales, image_mode, **kwargs)
    state = export_email(record.id, return_state=True)
    return store.require_export(record.id), state


def _zip(url: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(Path(urlsplit(url).path).read_bytes()))


def _entry(name: str, filename: str) -> str:
    import hashlib

    return zip_entry(hashlib.sha256(png_bytes(name)).hexdigest(), filename, "png")


def _references(doc) -> list[str]:
    """Every image reference of a parsed locale, Outlook comment bodies included."""
    refs = [*doc.xpath("//img/@src"), *doc.xpath("//@background")]
    refs += [c.split()[0] for s in doc.xpath("//img/@srcset") for c in s.split(",")]
    for text in [*doc.xpath("//@style"), *doc.xpath("//style/text()"), *[c.text for c in doc.xpath("//comment()")]]:
        refs += re.findall(r"""url\(['"]?([^'")]+)""", text) + re.findall(r'src="([^"]+)"', text)
    return refs


def test_include_in_zip_puts_each_image_once_and_rewrites_every_reference(load_images, images):
    store = load_images()
    record, state = _run(store, LOCALES)
    assert state.is_completed() and record.status == "completed", record.export_errors
    archive = _zip(record.download_zip_url)
    names = archive.namelist()
    expected = {
        "img-hero": _entry("hero.png", "hero.png"), "img-de": _entry("de.png", "x.png"),
        "img-fr": _entry("fr.png", "fr-banner.png"), "img-logo": _entry("logo.png", "logo.png"),
        "img-bg": _entry("bg.png", "bg.png"),
    }
    assert sorted(n for n in names if n.startswith("images/")) == sorted(expected.values())
    assert len(names) == len(set(names))
    assert all(not n.startswith("/") and ".." not in n.split("/") and "\\" not in n for n in names)
    assert "images/" + expected["img-de"].split("/")[1] == expected["img-de"]  # `../../x.png` stayed inside
    sources = {"img-hero": "hero.png", "img-de": "de.png", "img-fr": "fr.png", "img-logo": "logo.png",
               "img-bg": "bg.png"}
    assert all(archive.read(entry) == png_bytes(sources[image_id]) for image_id, entry in expected.items())
    # fetched once per export, not once per locale
    assert images.hits["/img/logo.png"] == images.hits["/img/bg.png"] == images.hits["/img/hero.png"] == 1
    assert "/img/unused.png" not in images.hits and sum(images.hits.values()) == 5
    assert record.metadata.image_ids == ["img-bg", "img-de", "img-fr", "img-hero", "img-logo"]

    for locale in LOCALES:
        source = archive.read(f"{locale}/index.html").decode()
        refs = _references(lxml_html.fromstring(source))
        hero = expected["img-de"] if locale == "de-DE" else expected["img-hero"]
        wanted = {f"../{hero}", f"../{expected['img-logo']}", f"../{expected['img-bg']}", EXTERNAL}
        if locale == "fr-FR":
            wanted.add(f"../{expected['img-fr']}")
        assert set(refs) == wanted, locale
        assert refs.count(f"../{hero}") == 6  # background attr, style url(), VML in the comment, src, 2x srcset
        assert images.url("") not in source  # no library URL left anywhere
        assert all((Path("/zip") / locale / ref).resolve().as_posix().removeprefix("/zip/") in names
                   for ref in refs if ref != EXTERNAL)
    en = archive.read("en-US/index.html").decode()
    assert "<title>Hello {{ first_name | default: 'there' }}</title>" in en  # ESP syntax restored intact


def test_json_with_images_gets_a_zip_whose_document_points_at_images(load_images, images):
    store = load_images()
    record, _ = _run(store, ["en-US", "de-DE"], export_type="json")
    assert record.status == "completed" and record.download_json_url and record.download_zip_url
    archive = _zip(record.download_zip_url)
    document = json.loads(archive.read("export.json"))
    assert document == json.loads(Path(urlsplit(record.download_json_url).path).read_bytes())
    doc = lxml_html.fromstring(document["locales"]["de-DE"]["html"])
    de = _entry("de.png", "x.png")
    assert doc.xpath("//img/@src")[0] == de and de in archive.namelist()
    assert not any(n.endswith("index.html") for n in archive.namelist())


def test_a_failing_image_fails_the_locales_using_it_and_keeps_the_others(load_images, images):
    store = load_images(lambda data: set_image_url(data, "img-de", images.url("/down/de.png")))
    record, state = _run(store, LOCALES)
    assert state.is_failed() and record.status == "failed"
    assert record.export_errors["de-DE"] == [
        f"image failed: image img-de ({images.url('/down/de.png')}): HTTP 500 (gave up after 2 attempts)"]
    assert record.export_errors["base"] is None
    assert {loc for loc, r in record.results.items() if r.status == "completed"} == set(LOCALES) - {"de-DE"}
    names = _zip(record.download_zip_url).namelist()
    assert "de-DE/index.html" not in names and "en-US/index.html" in names
    assert not any("x.png" in n for n in names)  # the failed image is not packaged


def test_a_transient_image_failure_is_retried_and_the_export_completes(load_images, images):
    store = load_images(lambda data: set_image_url(data, "img-hero", images.url("/flaky/hero.png")))
    record, _ = _run(store, ["en-US", "ja-JP"])
    assert record.status == "completed" and images.hits["/flaky/hero.png"] == 2


def test_use_cdn_leaves_library_urls_and_fetches_nothing(load_images, images):
    store = load_images()
    record, _ = _run(store, ["fr-FR"], image_mode="use_cdn")
    assert record.status == "completed" and sum(images.hits.values()) == 0
    assert record.metadata.image_ids == ["img-bg", "img-fr", "img-hero", "img-logo"]
    refs = set(_references(lxml_html.fromstring(_zip(record.download_zip_url).read("fr-FR/index.html"))))
    assert refs == {images.url(f"/img/{n}.png") for n in ("hero", "logo", "bg", "fr")} | {EXTERNAL}
