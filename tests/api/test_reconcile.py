"""The reconciler: a record whose flow run ended badly, vanished or went silent is marked failed,
on read (the API) and by the dispatcher's reconcile loop, against a real Prefect server."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from emailexport.runs.flow_runs import FlowRuns, RunView
from emailexport.runs.reconcile import dead_reason, reconcile_pass, reconcile_record
from emailexport.settings import Settings, get_settings
from tests.api.conftest import auth
from tests.helpers import create_export

URL = "/api/v1/workspaces/3/exports"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _record(store, flow_run_id: str | None, age: float = 0.0):
    record = create_export(store, 3, 1, ["en-US"])
    changes = {"flow_run_id": flow_run_id} if flow_run_id else {}
    if age:
        changes["created_at"] = datetime.now(UTC) - timedelta(seconds=age)
    return store.update_export(record.id, **changes) if changes else record


def _flow_run(server: str, state: str, message: str | None = None) -> str:
    flow = httpx.post(f"{server}/flows/", json={"name": "export-email"}).json()
    run = httpx.post(f"{server}/flow_runs/", json={"flow_id": flow["id"], "name": "export-test"}).json()
    response = httpx.post(f"{server}/flow_runs/{run['id']}/set_state",
                          json={"state": {"type": state, "message": message}, "force": True})
    assert response.status_code in (200, 201), response.text
    return run["id"]


@pytest.mark.parametrize(
    ("run", "beat", "expected"),
    [
        (None, 30, "vanished from the Prefect server"),
        (RunView("CRASHED", "Crashed", "exited -9", NOW, None), 30, "export flow run crashed: exited -9"),
        (RunView("CANCELLED", "Cancelled", None, NOW, None), 30, "export flow run cancelled"),
        (RunView("COMPLETED", "Completed", None, NOW, None), 30, "completed without recording a result"),
        (RunView("RUNNING", "Running", None, NOW - timedelta(seconds=600), NOW - timedelta(seconds=76)), 30,
         "stopped sending heartbeats"),
        (RunView("RUNNING", "Running", None, NOW - timedelta(seconds=600), NOW - timedelta(seconds=74)), 30, None),
        # Pending without a heartbeat: its process is still starting (slow on a loaded machine).
        (RunView("PENDING", "Pending", None, NOW - timedelta(seconds=80), None), 30, None),
        (RunView("PENDING", "Submitting", None, NOW - timedelta(seconds=599), None), 30, None),
        (RunView("PENDING", "Pending", None, NOW - timedelta(seconds=601), None), 30, "never started"),
        (RunView("PENDING", "Pending", None, NOW - timedelta(seconds=600), NOW - timedelta(seconds=76)), 30,
         "stopped sending heartbeats"),
        (RunView("RUNNING", "Running", None, NOW - timedelta(days=9), None), None, None),  # heartbeats off
        (RunView("SCHEDULED", "Late", None, NOW - timedelta(hours=23), None), 30, None),
        (RunView("SCHEDULED", "Late", None, NOW - timedelta(hours=25), None), 30, "no worker picked it up"),
        (RunView("PAUSED", "Paused", None, NOW - timedelta(days=9), None), 30, None),
    ],
)
def test_the_staleness_rule(mini, run, beat, expected):
    record = _record(mini, str(uuid.uuid4()))
    reason = dead_reason(record, run, now=NOW, settings=Settings(), beat=beat)
    assert (reason is None) if expected is None else (expected in reason)


def test_a_record_without_a_flow_run_fails_only_after_the_grace_period(mini):
    settings = Settings(reconcile_unlaunched_seconds=600)
    young, old = _record(mini, None), _record(mini, None, age=601)
    assert dead_reason(young, None, now=datetime.now(UTC), settings=settings, beat=30) is None
    assert dead_reason(old, None, now=datetime.now(UTC), settings=settings, beat=30) == \
        "no flow run was created for this export"


def test_reading_a_record_whose_run_crashed_or_vanished_marks_it_failed(api, mini, prefect_server):
    crashed = _record(mini, _flow_run(prefect_server, "CRASHED", "Flow run process exited with -9"))
    vanished = _record(mini, str(uuid.uuid4()))
    alive = _record(mini, _flow_run(prefect_server, "RUNNING"))
    body = api.get(f"{URL}/{crashed.id}", headers=auth()).json()
    assert body["status"] == "failed"
    assert body["export_errors"]["base"] == ["export flow run crashed: Flow run process exited with -9"]
    body = api.get(f"{URL}/{vanished.id}", headers=auth()).json()
    assert body["status"] == "failed" and "vanished" in body["export_errors"]["base"][0]
    assert api.get(f"{URL}/{alive.id}", headers=auth()).json()["status"] == "in_progress"


def test_a_running_flow_run_goes_stale_after_two_missed_heartbeats(mini, prefect_server):
    """The heartbeat is read from the server's events: alive within the window, dead after it."""
    run_id = _flow_run(prefect_server, "RUNNING")
    beat_at = datetime.now(UTC)
    event = {"id": str(uuid.uuid4()), "occurred": beat_at.isoformat(), "event": "prefect.flow-run.heartbeat",
             "resource": {"prefect.resource.id": f"prefect.flow-run.{run_id}"}, "related": [], "payload": {}}
    assert httpx.post(f"{prefect_server}/events", json=[event]).status_code == 204
    runs = FlowRuns(prefect_server)
    deadline = time.monotonic() + 20
    while (view := runs.view(run_id)) is not None and view.last_heartbeat is None and time.monotonic() < deadline:
        time.sleep(0.3)  # the server persists events in batches
    assert view is not None and view.last_heartbeat is not None
    record = _record(mini, run_id)
    settings = get_settings()  # 2 misses x 180 s (Prefect's default frequency in this process) + 15 s
    later = beat_at + timedelta(seconds=60)
    assert reconcile_record(mini, runs, record, settings, now=later).status == "in_progress"
    much_later = beat_at + timedelta(seconds=2 * 180 + 15 + 1)  # the default frequency is 180 s
    failed = reconcile_record(mini, runs, record, settings, now=much_later)
    assert failed.status == "failed" and "stopped sending heartbeats" in failed.export_errors["base"][0]
    runs.close()


