"""`emailexport serve --postgres` (issue 13): the store and the Prefect server on a local PostgreSQL
cluster that serve starts and stops; an export posted to the API runs to completion on it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml

from emailexport.bundle import import_bundle, load_bundle
from emailexport.store import Store
from tests.api.conftest import ROOT

TOKEN = "pg-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def pg_data_dir():
    if not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL's binaries are missing (scripts/services install)")
        pytest.skip("PostgreSQL's binaries are missing (scripts/services install)")
    # Not below pytest's private tmp dir: as root the cluster runs as the postgres user.
    directory = Path(tempfile.mkdtemp(prefix="emailexport-serve-pg-"))
    directory.chmod(0o755)
    yield directory / "data"
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.timeout(600)
def test_serve_postgres_runs_an_export_on_its_own_cluster_and_stops_it(pg_data_dir):
    output = pg_data_dir.parent / "serve.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EMAILEXPORT_"))}
    env.update(EMAILEXPORT_DATA_DIR=str(pg_data_dir), COLUMNS="250")
    with open(output, "wb") as out:
        process = subprocess.Popen([str(Path(sys.executable).parent / "emailexport"), "serve", "--postgres",
                                    "--port", "0", "--prefect-port", "0"], env=env, cwd=ROOT, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while "Prefect UI:" not in output.read_text():
            assert process.poll() is None and time.monotonic() < deadline, output.read_text()
            time.sleep(0.5)
        text = output.read_text()
        api = re.search(r"API docs: (http://\S+)/docs", text).group(1)  # type: ignore[union-attr]
        prefect = re.search(r"Prefect UI: (http://\S+)", text).group(1) + "/api"  # type: ignore[union-attr]
        store_url = re.search(r"PostgreSQL store: (\S+)", text).group(1)  # type: ignore[union-attr]
        assert store_url.startswith("postgresql+psycopg://")
        store = Store(store_url)
        import_bundle(store, load_bundle(yaml.safe_load((ROOT / "tests/fixtures/mini.yaml").read_text())))
        store.add_token(TOKEN, [3])
        body = {"email_id": 1, "export_type": "html", "options": {"locales": ["en-US", "de-DE"]}}
        created = httpx.post(f"{api}/api/v1/workspaces/3/exports", json=body, headers=HEADERS, timeout=30)
        assert created.status_code == 200, created.text
        export_id = created.json()["id"]
        deadline = time.monotonic() + 180
        while (record := store.require_export(export_id)).status == "in_progress":
            assert time.monotonic() < deadline, record
            time.sleep(1)
        assert record.status == "completed", record.export_errors
        deadline = time.monotonic() + 60  # the record is written before the run reports its end
        while (run := httpx.get(f"{prefect}/flow_runs/{record.flow_run_id}").json())["state_type"] != "COMPLETED":
            assert time.monotonic() < deadline, run["state_type"]
            time.sleep(0.5)
        # The Prefect server keeps that run in the cluster's `prefect` database.
        prefect_db = sa.create_engine(store_url.replace("/emailexport?", "/prefect?"))
        with prefect_db.connect() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM flow_run WHERE id = :id"),
                                     {"id": record.flow_run_id}) == 1
        prefect_db.dispose()
        store.engine.dispose()
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(120)
    assert code == 0, output.read_text()
    assert "Stopping PostgreSQL" in output.read_text()
    assert not (pg_data_dir / "postgres" / "data" / "postmaster.pid").exists()  # the server is down
    assert (pg_data_dir / "postgres" / "data" / "PG_VERSION").exists()  # the data stays
