"""The S3 CDN connector against moto's S3 server on loopback, through s3fs."""

from __future__ import annotations

import hashlib

import boto3
import pytest

from connectors.cdn import UnknownCdnConnector, known_types, open_cdn
from connectors.cdn.s3 import CACHE_CONTROL
from emailexport.errors import TerminalError
from emailexport.models import CdnConnector
from tests.images.servers import png_bytes

CREDENTIALS = {"key": "testing", "secret": "s3cr3t-do-not-leak"}


def _config(endpoint: str, bucket: str) -> CdnConnector:
    return CdnConnector(id=4, name="Test CDN", bucket=bucket, prefix="email-images/", region="us-east-1",
                        endpoint_url=endpoint, base_url="https://cdn.example.com/", credentials="env:UNUSED")


def test_upload_sets_headers_and_skips_an_existing_key(s3_server, bucket):
    data = png_bytes("cdn.png")
    sha = hashlib.sha256(data).hexdigest()
    cdn = open_cdn(_config(s3_server.endpoint, bucket), CREDENTIALS)
    first = cdn.upload(data, sha256=sha, extension="png", content_type="image/png")
    assert first.uploaded and first.key == f"email-images/{sha}.png"
    assert first.url == f"https://cdn.example.com/email-images/{sha}.png"
    head = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1").head_object(
        Bucket=bucket, Key=first.key)
    assert head["ContentType"] == "image/png" and head["CacheControl"] == CACHE_CONTROL
    assert s3_server.puts(bucket) == [f"/{bucket}/{first.key}"]
    again = open_cdn(_config(s3_server.endpoint, bucket), CREDENTIALS).upload(
        data, sha256=sha, extension="png", content_type="image/png")
    assert again == first.__class__(url=first.url, key=first.key, uploaded=False)
    assert len(s3_server.puts(bucket)) == 1  # no second PUT


def test_a_missing_bucket_is_a_terminal_error_without_secrets(s3_server, aws_env):
    cdn = open_cdn(_config(s3_server.endpoint, "no-such-bucket"), CREDENTIALS)
    with pytest.raises(TerminalError) as info:
        cdn.upload(b"x", sha256="0" * 64, extension="png", content_type="image/png")
    assert "CDN connector 4 (Test CDN): uploading email-images/" in str(info.value)
    assert "no-such-bucket" in str(info.value) and "s3cr3t" not in str(info.value) and "testing" not in str(info.value)


def test_an_unknown_type_names_the_known_ones():
    with pytest.raises(UnknownCdnConnector, match=r"type 'gcs' is not supported \(known types: s3\)"):
        open_cdn(CdnConnector(id=1, type="gcs", bucket="b", base_url="https://x"))
    assert known_types() == ["s3"]


def test_an_endpoint_that_never_answers_is_given_up_at_the_total_deadline(monkeypatch):
    """botocore's 30 s read timeout (retried up to 5 times) does not bound an upload: a CDN endpoint
    named in workspace data that accepts connections and never answers must not hold the worker
    longer than the upload's total deadline."""
    import socket
    import threading
    import time

    from connectors.cdn import s3
    from emailexport.errors import TransientError

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []

    def accept_and_hold() -> None:
        while True:
            try:
                held.append(listener.accept()[0])  # read nothing, answer nothing
            except OSError:
                return

    threading.Thread(target=accept_and_hold, daemon=True).start()
    monkeypatch.setattr(s3, "DEADLINE_SECONDS", 2.0)
    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        cdn = open_cdn(_config(endpoint, "silent-bucket"), CREDENTIALS)
        started = time.monotonic()
        with pytest.raises(TransientError, match=r"no answer within the 2 s deadline") as info:
            cdn.upload(b"x", sha256="1" * 64, extension="png", content_type="image/png")
        assert time.monotonic() - started < 2 + 1.5  # fsspec checks its deadline once a second
        assert held  # the request did reach the endpoint
        assert "s3cr3t" not in str(info.value)
    finally:
        listener.close()
        for connection in held:
            connection.close()
