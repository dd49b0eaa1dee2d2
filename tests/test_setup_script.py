"""`scripts/setup` prints one line per step and keeps the full output in `.venv/setup.log`.

Run against a stand-in `python` (a shell script that creates a venv folder and prints a pip-sized
log), so the test checks what the script shows, not how long pip takes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = "--version" ]; then echo "Python 3.11.99"; exit 0; fi
if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; echo "venv created"; exit 0; fi
if [ "$1 $2" = "-m pip" ]; then
  for i in $(seq 440); do echo "pip says line $i"; done
  if [ -n "${FAIL_PIP:-}" ] && [ "$3" = "install" ] && [ "$4" = "-e" ]; then
    echo "ERROR: Could not find a version that satisfies the requirement nothing==0" >&2; exit 1
  fi
  exit 0
fi
exit 3
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup", tmp_path / "scripts" / "setup")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    return tmp_path


def _setup(checkout: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(checkout / "scripts" / "setup"), "dev"], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": str(checkout / "fake-python"), **env}, timeout=60)


def test_setup_prints_one_line_per_step_and_logs_everything(checkout):
    done = _setup(checkout)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(" ... ")[0] for line in lines[:-1]] == [
        "setup: creating .venv with Python 3.11.99", "setup: upgrading pip",
        "setup: installing emailexport[dev] and its dependencies (a few minutes the first time)"]
    assert all(line.split(" ... ")[1].startswith("done (") for line in lines[:-1])
    assert lines[-1] == "setup: ready (full log: .venv/setup.log)" and done.stderr == ""
    log = (checkout / ".venv" / "setup.log").read_text()
    assert log.count("pip says line 440") == 2 and "venv created" in log
    again = _setup(checkout)  # nothing to do while pyproject.toml is unchanged
    assert again.returncode == 0 and again.stdout == ""


def test_a_failed_step_shows_the_tail_of_the_log_and_exits_1(checkout):
    done = _setup(checkout, FAIL_PIP="1")
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1].endswith("(a few minutes the first time) ... FAILED")
    assert "ERROR: Could not find a version that satisfies the requirement nothing==0" in done.stderr
    assert "pip says line 440" in done.stderr and "pip says line 100" not in done.stderr  # the tail only
    assert not list((checkout / ".venv").glob(".installed-*"))  # the next run tries again
