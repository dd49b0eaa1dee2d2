"""The store's tests again, on a real PostgreSQL server (tests/test_store.py runs them on SQLite),
plus what only a server with real concurrency can show."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from emailexport.models import Email, ExportOptions
from emailexport.store import Store
from tests.test_store import (  # the same tests, collected again here with the fixtures below
    test_documents_round_trip_and_are_scoped_to_their_workspace,
    test_export_records_are_created_in_progress_and_failed_once,
    test_tokens_are_stored_hashed,
)

__all__ = [
    "test_documents_round_trip_and_are_scoped_to_their_workspace",
    "test_export_records_are_created_in_progress_and_failed_once",
    "test_tokens_are_stored_hashed",
]


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                           autocommit=True)


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    """A fresh database on the session's PostgreSQL server, migrated, for each test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with _admin(postgres_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    store = Store(url)
    store.migrate()
    yield store
    store.engine.dispose()
    with _admin(postgres_url) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_the_store_really_is_on_postgresql(store):
    assert store.engine.dialect.name == "postgresql"
    from sqlalchemy import inspect

    assert "exports" in inspect(store.engine).get_table_names()


def test_migrations_are_idempotent_on_postgresql(store):
    store.migrate()
    assert store.list_exports(1) == ([], 0)


def test_two_concurrent_inserts_with_one_idempotency_key_make_one_record(mini):
    workspace, email = mini.workspace(3), mini.require(3, Email, 1)
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def insert() -> None:
        barrier.wait()
        try:
            outcomes.append(mini.create_export(workspace=workspace, email=email, export_type="html",
                                               options=ExportOptions(locales=["en-US"]), idempotency_key="same"))
        except IntegrityError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=insert) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(o, IntegrityError) for o in outcomes) == 3
    assert mini.list_exports(3)[1] == 1
    assert mini.export_by_idempotency_key(3, "same") is not None


def test_in_progress_records_are_listed_for_the_reconciler(mini):
    workspace, email = mini.workspace(3), mini.require(3, Email, 1)
    records = [mini.create_export(workspace=workspace, email=email, export_type="html",
                                  options=ExportOptions(locales=["en-US"])) for _ in range(3)]
    mini.fail_if_in_progress(records[1].id, "lost")
    assert [r.id for r in mini.exports_in_progress()] == [records[0].id, records[2].id]
