"""PDF exports (tasks/html_to_pdf.py): every locale's script drawn as glyphs, and nothing read it should not.

Text extraction alone does not prove a script rendered: a character drawn as a "tofu" box still
extracts as text through the PDF's ToUnicode map. So each expected sentence is checked three ways:
its letters are in pdftotext's output (the right words, in the right script), every one of them is
drawn with an embedded font whose own cmap has that character (a glyph, not a box; the detector
is itself tested on a private-use character no font has), and page 1 rasterizes (pdftoppm) to a
page that is not blank.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import subprocess
import unicodedata
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fontTools.ttLib import TTFont
from lxml import html as lxml_html
from PIL import Image
from pypdf import PdfReader

from emailexport.bundle import import_bundle, load_bundle
from emailexport.render.result import LocaleRender
from emailexport.runtime import open_store
from emailexport.settings import Settings
from tasks.html_to_pdf import PdfRenderError, render_pdf, render_pdfs
from tasks.package import build_pdf_zip
from tasks.render import render_locale
from tests.conftest import EXAMPLE
from tests.helpers import create_export, render_inputs

EXAMPLE_LOCALES = ("en-US", "de-DE", "fr-FR", "es-ES", "ar-SA", "ja-JP")
# The script each locale's text must be in: the prefix of its letters' Unicode names.
SCRIPTS = {
    "en-US": ("LATIN",), "de-DE": ("LATIN",), "fr-FR": ("LATIN",), "es-ES": ("LATIN",),
    "ar-SA": ("ARABIC",), "ja-JP": ("CJK", "HIRAGANA", "KATAKANA"), "zh-CN": ("CJK",), "ko-KR": ("HANGUL",),
    "th-TH": ("THAI",), "hi-IN": ("DEVANAGARI",), "ta-IN": ("TAMIL",), "bn-BD": ("BENGALI",), "he-IL": ("HEBREW",),
}
RTL = {"ar-SA", "he-IL"}
# A known sentence per locale the example email does not have.
SENTENCES = {
    "zh-CN": "春季促销现已开始，全场商品最高享七折优惠。",
    "ko-KR": "봄맞이 세일이 시작되었습니다. 모든 상품 최대 30% 할인.",
    "th-TH": "การลดราคาฤดูใบไม้ผลิเริ่มต้นแล้ววันนี้",
    "hi-IN": "वसंत सेल अब शुरू हो गई है, सभी उत्पादों पर छूट पाएं।",
    "ta-IN": "வசந்த கால விற்பனை இப்போது தொடங்கியது.",
    "bn-BD": "বসন্তের বিক্রয় এখন শুরু হয়েছে।",
    "he-IL": "מבצע האביב התחיל היום, עד שלושים אחוז הנחה.",
}
REQUIRED_FONTS = ("Noto Sans CJK JP", "Noto Sans Arabic", "Noto Sans Hebrew", "Noto Sans Thai",
                  "Noto Sans Devanagari", "Noto Sans Tamil", "Noto Sans Bengali")


def _missing_system_deps() -> list[str]:
    missing = [tool for tool in ("pdftoppm", "pdftotext", "fc-list") if shutil.which(tool) is None]
    if shutil.which("fc-list"):
        families = subprocess.run(["fc-list", ":", "family"], capture_output=True, text=True, check=True).stdout
        missing += [family for family in REQUIRED_FONTS if family not in families]
    return missing


@pytest.fixture(scope="module", autouse=True)
def system_deps() -> None:
    """Skip without poppler or the fonts, except in CI, where scripts/system-deps installs them."""
    missing = _missing_system_deps()
    if missing and os.environ.get("CI"):
        pytest.fail(f"missing in CI: {', '.join(missing)} (scripts/system-deps installs them)")
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: run scripts/system-deps")


# ---------------------------------------------------------------------------------------------
# What a PDF shows


def pdf_text(pdf: bytes) -> str:
    """pdftotext's reading of the PDF."""
    return subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode("utf-8")


def readings(pdf: bytes) -> dict[str, str]:
    """Two readings of the text: pdftotext puts RTL runs back in logical order, but splits Tamil
    lines at pre-base vowel glyphs; pypdf's text layer keeps the drawing order, which is right for
    every LTR script. A sentence counts as present when one of them has it."""
    layer = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return {"pdftotext": pdf_text(pdf), "pypdf": layer}


