"""Renders and template checks in a bounded worker process: wall time, memory and CPU time.

The sandbox (`emailexport.render.sandbox`) refuses what it can see coming (huge numbers, huge
strings, endless loops), but a single C-level operation holds the GIL and cannot be interrupted
from a thread, and Jinja's compiler already runs code (constant folding). So every compile and
render of workspace templates runs in a worker process:

- `RLIMIT_AS` caps its address space (`render_memory_mb`): an allocation past it is a MemoryError;
- the parent waits at most `render_timeout_seconds` for the answer, then SIGKILLs the worker;
- `RLIMIT_CPU` is re-armed before each job to the job's budget plus a margin, so a worker whose
  parent died (nobody left to kill it) is ended by the kernel once it has used that much CPU.

Workers are persistent and reused across locales and exports (spawning one costs an interpreter
start and the imports; a job costs one pickle round trip). At most `render_workers` run per process;
a worker that overran is killed and replaced on the next job. The standard library's pools cannot
kill one overrunning job without breaking every other job of the pool, hence this small pool.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from emailexport.errors import RenderError
from emailexport.render.inputs import LocaleRenderInput
from emailexport.render.render import RenderedDocument
from emailexport.render.sandbox import RenderLimits

__all__ = ["RenderAborted", "check_template", "limits_from_settings", "render_isolated", "shutdown_workers"]

_CPU_MARGIN_SECONDS = 5
_STARTUP_SECONDS = 120


def limits_from_settings(settings: Any) -> RenderLimits:
    """The `render_*` settings as `RenderLimits`."""
    return RenderLimits(
        max_output_chars=settings.render_max_output_chars,
        max_loop_iterations=settings.render_max_loop_iterations,
        max_int_bits=settings.render_max_int_bits,
        timeout_seconds=settings.render_timeout_seconds,
        memory_mb=settings.render_memory_mb,
    )


# -- the worker process ------------------------------------------------------------------------


def _sample_context(component: Any, design_tokens: dict[str, Any]) -> dict[str, Any]:
    from markupsafe import Markup

    from emailexport.render.values import ImageValue

    samples: dict[str, Any] = {
        "text": "Sample text", "rich_text": Markup("<p>Sample text</p>"), "code": Markup(""),
        "url": "https://example.com/", "number": 1, "boolean": True, "color": "#000000",
        "horizontal_align": "left", "vertical_align": "top",
        "image": ImageValue(url="https://example.com/sample.png", width=600, height=300, alt="Sample"),
    }  # fmt: skip
    values = {}
    for f in component.fields:
        values[f.variable] = (f.options or ["option"])[0] if f.type == "enum" else samples.get(f.type, "Sample")
    render_context = {
        "locale": "en-US", "language": "en", "direction": "ltr", "email": {"id": 1, "name": "Sample"},
        "export_type": "html", "connector": None, "output_format": "html",
    }  # fmt: skip
    context = {**values, "global_fields": values, "design_tokens": design_tokens, "render_context": render_context}
    if component.container:
        context.update(children=Markup("<p>Sample</p>"), subject="Sample subject", preheader="Sample preheader")
    return context


def _check_job(payload: tuple[Any, dict[str, Any]], limits: RenderLimits) -> list[str]:
    """Compile a component's template and render it once with sample values, under `limits`.

    Only a syntax error or a limit fails the check: other template errors depend on real values
    (a design token the sample context does not have) and are reported by the export that meets them.
    """
    from jinja2 import TemplateError, TemplateSyntaxError

    from emailexport.render.sandbox import RenderLimitExceeded, budget, compile_template, render_bounded_template

    component, design_tokens = payload
    try:
        template = compile_template(component.template)
    except TemplateSyntaxError as exc:
        return [f"template syntax error in '{component.name}' line {exc.lineno}: {exc.message}"]
    try:
        with budget(limits):
            render_bounded_template(template, _sample_context(component, design_tokens))
    except RenderLimitExceeded as exc:
        return [f"'{component.name}' rendered with sample values went past a render limit: {exc}"]
    except MemoryError:
        return [f"'{component.name}' rendered with sample values went past the {limits.memory_mb} MB memory limit"]
    except RecursionError:
        return [f"'{component.name}' rendered with sample values recursed too deep"]
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError, AttributeError):
        return []
    return []


def _render_job(payload: str, limits: RenderLimits) -> RenderedDocument:
    from emailexport.render.render import render_document

    # JSON, not a pickled model: pydantic models pickle about ten times slower.
    return render_document(LocaleRenderInput.model_validate_json(payload), limits)


_JOBS: dict[str, Callable[[Any, RenderLimits], Any]] = {"render": _render_job, "check": _check_job}


def _worker_main(memory_mb: int) -> None:  # pragma: no cover - runs in the child
    """`python -m emailexport.render.isolated MEMORY_MB`: jobs on stdin, answers on stdout."""
    import resource
    import sys
    from multiprocessing.connection import Connection

    # The protocol owns the original stdout; anything printed goes to stderr.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    reader = Connection(os.dup(0), writable=False)
    conn = Connection(out_fd, readable=False)

    from emailexport.render import render as _render  # noqa: F401  (import before the memory cap)

    if memory_mb:
        cap = memory_mb * 1024 * 1024
        # Not enforceable everywhere (macOS): the wall-time kill still applies there.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    conn.send(("ready", os.getpid()))
    hard_cpu = resource.getrlimit(resource.RLIMIT_CPU)[1]
    while True:
        try:
            kind, payload, limits = reader.recv()
        except (EOFError, OSError):
            return
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(usage.ru_utime + usage.ru_stime + limits.timeout_seconds + _CPU_MARGIN_SECONDS) + 1
        if hard_cpu == resource.RLIM_INFINITY or soft < hard_cpu:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_CPU, (soft, hard_cpu))
        try:
            result: tuple[str, Any] = ("ok", _JOBS[kind](payload, limits))
        except MemoryError:
            result = ("memory", None)
        except BaseException as exc:  # reported to the parent, which decides what the user sees
            result = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(result)
        except MemoryError:
            conn.send(("memory", None))


# -- the parent side -----------------------------------------------------------------------------


class _Worker:
    """One worker process (a fresh interpreter: no fork of a threaded parent, no re-import of its
    `__main__`), talking pickled frames over its stdin and stdout."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.process = subprocess.Popen(
            [sys.executable, "-m", "emailexport.render.isolated", str(memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
        )  # fmt: skip
        assert self.process.stdin is not None and self.process.stdout is not None
        self.writer = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self.conn = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.process.stdin.close()
        self.process.stdout.close()
        self.ready = False

    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, kind: str, payload: Any, limits: RenderLimits, timeout: float) -> tuple[str, Any]:
        try:
            if not self.ready:
                # Start-up (an interpreter and the imports) is not charged to the job's time.
                if not self.conn.poll(_STARTUP_SECONDS):
                    return "died", "did not start"
                self.conn.recv()
                self.ready = True
            self.writer.send((kind, payload, limits))
            if not self.conn.poll(timeout):
                return "timeout", None
            status, value = self.conn.recv()
            return status, value
        except (EOFError, OSError):
            try:
                return "died", self.process.wait(5)
            except subprocess.TimeoutExpired:
                return "died", None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL is not ignorable
            self.process.wait(5)
        self.conn.close()
        self.writer.close()


