"""Bearer tokens: each token (stored hashed) may use a set of workspaces."""

from __future__ import annotations

from fastapi import Request

from emailexport.store import Store

__all__ = ["ApiError", "authorize"]


class ApiError(Exception):
    """An error answered as `{"message": ...}` with its status code."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise ApiError(401, "Missing bearer token (send the header `Authorization: Bearer <token>`)")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise ApiError(401, "Malformed Authorization header (expected `Bearer <token>`)")
    return token


def authorize(store: Store, request: Request, workspace_id: int) -> None:
    """401 without a known token, 403 when the token may not use the workspace, 404 when the
    workspace does not exist. The token itself never appears in a message or a log."""
    allowed = store.token_workspaces(_bearer(request))
    if allowed is None:
        raise ApiError(401, "Invalid token")
    if workspace_id not in allowed:
        raise ApiError(403, f"This token may not use workspace {workspace_id}")
    if store.workspace(workspace_id) is None:
        raise ApiError(404, "Record not found")
