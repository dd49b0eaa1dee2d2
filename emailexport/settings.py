"""Configuration: environment (prefix `EMAILEXPORT_`) or a `.env` file -> `Settings` -> constructors.

Stage code never reads `os.environ`; it is handed what it needs from here.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EMAILEXPORT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path(".emailexport"), description="where the embedded default keeps its files")
    database_url: str | None = Field(default=None, description="any SQLAlchemy URL; default: SQLite in data_dir")
    storage_url: str | None = Field(default=None, description="fsspec URL for outputs; default: data_dir/outputs")
    public_base_url: str | None = Field(
        default=None, description="base URL of the API serving downloads; unset: download URLs are file:// URLs"
    )
    download_url_expiry_seconds: int = Field(
        default=86400, ge=60, le=604800, description="presigned download URL lifetime (S3); SigV4 max 7 days"
    )
    task_workers: int = Field(default=4, ge=1, le=64, description="thread cap of a flow's task runner")
    render_cache: bool = Field(default=True, description="reuse a locale's render when nothing it depends on changed")
    cache_expiration_days: int = Field(default=30, ge=1)
    runner_limit: int = Field(default=8, ge=1, le=256, description="flow runs `deployments.serve` runs at once")
    runner_niceness: int | None = Field(default=None, ge=0, le=19, description=(
        "nice value `serve` adds to its runner and the flow runs it starts, so that the API and the Prefect server "
        "answer first while exports run (issue 13). Default: 5 when the store is PostgreSQL, 0 on SQLite, where a "
        "lowered flow run holding SQLite's one write lock would make the API wait longer (priority inversion)"))
    bulk_concurrency: int = Field(default=4, ge=1, le=64, description="exports a local bulk run runs at once")
    # The embedded default (issue 14): Prefect's home, result storage and server start-up.
    prefect_home: Path | None = Field(
        default=None, description="PREFECT_HOME of the embedded default; default: data_dir/prefect (never ~/.prefect)"
    )
    prefect_startup_timeout_seconds: int = Field(
        default=180, ge=10, le=3600,
        description="how long to wait for the embedded Prefect server (its first start migrates its database)",
    )
    bulk_csv_url: str | None = Field(default=None, description="the CSV the scheduled bulk-export reads")
    bulk_wait_seconds: float = Field(default=6 * 3600, ge=0, description="how long a bulk run waits for exports")
    # The API and the reconciler (issue 5). The staleness rule is documented in docs/api.md, "Monitoring".
    export_deployment: str = Field(default="export-email/export-email", description="flow/deployment the API runs")
    reconcile_heartbeat_misses: int = Field(
        default=2, ge=1, le=10, description="missed flow run heartbeats after which a running export is dead"
    )
    reconcile_grace_seconds: int = Field(default=15, ge=0, description="slack for event delivery on top of that")
    reconcile_unlaunched_seconds: int = Field(
        default=600, ge=30, description="an in_progress record with no flow run after this long is failed"
    )
    reconcile_pending_seconds: int = Field(
        default=600, ge=30, description="a Pending flow run (process starting) with no heartbeat this long is failed"
    )
    reconcile_max_queued_seconds: int = Field(
        default=86400, ge=60, description="a flow run still waiting for a worker after this long is failed"
    )

    # Template render limits (issue 18, docs/security.md): per locale render and per import check.
    render_timeout_seconds: float = Field(
        default=20, gt=0, le=3600, description="wall time of one locale's render; the worker is killed past it"
    )
    render_memory_mb: int = Field(
        default=512, ge=0, description="address space of a render worker process (RLIMIT_AS); 0: no cap"
    )
    render_max_output_chars: int = Field(default=2_000_000, ge=1000, description="output of one template render")
    render_max_loop_iterations: int = Field(default=1_000_000, ge=100, description="{% for %} iterations per render")
    render_max_int_bits: int = Field(default=4096, ge=64, description="largest number a template may compute")
    render_workers: int = Field(default=2, ge=1, le=64, description="render worker processes per process")

    # The outbox dispatcher and the reconcile loop (issue 13; docs/dispatcher.md).
    dispatch_max_wait_seconds: float = Field(
        default=600, ge=1, description="an accepted export whose flow run cannot be created for this long is failed"
    )
    dispatch_poll_seconds: float = Field(default=0.25, gt=0, le=60, description="how often the outbox is read")
    dispatch_batch: int = Field(default=64, ge=1, le=1000, description="outbox rows claimed per pass")
    dispatch_concurrency: int = Field(default=4, ge=1, le=32, description="flow runs created at once")
    reconcile_interval_seconds: float = Field(
        default=30, ge=1, le=3600, description="how often the dispatcher checks in_progress exports' flow runs"
    )
    download_signing_secret: SecretStr | None = Field(
        default=None, description="HMAC key of signed download links; unset: generated into data_dir (0600)"
    )

    def resolved_database_url(self) -> str:
        """The configured URL, or a SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'emailexport.db').resolve()}"

    def resolved_prefect_home(self) -> Path:
        """The embedded default's Prefect home: its server database and the render cache live here."""
        return (self.prefect_home or self.data_dir / "prefect").resolve()

    def resolved_storage_url(self) -> str:
        """The configured storage URL, or a local folder in the data dir."""
        return self.storage_url or (self.data_dir / "outputs").resolve().as_uri()


@cache
def get_settings() -> Settings:
    """Settings read once per process (tests build their own `Settings` and pass them down)."""
    return Settings()
