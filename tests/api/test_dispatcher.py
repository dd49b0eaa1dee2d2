"""The outbox and its dispatcher (issue 13), against a real Prefect server: the API answers without
calling Prefect, an accepted export survives the API process dying, exports wait out a Prefect outage
and then run, or fail with a clear reason once `dispatch_max_wait_seconds` has passed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
from fastapi.testclient import TestClient

from deployments.supervisor import free_port
from emailexport.api import create_app
from emailexport.runs.dispatcher import Dispatcher
from emailexport.runs.flow_runs import FlowRuns
from emailexport.runs.reconcile import reconcile_pass
from emailexport.settings import Settings, get_settings
from tests.api.conftest import BIN, ROOT, TOKENS, auth, wait_http

URL = "/api/v1/workspaces/3/exports"
BODY = {"email_id": 1, "export_type": "html", "options": {"locales": ["en-US", "de-DE"]}}


def closed_port_runs() -> FlowRuns:
    """A Prefect API URL nothing listens on: what the dispatcher sees during an outage."""
    return FlowRuns(f"http://127.0.0.1:{free_port()}/api")


def runs_named(server: str, name: str) -> list[dict]:
    response = httpx.post(f"{server}/flow_runs/filter", json={"flow_runs": {"name": {"any_": [name]}}})
    response.raise_for_status()
    return response.json()


def test_create_answers_while_prefect_is_down_and_the_dispatcher_creates_the_run_later(workspaces, prefect_server):
    app = create_app(get_settings(), store=workspaces, flow_runs=closed_port_runs())
    with TestClient(app) as client:
        response = client.post(URL, json=BODY, headers=auth())
    assert response.status_code == 200, response.text
    accepted = response.json()
    assert accepted["status"] == "in_progress" and accepted["flow_run_id"] is None
    assert workspaces.dispatch_pending(accepted["id"])
    report = Dispatcher(workspaces, FlowRuns(prefect_server), get_settings()).dispatch_once()
    assert (report.claimed, report.created) == (1, 1)
    record = workspaces.require_export(accepted["id"])
    assert record.flow_run_id and not workspaces.dispatch_pending(record.id)
    (run,) = runs_named(prefect_server, f"export-{record.id}-mini-news")
    assert run["id"] == record.flow_run_id and run["parameters"] == {"export_id": record.id}


def test_records_wait_out_a_prefect_outage_then_run(workspaces, prefect_server):
    app = create_app(get_settings(), store=workspaces, flow_runs=closed_port_runs())
    with TestClient(app) as client:
        ids = [client.post(URL, json=BODY, headers=auth()).json()["id"] for _ in range(3)]
    dispatcher = Dispatcher(workspaces, closed_port_runs(), get_settings())
    report = dispatcher.dispatch_once()
    assert (report.claimed, report.waiting, report.created, report.failed) == (3, 3, 0, 0)
    # The reconciler leaves records in the outbox alone, however long they wait.
    assert reconcile_pass(workspaces, FlowRuns(prefect_server), Settings(reconcile_unlaunched_seconds=30)) == (3, 0)
    assert dispatcher.dispatch_once().claimed == 0  # backing off: not due yet
    assert all(r.status == "in_progress" and r.flow_run_id is None for r in map(workspaces.require_export, ids))
    dispatcher.runs = FlowRuns(prefect_server)  # Prefect is back
    time.sleep(1.2)  # the first backoff is 1 s
    assert dispatcher.dispatch_once().created == 3
    for export_id in ids:
        record = workspaces.require_export(export_id)
        assert record.status == "in_progress" and record.flow_run_id
        assert len(runs_named(prefect_server, f"export-{export_id}-mini-news")) == 1
    assert workspaces.dispatch_backlog() == 0


def test_a_record_fails_with_the_reason_only_after_the_bound(workspaces):
    app = create_app(get_settings(), store=workspaces, flow_runs=closed_port_runs())
    with TestClient(app) as client:
        export_id = client.post(URL, json=BODY, headers=auth()).json()["id"]
    dispatcher = Dispatcher(workspaces, closed_port_runs(), Settings(dispatch_max_wait_seconds=3))
    started = time.monotonic()
    failed_at = None
    while time.monotonic() - started < 15:
        if dispatcher.dispatch_once().failed:
            failed_at = time.monotonic() - started
            break
        assert workspaces.require_export(export_id).status == "in_progress"
        time.sleep(0.2)
    assert failed_at is not None and failed_at >= 2.5
    record = workspaces.require_export(export_id)
    assert record.status == "failed" and record.flow_run_id is None
    (reason,) = record.export_errors["base"]
    assert reason.startswith("the export flow run could not be created within 3 s: ")
    assert "Prefect server is not reachable" in reason
    assert workspaces.dispatch_backlog() == 0


def test_two_dispatchers_create_exactly_one_run_per_export(workspaces, prefect_server):
    app = create_app(get_settings(), store=workspaces, flow_runs=closed_port_runs())
    with TestClient(app) as client:
        ids = [client.post(URL, json=BODY, headers=auth()).json()["id"] for _ in range(12)]
    settings = Settings(dispatch_batch=5)
    dispatchers = [Dispatcher(workspaces, FlowRuns(prefect_server), settings) for _ in range(2)]
    created = [0, 0]

    def drain(index: int) -> None:
        while (report := dispatchers[index].dispatch_once()).claimed:
            created[index] += report.created

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(created) == 12
    for export_id in ids:
        (run,) = runs_named(prefect_server, f"export-{export_id}-mini-news")
        assert workspaces.require_export(export_id).flow_run_id == run["id"]


def test_an_export_accepted_by_an_api_process_killed_right_after_answering_still_runs(workspaces, prefect_server,
                                                                                      data_dir):
    """The API in its own process (uvicorn) with Prefect unreachable answers the POST and is SIGKILLed;
    the `emailexport dispatcher` command started afterwards creates the run."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EMAILEXPORT_"))}
    env.update(EMAILEXPORT_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_API_URL=f"http://127.0.0.1:{free_port()}/api")
    api = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "emailexport.api:create_app",
                            "--port", str(port)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 60, api)
        response = httpx.post(f"http://127.0.0.1:{port}{URL}", json=BODY,
                              headers={"Authorization": f"Bearer {TOKENS['ws3']}"}, timeout=30)
        os.kill(api.pid, signal.SIGKILL)
    finally:
        api.kill()
        api.wait(30)
    assert response.status_code == 200, response.text
    export_id = response.json()["id"]
    env["PREFECT_API_URL"] = prefect_server
    dispatcher = subprocess.Popen([str(BIN / "emailexport"), "dispatcher"], env=env, cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while workspaces.require_export(export_id).flow_run_id is None and time.monotonic() < deadline:
            assert dispatcher.poll() is None
            time.sleep(0.3)
    finally:
        dispatcher.send_signal(signal.SIGTERM)
        output = dispatcher.communicate(timeout=60)[0].decode()
    record = workspaces.require_export(export_id)
    assert record.flow_run_id, output
    assert dispatcher.returncode == 0, output
    (run,) = runs_named(prefect_server, f"export-{export_id}-mini-news")
    assert run["id"] == record.flow_run_id
