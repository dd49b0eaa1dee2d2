"""Response bodies of the API besides the export record (docs/contract.md)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from emailexport.models import ExportRecord

__all__ = ["ExportPage", "FailedToSave", "Message", "Pagination"]


class Message(BaseModel):
    """401, 403, 404 and 503 bodies."""

    message: str = Field(examples=["Record not found"])


class FailedToSave(BaseModel):
    """422: every problem found, by the request's field path."""

    message: str = Field(examples=["Failed to save"])
    errors: dict[str, list[str]] = Field(examples=[{"options.locales": ["fr-FR is not a locale of email 1"]}])


class Pagination(BaseModel):
    per: int
    page: int
    total: int


class ExportPage(BaseModel):
    """A page of a workspace's export records, newest first."""

    results: list[ExportRecord]
    pagination: Pagination
