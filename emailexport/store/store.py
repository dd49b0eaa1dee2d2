"""`Store`: typed reads and writes over the tables; every method opens its own short transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from pydantic import BaseModel
from sqlalchemy import Engine, and_, create_engine, delete, event, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from emailexport.errors import NotFoundError
from emailexport.models import (
    BrandProfile,
    CdnConnector,
    Conditional,
    Connector,
    DynamicContentProfile,
    Email,
    EmailDesignSystem,
    EmailRef,
    ExportMetadata,
    ExportOptions,
    ExportRecord,
    Image,
    LinkTrackingProfile,
    LocaleOutcome,
    Organization,
    PersonalizationTag,
    Workspace,
    utcnow,
)
from emailexport.store.tables import (
    ApiTokenRow,
    DocumentRow,
    ExportRow,
    ImageFetchRow,
    OrganizationRow,
    OutboxRow,
    WorkspaceRow,
)

__all__ = ["DOCUMENT_KINDS", "Dispatch", "Store", "TokenInfo", "document_id", "hash_token"]

M = TypeVar("M", bound=BaseModel)

# kind name in the table <-> model; the names are also the bundle's section names.
DOCUMENT_KINDS: dict[str, type[BaseModel]] = {
    "design_systems": EmailDesignSystem,
    "brand_profiles": BrandProfile,
    "emails": Email,
    "conditionals": Conditional,
    "personalization_tags": PersonalizationTag,
    "dynamic_content_profiles": DynamicContentProfile,
    "link_tracking_profiles": LinkTrackingProfile,
    "images": Image,
    "connectors": Connector,
    "cdn_connectors": CdnConnector,
}
_KIND_OF = {model: kind for kind, model in DOCUMENT_KINDS.items()}
_MIGRATIONS = Path(__file__).parent / "migrations"


def document_id(doc: BaseModel) -> str:
    """The `id` of a workspace document, as the string key it is stored under."""
    return str(doc.model_dump(include={"id"})["id"])


@dataclass(frozen=True)
class TokenInfo:
    """What `token list` shows about a token: never its value or its hash."""

    id: int
    label: str
    workspace_ids: list[int]
    created_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    status: str  # active, expired, revoked


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were written in UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _token_status(row: ApiTokenRow, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    expires = _aware(row.expires_at)
    if expires is not None and expires <= now:
        return "expired"
    return "active"


def hash_token(token: str) -> str:
    """API tokens are stored as their SHA-256 (they are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets the API read while a flow writes; foreign keys are off by default in SQLite.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


class Store:
    """Workspace documents and export records in one database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    # -- workspace data -------------------------------------------------------------------

    def put_organization(self, organization: Organization) -> None:
        with self.session() as s:
            s.merge(OrganizationRow(id=organization.id, name=organization.name))

    def put_workspace(self, workspace: Workspace) -> None:
        with self.session() as s:
            s.merge(WorkspaceRow(id=workspace.id, organization_id=workspace.organization_id, name=workspace.name))

    def workspace(self, workspace_id: int) -> Workspace | None:
        with self.session() as s:
            row = s.get(WorkspaceRow, workspace_id)
            if row is None:
                return None
            return Workspace(id=row.id, organization_id=row.organization_id, name=row.name)

    def put_documents(self, workspace_id: int, documents: Sequence[BaseModel]) -> None:
        """Insert or replace documents (by their `id`) in one transaction."""
        now = datetime.now(UTC)
        with self.session() as s:
            for doc in documents:
                key = document_id(doc)
                s.merge(
                    DocumentRow(
                        workspace_id=workspace_id,
                        kind=_KIND_OF[type(doc)],
                        key=key,
                        document=doc.model_dump(mode="json"),
                        updated_at=now,
                    )
                )

    def get(self, workspace_id: int, model: type[M], key: int | str) -> M | None:
        """One document of `model`'s kind by id, or None."""
        with self.session() as s:
            row = s.get(DocumentRow, (workspace_id, _KIND_OF[model], str(key)))
            return None if row is None else model.model_validate(row.document)

    def require(self, workspace_id: int, model: type[M], key: int | str) -> M:
        """Like `get`, but a missing document is a `NotFoundError` naming it."""
        found = self.get(workspace_id, model, key)
        if found is None:
            kind = _KIND_OF[model].rstrip("s").replace("_", " ")
            raise NotFoundError(f"{kind} {key} not found in workspace {workspace_id}")
        return found

    def list_documents(self, workspace_id: int, model: type[M]) -> list[M]:
        with self.session() as s:
            rows = s.scalars(
                select(DocumentRow).where(DocumentRow.workspace_id == workspace_id, DocumentRow.kind == _KIND_OF[model])
            )
            return sorted((model.model_validate(r.document) for r in rows), key=document_id)

    def workspace_ids(self) -> list[int]:
        """Every workspace's id, ascending."""
        with self.session() as s:
            return list(s.scalars(select(WorkspaceRow.id).order_by(WorkspaceRow.id)))

    # -- image fetches (conditional re-fetch of URL images) -------------------------------

    def image_fetch(self, url: str) -> ImageFetchRow | None:
        """The last recorded fetch of `url`, or None."""
        with self.session() as s:
            row = s.get(ImageFetchRow, hashlib.sha256(url.encode()).hexdigest())
            if row is not None:
                s.expunge(row)
            return row

    def record_image_fetch(self, url: str, *, shown: str, etag: str | None, last_modified: str | None,
                           sha256: str, content_type: str, file_size: int) -> None:
        """Remember what `url` served and its validators (insert or replace). Only the URL's hash and
        `shown` (its display form, without query string or userinfo) are stored: signed URLs carry
        credentials. Two exports recording the same URL at once both succeed (the later one wins)."""
        for attempt in (1, 2):
            try:
                with self.session() as s:
                    s.merge(ImageFetchRow(url_hash=hashlib.sha256(url.encode()).hexdigest(), url=shown, etag=etag,
                                          last_modified=last_modified, sha256=sha256, content_type=content_type,
                                          file_size=file_size, fetched_at=datetime.now(UTC)))
                return
            except IntegrityError:  # inserted by another export between merge's SELECT and INSERT
                if attempt == 2:
                    raise

    # -- API tokens -----------------------------------------------------------------------

    def add_token(self, token: str, workspace_ids: Sequence[int], label: str = "",
                  expires_at: datetime | None = None) -> int:
        """Store a token (its hash) for some workspaces; returns its id (for `revoke_token`)."""
        with self.session() as s:
            row = ApiTokenRow(token_hash=hash_token(token), label=label, workspace_ids=list(workspace_ids),
                              created_at=datetime.now(UTC), expires_at=expires_at)
            s.add(row)
            s.flush()
            return row.id

    def token_workspaces(self, token: str) -> list[int] | None:
        """The workspaces a token may use, or None for an unknown, revoked or expired token."""
        with self.session() as s:
            row = s.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == hash_token(token)))
            if row is None or _token_status(row, datetime.now(UTC)) != "active":
                return None
            return list(row.workspace_ids)

    def list_tokens(self) -> list[TokenInfo]:
        """Every token (never its value or hash), oldest first."""
        now = datetime.now(UTC)
        with self.session() as s:
            rows = s.scalars(select(ApiTokenRow).order_by(ApiTokenRow.id))
            return [TokenInfo(id=r.id, label=r.label, workspace_ids=list(r.workspace_ids),
                              created_at=_aware(r.created_at), expires_at=_aware(r.expires_at),
                              revoked_at=_aware(r.revoked_at), status=_token_status(r, now)) for r in rows]

    def revoke_token(self, token_id: int) -> bool:
        """Revoke a token by id (from `list_tokens`); False when there is no such token."""
        with self.session() as s:
            row = s.get(ApiTokenRow, token_id)
            if row is None:
                return False
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            return True

    # -- export records -------------------------------------------------------------------

    def create_export(
        self,
        *,
        workspace: Workspace,
        email: Email,
        export_type: str,
        options: ExportOptions,
        connector_id: int | None = None,
        cdn_connector_id: int | None = None,
        dynamic_content_profile_id: str | None = None,
        integration_name: str | None = None,
        idempotency_key: str | None = None,
        queue: bool = False,
        connector_type: str | None = None,
    ) -> ExportRecord:
        """Store a new record, status `in_progress`. `queue`: in the same transaction, an outbox row
        from which the dispatcher creates its flow run (`connector_type` tags that run)."""
        now = utcnow()
        row = ExportRow(
            workspace_id=workspace.id,
            organization_id=workspace.organization_id,
            email_id=email.id,
            email_name=email.name,
            connector_id=connector_id,
            cdn_connector_id=cdn_connector_id,
            dynamic_content_profile_id=dynamic_content_profile_id,
            status="in_progress",
            export_type=export_type,
            options=options.model_dump(mode="json"),
            integration_name=integration_name,
            export_metadata=ExportMetadata().model_dump(mode="json"),
            export_errors={"base": None},
            warnings={"base": None},
            results={},
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
        )
        with self.session() as s:
            s.add(row)
            s.flush()
            if queue:
                s.add(OutboxRow(export_id=row.id, connector_type=connector_type, queued_at=now,
                                next_attempt_at=now, attempts=0))
            return _record(row)

    def export(self, export_id: int) -> ExportRecord | None:
        with self.session() as s:
            row = s.get(ExportRow, export_id)
            return None if row is None else _record(row)

    def require_export(self, export_id: int) -> ExportRecord:
        found = self.export(export_id)
        if found is None:
            raise NotFoundError(f"export {export_id} not found")
        return found

    def export_by_idempotency_key(self, workspace_id: int, key: str) -> ExportRecord | None:
        with self.session() as s:
            row = s.scalar(select(ExportRow).where(ExportRow.workspace_id == workspace_id,
                                                   ExportRow.idempotency_key == key))
            return None if row is None else _record(row)

    def list_exports(self, workspace_id: int, *, page: int = 1, per: int = 25, status: str | None = None,
                     email_id: int | None = None) -> tuple[list[ExportRecord], int]:
        """One page of a workspace's records (optionally only one status, one email), newest first,
        and the total count of records matching."""
        with self.session() as s:
            where = and_(ExportRow.workspace_id == workspace_id,
                         *([ExportRow.status == status] if status else []),
                         *([ExportRow.email_id == email_id] if email_id is not None else []))
            total = s.scalar(select(func.count()).select_from(ExportRow).where(where)) or 0
            rows = s.scalars(
                select(ExportRow).where(where).order_by(ExportRow.created_at.desc(), ExportRow.id.desc())
                .limit(per).offset((page - 1) * per)
            )
            return [_record(r) for r in rows], total

    def exports_for_key(self, workspace_id: int, key: str) -> list[ExportRecord]:
        """Records whose idempotency key is `key` or `key:<n>` (a bulk row's retries), newest first."""
        with self.session() as s:
            rows = s.scalars(
                select(ExportRow).where(ExportRow.workspace_id == workspace_id,
                                        (ExportRow.idempotency_key == key)
                                        | ExportRow.idempotency_key.startswith(f"{key}:", autoescape=True))
                .order_by(ExportRow.id.desc())
            )
            return [_record(r) for r in rows]

    def exports_in_progress(self, limit: int = 500) -> list[ExportRecord]:
        """The oldest in_progress records of every workspace (what the reconciler checks)."""
        with self.session() as s:
            rows = s.scalars(select(ExportRow).where(ExportRow.status == "in_progress")
                             .order_by(ExportRow.id).limit(limit))
            return [_record(r) for r in rows]

    def connector_exports(self, workspace_id: int, email_id: int, connector_id: int, *,
                          before_id: int) -> list[ExportRecord]:
        """Earlier exports of an email to a connector, newest first (for update_previous_export)."""
        with self.session() as s:
            rows = s.scalars(
                select(ExportRow).where(ExportRow.workspace_id == workspace_id, ExportRow.email_id == email_id,
                                        ExportRow.connector_id == connector_id, ExportRow.id < before_id,
                                        ExportRow.export_type == "connector")
                .order_by(ExportRow.id.desc()).limit(50)
            )
            return [_record(r) for r in rows]

    def update_export(self, export_id: int, **changes: Any) -> ExportRecord:
        """Set fields of a record (model values are stored as JSON) and bump `updated_at`."""
        columns = {"metadata": "export_metadata"}
        with self.session() as s:
            row = s.get(ExportRow, export_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"export {export_id} not found")
            for name, value in changes.items():
                setattr(row, columns.get(name, name), _jsonable(value))
            row.updated_at = utcnow()
            s.flush()
            return _record(row)

    def fail_if_in_progress(self, export_id: int, *reasons: str) -> ExportRecord | None:
        """Mark a record failed with `reasons` under `base`, unless it already ended (the first
        terminal state wins: the status changes by a conditional UPDATE, so of two writers racing
        on an in_progress record exactly one changes it, on SQLite as on PostgreSQL)."""
        with self.session() as s:
            if not self._claim_end(s, export_id, status="failed"):
                row = s.get(ExportRow, export_id)
                return None if row is None else _record(row)
            row = s.get(ExportRow, export_id, populate_existing=True)
            assert row is not None
            errors = dict(row.export_errors or {})
            errors["base"] = [*(errors.get("base") or []), *reasons]
            row.export_errors = errors
            s.flush()
            return _record(row)

    def finish_export(self, export_id: int, **changes: Any) -> ExportRecord:
        """Write an export's final fields (`status` among them) only if it is still in_progress, and
        return the record as stored: unchanged when something else (the reconciler, a state hook)
        ended it first. A record failed as lost never flips to completed."""
        columns = {"metadata": "export_metadata"}
        values = {columns.get(name, name): _jsonable(value) for name, value in changes.items()}
        with self.session() as s:
            status = values.pop("status", None)
            if self._claim_end(s, export_id, status=status or "completed"):
                row = s.get(ExportRow, export_id, populate_existing=True)
                assert row is not None
                for name, value in values.items():
                    setattr(row, name, value)
                s.flush()
                return _record(row)
            row = s.get(ExportRow, export_id, populate_existing=True)
            if row is None:
                raise NotFoundError(f"export {export_id} not found")
            return _record(row)

    @staticmethod
    def _claim_end(s: Session, export_id: int, *, status: str) -> bool:
        """`UPDATE ... SET status WHERE id AND status = 'in_progress'`: True if this call ended it."""
        result = s.execute(
            update(ExportRow)
            .where(ExportRow.id == export_id, ExportRow.status == "in_progress")
            .values(status=status, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


    # -- the outbox of flow runs to create (issue 13; the dispatcher: emailexport.runs.dispatcher) ---------

    def claim_dispatches(self, limit: int, lease_seconds: float) -> list[Dispatch]:
        """Up to `limit` due outbox rows, oldest first, each claimed for `lease_seconds` (its
        `next_attempt_at` moved forward under a compare-and-set, so a second dispatcher skips it)."""
        now = datetime.now(UTC)
        claimed: list[Dispatch] = []
        with self.session() as s:
            rows = s.execute(select(OutboxRow.export_id, OutboxRow.next_attempt_at, OutboxRow.connector_type,
                                    OutboxRow.queued_at, OutboxRow.attempts)
                             .where(OutboxRow.next_attempt_at <= now)
                             .order_by(OutboxRow.next_attempt_at, OutboxRow.export_id).limit(limit)).all()
            lease = now + timedelta(seconds=lease_seconds)
            for export_id, due, connector_type, queued_at, attempts in rows:
                taken = s.execute(update(OutboxRow).where(OutboxRow.export_id == export_id,
                                                          OutboxRow.next_attempt_at == due)
                                  .values(next_attempt_at=lease))
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(Dispatch(export_id, connector_type, _utc(queued_at), attempts))
        return claimed

    def finish_dispatch(self, export_id: int, flow_run_id: str) -> ExportRecord | None:
        """The run exists: store its id on the record and remove the outbox row, in one transaction."""
        with self.session() as s:
            s.execute(delete(OutboxRow).where(OutboxRow.export_id == export_id))
            row = s.get(ExportRow, export_id, with_for_update=True)
            if row is None:
                return None
            if row.flow_run_id is None:
                row.flow_run_id = flow_run_id
                row.updated_at = utcnow()
            s.flush()
            return _record(row)

    def retry_dispatch(self, export_id: int, error: str, at: datetime) -> None:
        """Creating the run failed transiently: try again at `at`."""
        with self.session() as s:
            s.execute(update(OutboxRow).where(OutboxRow.export_id == export_id)
                      .values(attempts=OutboxRow.attempts + 1, last_error=error[:2000], next_attempt_at=at))

    def abandon_dispatch(self, export_id: int, reason: str) -> ExportRecord | None:
        """Give up creating the run: the record fails with `reason` (unless it already ended) and
        the outbox row goes, in one transaction."""
        with self.session() as s:
            s.execute(delete(OutboxRow).where(OutboxRow.export_id == export_id))
            row = s.get(ExportRow, export_id, with_for_update=True)
            if row is None:
                return None
            if row.status == "in_progress":
                errors = dict(row.export_errors or {})
                errors["base"] = [*(errors.get("base") or []), reason]
                row.export_errors = errors
                row.status = "failed"
                row.updated_at = utcnow()
            s.flush()
            return _record(row)

    def dispatch_pending(self, export_id: int) -> bool:
        """Whether the record still waits in the outbox for its flow run."""
        with self.session() as s:
            return s.get(OutboxRow, export_id) is not None

    def dispatch_backlog(self) -> int:
        """How many records wait in the outbox."""
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(OutboxRow)) or 0


@dataclass(frozen=True)
class Dispatch:
    """A claimed outbox row."""

    export_id: int
    connector_type: str | None
    queued_at: datetime
    attempts: int


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything the store writes is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _record(row: ExportRow) -> ExportRecord:
    return ExportRecord(
        id=row.id,
        workspace_id=row.workspace_id,
        organization_id=row.organization_id,
        connector_id=row.connector_id,
        cdn_connector_id=row.cdn_connector_id,
        email_id=row.email_id,
        email=EmailRef(id=row.email_id, name=row.email_name),
        dynamic_content_profile_id=row.dynamic_content_profile_id,
        status=row.status,  # type: ignore[arg-type]
        export_type=row.export_type,  # type: ignore[arg-type]
        options=ExportOptions.model_validate(row.options),
        integration_name=row.integration_name,
        metadata=ExportMetadata.model_validate(row.export_metadata),
        export_errors=row.export_errors,
        warnings=row.warnings,
        created_at=row.created_at,
        updated_at=row.updated_at,
        download_zip_url=row.download_zip_url,
        download_json_url=row.download_json_url,
        open_in_integration_url=row.open_in_integration_url,
        flow_run_id=row.flow_run_id,
        results={k: LocaleOutcome.model_validate(v) for k, v in (row.results or {}).items()},
    )
