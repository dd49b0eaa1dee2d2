"""The library's own copy of image bytes: checked once on the way in, stored by content hash in the
output storage (a local folder or any fsspec URL, e.g. `s3://bucket/prefix`), read back verified.

- `inspect_image(data)`: magic bytes must prove PNG, JPEG, GIF or WebP (the same rule as fetched
  images); Pillow reads the dimensions from the header (it must agree on the format, and a file
  Pillow cannot open or whose pixel count trips its decompression-bomb limit is refused); the size
  cap is `EMAILEXPORT_IMAGES_MAX_BYTES`, the one cap every image has.
- `read_bundle_image(folder, path)`: a bundle's `file:` is relative to the bundle's folder; an
  absolute path, a path with `..` that leaves the folder, or a symlink (anywhere on the path)
  pointing outside it is refused, so a bundle cannot make the importer read `/etc/...` or a key file.
- `ImageLibrary`: `put` writes `library/images/<sha256>.<ext>` once (content addressed: the same
  bytes are stored once, whatever their names); `get` reads it back and checks the hash, so a
  truncated or replaced object is an error, never a wrong image in an email.

Pillow is used because reading the dimensions of four formats (JPEG's SOF markers, WebP's three
chunk kinds) by hand is where bugs live; the magic-byte rule stays our own, shared with the fetcher.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from emailexport.errors import TerminalError
from emailexport.images.fetch import sniff_image_type
from emailexport.images.naming import EXTENSIONS
from emailexport.storage import OutputStorage

__all__ = ["ImageInfo", "ImageLibrary", "LibraryImageError", "inspect_image", "library_key", "read_bundle_image"]

_PIL_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
PREFIX = "library/images/"


class LibraryImageError(TerminalError):
    """An image file cannot enter the library, or its stored copy cannot be read back."""


@dataclass(frozen=True)
class ImageInfo:
    sha256: str
    file_size: int
    width: int
    height: int
    content_type: str

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.content_type]


def library_key(sha256: str, content_type: str) -> str:
    """Where the library keeps these bytes in the output storage."""
    return f"{PREFIX}{sha256}.{EXTENSIONS[content_type]}"


def inspect_image(data: bytes, max_bytes: int) -> ImageInfo:
    """Checked bytes -> hash, size, dimensions and content type, or `LibraryImageError` saying why not."""
    if len(data) > max_bytes:
        raise LibraryImageError(f"{len(data):,} bytes is over the {max_bytes:,} byte limit")
    sniffed = sniff_image_type(data)
    if sniffed is None:
        raise LibraryImageError("not a PNG, JPEG, GIF or WebP image (by its first bytes)")
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data)) as picture:
                width, height = picture.size
                found = _PIL_FORMATS.get(picture.format or "")
    except (UnidentifiedImageError, PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
        raise LibraryImageError(f"unreadable {EXTENSIONS[sniffed].upper()} image ({type(exc).__name__})") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt headers
        raise LibraryImageError(f"unreadable {EXTENSIONS[sniffed].upper()} image ({exc})") from None
    if found != sniffed:
        raise LibraryImageError(f"starts like {sniffed} but reads as {found or 'something else'}")
    if width < 1 or height < 1:
        raise LibraryImageError(f"has no pixels ({width}x{height})")
    return ImageInfo(sha256=hashlib.sha256(data).hexdigest(), file_size=len(data), width=width, height=height,
                     content_type=sniffed)


def read_bundle_image(folder: Path, relative: str, max_bytes: int) -> bytes:
    """The bytes of a bundle's image file, refusing any path that leaves `folder`."""
    if not relative.strip():
        raise LibraryImageError("the file path is empty")
    candidate = Path(relative)
    if candidate.is_absolute() or relative.startswith(("/", "\\")) or candidate.drive:
        raise LibraryImageError(f"{relative} is an absolute path; name the file relative to the bundle's folder")
    root = folder.resolve()
    target = root / candidate
    resolved = target.resolve()  # follows every symlink on the path
    if not resolved.is_relative_to(root):
        raise LibraryImageError(f"{relative} leaves the bundle's folder (through '..' or a symlink)")
    if not resolved.is_file():
        raise LibraryImageError(f"{relative} is not a file in the bundle's folder")
    try:
        # O_NOFOLLOW: a symlink swapped in after the check is refused by the kernel, not followed.
        fd = os.open(resolved, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise LibraryImageError(f"cannot read {relative}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise LibraryImageError(f"{relative} is over the {max_bytes:,} byte limit")
    return data


class ImageLibrary:
    """Library image bytes in the output storage, by content hash."""

    def __init__(self, storage: OutputStorage) -> None:
        self.storage = storage

    def put(self, data: bytes, max_bytes: int) -> ImageInfo:
        """Check and store `data` (once: an existing copy of the same hash is kept)."""
        info = inspect_image(data, max_bytes)
        key = library_key(info.sha256, info.content_type)
        if not self.storage.exists(key):
            self.storage.write(key, data)
        return info

    def has(self, sha256: str, content_type: str) -> bool:
        return content_type in EXTENSIONS and self.storage.exists(library_key(sha256, content_type))

    def get(self, sha256: str, content_type: str) -> bytes:
        """The stored bytes, verified against their hash."""
        if content_type not in EXTENSIONS:
            raise LibraryImageError(f"stored copy has an unsupported content type {content_type}")
        key = library_key(sha256, content_type)
        try:
            data = self.storage.read(key)
        except FileNotFoundError:
            raise LibraryImageError(f"the library's copy {key} is missing from the output storage "
                                    "(import the bundle or `emailexport images add` the file again)") from None
        except OSError as exc:
            raise LibraryImageError(f"the library's copy {key} cannot be read: {exc.strerror or exc}") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise LibraryImageError(f"the library's copy {key} does not match its hash (changed or truncated)")
        return data
