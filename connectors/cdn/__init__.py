"""CDN connectors: where `use_cdn_connector` puts images. A registry of type name -> import path;
an implementation is imported on first use, so listing the types costs nothing."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol

from emailexport.errors import TerminalError
from emailexport.models import CdnConnector

__all__ = ["CDN_CONNECTORS", "CdnUploader", "UnknownCdnConnector", "UploadResult", "known_types", "open_cdn"]

# Sorted: type name -> "module:class". S3-compatible stores (MinIO, R2, Ceph) are type s3 with an
# endpoint_url.
CDN_CONNECTORS: dict[str, str] = {
    "s3": "connectors.cdn.s3:S3CdnConnector",
}


class UnknownCdnConnector(TerminalError):
    """A CDN connector type no implementation exists for."""


@dataclass(frozen=True)
class UploadResult:
    url: str  # what the email references: <base_url>/<key>
    key: str
    uploaded: bool  # False: the key already existed, nothing was sent


class CdnUploader(Protocol):
    def upload(self, data: bytes, *, sha256: str, extension: str, content_type: str) -> UploadResult: ...


def known_types() -> list[str]:
    return sorted(CDN_CONNECTORS)


def open_cdn(config: CdnConnector, credentials: dict[str, str] | None = None) -> CdnUploader:
    """A CDN connector record (and its resolved credentials) -> its uploader."""
    path = CDN_CONNECTORS.get(config.type)
    if path is None:
        raise UnknownCdnConnector(f"CDN connector type {config.type!r} is not supported "
                                  f"(known types: {', '.join(known_types())})")
    module, _, name = path.partition(":")
    uploader: CdnUploader = getattr(importlib.import_module(module), name)(config, credentials)
    return uploader
