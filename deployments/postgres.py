"""A local PostgreSQL cluster for `emailexport serve --postgres`: the store and the Prefect server on
one PostgreSQL instead of two SQLite files, the setup of one strong machine before moving to several.

The cluster lives in `<data_dir>/postgres/data` (created with `initdb` on first use, kept between
runs) and is started and stopped by `serve` with Debian's `pg_ctl` (package `postgresql`; the same
binaries `scripts/services` uses for the tests). It listens on no TCP port, only on a Unix socket in a
directory only its owner can enter, so trust authentication admits nobody but this user (and root);
no password exists to leak. Two databases: `emailexport` (the store) and `prefect` (the Prefect
server). PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` system user.
Unlike the test cluster of `scripts/services`, durability settings stay at PostgreSQL's defaults.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from deployments.supervisor import ServeError

__all__ = ["LocalPostgres"]

_SOCKET_PORT = 5432  # names the socket file only: the cluster listens on no TCP port
_DATABASES = ("emailexport", "prefect")


def _bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise ServeError("--postgres needs PostgreSQL's server binaries: apt-get install postgresql "
                         "(or `scripts/services install`)")
    return found[-1].parent


class LocalPostgres:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.bin = _bin_dir()
        self.as_root = os.geteuid() == 0
        self.socket_dir: Path | None = None

    def _run(self, *argv: str, log: Path | None = None) -> None:
        command = [*(["runuser", "-u", "postgres", "--"] if self.as_root else []), *argv]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            detail = log.read_text()[-2000:] if log and log.exists() else done.stderr[-2000:]
            raise ServeError(f"{Path(argv[0]).name} failed: {detail.strip()}")

    def _own(self, path: Path) -> None:
        if self.as_root:
            shutil.chown(path, "postgres", "postgres")

    def start(self) -> None:
        """initdb on first use, start the server, create the two databases if missing."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._own(self.directory)
        if self.as_root and subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(self.directory)],
                                           capture_output=True).returncode != 0:
            raise ServeError(f"the postgres system user cannot reach {self.directory}: as root, put the data dir "
                             "(EMAILEXPORT_DATA_DIR) where every user may enter its parent folders (e.g. /srv)")
        if not (self.data / "PG_VERSION").exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--locale=C.UTF-8")
        # A short private directory: socket paths are limited to 107 bytes.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="emailexport-pg-"))
        self.socket_dir.chmod(0o700)
        self._own(self.socket_dir)
        log = self.directory / "server.log"
        if self.as_root and not log.exists():
            log.touch()
            self._own(log)
        options = f"-c listen_addresses='' -k {self.socket_dir} -p {_SOCKET_PORT}"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w", "-t", "60", "-o", options,
                  "start", log=log)
        import sqlalchemy as sa

        admin = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                have = set(connection.scalars(sa.text("SELECT datname FROM pg_database")))
                for name in _DATABASES:
                    if name not in have:
                        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()

    def url(self, database: str = "emailexport", driver: str = "psycopg") -> str:
        assert self.socket_dir is not None, "start() first"
        return f"postgresql+{driver}://postgres@/{database}?host={self.socket_dir}"  # 5432: the default

    @property
    def store_url(self) -> str:
        return self.url("emailexport")

    @property
    def prefect_url(self) -> str:
        return self.url("prefect", "asyncpg")

    def stop(self) -> None:
        """A fast shutdown (clients disconnected, data flushed); returns when the server is gone."""
        if self.socket_dir is None:
            return
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
        finally:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = None
