"""Credentials references -> the secret values, at the moment a connector needs them.

A reference is `env:VAR` (the variable holds a JSON object, e.g. `{"key": "...", "secret": "..."}`)
or `block:NAME` / `block:secret/NAME` (a Prefect `Secret` block whose value is that object). The
database only ever holds the reference. Error messages name the reference, never a value, and
never echo the JSON (a parse error message would quote the secret).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from emailexport.errors import TerminalError

__all__ = ["CredentialsError", "resolve_credentials"]


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
        return _as_object(env[name], f"credentials variable {name}")
    if kind == "block":
        block_name = name.removeprefix("secret/")
        return _as_object(_secret_block(block_name), f"Secret block {block_name!r}")
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
