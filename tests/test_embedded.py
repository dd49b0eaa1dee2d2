"""The embedded default (issue 14): Prefect's home in the data dir, concurrent commands on one fresh
data dir, and a record whose flow run never started failed at once with the reason."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

from emailexport.runtime import SERVER_LOCK, embedded_prefect_env
from emailexport.settings import Settings
from tests.helpers import create_export

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT / "tests" / "fixtures" / "mini.yaml"
CLI = "from emailexport.cli import main; main()"


def _env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    """A clean environment: no Prefect API or home of the test session, HOME in tmp_path (so a
    stray `~/.prefect` would show), this worktree first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EMAILEXPORT_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), EMAILEXPORT_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT),
               PREFECT_LOGGING_LEVEL="WARNING")
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CLI, *args], env=env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _export(env: dict[str, str]) -> subprocess.Popen[str]:
    return _cli(env, "export", "--workspace", "3", "--email", "1", "--locales", "en-US,de-DE", "--json")


def test_prefect_home_and_result_storage_live_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", prefect_startup_timeout_seconds=240)
    env = embedded_prefect_env(settings)
    assert env["PREFECT_HOME"] == str((tmp_path / "d" / "prefect").resolve())
    assert env["PREFECT_LOCAL_STORAGE_PATH"] == str((tmp_path / "d" / "prefect" / "storage").resolve())
    assert env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "240"
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"


def test_two_exports_started_at_once_on_a_fresh_data_dir_both_complete(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _env(tmp_path, data_dir)
    imported = _cli(env, "workspace", "import", str(MINI))
    assert imported.wait(120) == 0, imported.stdout.read() if imported.stdout else ""
    first, second = _export(env), _export(env)  # both find no Prefect database yet
    outputs = [p.communicate(timeout=600)[0] for p in (first, second)]  # first starts migrate, under load
    assert [first.returncode, second.returncode] == [0, 0], outputs
    for out in outputs:
        assert '"status": "completed"' in out, out
    assert (data_dir / "prefect" / "prefect.db").exists()  # Prefect's home is the data dir's
    assert (data_dir / "prefect" / "storage").is_dir()  # and so is the render cache
    assert not (tmp_path / "home" / ".prefect" / "prefect.db").exists()


def test_a_command_waits_for_the_server_lock_before_starting_prefect(tmp_path: Path) -> None:
    """The first start of a home (which migrates its database) happens in one process at a time:
    while another process holds the lock, a command does not start its server."""
    data_dir = tmp_path / "data"
    env = _env(tmp_path, data_dir)
    imported = _cli(env, "workspace", "import", str(MINI))
    assert imported.wait(120) == 0
    home = data_dir / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(home / SERVER_LOCK))
    with lock:
        command = _export(env)
        time.sleep(6)  # ample for a server to create its database, were it not waiting
        assert command.poll() is None
        assert not (home / "prefect.db").exists()
    out = command.communicate(timeout=300)[0]
    assert command.returncode == 0 and '"status": "completed"' in out, out


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_that_cannot_start_fails_its_record_at_once_with_the_reason(mini) -> None:
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    from emailexport.launch import START_ATTEMPTS, run_export_flow

    record = create_export(mini, 3, 1, ["en-US"])
    naps: list[float] = []
    # Nothing listens on port 9 of loopback: creating the flow run is refused every time.
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_CLIENT_MAX_RETRIES: 0}):
        state = run_export_flow(record.id, sleep=naps.append)
    assert state is None and len(naps) == START_ATTEMPTS - 1
    failed = mini.require_export(record.id)
    assert failed.status == "failed" and failed.flow_run_id is None
    [reason] = failed.export_errors["base"] or []
    assert reason == "the export flow run could not start: RuntimeError: Failed to reach API at http://127.0.0.1:9/api/"


def test_in_process_runs_on_the_ephemeral_server_send_no_heartbeats() -> None:
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    from emailexport.runtime import embedded_flow_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # the embedded default: no API URL
        before = get_current_settings().flows.heartbeat_frequency
        for _ in range(2):  # the second time from the settings built the first time
            with embedded_flow_settings():
                assert get_current_settings().flows.heartbeat_frequency is None
        assert get_current_settings().flows.heartbeat_frequency == before is not None
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api"}), embedded_flow_settings():
        # a real server (serve, workers): the reconciler reads the heartbeats
        assert get_current_settings().flows.heartbeat_frequency is not None
