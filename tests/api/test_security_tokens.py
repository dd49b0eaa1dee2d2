"""Issue 18, item 10: tokens can be listed, revoked and made to expire, and the API honours it;
`serve` on a non-loopback address warns that the Prefect UI has no authentication."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from emailexport.cli import _is_loopback, main
from tests.api.conftest import TOKENS, auth


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["emailexport", *args])
    with pytest.raises(SystemExit) as info:
        main()
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.fixture
def client(workspaces):
    from emailexport.api import create_app
    from emailexport.api.flow_runs import FlowRuns
    from emailexport.settings import get_settings

    # Listing exports reads the store only: no Prefect server is needed.
    app = create_app(get_settings(), store=workspaces, flow_runs=FlowRuns("http://127.0.0.1:9/api"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _list(client, token: str) -> int:
    return client.get("/api/v1/workspaces/3/exports", headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_revoked_token_is_refused_and_listed_as_revoked(workspaces, client, monkeypatch, capsys):
    assert client.get("/api/v1/workspaces/3/exports", headers=auth()).status_code == 200
    code, out, err = _cli(monkeypatch, capsys, "token", "list")
    assert code == 0, err
    assert "token-for" not in out  # never the token itself
    target = next(i.id for i in workspaces.list_tokens() if i.workspace_ids == [3])
    code, _, err = _cli(monkeypatch, capsys, "token", "revoke", str(target))
    assert code == 0 and f"Token {target} revoked" in err
    assert _list(client, TOKENS["ws3"]) == 401
    assert _list(client, TOKENS["ghost"]) == 200  # the other token for workspace 3 still works
    _, out, _ = _cli(monkeypatch, capsys, "token", "list")
    line = next(line for line in out.splitlines() if f" {target} " in line)
    assert "revoked" in line


def test_revoking_an_unknown_id_is_a_message(workspaces, monkeypatch, capsys):
    code, _, err = _cli(monkeypatch, capsys, "token", "revoke", "999")
    assert code != 0 and "no token with id 999" in err and "Traceback" not in err


def test_an_expired_token_is_refused(workspaces, client, monkeypatch, capsys):
    workspaces.add_token("short-lived-token", [3], "old", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    workspaces.add_token("long-lived-token", [3], "new", expires_at=datetime.now(UTC) + timedelta(days=1))
    assert _list(client, "short-lived-token") == 401
    assert _list(client, "long-lived-token") == 200
    statuses = {i.label: i.status for i in workspaces.list_tokens()}
    assert statuses["old"] == "expired" and statuses["new"] == "active"


def test_token_create_takes_an_expiry(workspaces, monkeypatch, capsys):
    code, out, err = _cli(monkeypatch, capsys, "token", "create", "--workspace", "3", "--expires-in", "2h",
                          "--label", "ci")
    assert code == 0, err
    info = next(i for i in workspaces.list_tokens() if i.label == "ci")
    assert info.expires_at is not None
    assert timedelta(minutes=119) < info.expires_at - datetime.now(UTC) <= timedelta(hours=2)
    assert workspaces.token_workspaces(out.strip()) == [3]
    code, out, err = _cli(monkeypatch, capsys, "token", "create", "--workspace", "3", "--expires-in", "soon")
    assert code == 2 and out == "" and "not a lifetime" in err, (code, err)


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                                ("0.0.0.0", False), ("192.168.1.5", False), ("::", False),
                                                ("example.com", False)])
def test_which_hosts_are_loopback(host, loopback):
    assert _is_loopback(host) is loopback


def test_serve_on_a_public_address_warns_before_starting(workspaces, monkeypatch, capsys):
    import deployments.supervisor

    def stop(*args, **kwargs):
        raise SystemExit(9)  # stop before any server starts

    monkeypatch.setattr(deployments.supervisor, "free_port", stop)
    code, _, err = _cli(monkeypatch, capsys, "serve", "--host", "0.0.0.0")
    assert code == 9
    assert "no authentication of their own" in " ".join(err.split())
    code, _, err = _cli(monkeypatch, capsys, "serve", "--host", "127.0.0.1")
    assert code == 9 and "authentication" not in err
