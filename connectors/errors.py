"""Connector errors: one root, split into transient (retry later) and terminal (do not retry).

Messages carry the vendor's own words (status, error code, message) so a user can act on them,
and are passed through `redact` so a credential can never ride along into a log or a record.
"""

from __future__ import annotations

from collections.abc import Iterable

from emailexport.errors import EmailExportError, TerminalError, TransientError
from emailexport.secrets import redact as _redact

__all__ = [
    "AmbiguousCreateError",
    "AuthenticationError",
    "ConnectorError",
    "ConnectorNotFoundError",
    "RateLimitedError",
    "ResourceNotFoundError",
    "ServerError",
    "TerminalConnectorError",
    "TimeoutConnectorError",
    "TransientConnectorError",
    "VendorValidationError",
    "redact",
]


class ConnectorError(EmailExportError):
    """Root of every error an ESP or CDN connector raises."""

    status_code: int | None = None

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TransientConnectorError(ConnectorError, TransientError):
    """Worth retrying: timeouts, dropped connections, 429, 5xx."""


class TerminalConnectorError(ConnectorError, TerminalError):
    """Retrying repeats it: bad credentials, forbidden, not found, rejected input."""


class TimeoutConnectorError(TransientConnectorError):
    """No answer in time."""


class AmbiguousCreateError(TimeoutConnectorError):
    """A create was sent but its answer was lost: the resource may or may not exist now."""


class RateLimitedError(TransientConnectorError):
    """429: `retry_after` is how long the vendor asked us to wait, in seconds."""

    def __init__(self, message: str, *, retry_after: float, status_code: int | None = 429) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class ServerError(TransientConnectorError):
    """5xx from the vendor."""


class AuthenticationError(TerminalConnectorError):
    """401/403: the credentials are wrong, expired or lack a permission."""


class ResourceNotFoundError(TerminalConnectorError):
    """404: the resource (e.g. a template from a previous export) no longer exists."""


class VendorValidationError(TerminalConnectorError):
    """400/422-style: the vendor rejected what we sent; the message says why."""


class ConnectorNotFoundError(TerminalConnectorError):
    """No connector implementation for a type name."""


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every form of a secret replaced by `***` (`emailexport.secrets.redact`: any
    8+ character piece of it, in any case)."""
    return _redact(text, secrets)
