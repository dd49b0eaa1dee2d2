"""Image fetching limits: environment (prefix `EMAILEXPORT_IMAGES_`) -> `ImageSettings` -> the fetcher."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from emailexport.egress import split_hosts

__all__ = ["ImageSettings"]


class ImageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EMAILEXPORT_IMAGES_", env_file=".env", extra="ignore")

    # `host` or `host:port`, comma-separated in the environment. A listed host may resolve to a
    # loopback/private address (an intranet image server, a test server); nothing else may.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_bytes: int = Field(default=5 * 1024 * 1024, ge=1, description="size cap of one image, enforced while reading")
    timeout_seconds: float = Field(default=10.0, gt=0, description="connect/read timeout and total time of one attempt")
    max_redirects: int = Field(default=3, ge=0, le=10)
    max_concurrent_fetches: int = Field(default=8, ge=1, le=64)
    retry_attempts: int = Field(default=3, ge=1, le=10, description="attempts per image, the first included")
    retry_backoff_seconds: float = Field(default=0.5, ge=0, description="first delay; doubled per attempt, plus jitter")
    retry_max_delay_seconds: float = Field(default=10.0, ge=0, description="cap of one delay, Retry-After included")

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return split_hosts(value)

    def allows(self, host: str, port: int) -> bool:
        """True when the operator allow-listed `host` (any port) or `host:port`."""
        host = host.lower().strip("[]")
        return host in self.allowed_hosts or f"{host}:{port}" in self.allowed_hosts
