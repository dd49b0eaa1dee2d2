"""A fresh clone with no network exports the example with include_in_zip, and the zip holds every
image the HTML points at: the example workspace ships its images as files (examples/images)."""

from __future__ import annotations

import hashlib
import io
import shutil
import socket
import subprocess
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest

from emailexport.images.collect import collect_image_urls
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("prefect_harness")
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def _fresh_clone(target: Path) -> Path:
    """The example folder as a clone has it: only the files git tracks (an untracked image would not be
    there on another machine)."""
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "examples"], check=True, capture_output=True,
                             text=True).stdout.split()
    if not tracked:  # not a git checkout (an sdist): copy the folder
        shutil.copytree(ROOT / "examples", target / "examples")
    for name in tracked:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)
    return target / "examples" / "workspace.yaml"


def test_the_example_exports_offline_with_its_images_in_the_zip(store, tmp_path, monkeypatch):
    bundle = _fresh_clone(tmp_path / "clone")
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def offline(host, *args, **kwargs):  # no DNS, no internet: only loopback (the Prefect harness) resolves
        if str(host) not in LOOPBACK:
            looked_up.append(str(host))
            raise socket.gaierror(socket.EAI_NONAME, "offline")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    from emailexport.bundle import import_bundle, load_bundle, read_bundle_file
    from emailexport.cli import run_export

    parsed = load_bundle(read_bundle_file(bundle))
    import_bundle(store, parsed, base_dir=bundle.parent)
    email = parsed.emails[0]
    profile = parsed.dynamic_content_profiles[0].id
    record = run_export(parsed.workspace.id, {
        "email_id": email.id, "export_type": "html", "dynamic_content_profile_id": profile,
        "options": {"locales": list(email.locales), "image_mode": "include_in_zip"}})
    assert record.status == "completed", record.export_errors
    assert looked_up == []  # not one lookup of cdn.northwind.example (or anything else)

    archive = zipfile.ZipFile(io.BytesIO(Path(urlsplit(record.download_zip_url).path).read_bytes()))
    names = set(archive.namelist())
    files = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in (bundle.parent / "images").rglob("*")
             if p.suffix in (".png", ".jpg")}
    pointed_at: set[str] = set()
    for locale in email.locales:
        page = archive.read(f"{locale}/index.html").decode()
        assert "cdn.northwind.example" not in page
        for ref in collect_image_urls(page):
            if ref.startswith(("http://", "https://")):
                continue  # not a library image (none in the example today, but an author may link one)
            entry = str(PurePosixPath(locale, ref)).replace(f"{locale}/../", "")
            assert entry in names, (locale, ref)
            pointed_at.add(entry)
    image_entries = {n for n in names if n.startswith("images/")}
    assert pointed_at == image_entries and len(image_entries) >= 4  # logo, heroes, categories, products
    for entry in image_entries:
        data = archive.read(entry)
        digest = hashlib.sha256(data).hexdigest()
        assert entry.startswith(f"images/{digest[:16]}-") and digest in files  # the shipped file, byte for byte