def letters(text: str, locale: str) -> str:
    """The letters of `text` in reading order: marks, digits, punctuation and spaces left out.

    Extraction reorders what shaping reordered: Indic pre-base vowel signs come out before their
    consonant and Arabic lam-alef ligatures come out reversed in RTL text, so those (marks; lam
    and alef in Arabic) are not compared. Every other letter must appear, in order.
    """
    kept = "".join(ch for ch in unicodedata.normalize("NFC", text) if unicodedata.category(ch).startswith("L"))
    return re.sub("[لاأإآ]", "", kept) if locale == "ar-SA" else kept


def in_script(text: str, locale: str) -> bool:
    """Whether most letters of `text` are in the locale's script (guards the test's own data)."""
    chars = [ch for ch in text if unicodedata.category(ch).startswith("L")]
    ours = [ch for ch in chars if unicodedata.name(ch, "").startswith(SCRIPTS[locale])]
    return bool(chars) and len(ours) >= 0.8 * len(chars)


def _to_unicode(cmap: bytes) -> dict[int, str]:
    """A ToUnicode CMap -> {glyph code: text} (bfchar and bfrange entries)."""
    found: dict[int, str] = {}
    text = cmap.decode("latin-1")
    for block in re.findall(r"beginbfchar(.*?)endbfchar", text, re.S):
        for code, target in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            found[int(code, 16)] = bytes.fromhex(target).decode("utf-16-be")
    for block in re.findall(r"beginbfrange(.*?)endbfrange", text, re.S):
        for low, high, start in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            base = int(start, 16)
            for offset, code in enumerate(range(int(low, 16), int(high, 16) + 1)):
                found[code] = chr(base + offset)
    return found


