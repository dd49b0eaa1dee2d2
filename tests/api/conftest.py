"""Fixtures of the API tests: a real Prefect server in a subprocess (its own PREFECT_HOME and port;
the session's `prefect_harness` is not touched), the deployments put on it with `prefect deploy --all`
(which checks prefect.yaml), and the app in-process over the test's store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from deployments.supervisor import free_port
from emailexport.api import create_app
from emailexport.api.flow_runs import FlowRuns
from emailexport.models import Organization, Workspace
from emailexport.settings import get_settings
from emailexport.store import Store

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOKENS = {"ws3": "token-for-workspace-3", "ws1": "token-for-workspace-1", "ghost": "token-for-99-and-3"}


def wait_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def prefect_env(home: Path, api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EMAILEXPORT_"))}
    env.update(PREFECT_HOME=str(home), PREFECT_API_URL=api_url, PREFECT_SERVER_ANALYTICS_ENABLED="false")
    return env


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`prefect server start` on a free port; the deployments of prefect.yaml deployed onto it (no
    worker: runs created by the in-process app stay Scheduled). Yields the API URL."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = prefect_env(home, url)
    with open(home / "server.log", "wb") as log:
        server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                  env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"{url}/health", 240, server)  # a loaded shared machine: it has taken over 90 s
        deploy = ("prefect work-pool create emailexport --type process --overwrite && "
                  "prefect --no-prompt deploy --all")
        done = subprocess.run(["bash", "-c", deploy], env={**env, "PATH": f"{BIN}:{env['PATH']}"}, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        yield url
    finally:
        os.killpg(server.pid, 15)
        server.wait(30)


@pytest.fixture
def workspaces(mini: Store) -> Store:
    """The mini workspace (3) plus empty workspaces 1 and 2, and tokens for them."""
    mini.put_organization(Organization(id=8, name="Other"))
    for workspace_id in (1, 2):
        mini.put_workspace(Workspace(id=workspace_id, organization_id=8, name=f"W{workspace_id}"))
    mini.add_token(TOKENS["ws3"], [3])
    mini.add_token(TOKENS["ws1"], [1])
    mini.add_token(TOKENS["ghost"], [99, 3])
    return mini


@pytest.fixture
def api(workspaces: Store, prefect_server: str) -> Iterator[TestClient]:
    """The app over the test's store, creating flow runs on the test Prefect server."""
    app = create_app(get_settings(), store=workspaces, flow_runs=FlowRuns(prefect_server))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def auth(name: str = "ws3") -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}
