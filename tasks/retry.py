"""Retry conditions for task decorators: retry what may succeed later, never a terminal error."""

from __future__ import annotations

from typing import Any

from emailexport.errors import TerminalError

__all__ = ["retry_unless_terminal"]


def retry_unless_terminal(task: Any, task_run: Any, state: Any) -> bool:
    """False when the failure is a `TerminalError` (bad input, a template bug): retrying repeats it."""
    exc = state.result(raise_on_failure=False)
    return not isinstance(exc, TerminalError)