class _Pool:
    def __init__(self) -> None:
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._slots: threading.BoundedSemaphore | None = None
        self._size = 0
        self._pid = os.getpid()

    def _ensure(self, size: int) -> threading.BoundedSemaphore:
        with self._lock:
            if self._pid != os.getpid():  # a forked child must not use its parent's workers
                self.__init__()  # type: ignore[misc]
            if self._slots is None or self._size != size:
                self._slots, self._size = threading.BoundedSemaphore(size), size
            return self._slots

    def _take(self, memory_mb: int) -> _Worker:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return _Worker(memory_mb)
            if worker.alive() and worker.memory_mb == memory_mb:
                return worker
            worker.kill()

    def run(self, kind: str, payload: Any, limits: RenderLimits, size: int) -> tuple[str, Any]:
        slots = self._ensure(size)
        with slots:
            worker = self._take(limits.memory_mb)
            status, value = worker.call(kind, payload, limits, limits.timeout_seconds)
            if status in ("ok", "error", "memory"):
                self._idle.put(worker)
            else:
                worker.kill()
            return status, value

    def shutdown(self) -> None:
        while True:
            try:
                self._idle.get_nowait().kill()
            except queue.Empty:
                return


_POOL = _Pool()
atexit.register(_POOL.shutdown)


def shutdown_workers() -> None:
    """Stop the idle workers of this process (they are also stopped at exit)."""
    _POOL.shutdown()


def _failure(status: str, value: Any, limits: RenderLimits, what: str) -> str:
    if status == "timeout":
        return (f"{what} stopped: over the {limits.timeout_seconds:g} s time limit "
                "(EMAILEXPORT_RENDER_TIMEOUT_SECONDS); the worker process was killed")
    if status == "memory":
        return f"{what} stopped: over the {limits.memory_mb} MB memory limit (EMAILEXPORT_RENDER_MEMORY_MB)"
    if status == "died":
        return f"{what} stopped: the render worker process ended unexpectedly (exit code {value})"
    return f"{what} failed: {value}"


class RenderAborted(RenderError):
    """The render worker was stopped (time limit) or ended (crash, CPU limit): the locale fails.

    Raised rather than returned so that the failure is not cached as the locale's result (a busy
    machine may finish the same render next time); terminal, so the task is not retried either.
    """


def render_isolated(inp: LocaleRenderInput, limits: RenderLimits, workers: int = 2) -> RenderedDocument:
    """`render_document(inp, limits)` in a worker process, killed past `limits.timeout_seconds`.

    A template past a sandbox limit comes back as a document whose `errors` name the limit; a
    render the worker could not finish raises `RenderAborted` with the limit in its message.
    """
    status, value = _POOL.run("render", inp.model_dump_json(), limits, workers)
    if status == "ok":
        assert isinstance(value, RenderedDocument)
        return value
    raise RenderAborted(_failure(status, value, limits, f"rendering locale {inp.locale}"))


def check_template(component: Any, design_tokens: dict[str, Any], limits: RenderLimits, workers: int = 2) -> list[str]:
    """Problems of a component's template: a syntax error, or a sample render past a limit."""
    status, value = _POOL.run("check", (component, design_tokens), limits, workers)
    if status == "ok":
        return list(value)
    return [_failure(status, value, limits, f"checking component '{component.name}'")]



if __name__ == "__main__":  # pragma: no cover - the worker process
    _worker_main(int(sys.argv[1]))
