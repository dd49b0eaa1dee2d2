"""`emailexport token create`: a token printed once, stored hashed, limited to its workspaces."""

from __future__ import annotations

import sys

import pytest
from sqlalchemy import text

from emailexport.cli import main
from emailexport.store import hash_token


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["emailexport", *args])
    with pytest.raises(SystemExit) as info:
        main()
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_a_token_is_printed_once_and_stored_hashed(workspaces, monkeypatch, capsys):
    code, out, err = _cli(monkeypatch, capsys, "token", "create", "--workspace", "3", "--workspace", "1",
                          "--label", "ci")
    assert code == 0, err
    token = out.strip()
    assert len(token) >= 40 and "shown only this once" in err
    assert workspaces.token_workspaces(token) == [3, 1]
    with workspaces.engine.connect() as connection:
        stored = connection.execute(text("select token_hash, label from api_tokens where label = 'ci'")).one()
    assert stored == (hash_token(token), "ci")


def test_an_unknown_workspace_is_a_message_and_no_token(workspaces, monkeypatch, capsys):
    code, out, err = _cli(monkeypatch, capsys, "token", "create", "--workspace", "42")
    assert code == 2 and out == ""
    assert "unknown workspace(s): 42" in err and "Traceback" not in err
