"""Shared fixtures: an isolated data dir per test, a migrated store, the mini workspace, and one
Prefect test harness for the whole session (starting a server costs seconds)."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from emailexport.bundle import import_bundle, load_bundle
from emailexport.runtime import open_store
from emailexport.settings import get_settings
from emailexport.store import Store

# Tests must not reach the internet: Prefect's servers would otherwise send usage telemetry.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLE = ROOT / "examples" / "workspace.yaml"


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One Prefect server for the session; task results (the render cache) in a session folder."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    storage = tmp_path_factory.mktemp("prefect-storage")
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: storage}), prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own database and output folder through the real settings path."""
    directory = tmp_path / "data"
    monkeypatch.setenv("EMAILEXPORT_DATA_DIR", str(directory))
    for name in ("DATABASE_URL", "STORAGE_URL", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(f"EMAILEXPORT_{name}", raising=False)
    # The vendor fakes and the moto S3 server listen on 127.0.0.1, which the egress address policy
    # refuses unless allow-listed: the tests are the operator allow-listing a self-hosted target
    # (tests/test_security_egress.py removes it and shows the refusal).
    monkeypatch.setenv("EMAILEXPORT_EGRESS_ALLOWED_HOSTS", "127.0.0.1,localhost")
    get_settings.cache_clear()
    yield directory
    get_settings.cache_clear()


@pytest.fixture
def store(data_dir: Path) -> Store:
    return open_store()


@pytest.fixture
def mini_data() -> dict[str, Any]:
    """The mini workspace as plain data, for tests that change it before importing."""
    return copy.deepcopy(_mini())


_MINI: dict[str, Any] = {}


def _mini() -> dict[str, Any]:
    if not _MINI:
        _MINI.update(yaml.safe_load((FIXTURES / "mini.yaml").read_text(encoding="utf-8")))
    return _MINI


@pytest.fixture
def mini(store: Store, mini_data: dict[str, Any]) -> Store:
    """A store holding the mini workspace (workspace 3)."""
    import_bundle(store, load_bundle(mini_data))
    return store


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """moto's S3 server on loopback for the session (tests use their own bucket names)."""
    from tests.images.servers import CountingMotoServer

    server = CountingMotoServer()
    yield server
    server.stop()


@pytest.fixture
def aws_env(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Environment a user of s3fs would set to reach the S3 server; returns its endpoint."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_server.endpoint}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    return str(s3_server.endpoint)


_BUCKETS = iter(range(1, 10_000))


@pytest.fixture
def bucket(aws_env: str) -> str:
    """A new, empty bucket on the session's S3 server."""
    import boto3

    name = f"cdn-{next(_BUCKETS)}"
    boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server: `EMAILEXPORT_TEST_POSTGRES_URL` if given, else a throwaway cluster
    started by `scripts/services` for this session. Unavailable: a skip locally, a failure in CI."""
    import os
    import subprocess

    given = os.environ.get("EMAILEXPORT_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    started = subprocess.run([str(ROOT / "scripts" / "services"), "postgres", "start"], capture_output=True,
                             text=True, timeout=600)
    values = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    if started.returncode != 0 or "EMAILEXPORT_TEST_POSTGRES_URL" not in values:
        message = f"PostgreSQL could not be started by scripts/services:\n{started.stderr[-2000:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield values["EMAILEXPORT_TEST_POSTGRES_URL"]
    finally:
        stop = [str(ROOT / "scripts" / "services"), "postgres", "stop", values["EMAILEXPORT_TEST_POSTGRES_DIR"]]
        subprocess.run(stop, capture_output=True, timeout=120)
