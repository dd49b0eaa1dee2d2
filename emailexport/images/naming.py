"""Names of an image outside its source: its entry in the zip and its key on a CDN.

A library image's filename is workspace data, so it is untrusted: a zip entry built from it must be
one safe path segment (no `..`, no absolute path, no backslash, no drive letter, no control
characters), or an archive could write outside the folder it is extracted to ("zip slip").
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["EXTENSIONS", "cdn_key", "safe_filename", "zip_entry"]

# Verified content type -> the extension written (from the magic bytes, never from the filename).
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
_ALSO = {"jpg": {"jpeg", "jpe"}}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 80


def safe_filename(filename: str, extension: str) -> str:
    """Any filename -> one safe path segment ending in `.extension` (`../../x.png` -> `x.png`)."""
    last = re.split(r"[\\/]+", filename.strip())[-1] if filename else ""
    ascii_name = unicodedata.normalize("NFKD", last).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("-", ascii_name).strip(".-_")
    stem, dot, suffix = cleaned.rpartition(".")
    if not dot:
        stem, suffix = cleaned, ""
    if suffix.lower() != extension and suffix.lower() not in _ALSO.get(extension, set()):
        stem = cleaned  # a missing or wrong extension is kept as part of the name
    stem = re.sub(r"\.{2,}", ".", stem).strip(".-_")[:_MAX_STEM] or "image"
    return f"{stem}.{extension}"


def zip_entry(sha256: str, filename: str, extension: str) -> str:
    """`images/<first 16 hex of the content hash>-<safe filename>`: stable across exports, and two
    images with the same filename never collide."""
    return f"images/{sha256[:16]}-{safe_filename(filename, extension)}"


def cdn_key(prefix: str, sha256: str, extension: str) -> str:
    """`<prefix><content hash>.<ext>`: the same bytes always land on the same key."""
    return f"{prefix}{sha256}.{extension}"
