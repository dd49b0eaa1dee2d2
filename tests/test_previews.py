"""Previews: sample-value renders, real Chromium screenshots, the gallery page, and the flow."""

from __future__ import annotations

import io
import os
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import numpy
import pytest
import yaml
from PIL import Image, ImageStat

from emailexport.bundle import import_bundle, load_bundle
from emailexport.errors import ValidationFailed
from emailexport.previews import Shot, chromium_path, gallery_html, preview_input, take_screenshots, variants_of
from emailexport.previews.gallery import GalleryLocale
from emailexport.store import Store
from emailexport.validation import validate_export_request
from tasks.load import build_job
from tasks.previews import build_previews, image_resources
from tasks.render import render_locale
from tests.helpers import create_export

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "workspace.yaml"
BRAZE = "2b9d0a21-dadc-4d81-95f0-aed2f71e781f"
LOCALES = ["en-US", "de-DE", "fr-FR", "es-ES", "ar-SA", "ja-JP"]


def _need_chromium() -> None:
    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium missing in CI (scripts/system-deps installs Debian's chromium)")
        pytest.skip("Chromium is not installed (scripts/system-deps installs it)")


@pytest.fixture
def example(store: Store) -> Store:
    import_bundle(store, load_bundle(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))))
    return store


def _job(store: Store, locales: list[str], **kwargs: Any):
    return build_job(store, create_export(store, 1, 1, locales, **kwargs))


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def _red_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 640), (220, 20, 20)).save(buffer, "PNG")
    return buffer.getvalue()


def _red_pixels(image: Image.Image) -> int:
    rgb = numpy.asarray(image.convert("RGB")).astype(int)
    return int(((rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)).sum())


def _direction_skew(image: Image.Image) -> float:
    """Mean (left margin - right margin) of the dark rows of ink inside the 600 px email column:
    negative when text hugs the left edge (LTR), positive when it hugs the right (RTL)."""
    gray = image.convert("L")
    width, height = gray.size
    left, right = (width - 600) // 2, (width + 600) // 2
    pixels = gray.load()
    total, rows = 0, 0
    for y in range(height):
        xs = [x for x in range(left, right) if pixels[x, y] < 90]
        if len(xs) >= 3:
            total += (xs[0] - left) - (right - 1 - xs[-1])
            rows += 1
    assert rows > 100, "too little text on the page to tell its direction"
    return total / rows


# -- sample values, no browser ---------------------------------------------------------------


def test_preview_input_shows_fallbacks_and_the_default_branch_instead_of_esp_syntax(example):
    job = _job(example, ["en-US"], profile=BRAZE)
    shipped = render_locale.fn("en-US", job.inputs["en-US"])
    preview = render_locale.fn("en-US", preview_input(job.inputs["en-US"]))
    assert "{%" in shipped.html and "{{" in shipped.html  # the Braze export holds Liquid
    assert "{%" not in preview.html and "{{" not in preview.html, "a preview shows no ESP syntax"
    assert "Hi there," in preview.html  # the first_name tag's fallback
    assert preview.html.count("<html") == 1
    # one branch of the hero conditional, not all three stacked
    variants = variants_of(job.inputs["en-US"], shipped.conditional_ids)
    assert [(v.conditional_id, v.branch_key) for v in variants] == [(1, "gold"), (1, "silver"), (2, "has_store")]
    gold = render_locale.fn("en-US", preview_input(job.inputs["en-US"], {1: "gold"}))
    assert gold.html != preview.html and "{%" not in gold.html


def test_a_profile_sample_value_wins_over_the_fallback(example):
    job = _job(example, ["en-US"], profile=BRAZE)
    inp = job.inputs["en-US"]
    assert inp.profile is not None
    inp = inp.model_copy(update={"profile": inp.profile.model_copy(update={"sample_values": {"first_name": "Ada"}})})
    assert "Hi Ada," in render_locale.fn("en-US", preview_input(inp)).html


def test_previews_are_refused_for_json_and_connector_exports(example):
    with pytest.raises(ValidationFailed) as failed:
        validate_export_request(example, 1, {"email_id": 1, "export_type": "json",
                                             "options": {"locales": ["en-US"], "previews": True}})
    assert failed.value.errors["options.previews"] == ["previews go into the zip of html and pdf exports only"]


def test_the_gallery_page_is_self_contained():
    page = gallery_html("Spring: previews", [
        GalleryLocale("en-US", "ltr", "Sale <now>", {"desktop": "en-US/desktop.png"}),
        GalleryLocale("ar-SA", "rtl", "تخفيضات", {}, problems=["desktop preview failed: timeout"]),
    ])
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "Sale &lt;now&gt;" in page and "No mobile preview for this locale." in page
    assert "desktop preview failed: timeout" in page


