"""The store: workspace documents and export records, on any SQLAlchemy database.

SQLite in the data dir is the embedded default; PostgreSQL works by setting
`EMAILEXPORT_DATABASE_URL`. The schema is managed by Alembic migrations shipped in the package
and applied by `Store.migrate()` (every entry point calls it, so a fresh machine needs no step).
"""

from __future__ import annotations

from emailexport.store.store import DOCUMENT_KINDS, Dispatch, Store, TokenInfo, document_id, hash_token

__all__ = ["DOCUMENT_KINDS", "Dispatch", "Store", "TokenInfo", "document_id", "hash_token"]
