"""Issue 18, item 8: SIGKILL of a flow process must not orphan its PDF worker processes.

A real process starts `render_pdfs` with two workers busy on a slow image fetch, and is then
killed with SIGKILL (no cleanup runs); its workers must be gone within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")


def slow_fetch(url: str) -> tuple[bytes, str]:
    """A fetch that hangs the way a stuck image server would (module-level: workers unpickle it)."""
    time.sleep(120)
    raise OSError("never answered")


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_pdf_workers_die_with_a_sigkilled_flow_process():
    script = textwrap.dedent("""
        from tasks.html_to_pdf import render_pdfs
        from tests.test_security_pdf_pool import slow_fetch
        html = '<html><body><img src="http://images.test/hero.png"></body></html>'
        render_pdfs([("en-US", html), ("de-DE", html)], fetch=slow_fetch, workers=2)
    """)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        limit = time.monotonic() + 60
        while time.monotonic() < limit and len(workers) < 2:
            # the pool workers are spawned children running the multiprocessing entry point
            workers = {c for c in _children(parent.pid)
                       if b"multiprocessing" in Path(f"/proc/{c}/cmdline").read_bytes()
                       and b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()}
            time.sleep(0.2)
        assert len(workers) == 2, "the PDF pool did not start"
        time.sleep(3)  # the workers are inside the slow fetch now
        assert all(_alive(w) for w in workers)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        killed = time.monotonic()
        while time.monotonic() - killed < 10 and any(_alive(w) for w in workers):
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), "PDF workers outlived their SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        for worker in workers:  # left over only when the test failed: do not leak them
            if _alive(worker):
                os.kill(worker, signal.SIGKILL)
