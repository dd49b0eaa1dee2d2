"""Stage 4, package: the rendered locales -> the export's files (docs/contract.md, What each export type
produces), written atomically to output storage."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from emailexport.models import ExportRecord, format_timestamp, utcnow
from emailexport.render.result import LocaleRender
from emailexport.runtime import open_storage
from tasks.retry import retry_unless_terminal

__all__ = ["JSON_IN_ZIP", "Outputs", "build_html_zip", "build_json_document", "output_keys", "slug", "write_outputs"]

# A fixed timestamp inside the zip keeps archives of identical content byte-identical.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# Where a json export's document sits in its zip (include_in_zip): beside `images/`, which its
# HTML references as `images/<name>`.
JSON_IN_ZIP = "export.json"


class Outputs(BaseModel):
    download_zip_url: str | None = None
    download_json_url: str | None = None
    files: dict[str, int] = {}  # stored path -> size in bytes


def slug(name: str) -> str:
    """`Spring Sale 2026` -> `spring-sale-2026` (for file and run names)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "email"


def output_keys(record: ExportRecord) -> dict[str, str]:
    """Storage keys of the export's files: `exports/<id>/<email-slug>-<id>.zip|.json`."""
    stem = f"exports/{record.id}/{slug(record.email.name)}-{record.id}"
    return {"zip": f"{stem}.zip", "json": f"{stem}.json"}


def _manifest(record: ExportRecord, renders: Sequence[LocaleRender], files: dict[str, bytes]) -> dict[str, Any]:
    return {
        "export_id": record.id,
        "email": {"id": record.email.id, "name": record.email.name},
        "export_type": record.export_type,
        "created_at": format_timestamp(utcnow()),
        "locales": {
            r.locale: {"status": "completed" if r.ok else "failed", "subject": r.subject, "preheader": r.preheader}
            for r in renders
        },
        "files": {
            name: {"size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in sorted(files.items())
        },
    }


def zip_archive(record: ExportRecord, renders: Sequence[LocaleRender], files: Mapping[str, bytes]) -> bytes:
    """A zip of `files` plus manifest.json (locales, and each file's size and sha256)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(zipfile.ZipInfo(name, _ZIP_TIME), data, compress_type=zipfile.ZIP_DEFLATED)
        manifest = json.dumps(_manifest(record, renders, dict(files)), indent=2, ensure_ascii=False).encode()
        archive.writestr(zipfile.ZipInfo("manifest.json", _ZIP_TIME), manifest, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def build_pdf_zip(record: ExportRecord, renders: Sequence[LocaleRender], pdfs: Mapping[str, bytes],
                  extra: Mapping[str, bytes] | None = None) -> bytes:
    """`<locale>.pdf` for each locale whose PDF rendered, `extra` files (previews), and manifest.json."""
    return zip_archive(record, renders, {**(extra or {}), **{f"{locale}.pdf": pdf for locale, pdf in pdfs.items()}})


def build_html_zip(record: ExportRecord, renders: Sequence[LocaleRender],
                   extra: Mapping[str, bytes] | None = None, *, locale_files: bool = True) -> bytes:
    """`<locale>/index.html`, `<locale>/index.txt` for each locale that rendered, `extra` files
    (`images/...`, the JSON document), and manifest.json."""
    files: dict[str, bytes] = dict(extra or {})
    for r in renders:
        if r.ok and locale_files:
            files[f"{r.locale}/index.html"] = r.html.encode("utf-8")
            files[f"{r.locale}/index.txt"] = r.plaintext.encode("utf-8")
    return zip_archive(record, renders, files)


def build_json_document(record: ExportRecord, renders: Sequence[LocaleRender]) -> bytes:
    """One JSON document: export id, email, per locale {subject, preheader, html, plaintext}, metadata."""
    ok = [r for r in renders if r.ok]
    document = {
        "export_id": record.id,
        "email": {"id": record.email.id, "name": record.email.name},
        "locales": {
            r.locale: {"subject": r.subject, "preheader": r.preheader, "html": r.html, "plaintext": r.plaintext}
            for r in ok
        },
        "metadata": {
            "conditional_ids": sorted({i for r in ok for i in r.conditional_ids}),
            "personalization_tag_ids": sorted({i for r in ok for i in r.personalization_tag_ids}),
            "image_ids": sorted({i for r in ok for i in r.image_ids}),
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")


@task(
    name="write-outputs", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10],
    retry_condition_fn=retry_unless_terminal,
)
def write_outputs(record: ExportRecord, renders: list[LocaleRender], images: dict[str, bytes] | None = None,
                  pdfs: dict[str, bytes] | None = None, previews: dict[str, bytes] | None = None) -> Outputs:
    """Write the files of an html, json or pdf export; nothing is written when no locale rendered.
    `images` (`images/<name>` -> bytes, include_in_zip) go into the zip; a json export with images
    gets a zip too: the JSON document at its root beside `images/`. `previews` (`previews/...`)
    go into the zip of an html or pdf export."""
    if not any(r.ok for r in renders):
        return Outputs()
    storage = open_storage()
    keys = output_keys(record)
    api = f"/api/v1/workspaces/{record.workspace_id}/exports/{record.id}/download"
    outputs = Outputs()
    if record.export_type == "html":
        data = build_html_zip(record, renders, {**(images or {}), **(previews or {})})
        outputs.files[storage.write(keys["zip"], data)] = len(data)
        outputs.download_zip_url = storage.download_url(keys["zip"], f"{api}/zip")
    elif record.export_type == "json":
        data = build_json_document(record, renders)
        outputs.files[storage.write(keys["json"], data)] = len(data)
        outputs.download_json_url = storage.download_url(keys["json"], f"{api}/json")
        if images:
            bundle = build_html_zip(record, renders, {**images, JSON_IN_ZIP: data}, locale_files=False)
            outputs.files[storage.write(keys["zip"], bundle)] = len(bundle)
            outputs.download_zip_url = storage.download_url(keys["zip"], f"{api}/zip")
    elif record.export_type == "pdf" and pdfs:
        data = build_pdf_zip(record, renders, pdfs, previews)
        outputs.files[storage.write(keys["zip"], data)] = len(data)
        outputs.download_zip_url = storage.download_url(keys["zip"], f"{api}/zip")
    return outputs
