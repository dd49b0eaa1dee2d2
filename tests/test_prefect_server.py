"""The embedded default's Prefect server (emailexport/prefect_server.py): Prefect's app whose 503s
say when to retry, started with the services nothing of the embedded default uses switched off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import httpx

from emailexport.prefect_server import RETRY_AFTER_RANGE, RetrySoon

ROOT = Path(__file__).resolve().parents[1]


def _app(status: int, headers: list[tuple[bytes, bytes]] | None = None):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status, "headers": headers or []})
        await send({"type": "http.response.body", "body": b"{}"})
    return app


def _get(app) -> httpx.Response:
    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://server") as client:
            return await client.get("/api/flow_runs/")
    return anyio.run(call)


def test_a_503_of_the_embedded_server_asks_for_a_retry_within_half_a_second():
    """Prefect's client waits `Retry-After` seconds when a 503 has it, else 2, 4, 8 ... s: a SQLite
    write conflict of the ephemeral server cost a run 2 s (issue 14)."""
    low, high = RETRY_AFTER_RANGE
    pauses = {float(_get(RetrySoon(_app(503))).headers["retry-after"]) for _ in range(20)}
    assert all(low <= p <= high for p in pauses) and len(pauses) > 1  # spread out, not in lockstep


def test_other_answers_and_a_503_with_its_own_retry_after_are_left_alone():
    assert "retry-after" not in _get(RetrySoon(_app(200))).headers
    assert "retry-after" not in _get(RetrySoon(_app(500))).headers
    assert _get(RetrySoon(_app(503, [(b"Retry-After", b"7")]))).headers.get_list("retry-after") == ["7"]


def test_prefects_client_retries_a_503_of_the_embedded_server_after_the_short_pause(monkeypatch):
    from prefect.client import base

    slept: list[float] = []
    monkeypatch.setattr(base.time, "sleep", slept.append)
    answers = iter([503, 503, 200])

    def transport(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        headers = {"Retry-After": "0.25"} if status == 503 else {}
        return httpx.Response(status, headers=headers, json={})

    client = base.PrefectHttpxSyncClient(transport=httpx.MockTransport(transport), base_url="http://server/api",
                                         enable_csrf_support=False)
    assert client.get("/flow_runs/").status_code == 200
    assert len(slept) == 2 and all(0.25 <= s <= 0.25 * 1.3 for s in slept)  # not 2 and 4 s


def test_the_embedded_server_runs_this_app_with_triggers_and_event_persistence_off(tmp_path):
    """Started as the CLI starts it (a clean environment, the embedded default); a variable the user
    set wins over the defaults switched off here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EMAILEXPORT_"))}
    env.update(EMAILEXPORT_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path), PYTHONPATH=str(ROOT),
               PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED="true")
    probe = """
import json, sys
from emailexport.runtime import use_embedded_prefect, ensure_prefect_api
use_embedded_prefect()
url = ensure_prefect_api()
from prefect.server.api.server import SubprocessASGIServer
server = SubprocessASGIServer()
environ = dict(line.split("=", 1) for line in
               open(f"/proc/{server.server_process.pid}/environ").read().split("\\0") if "=" in line)
cmdline = open(f"/proc/{server.server_process.pid}/cmdline").read().split("\\0")
import httpx
health = httpx.get(url + "/health").status_code
print(json.dumps({"class": type(server).__name__, "cmdline": cmdline, "health": health,
                  "triggers": environ.get("PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED"),
                  "persister": environ.get("PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED")}))
server.stop()
"""
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["class"] == "EmbeddedPrefectServer" and seen["health"] == 200
    assert "emailexport.prefect_server:create_app" in seen["cmdline"]
    assert seen["triggers"].lower() == "false"  # switched off for the embedded server
    assert seen["persister"].lower() == "true"  # the user's own setting kept
