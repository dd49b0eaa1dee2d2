"""The embedded default's ephemeral Prefect server: Prefect's own, with one answer changed.

Prefect's API server answers 503 when SQLite refuses a write because another one got in first
(`SQLITE_BUSY`, `SQLITE_BUSY_SNAPSHOT`: a transaction that read, then tried to write after another
connection committed; SQLite cannot wait that one out). Prefect's client retries a 503 after
`Retry-After` seconds when the answer has that header, else after 2, 4, 8 ... seconds. An
ephemeral server's 503 has no header, so on the embedded default a run waited about 2 s for a
conflict that is over in milliseconds: in a bulk run of 60 exports, 4 at once, 20 flow-run
creations were answered 503 and the waits were most of the run's time (issue 14).

`RetrySoon` adds `Retry-After` with a short random pause (0.1-0.5 s: concurrent retries spread
out) to every 503 of the server; nothing else changes. The client's retry count is Prefect's (5),
so a conflict that persists still fails the request after a few seconds, as before it failed
after a minute. `EmbeddedPrefectServer` is Prefect's `SubprocessASGIServer` started with this app
(`emailexport.prefect_server:create_app`); being registered first under Prefect's singleton key, it
is the server `get_client` and the event and log clients of this process use. Prefect is pinned
(pyproject.toml): the subclass relies on `SubprocessASGIServer._run_uvicorn_command`, which
tests/test_embedded.py exercises.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from typing import Any

from prefect.server.api.server import SubprocessASGIServer

__all__ = ["RETRY_AFTER_RANGE", "EmbeddedPrefectServer", "RetrySoon", "create_app"]

RETRY_AFTER_RANGE = (0.1, 0.5)  # seconds, for a 503 of the embedded server

Scope = dict[str, Any]


class RetrySoon:
    """ASGI middleware: a 503 answer gets `Retry-After: <0.1-0.5 s>` unless it has one."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_retry_after(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message.get("status") == 503:
                headers = list(message.get("headers") or [])
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    pause = random.uniform(*RETRY_AFTER_RANGE)
                    message = {**message, "headers": [*headers, (b"retry-after", f"{pause:.2f}".encode())]}
            await send(message)

        await self.app(scope, receive, send_with_retry_after)


def create_app() -> Any:
    """uvicorn factory: Prefect's server app (ephemeral, as Prefect's own subprocess makes it),
    wrapped in `RetrySoon`."""
    from prefect.server.api.server import create_app as prefect_app

    return RetrySoon(prefect_app())


class EmbeddedPrefectServer(SubprocessASGIServer):
    """Prefect's ephemeral server subprocess, serving `create_app` above."""

    def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
        from prefect.settings import get_current_settings

        return subprocess.Popen(
            args=[sys.executable, "-m", "uvicorn", "--factory", f"{__name__}:create_app", "--host", "127.0.0.1",
                  "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
            env={
                **os.environ,
                # what Prefect's own ephemeral server is started with: no UI, ephemeral services
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
                **get_current_settings().to_environment_variables(exclude_unset=True),
            },
        )
