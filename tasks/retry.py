"""Retry conditions for task decorators: retry what may succeed later, never a terminal error."""

from __future__ import annotations

from typing import Any

from emailexport.errors import TerminalError, TransientError

__all__ = ["retry_only_transient", "retry_unless_terminal"]


def retry_unless_terminal(task: Any, task_run: Any, state: Any) -> bool:
    """False when the failure is a `TerminalError` (bad input, a template bug): retrying repeats it."""
    exc = state.result(raise_on_failure=False)
    return not isinstance(exc, TerminalError)


def retry_only_transient(task: Any, task_run: Any, state: Any) -> bool:
    """True only for a `TransientError` (timeout, throttle, 5xx): for tasks that write to another
    system, where repeating after an unexpected error could write twice (a second ESP template)."""
    return isinstance(state.result(raise_on_failure=False), TransientError)
