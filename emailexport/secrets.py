"""Credentials references -> the secret values, at the moment a connector needs them.

A reference is `env:VAR` (the variable holds a JSON object, e.g. `{"key": "...", "secret": "..."}`)
or `block:NAME` / `block:secret/NAME` (a Prefect `Secret` block whose value is that object). The
database only ever holds the reference. Error messages name the reference, never a value, and
never echo the JSON (a parse error message would quote the secret).

Redaction (`redact`, `excerpt`, `register_secret`): a vendor may echo a credential back in an error
body, upper-cased, truncated or embedded in other text. `redact` replaces every piece of 8 or more
characters of a secret, compared case-insensitively (a secret shorter than 8 is matched whole);
every value `resolve_credentials` returns is registered, and a log record factory installed at the
first registration redacts the registered secrets from every log record of the process (message,
arguments and traceback) before any handler sees it: the console, `runner.log` and Prefect's API
log handler alike. `excerpt` is the only form in which a vendor's body may reach a record or a log:
control characters and markup removed, whitespace collapsed, at most 200 characters.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from emailexport.errors import TerminalError

__all__ = ["CredentialsError", "excerpt", "redact", "redact_registered", "register_secret", "resolve_credentials"]

MIN_PIECE = 8  # pieces of a secret this long or longer are redacted wherever they appear
EXCERPT_CHARS = 200
REDACTED = "***"


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every piece of 8+ characters of each secret (any case) replaced by `***`.

    Every 8-character window of the text that equals (case-folded) an 8-character window of a
    secret is marked; a longer piece of the secret is a chain of such windows, so it is marked
    whole. Secrets shorter than 8 characters (but 4 or more) are replaced where they appear whole.
    """
    if not text:
        return text
    folded = text.lower()
    if len(folded) != len(text):  # a few characters lower-case to two (İ): keep the indices aligned
        folded = "".join(c.lower()[:1] or c for c in text)
    marked = bytearray(len(text))
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        low = secret.lower()
        if len(low) < MIN_PIECE:
            start = folded.find(low)
            while start != -1:
                marked[start:start + len(low)] = b"\x01" * len(low)
                start = folded.find(low, start + 1)
            continue
        windows = {low[i:i + MIN_PIECE] for i in range(len(low) - MIN_PIECE + 1)}
        for i in range(len(folded) - MIN_PIECE + 1):
            if folded[i:i + MIN_PIECE] in windows:
                marked[i:i + MIN_PIECE] = b"\x01" * MIN_PIECE
    if not any(marked):
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        if marked[i]:
            while i < len(text) and marked[i]:
                i += 1
            out.append(REDACTED)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


_TAGS = re.compile(r"<[^>]{0,500}>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]+")


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A vendor body fit for a record or a log line: tags and control characters removed,
    whitespace collapsed, at most `limit` characters (an ellipsis marks a cut)."""
    cleaned = _CONTROL.sub(" ", _TAGS.sub(" ", text))
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"


# -- the process-wide registry of secrets, and the log redaction it drives -------------------

_REGISTERED: set[str] = set()
_REGISTRY_LOCK = threading.Lock()
_FACTORY_INSTALLED = False


def register_secret(*values: str) -> None:
    """Redact `values` from every log record of this process from now on."""
    global _FACTORY_INSTALLED
    with _REGISTRY_LOCK:
        _REGISTERED.update(v for v in values if v and len(v) >= 4)
        if not _FACTORY_INSTALLED:
            _install_log_redaction()
            _FACTORY_INSTALLED = True


def registered_secrets() -> frozenset[str]:
    with _REGISTRY_LOCK:
        return frozenset(_REGISTERED)


def redact_registered(value: Any) -> Any:
    """`value` (a string, or lists/dicts of them) with every registered secret redacted: the last
    guard before messages are written to a record."""
    secrets = registered_secrets()
    if not secrets:
        return value
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, list | tuple):
        return [redact_registered(v) for v in value]
    if isinstance(value, dict):
        return {k: redact_registered(v) for k, v in value.items()}
    return value


def _install_log_redaction() -> None:
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        secrets = registered_secrets()
        if not secrets:
            return record
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format: the handler reports it as before
            return record
        cleaned = redact(message, secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[0] is not None:
            # Formatted now, redacted: handlers use exc_text when it is set.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), secrets)
        return record

    logging.setLogRecordFactory(factory)


class CredentialsError(TerminalError):
    """A credentials reference cannot be resolved; the message names the reference only."""


def resolve_credentials(reference: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env:VAR` or `block:NAME` -> the credentials object (string keys and values)."""
    kind, _, name = reference.partition(":")
    if not name:
        raise CredentialsError(f"credentials reference {reference!r} must be env:VAR or block:NAME")
    if kind == "env":
        env = os.environ if environ is None else environ
        if name not in env:
            raise CredentialsError(f"credentials variable {name} is not set")
        return _registered(_as_object(env[name], f"credentials variable {name}"))
    if kind == "block":
        block_name = name.removeprefix("secret/")
        return _registered(_as_object(_secret_block(block_name), f"Secret block {block_name!r}"))
    raise CredentialsError(f"credentials reference {reference!r} must be env:VAR or block:NAME")


def _secret_block(name: str) -> Any:
    from prefect.blocks.system import Secret  # Prefect only when a block is actually used

    try:
        return Secret.load(name).get()  # type: ignore[union-attr]
    except ValueError:
        raise CredentialsError(f"Secret block {name!r} does not exist") from None


def _as_object(value: Any, where: str) -> dict[str, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise CredentialsError(f"{where} does not hold a JSON object") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise CredentialsError(f"{where} must hold a JSON object of strings")
    return dict(value)


def _registered(credentials: dict[str, str]) -> dict[str, str]:
    register_secret(*credentials.values())
    return credentials
