"""Images: an email with 20 distinct library images in 20 locales, exported with include_in_zip and
with use_cdn_connector, against a loopback image server and moto's S3 server.

    .venv/bin/python benchmarks/images_benchmark.py [--images 20] [--locales 20]

Per mode: run 1 (cold: no image fetched before, nothing uploaded, render cache empty) and run 2, a
re-export with nothing changed (images unchanged on their server, already in place on the CDN, render
cache warm). The image server sends an ETag, as CDNs do, so run 2's fetches are conditional; each
image is about 50 KB.
Reported: image requests (and how many were conditional), image body bytes downloaded and PUTs,
counted by the servers, and wall times as ratios to run 1 measured in the same process (this machine
is shared and noisy).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emailexport.locales import LOCALES  # noqa: E402


def workspace(image_base: str, s3_endpoint: str, bucket: str, images: int, locales: int) -> dict[str, Any]:
    """One email whose `images` instances each show a distinct library image in every locale."""
    codes = LOCALES[:locales]
    picture = ('<tr><td background="{{ image }}"><!--[if mso]><v:fill src="{{ image }}"/><![endif]-->'
               '<img src="{{ image }}" alt="x"></td></tr>')
    return {
        "organization": {"id": 1, "name": "Bench"}, "workspace": {"id": 1, "organization_id": 1, "name": "Bench"},
        "design_systems": [{"id": 1, "name": "B", "components": [
            {"name": "shell", "container": True, "template": "<html><body><table>{{ children }}</table></body></html>"},
            {"name": "picture", "fields": [{"variable": "image", "type": "image", "required": True}],
             "template": picture}]}],
        "images": [{"id": f"img-{i}", "filename": f"picture {i}.png",
                    "public_url": f"{image_base}/etag/p{i}.png?pad=50000"} for i in range(images)],
        "cdn_connectors": [{"id": 1, "type": "s3", "bucket": bucket, "prefix": "img/", "region": "us-east-1",
                            "endpoint_url": s3_endpoint, "base_url": "https://cdn.example.com",
                            "credentials": "env:BENCH_CDN"}],
        "emails": [{"id": 1, "name": "Images", "design_system_id": 1, "default_locale": codes[0], "locales": codes,
                    "content": {"subject": {"branch_content": {"null_branch": {c: f"Hi {c}" for c in codes}}},
                                "preheader": {"branch_content": {}}, "container": {"id": "c", "component": "shell"},
                                "instances": [{"id": f"i{i}", "component": "picture", "field_values": {"null_branch": {
                                    codes[0]: {"image": {"value": {"image_id": f"img-{i}"}}}}}}
                                    for i in range(images)]}}],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--locales", type=int, default=20)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="images-bench-"))
    os.environ.update({"EMAILEXPORT_DATA_DIR": str(data_dir), "EMAILEXPORT_IMAGES_ALLOWED_HOSTS": "localhost",
                       "EMAILEXPORT_EGRESS_ALLOWED_HOSTS": "127.0.0.1,localhost",  # moto S3 on loopback
                       "BENCH_CDN": '{"key": "bench", "secret": "bench"}', "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
                       "PREFECT_LOCAL_STORAGE_PATH": str(data_dir / "prefect")})
    import boto3
    from prefect.testing.utilities import prefect_test_harness

    from emailexport.bundle import import_bundle, load_bundle
    from emailexport.models import Email, ExportOptions
    from emailexport.runtime import open_store
    from flows.export_email import export_email
    from tests.images.servers import CountingMotoServer, ImageServer

    images, s3 = ImageServer(), CountingMotoServer()
    images.thread.start()
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    store = open_store()
    import_bundle(store, load_bundle(workspace(images.url(""), s3.endpoint, bucket, args.images, args.locales)))
    email = store.require(1, Email, 1)

    from sqlalchemy import delete

    from emailexport.store.tables import ImageFetchRow

    def forget_fetches() -> None:
        """Cold again for the next mode: no URL has validators to send."""
        with store.session() as session:
            session.execute(delete(ImageFetchRow))

    def run(mode: str) -> tuple[float, int, int, int, int, str]:
        images.reset()
        puts = len(s3.puts(bucket))
        record = store.create_export(workspace=store.workspace(1), email=email, export_type="html",
                                     options=ExportOptions(locales=email.locales, image_mode=mode),  # type: ignore[arg-type]
                                     cdn_connector_id=1 if mode == "use_cdn_connector" else None)
        started = time.perf_counter()
        export_email(record.id, return_state=True)
        elapsed = time.perf_counter() - started
        status = store.require_export(record.id).status
        return (elapsed, sum(images.hits.values()), sum(images.conditional.values()), images.body_bytes,
                len(s3.puts(bucket)) - puts, status)

    with prefect_test_harness(server_startup_timeout=60):
        export_email.fn  # noqa: B018 - import the flow before timing
        print(f"{args.images} images x {args.locales} locales\n")
        print("| mode | run | status | image requests (conditional) | body bytes | PUTs | wall time | vs run 1 |")
        print("|---|---|---|---|---|---|---|---|")
        for mode in ("include_in_zip", "use_cdn_connector"):
            forget_fetches()
            first = run(mode)
            second = run(mode)
            for label, (elapsed, fetched, conditional, body, uploaded, status) in (
                    ("1 cold", first), ("2 re-export, nothing changed", second)):
                print(f"| {mode} | {label} | {status} | {fetched} ({conditional}) | {body:,} | {uploaded} "
                      f"| {elapsed:.2f} s | {elapsed / first[0]:.2f} |")
    s3.stop()
    images.shutdown()


if __name__ == "__main__":
    main()
