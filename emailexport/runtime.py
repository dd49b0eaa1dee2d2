"""Process-wide handles built from settings: the store, the output storage, and the embedded Prefect.

The embedded default (no `PREFECT_API_URL`) runs every flow in the calling process against an
ephemeral Prefect server that Prefect starts on first use. Left to Prefect's own defaults that server
lives in `~/.prefect` (shared by every project and user session on the machine), waits 20 s for its
start-up (the first start of a fresh home migrates its database, which can take longer on a busy
machine), and two commands starting at once on a fresh home both migrate the same SQLite file
(`duplicate column name`). So, before Prefect is imported:

- `use_embedded_prefect` points Prefect's home and its result storage (the render cache) into the
  data dir (`<data_dir>/prefect`, `<data_dir>/prefect/storage`) and raises the start-up timeout to
  `EMAILEXPORT_PREFECT_STARTUP_TIMEOUT_SECONDS` (180 s);
- `ensure_prefect_api` starts the ephemeral server once per process, holding a file lock in that
  home while it starts, so the first start (and its migration) of a home happens in one process at
  a time; the others wait for the lock, then find the database migrated;
- the store's own migration holds a file lock in the data dir for the same reason.

The locks are `filelock` locks (OS-level, released when a process dies), not hand-made lock files.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from filelock import FileLock

from emailexport.settings import Settings, get_settings
from emailexport.storage import OutputStorage
from emailexport.store import Store

__all__ = [
    "embedded_flow_settings",
    "ensure_prefect_api",
    "is_embedded",
    "open_storage",
    "open_store",
    "use_embedded_prefect",
]

SERVER_LOCK = "server-start.lock"
MIGRATE_LOCK = "store-migrate.lock"


def _sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url[len(prefix):] not in ("", ":memory:"):
        return Path(url[len(prefix):])
    return None


@cache
def _store(url: str, timeout: float) -> Store:
    store = Store(url)
    path = _sqlite_path(url)
    if path is None:
        store.migrate()  # a server database: Alembic's own version table is the arbiter
        return store
    path.parent.mkdir(parents=True, exist_ok=True)
    # Two commands on a fresh data dir would both create the schema of the same SQLite file.
    with FileLock(str(path.parent / MIGRATE_LOCK), timeout=timeout):
        store.migrate()
    return store


def open_store(settings: Settings | None = None) -> Store:
    """The store for these settings, migrated to the newest schema (once per process and URL)."""
    settings = settings or get_settings()
    return _store(settings.resolved_database_url(), float(settings.prefect_startup_timeout_seconds))


def open_storage(settings: Settings | None = None) -> OutputStorage:
    settings = settings or get_settings()
    return OutputStorage(settings.resolved_storage_url(), settings.public_base_url)


# -- the embedded Prefect -------------------------------------------------------------------


def embedded_prefect_env(settings: Settings | None = None) -> dict[str, str]:
    """The Prefect environment of the embedded default for these settings."""
    settings = settings or get_settings()
    home = settings.resolved_prefect_home()
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(settings.prefect_startup_timeout_seconds),
        # The ephemeral server would otherwise send usage telemetry to the internet.
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def use_embedded_prefect(settings: Settings | None = None) -> bool:
    """Configure the embedded default unless a Prefect API is configured; call before Prefect is
    imported (Prefect reads its settings at import). Variables already set win. True when the
    embedded default is in use."""
    if os.environ.get("PREFECT_API_URL"):
        return False
    if "prefect" in sys.modules:  # too late to move its home; the caller configured Prefect itself
        return is_embedded()
    for name, value in embedded_prefect_env(settings).items():
        os.environ.setdefault(name, value)
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    return True


def is_embedded() -> bool:
    """True when flows run against an ephemeral server of this process (no Prefect API URL)."""
    from prefect.settings import get_current_settings

    return not get_current_settings().api.url


def ensure_prefect_api(settings: Settings | None = None) -> str:
    """The Prefect API URL flows of this process report to, starting the ephemeral server first
    when there is none (once per process; its first start per home under a file lock)."""
    from prefect.settings import get_current_settings

    current = get_current_settings()
    if current.api.url:
        return str(current.api.url)
    from emailexport.prefect_server import EmbeddedPrefectServer

    # Prefect's per-process singleton (the one `get_client` uses), serving 503s with a short
    # Retry-After (emailexport/prefect_server.py); if Prefect made its own first, that one is used.
    server = EmbeddedPrefectServer()
    if not server.running:
        settings = settings or get_settings()
        timeout = settings.prefect_startup_timeout_seconds
        home = current.home
        home.mkdir(parents=True, exist_ok=True)
        with FileLock(str(home / SERVER_LOCK), timeout=2 * timeout), _without_unused_services():
            server.start(timeout=timeout)
    return server.api_url


# Services of an ephemeral server that nothing of the embedded default uses; each processes every
# event of every run (issue 14: with them off, 60 bulk rows took 15-17 s in three runs, 16-37 s with them on):
# automations (their triggers and actions: an ephemeral server has no UI to define one and none is
# made by this project) and the events table (read by the UI's event feed, which an ephemeral
# server does not serve). Task runs, flow runs, logs and artifacts are recorded as before. A
# variable set in the environment wins, e.g. PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED=true.
UNUSED_EMBEDDED_SERVICES = (
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED",
)


@contextmanager
def _without_unused_services() -> Iterator[None]:
    """Settings for starting the ephemeral server (Prefect passes the current settings to its process)."""
    import prefect.settings
    from prefect.settings import temporary_settings

    updates = {getattr(prefect.settings, name): False for name in UNUSED_EMBEDDED_SERVICES if name not in os.environ}
    with temporary_settings(updates=updates):
        yield


_no_heartbeats: dict[int, Any] = {}  # id(settings) -> (settings, the same without heartbeats)


@contextmanager
def embedded_flow_settings() -> Iterator[None]:
    """Settings for a flow run executed in this process against the ephemeral server: no run
    heartbeats. They exist so that a server notices a crashed run; an ephemeral server dies with
    the process that ran the flow, so nobody reads them, and a synchronous flow run waits up to
    1 s at its end for the heartbeat thread (Prefect 3.9 `flow_engine._send_heartbeats`).
    The changed settings are built once per process: building Prefect settings reads the
    environment and its TOML files, which costs more than a small export's orchestration."""
    if not is_embedded():
        yield
        return
    import prefect.context

    context = prefect.context.get_settings_context()
    key = id(context.settings)
    pair = _no_heartbeats.get(key)
    if pair is None or pair[0] is not context.settings:
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY

        changed = context.settings.copy_with_update(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})
        pair = _no_heartbeats[key] = (context.settings, changed)
    with prefect.context.SettingsContext(profile=context.profile, settings=pair[1]):
        yield
