"""Output storage named by a URL (fsspec): a local folder by default, `s3://bucket/prefix` when shared.

Writes are atomic: on a local disk the file is written beside its target and renamed into place
(rename is atomic on POSIX), on object stores a single PUT is already all-or-nothing. A reader never
sees half a zip.

On S3 (`s3://bucket/prefix`) s3fs finds credentials and endpoint the way boto does: `AWS_ACCESS_KEY_ID`
/ `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` or a profile or an instance role, `AWS_REGION`, and
`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` for S3-compatible stores; download URLs are presigned.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from emailexport.settings import get_settings

__all__ = ["OutputStorage"]


class OutputStorage:
    def __init__(self, url: str, public_base_url: str | None = None, presign_expiry_seconds: int | None = None) -> None:
        self.url = url.rstrip("/")
        # Unset: the configured lifetime (EMAILEXPORT_DOWNLOAD_URL_EXPIRY_SECONDS).
        self.presign_expiry_seconds = presign_expiry_seconds or get_settings().download_url_expiry_seconds
        # Presign with SigV4: botocore's default for presigned S3 URLs is still SigV2 (`Expires=`),
        # which regions opened since 2014 refuse.
        options = {"config_kwargs": {"signature_version": "s3v4"}} if self.url.startswith(("s3://", "s3a://")) else {}
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def path(self, key: str) -> str:
        return f"{self.root.rstrip('/')}/{key.lstrip('/')}"

    def write(self, key: str, data: bytes) -> str:
        """Store `data` under `key` (a relative path) atomically; returns the stored path."""
        target = self.path(key)
        if self.is_local:
            directory = Path(target).parent
            directory.mkdir(parents=True, exist_ok=True)
            temporary = directory / f".{Path(target).name}.{uuid.uuid4().hex}.part"
            try:
                with open(temporary, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, target)
            finally:
                temporary.unlink(missing_ok=True)
        else:
            self.fs.pipe_file(target, data)
        return target

    def read(self, key: str) -> bytes:
        return bytes(self.fs.cat_file(self.path(key)))

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self.path(key)))

    def download_url(self, key: str, api_path: str) -> str:
        """Where a user downloads `key`: the API's download endpoint when one is configured
        (`api_path` below `public_base_url`, signed to open without a token until it expires:
        `emailexport.signing`), a presigned URL on stores that sign (S3), else the file's own URL."""
        if self.public_base_url and self.is_local:
            from emailexport.signing import sign_download_url

            return sign_download_url(f"{self.public_base_url}{api_path}")
        if self.is_local:
            return Path(self.path(key)).resolve().as_uri()
        try:
            return str(self.fs.sign(self.path(key), expiration=self.presign_expiry_seconds))
        except NotImplementedError:  # a store without signed URLs (memory://, a mounted share)
            return self.fs.unstrip_protocol(self.path(key))
