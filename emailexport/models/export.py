"""The Create Export request and the export record (docs/contract.md; the seed's field names)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from emailexport.locales import LocaleCode

__all__ = [
    "ExportMetadata",
    "ExportOptions",
    "ExportRecord",
    "ExportRequest",
    "ExportStatus",
    "ExportType",
    "ImageMode",
    "LocaleOutcome",
    "Timestamp",
    "format_timestamp",
    "utcnow",
]

ExportType = Literal["html", "connector", "json", "pdf"]
ExportStatus = Literal["in_progress", "completed", "failed"]
ImageMode = Literal["use_cdn", "include_in_zip", "use_cdn_connector"]


def utcnow() -> datetime:
    """Now in UTC, at millisecond precision (what the record shows)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_timestamp(value: datetime) -> str:
    """`2023-08-23T10:30:00.000Z`: ISO 8601 in UTC with milliseconds, as in the seed."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str, when_used="json")]


class ExportOptions(BaseModel):
    """`options` of the request, normalized (defaults filled in) as the record shows it."""

    model_config = ConfigDict(extra="forbid")

    image_mode: ImageMode = "use_cdn"
    minify_html: bool = False
    locales: list[LocaleCode]
    # Capped: these are echoed into records, ESP resources and summaries (issue 18).
    folder_id: str | None = Field(default=None, max_length=255)
    campaign_id: str | None = Field(default=None, max_length=255)
    export_field_values: dict[str, str] = {}
    per_locale_options: dict[str, dict[str, Any]] = {}
    resource_name: str | None = Field(default=None, max_length=255)
    update_previous_export: bool = False
    # (added, an extension of the contract's options) browser-rendered previews of every locale in
    # the zip of an html or pdf export: previews/index.html and previews/<locale>/<view>.png.
    previews: bool = False
    # Accepted here for clients that send it inside options; moved to the top level on save.
    cdn_connector_id: int | None = Field(default=None, exclude=True)


class ExportRequest(BaseModel):
    """The Create Export body. Cross-record rules live in `emailexport.validation`."""

    model_config = ConfigDict(extra="forbid")

    email_id: int
    export_type: ExportType
    connector_id: int | None = None
    dynamic_content_profile_id: str | None = None
    cdn_connector_id: int | None = None
    options: ExportOptions


class ExportMetadata(BaseModel):
    conditional_ids: list[int] = []
    personalization_tag_ids: list[int] = []
    image_ids: list[str] = []  # library image ids are uuids (docs/domain.md), so strings


class LocaleOutcome(BaseModel):
    """(added) What happened to one locale: `results` of the record."""

    status: Literal["completed", "failed"]
    size_bytes: int | None = None
    resource_id: str | None = None
    resource_url: str | None = None


class EmailRef(BaseModel):
    id: int
    name: str


def _base_only() -> dict[str, list[str] | None]:
    return {"base": None}


class ExportRecord(BaseModel):
    """The export record: what POST returns and GET shows."""

    id: int
    organization_id: int
    connector_id: int | None
    cdn_connector_id: int | None
    email_id: int
    email: EmailRef
    dynamic_content_profile_id: str | None
    status: ExportStatus
    export_type: ExportType
    options: ExportOptions
    integration_name: str | None = None
    metadata: ExportMetadata = ExportMetadata()
    # {"base": [..] | None, "<locale>": [..]}
    export_errors: dict[str, list[str] | None] = Field(default_factory=lambda: _base_only())
    warnings: dict[str, list[str] | None] = Field(default_factory=lambda: _base_only())
    created_at: Timestamp
    updated_at: Timestamp
    download_zip_url: str | None = None
    download_json_url: str | None = None
    open_in_integration_url: str | None = None
    flow_run_id: str | None = None
    results: dict[str, LocaleOutcome] = {}
    workspace_id: int = Field(exclude=True)
