"""Library images with bytes: a bundle's `file:` (YAML and JSON) and `emailexport images add` check
the file, store it by content hash (local folder or S3) and record hash, size, dimensions and type;
paths leaving the bundle's folder are refused. No Prefect here."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image as PILImage

from emailexport.bundle import import_bundle, load_bundle, read_bundle_file
from emailexport.errors import ValidationFailed
from emailexport.images.library import ImageLibrary, LibraryImageError, inspect_image, library_key
from emailexport.models import Image
from emailexport.runtime import open_storage
from emailexport.storage import OutputStorage
from tests.conftest import FIXTURES
from tests.images.servers import png_bytes


def picture(kind: str, size: tuple[int, int] = (40, 30), colour: tuple[int, int, int] = (200, 30, 60)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, colour).save(buffer, format=kind)
    return buffer.getvalue()


def write_bundle(folder: Path, images: list[dict], suffix: str = ".yaml") -> Path:
    """The mini workspace with `images` as its library, written to `folder/bundle<suffix>`."""
    data = yaml.safe_load((FIXTURES / "mini.yaml").read_text(encoding="utf-8"))
    data["images"] = images
    path = folder / f"bundle{suffix}"
    path.write_text(json.dumps(data) if suffix == ".json" else yaml.safe_dump(data), encoding="utf-8")
    return path


def import_file(store, path: Path, storage=None):
    return import_bundle(store, load_bundle(read_bundle_file(path)), base_dir=path.parent, storage=storage)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_bundle_file_is_checked_stored_by_hash_and_recorded(store, tmp_path, suffix):
    (tmp_path / "images").mkdir()
    jpeg, gif = picture("JPEG", (120, 80)), picture("GIF", (7, 9))
    (tmp_path / "images" / "hero.jpg").write_bytes(jpeg)
    (tmp_path / "images" / "dot.gif").write_bytes(gif)
    path = write_bundle(tmp_path, [
        {"id": "hero", "filename": "hero.jpg", "file": "images/hero.jpg"},  # bytes only
        # both, and the bundle's stated display size wins over the file's pixels
        {"id": "dot", "filename": "dot.gif", "file": "images/dot.gif", "public_url": "https://cdn.example.com/dot.gif",
         "width": 14, "content_type": "image/png", "file_size": 1},
    ], suffix)
    import_file(store, path)
    hero, dot = store.require(3, Image, "hero"), store.require(3, Image, "dot")
    assert (hero.sha256, hero.file_size, hero.width, hero.height, hero.content_type) == (
        hashlib.sha256(jpeg).hexdigest(), len(jpeg), 120, 80, "image/jpeg")
    assert (dot.sha256, dot.file_size, dot.width, dot.height, dot.content_type) == (
        hashlib.sha256(gif).hexdigest(), len(gif), 14, 9, "image/gif")  # type from the bytes, not the bundle
    assert dot.public_url == "https://cdn.example.com/dot.gif" and hero.public_url is None
    storage = open_storage()
    assert storage.read(library_key(hero.sha256, "image/jpeg")) == jpeg
    assert ImageLibrary(storage).get(dot.sha256, "image/gif") == gif


def test_the_same_bytes_are_stored_once(store, tmp_path):
    data = picture("PNG")
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(data)
    path = write_bundle(tmp_path, [{"id": "a", "filename": "a.png", "file": "a.png"},
                                   {"id": "b", "filename": "b.png", "file": "b.png"}])
    import_file(store, path)
    stored = list((Path(open_storage().root) / "library" / "images").iterdir())
    assert [p.name for p in stored] == [f"{hashlib.sha256(data).hexdigest()}.png"]


def test_files_go_to_an_s3_output_storage(store, tmp_path, bucket):
    data = picture("WEBP", (33, 21))
    (tmp_path / "pic.webp").write_bytes(data)
    storage = OutputStorage(f"s3://{bucket}/outputs")
    import_file(store, write_bundle(tmp_path, [{"id": "p", "filename": "pic.webp", "file": "pic.webp"}]), storage)
    image = store.require(3, Image, "p")
    assert (image.width, image.height, image.content_type) == (33, 21, "image/webp")
    assert storage.read(f"library/images/{image.sha256}.webp") == data
    assert ImageLibrary(storage).get(image.sha256, "image/webp") == data


def _refused(store, tmp_path, file: str) -> list[str]:
    path = write_bundle(tmp_path, [{"id": "ok", "filename": "ok.png", "file": "ok.png"},
                                   {"id": "bad", "filename": "bad.png", "file": file}])
    (tmp_path / "ok.png").write_bytes(picture("PNG"))
    with pytest.raises(ValidationFailed) as info:
        import_file(store, path)
    assert store.workspace(3) is None  # nothing written: not even the good image
    assert not (Path(open_storage().root) / "library").exists()
    assert list(info.value.errors) == ["images[1].file"]
    return info.value.errors["images[1].file"]


def test_paths_leaving_the_bundle_folder_are_refused(store, tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(picture("PNG"))
    folder = tmp_path / "bundle"
    folder.mkdir()
    assert "leaves the bundle's folder" in _refused(store, folder, "../secret.png")[0]
    assert "leaves the bundle's folder" in _refused(store, folder, "images/../../secret.png")[0]
    assert "absolute path" in _refused(store, folder, str(outside))[0]
    (folder / "link.png").symlink_to(outside)  # a symlink inside, pointing out
    assert "leaves the bundle's folder" in _refused(store, folder, "link.png")[0]
    (folder / "sub").symlink_to(tmp_path)  # a symlinked folder on the way
    assert "leaves the bundle's folder" in _refused(store, folder, "sub/secret.png")[0]
    assert "not a file" in _refused(store, folder, "missing.png")[0]


def test_a_symlink_that_stays_inside_the_folder_is_read(store, tmp_path):
    data = picture("PNG", (5, 6))
    (tmp_path / "real.png").write_bytes(data)
    (tmp_path / "alias.png").symlink_to(tmp_path / "real.png")
    import_file(store, write_bundle(tmp_path, [{"id": "a", "filename": "a.png", "file": "alias.png"}]))
    assert store.require(3, Image, "a").sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("content", "message"), [
    (b"<html>not an image</html>", "not a PNG, JPEG, GIF or WebP image"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "not a PNG, JPEG, GIF or WebP"),
    (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "unreadable PNG image"),
    (picture("PNG")[:40], "unreadable PNG image"),  # truncated before the pixels' header ends
    (picture("GIF"), None),  # a real GIF named .png is fine: the type comes from the bytes
])
def test_files_that_are_not_images_are_refused(store, tmp_path, content, message):
    (tmp_path / "x.png").write_bytes(content)
    path = write_bundle(tmp_path, [{"id": "x", "filename": "x.png", "file": "x.png"}])
    if message is None:
        import_file(store, path)
        assert store.require(3, Image, "x").content_type == "image/gif"
        return
    with pytest.raises(ValidationFailed) as info:
        import_file(store, path)
    assert message in info.value.errors["images[0].file"][0]


def test_the_size_cap_is_the_image_setting(store, tmp_path, monkeypatch):
    data = picture("PNG", (300, 300))
    (tmp_path / "big.png").write_bytes(data)
    path = write_bundle(tmp_path, [{"id": "big", "filename": "big.png", "file": "big.png"}])
    monkeypatch.setenv("EMAILEXPORT_IMAGES_MAX_BYTES", str(len(data) - 1))
    with pytest.raises(ValidationFailed) as info:
        import_file(store, path)
    assert "over the" in info.value.errors["images[0].file"][0]
    monkeypatch.setenv("EMAILEXPORT_IMAGES_MAX_BYTES", str(len(data)))
    import_file(store, path)
    assert store.require(3, Image, "big").file_size == len(data)


def test_a_pixel_bomb_is_refused():
    bomb = picture("PNG", (1, 1))
    # a PNG whose header claims 40000 x 40000 pixels (1.6 Gpx, over Pillow's bomb limit)
    import struct
    import zlib

    header = b"IHDR" + struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + header + struct.pack(">I", zlib.crc32(header))
    with pytest.raises(LibraryImageError, match="DecompressionBomb"):
        inspect_image(bomb[:8] + chunk + bomb[33:], 10_000_000)


def test_an_image_needs_a_url_or_a_file():
    with pytest.raises(ValidationFailed) as info:
        load_bundle({**yaml.safe_load((FIXTURES / "mini.yaml").read_text()), "images": [{"id": "x", "filename": "x"}]})
    assert "an image needs a public_url, a file, or both" in str(info.value.errors)


def test_without_a_bundle_folder_a_file_falls_back_to_its_url_or_fails(store, tmp_path):
    data = yaml.safe_load((FIXTURES / "mini.yaml").read_text())
    data["images"] = [{"id": "u", "filename": "u.png", "file": "u.png", "public_url": "https://cdn.example.com/u.png"}]
    summary = import_bundle(store, load_bundle(data))
    assert summary.skipped_files == ["u.png"] and store.require(3, Image, "u").sha256 is None
    data["images"].append({"id": "f", "filename": "f.png", "file": "f.png"})
    with pytest.raises(ValidationFailed) as info:
        import_bundle(store, load_bundle(data))
    assert "needs a bundle read from a folder" in info.value.errors["images[1].file"][0]


def test_a_changed_or_missing_stored_copy_is_an_error_not_a_wrong_image(data_dir):
    storage = open_storage()
    library = ImageLibrary(storage)
    data = picture("PNG")
    info = library.put(data, 10_000)
    key = library_key(info.sha256, info.content_type)
    storage.write(key, picture("PNG", colour=(0, 0, 0)))
    with pytest.raises(LibraryImageError, match="does not match its hash"):
        library.get(info.sha256, info.content_type)
    os.remove(storage.path(key))
    with pytest.raises(LibraryImageError, match="missing from the output storage"):
        library.get(info.sha256, info.content_type)


# -- emailexport images add / list ---------------------------------------------------------------------


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from emailexport.cli import main

    monkeypatch.setattr(sys, "argv", ["emailexport", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as info:
        main()
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_images_add_and_list(mini, tmp_path, monkeypatch, capsys):
    png, jpeg = picture("PNG", (64, 48)), picture("JPEG", (10, 20))
    (tmp_path / "Team Photo.png").write_bytes(png)
    (tmp_path / "b.jpg").write_bytes(jpeg)
    code, out, err = _cli(monkeypatch, capsys, "images", "add", str(tmp_path / "Team Photo.png"),
                          str(tmp_path / "b.jpg"))
    assert code == 0, err
    png_id = f"team-photo-{hashlib.sha256(png).hexdigest()[:12]}"
    assert f"as image {png_id}" in out and "64x48 image/png" in out
    image = mini.require(3, Image, png_id)
    assert (image.sha256, image.width, image.height, image.file_size, image.public_url) == (
        hashlib.sha256(png).hexdigest(), 64, 48, len(png), None)
    assert ImageLibrary(open_storage()).get(image.sha256, "image/png") == png
    code, out, _ = _cli(monkeypatch, capsys, "images", "list", "--workspace", "3")
    assert code == 0 and png_id in out and f"b-{hashlib.sha256(jpeg).hexdigest()[:12]}" in out
    assert "10x20" in out and "image/jpeg" in out


def test_images_add_refuses_bad_files_and_adds_none(mini, tmp_path, monkeypatch, capsys):
    (tmp_path / "good.png").write_bytes(picture("PNG"))
    (tmp_path / "evil.png").write_bytes(b"<svg/>")
    code, _, err = _cli(monkeypatch, capsys, "images", "add", str(tmp_path / "good.png"), str(tmp_path / "evil.png"),
                        str(tmp_path / "nope.png"), "--workspace", "3")
    assert code == 2 and "Traceback" not in err
    assert "evil.png" in err and "not a PNG, JPEG, GIF or WebP" in err and "nope.png" in err
    assert mini.list_documents(3, Image) == []
    code, _, err = _cli(monkeypatch, capsys, "images", "add", str(tmp_path / "good.png"), "--workspace", "99")
    assert code == 2 and "workspace 99 not found" in err


def test_fetch_records_of_one_url_from_concurrent_exports_do_not_collide(store):
    """Bulk exports of one email fetch the same URLs at once; every record call must succeed."""
    import threading

    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def record(n: int) -> None:
        barrier.wait()
        try:
            store.record_image_fetch("https://cdn.example.com/a.png?sig=1", shown="https://cdn.example.com/a.png",
                                     etag=f'"v{n}"', last_modified=None, sha256="0" * 64, content_type="image/png",
                                     file_size=n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    row = store.image_fetch("https://cdn.example.com/a.png?sig=1")
    assert row is not None and row.url == "https://cdn.example.com/a.png" and row.etag.startswith('"v')


def test_the_fetcher_sends_validators_and_treats_an_unasked_304_as_an_error(images):
    from emailexport.images.fetch import FetchedImage, ImageFetcher, ImageFetchError, NotModified
    from emailexport.images.settings import ImageSettings

    fetcher = ImageFetcher(ImageSettings())
    first = fetcher.fetch("a", images.url("/etag/a.png"))
    assert isinstance(first, FetchedImage) and first.etag == '"a.png-v0"' and first.last_modified is None
    again = fetcher.fetch_if_changed("a", images.url("/etag/a.png"), first.etag)
    assert again == NotModified("a", '"a.png-v0"', None) and images.conditional["/etag/a.png"] == 1
    dated = fetcher.fetch("b", images.url("/lastmod/b.png"))
    assert dated.last_modified and isinstance(
        fetcher.fetch_if_changed("b", images.url("/lastmod/b.png"), None, dated.last_modified), NotModified)
    images.versions["b.png"] = 1
    changed = fetcher.fetch_if_changed("b", images.url("/lastmod/b.png"), None, dated.last_modified)
    assert isinstance(changed, FetchedImage) and changed.data == png_bytes("b.png-v1")
    with pytest.raises(ImageFetchError, match="HTTP 304"):
        fetcher.fetch("c", images.url("/always304/c.png"))  # no validators sent: a 304 is not an answer
