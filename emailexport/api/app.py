"""The FastAPI application: `create_app()` (uvicorn: `uvicorn --factory emailexport.api:create_app`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from emailexport.api.auth import ApiError
from emailexport.api.routes import build_router
from emailexport.models import ExportRequest
from emailexport.runs.flow_runs import FlowRuns
from emailexport.runtime import open_storage, open_store
from emailexport.settings import Settings, get_settings
from emailexport.store import Store

__all__ = ["create_app"]

log = logging.getLogger("emailexport.api")


def _prefect_api_url() -> str | None:
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc[1:]) or str(loc[0])


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own 422 shape never appears: bad path ids are unknown records, everything else
    (query, headers) is a 422 in the contract's shape."""
    errors: dict[str, list[str]] = {}
    assert isinstance(exc, RequestValidationError)
    for error in exc.errors():
        if error["loc"][0] == "path":
            return JSONResponse({"message": "Record not found"}, status_code=404)
        errors.setdefault(_field(error["loc"]), []).append(str(error["msg"]))
    return JSONResponse({"message": "Failed to save", "errors": errors}, status_code=422)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"message": exc.message}, status_code=exc.status_code)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = "Record not found" if exc.status_code == 404 else str(exc.detail)
    return JSONResponse({"message": message}, status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Logged with its traceback for the operator; the client gets one line without internals.
    log.exception("Unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse({"message": "Internal error"}, status_code=500)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus what it cannot infer: the request body (read raw, so that validation
    is the shared one) and the bearer scheme."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    # Prefixed so the request's ExportOptions (which accepts `cdn_connector_id`) cannot replace the
    # record's.
    request_schema = ExportRequest.model_json_schema(ref_template="#/components/schemas/ExportRequest_{model}")
    schemas.update({f"ExportRequest_{name}": value for name, value in request_schema.pop("$defs", {}).items()})
    schemas["ExportRequest"] = request_schema
    document["components"]["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    document["security"] = [{"bearerAuth": []}]
    app.openapi_schema = document
    return document


def create_app(settings: Settings | None = None, *, store: Store | None = None,
               flow_runs: FlowRuns | None = None) -> FastAPI:
    """The API over one store and one Prefect server (default: from the settings and from Prefect's
    own `PREFECT_API_URL`)."""
    settings = settings or get_settings()
    store = store or open_store(settings)
    runs = flow_runs or FlowRuns(_prefect_api_url(), settings.export_deployment)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        runs.close()

    # /docs and /redoc with their assets served from the fastapi-offline package (Swagger UI 5,
    # ReDoc), so the page works on a machine without internet (FastAPI's default loads a CDN).
    app = FastAPIOffline(
        title="emailexport", version="0.1.0", lifespan=lifespan, static_url="/docs-assets",
        description="The Create Export API: each export becomes a monitored Prefect flow run.",
    )
    app.include_router(build_router(settings, store, runs, open_storage(settings)))
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
