"""Shared fixtures: an isolated data dir per test, a migrated store, the mini workspace, and one
Prefect test harness for the whole session (starting a server costs seconds)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from emailexport.bundle import import_bundle, load_bundle
from emailexport.runtime import open_store
from emailexport.settings import get_settings
from emailexport.store import Store

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLE = ROOT / "examples" / "workspace.yaml"


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One Prefect server for the session; task results (the render cache) in a session folder."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    storage = tmp_path_factory.mktemp("prefect-storage")
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: storage}), prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own database and output folder through the real settings path."""
    directory = tmp_path / "data"
    monkeypatch.setenv("EMAILEXPORT_DATA_DIR", str(directory))
    for name in ("DATABASE_URL", "STORAGE_URL", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(f"EMAILEXPORT_{name}", raising=False)
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
