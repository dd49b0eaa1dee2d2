"""Signed, expiring download links for the API's download endpoint (issue 13), like S3 presigned URLs:
`.../exports/{id}/download/{kind}?expires=<unix time>&signature=<HMAC>` opens without a bearer token
until `expires`, so a link in a record or in a Prefect artifact works from a browser. The bearer-token
download stays for clients that have a token.

The signature is HMAC-SHA256 (stdlib `hmac`: the construction is two lines, and no library signs
exactly these three values) over the export id, the kind (zip/json) and the expiry, with a key from
the `EMAILEXPORT_DOWNLOAD_SIGNING_SECRET` setting, or, when it is unset, 32 random bytes generated
once into `<data_dir>/download-signing.key` (mode 0600; every process of one machine shares it, and
several machines must share the setting). Changing any of the three values, or the key, makes the
link a 403; so does an expired one. Lifetime: `EMAILEXPORT_DOWNLOAD_URL_EXPIRY_SECONDS` (default one
day, like the S3 presigned links). The API re-signs the links of every record it returns, so a
record read later carries a fresh link.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import time
from urllib.parse import urlsplit, urlunsplit

from emailexport.settings import Settings, get_settings

__all__ = ["KEY_FILE", "preview_kind", "sign", "sign_download_url", "sign_preview_url", "signing_key", "verify"]

KEY_FILE = "download-signing.key"
_DOWNLOAD_PATH = re.compile(r"/exports/(\d+)/download/(zip|json)$")


def signing_key(settings: Settings | None = None) -> bytes:
    """The HMAC key: the setting, or the data dir's key file (created with mode 0600 on first use)."""
    settings = settings or get_settings()
    if settings.download_signing_secret is not None:
        return settings.download_signing_secret.get_secret_value().encode()
    path = settings.data_dir.resolve() / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under a temporary name, then linked into place: link() fails if another process
    # won the race, and nobody ever reads a half-written key.
    temporary = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):  # another process won: use its key
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


def sign(export_id: int, kind: str, expires: int, key: bytes) -> str:
    message = f"emailexport-download:v1\n{export_id}\n{kind}\n{expires}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify(export_id: int, kind: str, expires: int, signature: str, key: bytes, now: float | None = None) -> str | None:
    """None when the link is valid, else why not (for a 403)."""
    # As bytes: compare_digest refuses str with non-ASCII characters, and a link may carry anything.
    if not hmac.compare_digest(sign(export_id, kind, expires, key).encode(), signature.encode("utf-8", "replace")):
        return "Invalid download link signature"
    if (now if now is not None else time.time()) >= expires:
        return "This download link has expired; read the export again for a fresh link"
    return None


def preview_kind(locale: str, name: str) -> str:
    """The signed "kind" of one preview image of an export (`preview:<locale>/<name>`)."""
    return f"preview:{locale}/{name}"


def sign_preview_url(base_url: str, workspace_id: int, export_id: int, locale: str, name: str,
                     settings: Settings | None = None, now: float | None = None) -> str:
    """A signed, expiring link to one preview image (`previews/<locale>/<name>` in the export's zip),
    served by the API below `base_url` (EMAILEXPORT_PUBLIC_BASE_URL): what the export's Prefect
    summary artifact shows as a thumbnail."""
    settings = settings or get_settings()
    expires = int(now if now is not None else time.time()) + settings.download_url_expiry_seconds
    signature = sign(export_id, preview_kind(locale, name), expires, signing_key(settings))
    path = f"/api/v1/workspaces/{workspace_id}/exports/{export_id}/previews/{locale}/{name}"
    return f"{base_url.rstrip('/')}{path}?expires={expires}&signature={signature}"


def sign_download_url(url: str, settings: Settings | None = None, now: float | None = None) -> str:
    """`url` (an API download URL, signed or not) with a fresh `expires` and `signature`; any other
    URL (a presigned S3 link, a file:// URL) is returned as it is."""
    parts = urlsplit(url)
    match = _DOWNLOAD_PATH.search(parts.path)
    if match is None or parts.scheme not in ("http", "https"):
        return url
    settings = settings or get_settings()
    expires = int(now if now is not None else time.time()) + settings.download_url_expiry_seconds
    signature = sign(int(match.group(1)), match.group(2), expires, signing_key(settings))
    return urlunsplit(parts._replace(query=f"expires={expires}&signature={signature}"))