# -- real Chromium ---------------------------------------------------------------------------


class _Counting(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(_red_png())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def counting_server() -> Iterator[tuple[str, list[str]]]:
    _Counting.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Counting.hits
    server.shutdown()


def test_the_browser_loads_only_what_it_is_given_and_runs_no_script(counting_server):
    _need_chromium()
    base, hits = counting_server
    html = (f'<html><head><link rel="stylesheet" href="{base}/style.css"></head><body style="margin:0">'
            f'<img src="{base}/direct.png" width="50" height="50">'
            f'<img src="images/local.png" width="50" height="50">'
            f"<script>document.write('<img src=\"{base}/from-script.png\">')</script>"
            f'<iframe src="{base}/frame"></iframe></body></html>')
    asked: list[str] = []

    def resources(key: str) -> bytes | None:
        asked.append(key)
        return _red_png() if key.endswith("images/local.png") else None

    shots, failures = take_screenshots([Shot("x", "en-US/index.html", html, "desktop")], resources)
    assert failures == {}
    assert hits == [], "nothing reached the network"
    assert "en-US/images/local.png" in asked
    assert not any("from-script" in key for key in asked), "JavaScript is off"
    # the given image was drawn (50 x 50 red pixels), the refused ones were not
    red = _red_pixels(_png(shots["x"]))
    assert 2000 < red <= 2500


@pytest.fixture(scope="module")
def example_previews(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The example email in its six locales (Braze profile), previewed once for the module."""
    _need_chromium()
    from emailexport.runtime import open_store

    directory = tmp_path_factory.mktemp("previews-data")
    old = os.environ.get("EMAILEXPORT_DATA_DIR")
    os.environ["EMAILEXPORT_DATA_DIR"] = str(directory)
    from emailexport.settings import get_settings

    get_settings.cache_clear()
    try:
        store = open_store()
        import_bundle(store, load_bundle(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))))
        job = _job(store, LOCALES, profile=BRAZE)
        renders = {loc: render_locale.fn(loc, job.inputs[loc]) for loc in LOCALES}
        hero = next(i for i in job.inputs["en-US"].images.values() if i.public_url.endswith("/spring-2026-hero.jpg"))
        out = build_previews("Spring Sale", job.inputs, renders, image_resources({hero.public_url: _red_png()}))
        return {"files": out.files, "warnings": out.warnings, "renders": renders}
    finally:
        if old is None:
            os.environ.pop("EMAILEXPORT_DATA_DIR", None)
        else:
            os.environ["EMAILEXPORT_DATA_DIR"] = old
        get_settings.cache_clear()


def test_every_locale_gets_three_full_page_screenshots_of_the_right_size(example_previews):
    files, warnings = example_previews["files"], example_previews["warnings"]
    assert warnings == {}
    main = {name for name in files if name.count("/") == 2 and name.endswith(".png")}
    views = ("desktop", "mobile", "dark", "thumbnail")
    assert main == {f"previews/{loc}/{view}.png" for loc in LOCALES for view in views}
    for locale in LOCALES:
        desktop = _png(files[f"previews/{locale}/desktop.png"])
        mobile = _png(files[f"previews/{locale}/mobile.png"])
        dark = _png(files[f"previews/{locale}/dark.png"])
        assert desktop.width == 1024 and dark.width == 1024
        assert mobile.width <= 480
        assert desktop.height > 1500 and mobile.height > desktop.height, "full page, and taller on a phone"
        for image in (desktop, mobile, dark):
            assert max(ImageStat.Stat(image).stddev) > 20, f"{locale}: a blank screenshot"


def test_the_given_image_is_drawn(example_previews):
    desktop = _png(example_previews["files"]["previews/en-US/desktop.png"])
    red = _red_pixels(desktop)
    assert red > 100_000, "the hero image served from the export's own bytes appears"


def test_ar_sa_is_mirrored_relative_to_en_us(example_previews):
    files = example_previews["files"]
    assert _direction_skew(_png(files["previews/en-US/desktop.png"])) < -20
    assert _direction_skew(_png(files["previews/ar-SA/desktop.png"])) > 20


def test_dark_differs_from_desktop(example_previews):
    files = example_previews["files"]
    desktop, dark = _png(files["previews/en-US/desktop.png"]), _png(files["previews/en-US/dark.png"])
    assert desktop.size == dark.size
    # the email's own prefers-color-scheme: dark rules darken its background
    assert sum(ImageStat.Stat(dark.convert("L")).mean) < sum(ImageStat.Stat(desktop.convert("L")).mean) - 60


def test_variants_are_photographed_for_every_other_branch(example_previews):
    files = example_previews["files"]
    for locale in LOCALES:
        assert {n for n in files if n.startswith(f"previews/{locale}/variants/")} == {
            f"previews/{locale}/variants/{name}.png" for name in ("1-gold", "1-silver", "2-has_store")}
    assert files["previews/en-US/variants/1-gold.png"] != files["previews/en-US/desktop.png"]


def test_the_gallery_opens_in_chromium_and_its_switch_changes_the_images(example_previews, tmp_path):
    from playwright.sync_api import sync_playwright

    from emailexport.previews.browser import _ARGS

    for name, data in example_previews["files"].items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    index = tmp_path / "previews" / "index.html"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=_ARGS)
        try:
            page = browser.new_page(java_script_enabled=False)
            page.goto(index.as_uri())

            def shown() -> dict[str, int]:
                return {view: sum(1 for img in page.locator(f"img.shot.{view}").all() if img.is_visible())
                        for view in ("desktop", "mobile", "dark")}

            assert shown() == {"desktop": 6, "mobile": 0, "dark": 0}
            # every shown image really loaded from the unzipped folder
            assert page.locator("img.shot.desktop").evaluate_all("els => els.map(e => e.naturalWidth)") == [1024] * 6
            page.click("label[for=view-mobile]")
            assert shown() == {"desktop": 0, "mobile": 6, "dark": 0}
            page.click("label[for=view-dark]")
            assert shown() == {"desktop": 0, "mobile": 0, "dark": 6}
            assert page.locator("figure").count() == 6
            assert page.locator("#locale-ar-SA figcaption").get_attribute("dir") == "rtl"
        finally:
            browser.close()


# -- the flow --------------------------------------------------------------------------------


@pytest.mark.usefixtures("prefect_harness")
def test_an_html_export_with_previews_carries_the_gallery_and_18_pngs_in_its_zip(example):
    _need_chromium()
    from emailexport.models import Email, ExportOptions
    from flows.export_email import export_email

    email = example.require(1, Email, 1)
    record = example.create_export(workspace=example.workspace(1), email=email, export_type="html",
                                   options=ExportOptions(locales=LOCALES, previews=True),
                                   dynamic_content_profile_id=BRAZE)
    state = export_email(record.id, return_state=True)
    record = example.require_export(record.id)
    assert state.is_completed() and record.status == "completed", record.export_errors
    names = set(zipfile.ZipFile(Path(urlsplit(record.download_zip_url).path)).namelist())
    assert "previews/index.html" in names
    main = {n for n in names if n.startswith("previews/") and n.count("/") == 2 and n.endswith(".png")
            and not n.endswith("/thumbnail.png")}
    assert len(main) == 18
    assert {f"previews/{loc}/thumbnail.png" for loc in LOCALES} <= names
    assert {f"{loc}/index.html" for loc in LOCALES} <= names
    # `emailexport preview` unpacks the gallery and says where it is
    from typer.testing import CliRunner

    from emailexport.cli import app

    result = CliRunner().invoke(app, ["preview", str(record.id)])
    assert result.exit_code == 0, result.output
    index = Path(urlsplit(result.output.strip().rsplit(" ", 1)[1]).path)
    assert index.name == "index.html" and (index.parent / "ar-SA" / "mobile.png").is_file()


def test_unpacking_a_gallery_never_writes_outside_its_folder(example, tmp_path):
    from emailexport.errors import EmailExportError
    from emailexport.models import Email, ExportOptions
    from emailexport.runtime import open_storage
    from tasks.package import output_keys
    from tasks.previews import extract_gallery

    email = example.require(1, Email, 1)
    record = example.create_export(workspace=example.workspace(1), email=email, export_type="html",
                                   options=ExportOptions(locales=["en-US"], previews=True))
    record = example.update_export(record.id, status="completed")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("previews/index.html", "<p>ok</p>")
        archive.writestr("previews/../../escaped.txt", "no")
        archive.writestr("previews/..\\..\\windows.txt", "no")
        archive.writestr("previews/en-US/desktop.png", b"png")
    open_storage().write(output_keys(record)["zip"], buffer.getvalue())
    target = tmp_path / "gallery"
    index = extract_gallery(record, open_storage(), target)
    assert index.read_text() == "<p>ok</p>" and (target / "en-US" / "desktop.png").read_bytes() == b"png"
    assert not (tmp_path / "escaped.txt").exists() and not (target.parent.parent / "escaped.txt").exists()
    assert sorted(p.name for p in target.rglob("*") if p.is_file()) == ["desktop.png", "index.html"]

    without = example.create_export(workspace=example.workspace(1), email=email, export_type="html",
                                    options=ExportOptions(locales=["en-US"]))
    with pytest.raises(EmailExportError, match="without previews"):
        extract_gallery(example.update_export(without.id, status="completed"), open_storage(), target)
