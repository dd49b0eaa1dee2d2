"""Preview settings: environment (prefix `EMAILEXPORT_PREVIEWS_`) -> `PreviewSettings`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PreviewSettings"]


class PreviewSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EMAILEXPORT_PREVIEWS_", env_file=".env", extra="ignore")

    chromium_path: str | None = Field(default=None, description="the browser; default: `chromium` on PATH")
    max_pages: int = Field(default=3, ge=1, le=32, description="browser pages open at once, per export")
    page_timeout_seconds: float = Field(default=30.0, gt=0, description="load + screenshot of one page")
    launch_timeout_seconds: float = Field(default=60.0, gt=0, description="starting the browser")
    variants: bool = Field(default=True, description="also screenshot each conditional's other branches (desktop)")
