"""`emailexport serve`: a Prefect server, a runner for the deployments and the API, as three child
processes of one supervisor.

Each child gets its own session (process group), so a terminal's Ctrl-C reaches only the supervisor,
which then stops the children itself in reverse order of start: SIGTERM to the child's whole group,
a grace period, then SIGKILL. The supervisor also makes itself the "child subreaper" (Linux
prctl), so a grandchild that outlives its parent (the runner starts flow runs in their own sessions)
is re-parented to the supervisor instead of init, and is found and killed on the way out: nothing
is left behind. If any child exits on its own, the others are stopped and `serve` exits non-zero.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from emailexport.errors import EmailExportError

__all__ = ["Child", "ServeError", "Supervisor", "descendants", "free_port"]

ROOT = Path(__file__).resolve().parents[1]
_PR_SET_CHILD_SUBREAPER = 36


class ServeError(EmailExportError):
    """A child could not be started (port taken, server never became healthy)."""


def free_port(host: str = "127.0.0.1", preferred: int | None = None) -> int:
    """`preferred` if it can be bound, else a free port the kernel picks."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise ServeError("no free port")


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (Linux /proc)."""
    parents = {int(p): _parent_of(int(p)) for p in os.listdir("/proc") if p.isdigit()}
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier and child not in found}
        found |= frontier
    return found


@dataclass
class Child:
    name: str
    argv: list[str]
    ready_url: str | None = None
    log_file: Path | None = None
    # Added to the child's nice value (its own children inherit it): batch work yields the CPU to
    # the API and the Prefect server on a shared machine.
    niceness: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, env: dict[str, str], say: Callable[[str], None] = print, stop_timeout: float = 15.0) -> None:
        self.env = env
        self.say = say
        self.stop_timeout = stop_timeout
        self.children: list[Child] = []
        self.stopping = threading.Event()

    def start(self, child: Child, ready_timeout: float = 120.0) -> None:
        """Start `child` in its own session and wait until its `ready_url` answers."""
        out = open(child.log_file, "ab") if child.log_file else None  # noqa: SIM115 - owned by the child
        niceness = child.niceness
        child.process = subprocess.Popen(child.argv, env=self.env, cwd=ROOT, start_new_session=True,
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT if out else None,
                                         preexec_fn=(lambda: os.nice(niceness)) if niceness else None)
        if out:
            out.close()
        self.children.append(child)
        if child.ready_url:
            self._wait_ready(child, ready_timeout)

    def _wait_ready(self, child: Child, timeout: float) -> None:
        assert child.process and child.ready_url
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping.is_set():
            if child.process.poll() is not None:
                where = f"; see {child.log_file}" if child.log_file else ""
                raise ServeError(f"{child.name} exited with code {child.process.returncode} while starting{where}")
            try:
                if httpx.get(child.ready_url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        if not self.stopping.is_set():
            raise ServeError(f"{child.name} did not become ready within {timeout:.0f} s")

    def install_signal_handlers(self) -> None:
        """SIGINT and SIGTERM ask for a clean stop; the subreaper flag lets us find orphans."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stopping.set())
        if sys.platform == "linux":
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    def watch(self) -> int:
        """Block until a stop is asked (0) or a child exits on its own (1)."""
        while not self.stopping.wait(0.5):
            for child in self.children:
                if child.process and child.process.poll() is not None:
                    self.say(f"{child.name} exited unexpectedly (code {child.process.returncode}); stopping.")
                    return 1
        return 0

    def stop(self) -> None:
        """Stop every child and everything below it; returns when none is left."""
        self.stopping.set()
        below = descendants(os.getpid())
        for child in reversed(self.children):
            process = child.process
            if process is None or process.poll() is not None:
                continue
            self._signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop within {self.stop_timeout:.0f} s; killing it.")
                self._signal_group(process.pid, signal.SIGKILL)
                process.wait()
        # Whatever is left (flow runs in their own sessions, re-parented to us) is killed and reaped.
        for pid in below | descendants(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        self._reap()

    @staticmethod
    def _signal_group(pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signum)

    @staticmethod
    def _reap() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                time.sleep(0.05)
