"""Fixtures of the image tests: the loopback image server, fetch settings through the environment,
and the images workspace wired to the servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from emailexport.bundle import import_bundle, load_bundle
from emailexport.models import Email, ExportOptions, ExportRecord
from emailexport.store import Store
from tests.conftest import FIXTURES
from tests.images.servers import ImageServer


@pytest.fixture(scope="session")
def image_server() -> Iterator[ImageServer]:
    server = ImageServer()
    server.thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def images(image_server: ImageServer, monkeypatch: pytest.MonkeyPatch) -> ImageServer:
    """The image server, counters reset, and fetch settings that keep failure tests fast. Only the
    name `localhost` is allow-listed: the same server reached as 127.0.0.1 is refused. The timeout
    leaves room for a loaded machine (a fetch retried for slowness would count twice; it is a total
    per attempt, connect and headers included, since issue 18: at load 20 on 2 cores a loopback
    fetch needed more than 1.9 s). The slow-route test sets its own 0.5 s."""
    image_server.reset()
    for name, value in {"ALLOWED_HOSTS": "localhost", "TIMEOUT_SECONDS": "5", "RETRY_ATTEMPTS": "2",
                        "RETRY_BACKOFF_SECONDS": "0.01", "RETRY_MAX_DELAY_SECONDS": "1.5",
                        "MAX_BYTES": "100000"}.items():
        monkeypatch.setenv(f"EMAILEXPORT_IMAGES_{name}", value)
    return image_server


@pytest.fixture
def images_data(images: ImageServer, s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """tests/fixtures/images.yaml with the servers' addresses filled in (bucket: `cdn-missing`)."""
    monkeypatch.setenv("TEST_CDN_CREDENTIALS", '{"key": "testing", "secret": "s3cr3t-do-not-leak"}')
    text = (FIXTURES / "images.yaml").read_text(encoding="utf-8")
    text = text.replace("{IMAGE_BASE}", images.url("")).replace("{S3_ENDPOINT}", s3_server.endpoint)
    return dict(yaml.safe_load(text.replace("{BUCKET}", "cdn-missing")))


@pytest.fixture
def load_images(store: Store, images_data: dict[str, Any]) -> Callable[..., Store]:
    """Import the images workspace, after `changes(data)` if given."""

    def load(changes: Callable[[dict[str, Any]], None] | None = None) -> Store:
        if changes:
            changes(images_data)
        import_bundle(store, load_bundle(images_data))
        return store

    return load


def create_image_export(store: Store, locales: list[str], image_mode: str, *, export_type: str = "html",
                        cdn_connector_id: int | None = None) -> ExportRecord:
    email = store.require(3, Email, 1)
    return store.create_export(workspace=store.workspace(3), email=email, export_type=export_type,  # type: ignore[arg-type]
                               options=ExportOptions(locales=locales, image_mode=image_mode),  # type: ignore[arg-type]
                               cdn_connector_id=cdn_connector_id)


def set_image_url(data: dict[str, Any], image_id: str, url: str) -> None:
    """Point a library image (and every literal use of its old URL) at another URL."""
    for image in data["images"]:
        if image["id"] == image_id:
            image["public_url"] = url