@functools.cache
def system_cmap(postscript_name: str) -> frozenset[int]:
    """The characters the installed font (found by fontconfig) maps, in full.

    The font embedded in the PDF is a subset whose cmap keeps only the forms shaping chose (an
    Arabic letter's final form, not the letter), so coverage is read from the font itself.
    """
    found = subprocess.run(["fc-list", f":postscriptname={postscript_name}", "-f", "%{file}|%{index}\n"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert found, f"the PDF embeds {postscript_name}, which fontconfig does not know"
    path, index = found[0].split("|")
    with TTFont(path, fontNumber=int(index), lazy=True) as face:
        return frozenset(face.getBestCmap())


def drawn_glyphs(pdf: bytes) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """PDF -> ({char: fonts that draw it with a real glyph}, {char: fonts that draw it as a box}).

    A glyph is real when the font maps the character (`system_cmap`) and the glyph the PDF draws
    exists in the embedded program and is not .notdef (glyph 0); a box is a character the PDF
    says it drew with a font that has no glyph for it.
    """
    covered: dict[str, set[str]] = {}
    boxes: dict[str, set[str]] = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"].get("/Font", {}).values():
            font = font.get_object()
            if "/ToUnicode" not in font or "/DescendantFonts" not in font:
                continue
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
            program = next(descriptor[k] for k in ("/FontFile2", "/FontFile3", "/FontFile") if k in descriptor)
            with TTFont(io.BytesIO(program.get_object().get_data())) as face:
                name, glyph_count = face["name"].getDebugName(6), face["maxp"].numGlyphs
            cmap = system_cmap(name)
            for code, text in _to_unicode(font["/ToUnicode"].get_object().get_data()).items():
                for ch in text:
                    # A ligature's glyph (conjunct, lam-alef) stands for several characters: the
                    # font must map each of them.
                    real = 0 < code < glyph_count and ord(ch) in cmap
                    (covered if real else boxes).setdefault(ch, set()).add(name)
    return covered, boxes


def assert_drawn(pdf: bytes, expected: str, locale: str) -> None:
    """The expected text is in the PDF, in its script, and drawn with glyphs (module docstring)."""
    assert in_script(expected, locale), f"test data for {locale} is not in its script: {expected!r}"
    texts = readings(pdf)
    assert any(letters(expected, locale) in letters(text, locale) for text in texts.values()), (
        f"{locale}: {expected!r} not found in the PDF's text: {texts}")
    covered, boxes = drawn_glyphs(pdf)
    needed = {ch for ch in expected if unicodedata.category(ch).startswith("L")}
    not_drawn = sorted(ch for ch in needed if ch not in covered)
    assert not not_drawn, f"{locale}: drawn without a glyph: {not_drawn} (fonts: {boxes})"
    boxed = {ch: boxes[ch] for ch in needed & set(boxes)}
    assert not boxed, f"{locale}: some characters drawn as boxes: {boxed}"


def assert_page_not_blank(pdf: bytes, tmp_path: Path) -> None:
    """pdftoppm renders page 1; more than 1% of its pixels differ from the background colour."""
    subprocess.run(["pdftoppm", "-r", "30", "-f", "1", "-l", "1", "-png", "-", str(tmp_path / "page")],
                   input=pdf, check=True, capture_output=True)
    image = Image.open(next(tmp_path.glob("page*.png"))).convert("L")
    histogram = image.histogram()
    background = max(range(256), key=histogram.__getitem__)
    inked = sum(count for level, count in enumerate(histogram) if abs(level - background) > 40)
    assert inked > 0.01 * image.width * image.height, "page 1 of the PDF is blank"


# ---------------------------------------------------------------------------------------------
# Fixtures: the example email's locales, and small emails in the other scripts


def png_bytes(colour: tuple[int, int, int] = (40, 90, 60), size: tuple[int, int] = (120, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def serve_png(url: str) -> tuple[bytes, str]:
    """A stand-in for the project's image fetcher: every http(s) image is a small PNG."""
    return png_bytes(), "image/png"


def render_example(data_dir: Path, locales: tuple[str, ...] = EXAMPLE_LOCALES, *,
                   preset: str | None = None) -> dict[str, LocaleRender]:
    """The example email's locales through the real render stage, as tests/test_golden.py does
    (with the dynamic content profile of `preset`, or none)."""
    store = open_store(Settings(data_dir=data_dir))
    bundle = load_bundle(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    import_bundle(store, bundle)
    profiles = {p.template_engine_preset: p.id for p in bundle.dynamic_content_profiles}
    profile = profiles[preset] if preset else None
    inputs = render_inputs(store, 1, 1, list(locales), profile=profile)
    renders = {locale: render_locale.fn(locale, inputs[locale]) for locale in locales}
    assert all(r.ok for r in renders.values()), {loc: r.errors for loc, r in renders.items()}
    return renders


def crafted_email(locale: str, sentence: str) -> str:
    """A small email as the pipeline writes them: layout tables, ESP tokens, an Outlook comment."""
    direction = "rtl" if locale in RTL else "ltr"
    return f"""<!DOCTYPE html><html lang="{locale}" dir="{direction}"><head><meta charset="utf-8">
<style>h1 {{ font-size: 28px }}</style></head>
<body style="margin:0;background-color:#F3F1EC">
<table role="presentation" width="100%" style="width:100%;background-color:#F3F1EC"><tr><td>
<table role="presentation" align="center" style="width:100%;max-width:600px;margin:0 auto;background:#FFFFFF">
<tr><td style="padding:24px;font-family:Arial, Helvetica, sans-serif">
<!--[if mso]><p>OUTLOOK ONLY</p><![endif]-->
<img src="https://cdn.example.com/logo.png" width="120" alt="logo">
<h1>{sentence}</h1>
<p>{{{{ first_name | default: 'there' }}}} *|FNAME|*</p>
<img src="../images/badge.png" width="60" alt="">
</td></tr></table></td></tr></table></body></html>"""


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LocaleRender]:
    return render_example(tmp_path_factory.mktemp("example-data"))


@pytest.fixture(scope="module")
def pdfs(example: dict[str, LocaleRender]) -> Iterator[tuple[dict[str, bytes | Exception], dict[str, list[str]]]]:
    """Every locale, example and crafted, rendered once through the process pool."""
    items = [(loc, r.html) for loc, r in example.items()]
    items += [(loc, crafted_email(loc, sentence)) for loc, sentence in SENTENCES.items()]
    warnings: dict[str, list[str]] = {}
    results = render_pdfs(items, fetch=serve_png, images={"images/badge.png": png_bytes((200, 80, 40))},
                          workers=2, warnings=warnings)
    yield results, warnings


def _pdf(pdfs: Any, locale: str) -> bytes:
    result = pdfs[0][locale]
    assert isinstance(result, bytes), f"{locale}: {result!r}"
    return result


# ---------------------------------------------------------------------------------------------
# Every script


@pytest.mark.parametrize("locale", EXAMPLE_LOCALES)
def test_example_locale_pdf_shows_its_headlines_in_its_script(locale, example, pdfs, tmp_path):
    pdf = _pdf(pdfs, locale)
    doc = lxml_html.fromstring(example[locale].html)
    headlines = [h.text_content().strip() for h in doc.xpath("//h1 | //h2")]
    assert len(headlines) >= 3
    for headline in headlines:
        assert_drawn(pdf, headline, locale)
    assert_page_not_blank(pdf, tmp_path)
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.pages[0].mediabox.width == 525  # 700 px at 0.75 pt/px: see tasks/html_to_pdf.py PAGE_CSS


@pytest.mark.parametrize("locale", sorted(SENTENCES))
def test_crafted_locale_pdf_shows_its_sentence_in_its_script(locale, pdfs, tmp_path):
    pdf = _pdf(pdfs, locale)
    assert_drawn(pdf, SENTENCES[locale], locale)
    assert_page_not_blank(pdf, tmp_path)
    text = pdf_text(pdf)
    assert "OUTLOOK ONLY" not in text  # an Outlook conditional comment is a comment
    # ESP tokens are text (in an RTL paragraph the bidi algorithm reorders their neutral characters).
    assert "first_name | default:" in text and "*|FNAME|*" in text
    # The http logo came through `fetch`, the badge from the export's images: both drawn.
    assert len(PdfReader(io.BytesIO(pdf)).pages[0].images) == 2
    assert pdfs[1].get(locale) is None


def test_the_glyph_check_catches_a_character_no_font_has():
    pdf = render_pdf('<html lang="en"><body><p>Box: \ue000\ue001</p></body></html>')
    covered, boxes = drawn_glyphs(pdf)
    assert "\ue000" in boxes and "\ue000" not in covered
    assert "B" in covered


@pytest.mark.parametrize(("locale", "side"), [("he-IL", "right"), ("ko-KR", "left")])
def test_a_headline_starts_on_its_scripts_side(locale, side, pdfs):
    """RTL text starts at the right edge of the 600 px column, LTR text at the left edge."""
    bbox = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", "-", "-"], input=_pdf(pdfs, locale),
                          capture_output=True, check=True).stdout.decode("utf-8")
    first_word = SENTENCES[locale].split()[0]
    words = re.findall(r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>', bbox)
    # -bbox writes RTL words in drawing order, i.e. reversed.
    x_min, x_max = next((float(a), float(b)) for a, b, text in words if first_word in (text, text[::-1]))
    # Page 525 pt (700 px); the column's padding box spans 50-650 px, its text 74-626 px.
    if side == "right":
        assert x_max > 0.85 * 525, f"{locale}: {first_word} ends at {x_max} pt, not at the right"
    else:
        assert x_min < 0.15 * 525, f"{locale}: {first_word} starts at {x_min} pt, not at the left"


# ---------------------------------------------------------------------------------------------
# What the fetcher refuses


def test_local_files_are_never_read(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes())
    css = tmp_path / "secret.css"
    css.write_text("p { color: red }")
    # WeasyPrint also embeds `rel="attachment"` targets as PDF file attachments: same fetcher.
    html = f"""<html lang="en"><head><link rel="stylesheet" href="{css.as_uri()}">
<link rel="attachment" href="file:///etc/hostname"></head><body>
<img src="file:///etc/passwd" alt="passwd"><img src="{secret.as_uri()}" alt="secret">
<div style="background-image: url('{secret.as_uri()}')">x</div>
<img src="ftp://example.com/a.png" alt="ftp"><img src="images/secret.png" alt="relative"></body></html>"""
    warnings: list[str] = []
    pdf = render_pdf(html, fetch=serve_png, images={}, warnings=warnings)
    assert len(PdfReader(io.BytesIO(pdf)).pages[0].images) == 0
    # Four file: URLs (WeasyPrint asks once per URL, though secret.png is used twice), all refused.
    assert sum("file: scheme is not allowed" in w for w in warnings) == 4, warnings
    assert b"/EmbeddedFile" not in pdf
    assert any("ftp: scheme is not allowed" in w for w in warnings)
    assert any("images/secret.png is not among the export's images" in w for w in warnings)
    # A file: base URL does not open a way round it: relative URLs resolve to file: and are refused.
    warnings.clear()
    pdf = render_pdf('<img src="secret.png" alt="s">', base_url=tmp_path.as_uri() + "/", fetch=serve_png,
                     warnings=warnings)
    assert len(PdfReader(io.BytesIO(pdf)).pages[0].images) == 0 and "file: scheme" in warnings[0]


def test_http_images_need_a_fetcher_and_data_urls_are_decoded_in_memory():
    import base64

    data_url = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    warnings: list[str] = []
    pdf = render_pdf(f'<img src="https://cdn.example.com/a.png" alt="a"><img src="{data_url}" alt="d">',
                     fetch=None, warnings=warnings)
    assert len(PdfReader(io.BytesIO(pdf)).pages[0].images) == 1
    assert warnings == ["https://cdn.example.com/a.png left out of the PDF: http(s) images are not fetched "
                        "for this export"]


# ---------------------------------------------------------------------------------------------
# The pool and the zip


def test_a_failing_locale_does_not_stop_the_others():
    results = render_pdfs([("en-US", "<p>fine</p>"), ("de-DE", None)], workers=2)  # type: ignore[list-item]
    assert isinstance(results["en-US"], bytes) and results["en-US"].startswith(b"%PDF")
    assert isinstance(results["de-DE"], PdfRenderError)


def test_an_unpicklable_fetcher_is_refused_with_a_reason():
    with pytest.raises(TypeError, match="must be picklable"):
        render_pdfs([("en-US", "<p>a</p>"), ("de-DE", "<p>b</p>")], fetch=lambda url: (b"", ""), workers=2)


def test_each_worker_fetches_an_image_once_for_all_locales():
    calls: list[str] = []
    html = '<img src="https://cdn.example.com/a.png" alt="a">'
    results = render_pdfs([(loc, html) for loc in ("en-US", "de-DE", "fr-FR")],
                          fetch=functools.partial(_counting_fetch, calls), workers=1)
    assert all(isinstance(r, bytes) for r in results.values())
    assert calls == ["https://cdn.example.com/a.png"]


def _counting_fetch(calls: list[str], url: str) -> tuple[bytes, str]:
    calls.append(url)
    return png_bytes(), "image/png"


def test_pdf_zip_holds_a_pdf_per_locale_and_a_manifest(store, example, pdfs):
    import_bundle(store, load_bundle(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))))
    record = create_export(store, 1, 1, ["en-US", "ar-SA", "ja-JP"], export_type="pdf")
    # ja-JP's PDF failed: the PDF stage has made that locale failed, and it has no PDF
    failed = example["ja-JP"].model_copy(update={"errors": ["PDF: WeasyPrint could not render the PDF: boom"]})
    renders = [example["en-US"], example["ar-SA"], failed]
    results = {"en-US": _pdf(pdfs, "en-US"), "ar-SA": _pdf(pdfs, "ar-SA")}
    archive = zipfile.ZipFile(io.BytesIO(build_pdf_zip(record, renders, results)))
    assert sorted(archive.namelist()) == ["ar-SA.pdf", "en-US.pdf", "manifest.json"]
    assert archive.read("ar-SA.pdf") == results["ar-SA"]
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["export_type"] == "pdf"
    assert {loc: v["status"] for loc, v in manifest["locales"].items()} == {
        "en-US": "completed", "ar-SA": "completed", "ja-JP": "failed"}
    assert manifest["locales"]["ar-SA"]["subject"] == example["ar-SA"].subject
    assert set(manifest["files"]) == {"ar-SA.pdf", "en-US.pdf"}
