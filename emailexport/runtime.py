"""Process-wide handles built from settings: the store and the output storage."""

from __future__ import annotations

from functools import cache

from emailexport.settings import Settings, get_settings
from emailexport.storage import OutputStorage
from emailexport.store import Store

__all__ = ["open_storage", "open_store"]


@cache
def _store(url: str) -> Store:
    store = Store(url)
    store.migrate()
    return store


def open_store(settings: Settings | None = None) -> Store:
    """The store for these settings, migrated to the newest schema (once per process and URL)."""
    return _store((settings or get_settings()).resolved_database_url())


def open_storage(settings: Settings | None = None) -> OutputStorage:
    settings = settings or get_settings()
    return OutputStorage(settings.resolved_storage_url(), settings.public_base_url)
