"""The export endpoints: create (POST), read one, list, download (docs/contract.md)."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy.exc import IntegrityError

from emailexport.api.auth import ApiError, authorize
from emailexport.api.schemas import ExportPage, FailedToSave, Message, Pagination
from emailexport.errors import NotFoundError, ValidationFailed
from emailexport.models import ExportRecord
from emailexport.runs.flow_runs import FlowRuns, PrefectUnavailable
from emailexport.runs.reconcile import reconcile_record
from emailexport.settings import Settings
from emailexport.signing import preview_kind, sign_download_url, signing_key, verify
from emailexport.storage import OutputStorage
from emailexport.store import Store
from emailexport.validation import validate_export_request

__all__ = ["build_router"]

log = logging.getLogger("emailexport.api")

# 32-bit ids: larger numbers can name nothing, and SQLite/PostgreSQL integers would overflow on them.
_MAX_ID = 2**31 - 1
WorkspaceId = Annotated[int, Path(ge=1, le=_MAX_ID, description="Workspace ID")]
ExportId = Annotated[int, Path(ge=1, le=_MAX_ID, description="Export ID")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Message, "description": "Unauthorized: no, unknown or malformed bearer token"},
    403: {"model": Message, "description": "Forbidden: the token may not use this workspace"},
    404: {"model": Message, "description": "Record not found"},
    422: {"model": FailedToSave, "description": "Unprocessable Entity: every problem, by field path"},
}
_MEDIA = {"zip": "application/zip", "json": "application/json"}


async def _raw_body(request: Request) -> bytes:
    # The body is read raw so that `validate_export_request` (shared with the CLI and the CSV mode)
    # sees exactly what was sent and reports every problem, malformed JSON included.
    return await request.body()


def _fresh_links(record: ExportRecord, settings: Settings) -> ExportRecord:
    """The record with its API download links signed anew (a record read tomorrow has a link that
    opens tomorrow); other links (presigned S3, file://) are left as they are."""
    zip_url, json_url = record.download_zip_url, record.download_json_url
    if zip_url is None and json_url is None:
        return record
    return record.model_copy(update={
        "download_zip_url": sign_download_url(zip_url, settings) if zip_url else None,
        "download_json_url": sign_download_url(json_url, settings) if json_url else None,
    })


def _json(record: ExportRecord, settings: Settings) -> JSONResponse:
    return JSONResponse(_fresh_links(record, settings).model_dump(mode="json"))


def build_router(settings: Settings, store: Store, runs: FlowRuns, storage: OutputStorage) -> APIRouter:
    router = APIRouter(prefix="/api/v1/workspaces/{workspace_id}/exports", tags=["exports"], responses=_ERRORS)

    def record_of(request: Request, workspace_id: int, export_id: int) -> ExportRecord:
        authorize(store, request, workspace_id)
        record = store.export(export_id)
        if record is None or record.workspace_id != workspace_id:
            raise ApiError(404, "Record not found")
        return record

    @router.post(
        "", summary="Create Export", response_model=ExportRecord, response_description="Successful",
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ExportRequest"}}}}},
    )
    def create_export(
        request: Request,
        workspace_id: WorkspaceId,
        body: Annotated[bytes, Depends(_raw_body)],
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
    ) -> Any:
        """Creates a new export: the record is stored `in_progress` (accepted) together with an outbox
        row in one transaction, and the answer goes out; the dispatcher then creates the flow run of
        the export deployment that does the work (`flow_run_id` is null until then). Prefect being
        unreachable does not fail the request: the export waits, and is failed with the reason only
        if its run cannot be created within `EMAILEXPORT_DISPATCH_MAX_WAIT_SECONDS`."""
        authorize(store, request, workspace_id)
        if idempotency_key and (first := store.export_by_idempotency_key(workspace_id, idempotency_key)):
            return _json(first, settings)
        try:
            checked = validate_export_request(store, workspace_id, body)
        except NotFoundError:
            raise ApiError(404, "Record not found") from None
        except ValidationFailed as exc:
            return JSONResponse({"message": exc.args[0], "errors": exc.errors}, status_code=422)
        req = checked.request
        try:
            record = store.create_export(
                workspace=checked.workspace, email=checked.email, export_type=req.export_type, options=req.options,
                connector_id=req.connector_id, cdn_connector_id=req.cdn_connector_id,
                dynamic_content_profile_id=req.dynamic_content_profile_id,
                integration_name=checked.integration_name,
                idempotency_key=idempotency_key or None,
                queue=True, connector_type=checked.connector.type if checked.connector else None,
            )
        except IntegrityError:
            # Two POSTs with one key raced past the lookup: the unique constraint let one win.
            winner = store.export_by_idempotency_key(workspace_id, idempotency_key) if idempotency_key else None
            if winner is None:
                raise
            return _json(winner, settings)
        log.info("Export %s accepted (%s of email %s, %d locale(s))", record.id, req.export_type,
                 checked.email.id, len(req.options.locales))
        return _json(record, settings)

    @router.get("/{export_id}", summary="Show Export", response_model=ExportRecord,
                response_description="Successful")
    def show_export(request: Request, workspace_id: WorkspaceId, export_id: ExportId) -> Any:
        """An export record. An in_progress record whose flow run has died is marked failed first."""
        record = record_of(request, workspace_id, export_id)
        if record.status == "in_progress":
            try:
                record = reconcile_record(store, runs, record, settings)
            except PrefectUnavailable as exc:
                log.warning("Export %s: could not check its flow run: %s", record.id, exc)
        return _json(record, settings)

    @router.get("", summary="List Exports", response_model=ExportPage, response_description="Successful")
    def list_exports(
        request: Request,
        workspace_id: WorkspaceId,
        per: Annotated[int, Query(ge=1, le=100)] = 25,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> Any:
        """A page of the workspace's export records, newest first."""
        authorize(store, request, workspace_id)
        records, total = store.list_exports(workspace_id, page=page, per=per)
        body = ExportPage(results=[_fresh_links(r, settings) for r in records],
                          pagination=Pagination(per=per, page=page, total=total))
        return JSONResponse(body.model_dump(mode="json"))

    @router.get(
        "/{export_id}/download/{kind}", summary="Download Export", response_class=FileResponse,
        responses={200: {"description": "The export's file", "content": {
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "string", "format": "binary"}}}}},
    )
    def download(
        request: Request, workspace_id: WorkspaceId, export_id: ExportId, kind: Literal["zip", "json"],
        expires: Annotated[int | None, Query(ge=0, le=2**62, description="signed link: expiry (Unix time)")] = None,
        signature: Annotated[str | None, Query(max_length=128, description="signed link: its HMAC")] = None,
    ) -> Any:
        """The zip or JSON file of an export whose outputs are on this server's local storage. With the
        `expires` and `signature` of a signed link (the record's `download_*_url`) no token is needed
        until it expires; a changed or expired link is a 403. Without them, the bearer token."""
        from tasks.package import output_keys

        if expires is not None or signature is not None:
            problem = verify(export_id, kind, expires or 0, signature or "", signing_key(settings))
            if problem:
                raise ApiError(403, problem)
            record = store.export(export_id)
            if record is None or record.workspace_id != workspace_id:
                raise ApiError(404, "Record not found")
        else:
            record = record_of(request, workspace_id, export_id)
        url = record.download_zip_url if kind == "zip" else record.download_json_url
        if url is None or not storage.is_local:
            raise ApiError(404, "Record not found")
        # The file is named by the record (its id and email), never by anything in the request.
        key = output_keys(record)[kind]
        if not storage.exists(key):
            raise ApiError(404, "Record not found")
        return FileResponse(storage.path(key), media_type=_MEDIA[kind], filename=key.rsplit("/", 1)[-1])

    @router.get(
        "/{export_id}/previews/{locale}/{name}", summary="Preview Image", response_class=Response,
        responses={200: {"description": "One preview PNG of the export (docs/previews.md)",
                         "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}},
    )
    def preview_image(
        request: Request, workspace_id: WorkspaceId, export_id: ExportId,
        locale: Annotated[str, Path(max_length=16, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")],
        name: Literal["desktop.png", "mobile.png", "dark.png", "thumbnail.png"],
        expires: Annotated[int | None, Query(ge=0, le=2**62, description="signed link: expiry (Unix time)")] = None,
        signature: Annotated[str | None, Query(max_length=128, description="signed link: its HMAC")] = None,
    ) -> Any:
        """One screenshot of an export made with `options.previews` (`previews/<locale>/<name>` in its
        zip), from any output storage. A signed link (what the Prefect summary artifact shows) needs
        no token until it expires; otherwise the bearer token."""
        import io
        import zipfile

        from tasks.package import output_keys

        if expires is not None or signature is not None:
            problem = verify(export_id, preview_kind(locale, name), expires or 0, signature or "",
                             signing_key(settings))
            if problem:
                raise ApiError(403, problem)
            record = store.export(export_id)
            if record is None or record.workspace_id != workspace_id:
                raise ApiError(404, "Record not found")
        else:
            record = record_of(request, workspace_id, export_id)
        key = output_keys(record)["zip"]
        if not record.options.previews or locale not in record.options.locales or not storage.exists(key):
            raise ApiError(404, "Record not found")
        try:
            with zipfile.ZipFile(io.BytesIO(storage.read(key))) as archive:
                data = archive.read(f"previews/{locale}/{name}")
        except (KeyError, zipfile.BadZipFile):
            raise ApiError(404, "Record not found") from None
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})

    return router
