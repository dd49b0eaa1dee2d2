"""CSV bulk mode: read rows from a local path or any storage URL, turn each into a Create Export body.

The CSV format is docs/contract.md's. Each row becomes exactly the body the API would receive and is
validated by the same `validate_export_request`, so a row and a POST can never disagree. Rows are
read in chunks (pandas `chunksize`), so a file of any length is read in bounded memory. Row
numbers are spreadsheet row numbers: the header is row 1, the first data row is row 2 (a quoted
field spanning several lines is still one row).

The whole file is parsed once before the first row is handed out (`_check_structure`): a file that
stops being a readable CSV anywhere (a bad quote or an extra field on line 1202) creates nothing.
A cell over its column's size cap (`CELL_LIMITS`) makes its row an error that names the column and
the size; the value itself is never echoed (terminal, summary, records), only a short excerpt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pandas as pd

from emailexport.errors import TerminalError

__all__ = [
    "CELL_LIMITS",
    "COLUMNS",
    "DEFAULT_CELL_LIMIT",
    "REQUIRED_COLUMNS",
    "BulkFileError",
    "CsvRow",
    "excerpt",
    "read_rows",
    "row_body",
    "row_key",
]

REQUIRED_COLUMNS = ("workspace_id", "email_id", "export_type", "locales")
COLUMNS = (
    *REQUIRED_COLUMNS, "connector_id", "cdn_connector_id", "dynamic_content_profile_id", "image_mode",
    "minify_html", "previews", "folder_id", "campaign_id", "resource_name", "update_previous_export",
    "export_field_values", "per_locale_options", "idempotency_key",
)
# Largest cell per column, in characters; a bigger cell is a row error (JSON columns hold per-locale
# data, hence their larger cap).
DEFAULT_CELL_LIMIT = 1024
CELL_LIMITS = {"export_field_values": 65536, "per_locale_options": 65536}
_EXCERPT = 40
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n", ""}


class BulkFileError(TerminalError):
    """The file as a whole cannot be used (unreadable, empty, missing columns): nothing is created."""


@dataclass
class CsvRow:
    """One data row: its spreadsheet row number, the API body built from it, and field errors."""

    number: int
    values: dict[str, str]
    workspace_id: int | None = None
    body: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)


def read_rows(url: str, *, chunk_size: int = 500, warnings: list[str] | None = None) -> Iterator[CsvRow]:
    """Rows of the CSV at `url` (a path or fsspec URL), chunk by chunk; `warnings` collects
    file-level warnings such as unknown columns. Raises `BulkFileError` before yielding anything
    when the file cannot be used."""
    _check_structure(url, chunk_size)
    try:
        handle = fsspec.open(url, "rb").open()
    except (OSError, ValueError) as exc:
        raise BulkFileError(f"cannot open {url}: {exc}") from None
    with handle:
        try:
            chunks = pd.read_csv(handle, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                                 chunksize=chunk_size, skipinitialspace=False)
            first = next(chunks, None)
        except pd.errors.EmptyDataError:
            raise BulkFileError(f"{url} is empty: it needs a header row with {', '.join(REQUIRED_COLUMNS)}") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise BulkFileError(f"{url} is not a readable CSV file: {exc}") from None
        if first is None:
            raise BulkFileError(f"{url} has no rows")
        columns = [str(c).strip() for c in first.columns]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise BulkFileError(f"{url} is missing the required column(s) {', '.join(missing)}; nothing was created")
        unknown = [c for c in columns if c not in COLUMNS]
        if unknown and warnings is not None:
            warnings.append(f"unknown column(s) ignored: {', '.join(unknown)}")
        number = 1
        for chunk in _chain(first, chunks):
            chunk.columns = columns
            for record in chunk.to_dict("records"):
                number += 1
                yield _parse(number, {k: str(v) for k, v in record.items() if k in COLUMNS})


def _check_structure(url: str, chunk_size: int) -> None:
    """Parse the whole file once (chunk by chunk, rows discarded) so that a file which stops being a
    readable CSV part-way is refused before any row is exported."""
    try:
        handle = fsspec.open(url, "rb").open()
    except (OSError, ValueError) as exc:
        raise BulkFileError(f"cannot open {url}: {exc}") from None
    with handle:
        try:
            for _ in pd.read_csv(handle, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                                 chunksize=chunk_size, skipinitialspace=False):
                pass
        except pd.errors.EmptyDataError:
            return  # reported with its own message by read_rows
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise BulkFileError(f"{url} is not a readable CSV file: {str(exc).strip()}; nothing was created") from None


def excerpt(text: str, limit: int = _EXCERPT) -> str:
    """The start of a long value, with its size: what messages show instead of the value."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _chain(first: pd.DataFrame, rest: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    yield first
    try:
        yield from rest
    except pd.errors.ParserError as exc:
        raise BulkFileError(f"the CSV file stops being readable: {exc}") from None


