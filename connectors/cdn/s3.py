"""S3 and S3-compatible stores (MinIO, R2: set `endpoint_url`) through s3fs.

Keys are `<prefix><sha256>.<ext>`, so the same bytes always land on the same key and an existing
key is never uploaded again (a HEAD first). Objects are immutable by construction, which is what
`Cache-Control: public, max-age=31536000, immutable` tells browsers and CDNs.

`endpoint_url` comes from workspace data, so it passes the shared address policy
(`emailexport.egress.pinned_endpoint`: loopback/private/metadata refused unless allow-listed in
`EMAILEXPORT_EGRESS_ALLOWED_HOSTS`; a plain-http endpoint pinned to the checked address) before
any credential is handed to s3fs. Without `endpoint_url`, botocore talks to AWS's own endpoint for
the region. Each socket operation has botocore's connect and read timeouts (`TIMEOUT_SECONDS`), which
bound neither an endpoint that trickles its answer nor botocore's own retries (up to 5 attempts of
30 s each). So an upload (the HEAD and the PUT together) also has a total deadline
(`DEADLINE_SECONDS`), enforced by fsspec's `sync(..., timeout=)` around s3fs's coroutines, which
cancels the request when it passes: like every other outbound request (emailexport/egress.py), an
endpoint named in workspace data cannot hold a worker longer than that. Running out of it is a
transient error (the task retries).
"""

from __future__ import annotations

import time
from typing import Any

from fsspec.exceptions import FSTimeoutError

from emailexport.egress import EgressPolicy, EgressRefused, pinned_endpoint
from emailexport.errors import TerminalError, TransientError
from emailexport.images.naming import cdn_key
from emailexport.models import CdnConnector

from . import UploadResult

__all__ = ["CACHE_CONTROL", "S3CdnConnector"]

CACHE_CONTROL = "public, max-age=31536000, immutable"
TIMEOUT_SECONDS = 30
DEADLINE_SECONDS = 120.0  # one upload: the HEAD and the PUT, with botocore's retries
_TERMINAL_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket",
                             "AllAccessDisabled", "InvalidBucketName", "AccountProblem"})


class S3CdnConnector:
    def __init__(self, config: CdnConnector, credentials: dict[str, str] | None = None, *,
                 policy: EgressPolicy | None = None) -> None:
        import s3fs  # heavy: imported when an S3 connector is used

        self.config = config
        endpoint = config.endpoint_url
        if endpoint:
            try:
                endpoint = pinned_endpoint(endpoint, policy or EgressPolicy.from_environment())
            except EgressRefused as exc:
                raise TerminalError(f"CDN connector {config.id} ({config.name or config.type}): endpoint_url "
                                    f"{exc}") from None
        creds = credentials or {}
        client_kwargs: dict[str, Any] = {}
        if config.region:
            client_kwargs["region_name"] = config.region
        # skip_instance_cache: a connector's credentials must never be reused for another one.
        self.fs = s3fs.S3FileSystem(
            key=creds.get("key") or creds.get("aws_access_key_id"),
            secret=creds.get("secret") or creds.get("aws_secret_access_key"),
            token=creds.get("token") or creds.get("aws_session_token"),
            endpoint_url=endpoint, client_kwargs=client_kwargs, skip_instance_cache=True,
            config_kwargs={"connect_timeout": TIMEOUT_SECONDS, "read_timeout": TIMEOUT_SECONDS},
        )

    def upload(self, data: bytes, *, sha256: str, extension: str, content_type: str) -> UploadResult:
        """Bytes -> their URL on the CDN; nothing is sent when the key already exists."""
        key = cdn_key(self.config.prefix, sha256, extension)
        path = f"{self.config.bucket}/{key}"
        url = f"{self.config.base_url.rstrip('/')}/{key}"
        what = (f"CDN connector {self.config.id} ({self.config.name or self.config.type}): uploading {key} to "
                f"bucket {self.config.bucket}")
        ends = time.monotonic() + DEADLINE_SECONDS
        try:
            # `timeout` is fsspec's (sync() waits that long for the coroutine, then cancels it).
            if self.fs.exists(path, timeout=_left(ends)):
                return UploadResult(url=url, key=key, uploaded=False)
            self.fs.pipe_file(path, data, ContentType=content_type, CacheControl=CACHE_CONTROL, timeout=_left(ends))
        except FSTimeoutError:
            raise TransientError(f"{what} failed: no answer within the {DEADLINE_SECONDS:g} s deadline") from None
        except Exception as exc:  # the boundary: every s3fs/botocore failure becomes a typed error
            raise _typed(exc, what) from None
        return UploadResult(url=url, key=key, uploaded=True)


def _left(ends: float) -> float:
    """Seconds left until `ends` (at least a little: 0 would mean no timeout to fsspec)."""
    return max(ends - time.monotonic(), 0.01)


def _typed(exc: Exception, what: str) -> Exception:
    """An s3fs/botocore exception -> TerminalError or TransientError. The message holds the error
    code or class only: botocore texts can quote request details."""
    code = _error_code(exc)
    if isinstance(exc, PermissionError) or code in _TERMINAL_CODES:
        return TerminalError(f"{what} failed: {code or 'access denied'}")
    if isinstance(exc, FileNotFoundError):
        return TerminalError(f"{what} failed: the bucket does not exist")
    return TransientError(f"{what} failed: {code or type(exc).__name__}")


def _error_code(exc: BaseException) -> str:
    for candidate in (exc, exc.__cause__, exc.__context__):
        response = getattr(candidate, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
    return ""
