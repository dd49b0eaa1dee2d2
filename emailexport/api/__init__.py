"""The Create Export API (FastAPI): `create_app()` builds it; `emailexport serve` runs it with uvicorn."""

from emailexport.api.app import create_app

__all__ = ["create_app"]
