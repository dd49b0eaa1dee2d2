"""Stage 3b, previews (html and pdf exports with `options.previews`): each delivered locale rendered
with sample values (emailexport.previews.sample) through the same render and transform code, then
photographed in headless Chromium as desktop, mobile and dark, plus a desktop shot of every other
branch of its conditionals; `previews/index.html` shows them side by side.

Inline in the flow (no task run): previews cannot fail transiently and a failure is a warning of
its locale, never a failed export. Screenshots run in one browser with at most
`EMAILEXPORT_PREVIEWS_MAX_PAGES` pages at once.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from emailexport.errors import EmailExportError
from emailexport.locales import direction_of
from emailexport.models import ExportRecord
from emailexport.previews import (
    VIEWS,
    BrowserUnavailable,
    GalleryLocale,
    PreviewSettings,
    Shot,
    gallery_html,
    preview_input,
    take_screenshots,
    variants_of,
)
from emailexport.render import LocaleRenderInput
from emailexport.render.result import LocaleRender
from emailexport.storage import OutputStorage
from tasks.package import output_keys
from tasks.render import render_locale

__all__ = ["PreviewFiles", "build_previews", "extract_gallery", "image_resources"]

PREFIX = "previews/"


@dataclass
class PreviewFiles:
    """Zip entries (`previews/...` -> bytes), warnings per locale, and seconds spent."""

    files: dict[str, bytes] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    def warn(self, locale: str, message: str) -> None:
        self.warnings.setdefault(locale, []).append(message)


def image_resources(by_key: Mapping[str, bytes]) -> Callable[[str], bytes | None]:
    """What the browser may load: `by_key` maps zip entries (`images/x.png`) and absolute URLs (a CDN
    or public URL the export's HTML points at) to bytes. A relative entry is found from any folder
    (`en-US/images/x.png` and `images/x.png` are the same image) since pages sit one level down."""

    def lookup(key: str) -> bytes | None:
        if key in by_key:
            return by_key[key]
        if "://" not in key and "/" in key:
            return by_key.get(key.split("/", 1)[1])
        return None

    return lookup


def thumbnail(png: bytes, width: int = 320, height: int = 400) -> bytes:
    """The top of a desktop screenshot (the email's first screen), `width` px wide: what the Prefect
    summary artifact shows per locale."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        top = image.crop((0, 0, image.width, min(image.height, image.width * height // width)))
        small = top.resize((width, top.height * width // top.width), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        small.convert("RGB").save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _render(locale: str, inp: LocaleRenderInput) -> LocaleRender:
    return render_locale.fn(locale=locale, inp=inp)


def build_previews(title: str, inputs: Mapping[str, LocaleRenderInput], renders: Mapping[str, LocaleRender],
                   resources: Callable[[str], bytes | None], settings: PreviewSettings | None = None) -> PreviewFiles:
    """Preview every delivered locale of `renders` (each from its render input in `inputs`)."""
    started = time.perf_counter()
    settings = settings or PreviewSettings()
    out = PreviewFiles()
    shots: list[Shot] = []
    gallery: list[GalleryLocale] = []
    variant_labels: dict[str, str] = {}
    for locale, render in renders.items():
        if not render.ok or locale not in inputs:
            continue
        inp = inputs[locale]
        entry = GalleryLocale(locale=locale, direction=direction_of(locale), subject=render.subject, views={})
        gallery.append(entry)
        preview = _render(locale, preview_input(inp))
        if not preview.ok:
            out.warn(locale, "preview failed: " + "; ".join(preview.errors))
            continue
        entry.subject = preview.subject
        shots.extend(Shot(key=f"{locale}/{view}.png", path=f"{locale}/index.html", html=preview.html, view=view)
                     for view in VIEWS)
        if settings.variants:
            for variant in variants_of(inp, render.conditional_ids):
                rendered = _render(locale, preview_input(inp, {variant.conditional_id: variant.branch_key}))
                key = f"{locale}/variants/{variant.name}.png"
                if rendered.ok:
                    shots.append(Shot(key=key, path=f"{locale}/index.html", html=rendered.html, view="desktop"))
                    variant_labels[key] = variant.label
    try:
        images, failures = take_screenshots(shots, resources, settings) if shots else ({}, {})
    except BrowserUnavailable as exc:
        for entry in gallery:
            out.warn(entry.locale, f"no previews: {exc}")
        out.seconds = time.perf_counter() - started
        return out
    for entry in gallery:
        for view in VIEWS:
            key = f"{entry.locale}/{view}.png"
            if key in images:
                entry.views[view] = key
            elif key in failures:
                out.warn(entry.locale, f"{view} preview failed: {failures[key]}")
        entry.variants = [(variant_labels[k], k) for k in sorted(variant_labels)
                          if k.startswith(f"{entry.locale}/") and k in images]
        entry.problems = list(out.warnings.get(entry.locale, []))
    for entry in gallery:
        if "desktop" in entry.views:
            images[f"{entry.locale}/thumbnail.png"] = thumbnail(images[entry.views["desktop"]])
    if gallery:
        out.files = {PREFIX + key: data for key, data in sorted(images.items())}
        out.files[PREFIX + "index.html"] = gallery_html(f"{title}: previews", gallery).encode("utf-8")
    out.seconds = time.perf_counter() - started
    return out


def extract_gallery(record: ExportRecord, storage: OutputStorage, target: Path) -> Path:
    """Write the `previews/` entries of the export's zip under `target`; return its index.html.

    Only plain relative names below `previews/` are written (no `..`, no absolute path, no
    drive), so an entry cannot land outside `target`, whatever the zip holds.
    """
    if record.status == "in_progress":
        raise EmailExportError(f"export {record.id} is still in progress")
    if not record.options.previews:
        raise EmailExportError(f"export {record.id} was made without previews (export again with --previews)")
    key = output_keys(record)["zip"]
    if not storage.exists(key):
        raise EmailExportError(f"export {record.id} has no zip in the output storage ({storage.url})")
    root = target.resolve()
    with zipfile.ZipFile(io.BytesIO(storage.read(key))) as archive:
        names = [n for n in archive.namelist() if n.startswith("previews/") and not n.endswith("/")]
        if "previews/index.html" not in names:
            raise EmailExportError(f"export {record.id} has no preview gallery (the browser was not available "
                                   "when it ran: see its warnings)")
        for name in names:
            parts = PurePosixPath(name).parts
            if any(p in ("", ".", "..") or ":" in p or "\\" in p for p in parts):
                continue
            path = root.joinpath(*parts[1:])
            if not path.resolve().is_relative_to(root):
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.read(name))
    return root / "index.html"