def test_the_reconcile_pass_fails_dead_records_and_leaves_live_ones(mini, prefect_server):
    vanished = _record(mini, str(uuid.uuid4()))
    never_launched = _record(mini, None, age=3600)
    just_created = _record(mini, None)
    alive = _record(mini, _flow_run(prefect_server, "RUNNING"))
    runs = FlowRuns(prefect_server)
    assert reconcile_pass(mini, runs, get_settings()) == (4, 2)
    assert mini.require_export(vanished.id).status == "failed"
    assert mini.require_export(never_launched.id).export_errors["base"] == ["no flow run was created for this export"]
    assert mini.require_export(just_created.id).status == "in_progress"
    assert mini.require_export(alive.id).status == "in_progress"
    runs.close()


def test_the_reconcile_pass_fails_nothing_while_prefect_is_unreachable(mini):
    from deployments.supervisor import free_port

    record = _record(mini, str(uuid.uuid4()))  # would be "vanished" if the server could be asked
    assert reconcile_pass(mini, FlowRuns(f"http://127.0.0.1:{free_port()}/api"), get_settings()) == (0, 0)
    assert mini.require_export(record.id).status == "in_progress"


def test_the_dispatcher_loop_reconciles_on_its_interval_without_flow_runs(mini, prefect_server):
    """The loop inside the dispatcher (what `serve` runs) finds a dead run within one interval and
    creates no flow run of its own."""
    import threading

    from emailexport.runs.dispatcher import Dispatcher

    before = httpx.post(f"{prefect_server}/flow_runs/count", json={}).json()
    crashed = _record(mini, _flow_run(prefect_server, "CRASHED", "killed"))
    after_setup = httpx.post(f"{prefect_server}/flow_runs/count", json={}).json()
    stop = threading.Event()
    dispatcher = Dispatcher(mini, FlowRuns(prefect_server), Settings(reconcile_interval_seconds=1))
    loop = threading.Thread(target=dispatcher.run, args=(stop,))
    loop.start()
    try:
        deadline = time.monotonic() + 10
        while mini.require_export(crashed.id).status == "in_progress" and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        loop.join(30)
    assert not loop.is_alive()
    assert mini.require_export(crashed.id).export_errors["base"] == ["export flow run crashed: killed"]
    assert after_setup == before + 1
    assert httpx.post(f"{prefect_server}/flow_runs/count", json={}).json() == after_setup