def _int(row: CsvRow, name: str, *, path: str | None = None) -> int | None:
    text = row.values.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        row.errors.setdefault(path or name, []).append(f"{excerpt(text)!r} is not a whole number")
        return None


def _bool(row: CsvRow, name: str) -> bool | None:
    text = row.values.get(name, "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return None if text == "" else False
    row.errors.setdefault(f"options.{name}", []).append(f"{excerpt(text)!r} is not true or false")
    return None


def _json(row: CsvRow, name: str) -> Any:
    text = row.values.get(name, "").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        row.errors.setdefault(f"options.{name}", []).append(f"invalid JSON: {exc.msg} at character {exc.pos}")
        return None
    if not isinstance(value, dict):
        row.errors.setdefault(f"options.{name}", []).append("must be a JSON object")
        return None
    return value


def _parse(number: int, values: dict[str, str]) -> CsvRow:
    oversized: dict[str, list[str]] = {}
    for name, value in list(values.items()):
        limit = CELL_LIMITS.get(name, DEFAULT_CELL_LIMIT)
        if len(value) > limit:
            oversized[name] = [f"the cell is {len(value)} characters, over the {limit}-character limit"]
            values[name] = excerpt(value)
    row = CsvRow(number=number, values=values)
    if oversized:
        # The row is not exported: its values are only kept as excerpts.
        row.workspace_id = _int(row, "workspace_id") if "workspace_id" not in oversized else None
        row.errors = oversized
        return row
    row.workspace_id = _int(row, "workspace_id")
    if row.workspace_id is None and "workspace_id" not in row.errors:
        row.errors["workspace_id"] = ["is required"]
    row.body = row_body(row)
    return row


def row_body(row: CsvRow) -> dict[str, Any]:
    """The Create Export body a row stands for (type errors recorded in `row.errors`)."""
    v = row.values
    locales = [loc.strip() for loc in v.get("locales", "").replace(";", "|").split("|") if loc.strip()]
    options: dict[str, Any] = {"locales": locales}
    for name in ("image_mode", "folder_id", "campaign_id", "resource_name"):
        if v.get(name, "").strip():
            options[name] = v[name].strip()
    for name in ("minify_html", "update_previous_export", "previews"):
        flag = _bool(row, name)
        if flag is not None:
            options[name] = flag
    for name in ("export_field_values", "per_locale_options"):
        parsed = _json(row, name)
        if parsed is not None:
            options[name] = parsed
    body: dict[str, Any] = {"export_type": v.get("export_type", "").strip(), "options": options}
    email_id = _int(row, "email_id")
    if email_id is not None:
        body["email_id"] = email_id
    elif "email_id" not in row.errors:
        row.errors["email_id"] = ["is required"]
    for name in ("connector_id", "cdn_connector_id"):
        value = _int(row, name)
        if value is not None:
            body[name] = value
    if v.get("dynamic_content_profile_id", "").strip():
        body["dynamic_content_profile_id"] = v["dynamic_content_profile_id"].strip()
    return body


def row_key(row: CsvRow) -> str:
    """What makes two rows "the same export": the `idempotency_key` column if given, else a hash
    of the workspace and the normalized body."""
    own = row.values.get("idempotency_key", "").strip()
    if own:
        return f"bulk:{own}"
    canonical = json.dumps({"workspace_id": row.workspace_id, "body": row.body}, sort_keys=True)
    return "bulk:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]
