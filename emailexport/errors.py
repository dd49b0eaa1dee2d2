"""One root for every error the pipeline raises on purpose.

Errors split the dlt way: a *terminal* error will fail the same way if retried (bad input, a
template bug, a 404), a *transient* one may succeed later (a timeout, a 429, a 5xx). Retry
decisions are made from the type, never by matching message strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = [
    "EmailExportError",
    "NotFoundError",
    "RenderError",
    "TerminalError",
    "TransientError",
    "ValidationFailed",
    "is_transient",
]


class EmailExportError(Exception):
    """Root of the project's errors. The message is safe to show to a user."""


class TerminalError(EmailExportError):
    """Retrying will not help."""


class TransientError(EmailExportError):
    """Retrying later may help (timeouts, rate limits, server errors)."""


class NotFoundError(TerminalError):
    """A referenced record does not exist (in this workspace)."""


class RenderError(TerminalError):
    """A locale could not be rendered: a template bug, a missing required value, a bad rule."""


class ValidationFailed(TerminalError):
    """Input failed validation; `errors` maps a field path to every message found for it."""

    def __init__(self, errors: Mapping[str, Sequence[str]], message: str = "Failed to save") -> None:
        self.errors: dict[str, list[str]] = {k: list(v) for k, v in errors.items()}
        super().__init__(message)

    def messages(self) -> list[str]:
        """Every problem as one line, `path: message`."""
        return [f"{path}: {msg}" for path, msgs in self.errors.items() for msg in msgs]

    def __str__(self) -> str:
        lines = [f"{path}: {msg}" for path, msgs in self.errors.items() for msg in msgs]
        return f"{self.args[0]}:\n  " + "\n  ".join(lines) if lines else str(self.args[0])


def is_transient(exc: BaseException) -> bool:
    """True when `exc` is worth retrying."""
    return isinstance(exc, TransientError)
