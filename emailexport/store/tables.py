"""The tables. Workspace data is stored as validated documents; export records as columns.

Workspace entities (design systems, emails, conditionals, ...) are read whole and written whole
(by bundle import), never queried by their inner fields, so each is one JSON document keyed by
(workspace, kind, id). Export records are queried by status, email and connector, so they get
real columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ApiTokenRow", "Base", "DocumentRow", "ExportRow", "ImageFetchRow", "OrganizationRow", "OutboxRow", "WorkspaceRow",
]


class Base(DeclarativeBase):
    pass


class OrganizationRow(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255))


class WorkspaceRow(Base):
    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(255))


class DocumentRow(Base):
    __tablename__ = "workspace_documents"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    label: Mapped[str] = mapped_column(String(255), default="")
    workspace_ids: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ExportRow(Base):
    __tablename__ = "exports"
    __table_args__ = (
        Index("ix_exports_workspace_created", "workspace_id", "created_at"),
        Index("ix_exports_email_connector_status", "email_id", "connector_id", "status"),
        UniqueConstraint("workspace_id", "idempotency_key", name="uq_exports_idempotency"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    organization_id: Mapped[int] = mapped_column(Integer)
    email_id: Mapped[int] = mapped_column(Integer)
    email_name: Mapped[str] = mapped_column(String(255))
    connector_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cdn_connector_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    dynamic_content_profile_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    export_type: Mapped[str] = mapped_column(String(16))
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    integration_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    export_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    export_errors: Mapped[dict[str, Any]] = mapped_column(JSON)
    warnings: Mapped[dict[str, Any]] = mapped_column(JSON)
    results: Mapped[dict[str, Any]] = mapped_column(JSON)
    download_zip_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    download_json_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    open_in_integration_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ImageFetchRow(Base):
    """The last fetch of one image URL (keyed by the URL's SHA-256: URLs can be long): what it served
    and the validators to ask "changed since?" with. The bytes are in the output storage by hash."""

    __tablename__ = "image_fetches"

    url_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)  # display form only (no query string, no userinfo)
    etag: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(32))
    file_size: Mapped[int] = mapped_column(Integer)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboxRow(Base):
    """An accepted export whose flow run is still to be created (issue 13): written in the same
    transaction as its record, deleted in the same transaction that stores the run's id. The
    dispatcher claims due rows by moving `next_attempt_at` forward (a lease), so two dispatchers do
    not work on one row at once; Prefect's idempotency key makes a repeated creation harmless."""

    __tablename__ = "export_outbox"
    __table_args__ = (Index("ix_export_outbox_next_attempt", "next_attempt_at"),)

    export_id: Mapped[int] = mapped_column(ForeignKey("exports.id"), primary_key=True, autoincrement=False)
    connector_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
