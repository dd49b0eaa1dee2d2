"""The multi-machine setup's database: a Prefect server on PostgreSQL, with the store on the same
PostgreSQL server, running a real export flow against both (README "Deployment")."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from deployments.supervisor import free_port
from tests.api.conftest import BIN, ROOT, prefect_env, wait_http


@pytest.fixture
def databases(postgres_url: str) -> tuple[str, str]:
    """Two fresh databases on the test cluster: one for Prefect, one for the store."""
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    names = (f"prefect_{os.getpid()}", f"store_{os.getpid()}")
    with admin.connect() as connection:
        for name in names:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            connection.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    base = postgres_url.rsplit("/", 1)[0]
    return f"{base}/{names[0]}".replace("+psycopg", "+asyncpg"), f"{base}/{names[1]}"


def test_a_prefect_server_on_postgresql_runs_an_export_whose_record_is_on_postgresql(databases, tmp_path):
    prefect_db, store_db = databases
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**prefect_env(tmp_path / "home", api_url), "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db,
           "EMAILEXPORT_DATABASE_URL": store_db, "EMAILEXPORT_DATA_DIR": str(tmp_path / "data")}
    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                                   str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"{api_url}/health", 120, server)
        script = (
            "import yaml\n"
            "from emailexport.bundle import import_bundle, load_bundle\n"
            "from emailexport.runtime import open_store\n"
            "from flows.export_email import export_email\n"
            "from tests.helpers import create_export\n"
            "store = open_store()\n"
            "import_bundle(store, load_bundle(yaml.safe_load(open('tests/fixtures/mini.yaml'))))\n"
            "record = create_export(store, 3, 1, ['en-US', 'ar-SA'])\n"
            "export_email(record.id)\n"
            "final = store.require_export(record.id)\n"
            "print(final.status, final.flow_run_id)\n"
        )
        done = subprocess.run([sys.executable, "-c", script], env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                              capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        status, flow_run_id = done.stdout.split()[-2:]
        assert status == "completed"
    finally:
        os.killpg(server.pid, 15)
        server.wait(30)
    # The run is in Prefect's PostgreSQL database, the record in the store's.
    prefect = sa.create_engine(prefect_db.replace("+asyncpg", "+psycopg"))
    with prefect.connect() as connection:
        state = connection.execute(sa.text("SELECT state_type FROM flow_run WHERE id = :id"),
                                   {"id": flow_run_id}).scalar_one()
    prefect.dispose()
    assert state == "COMPLETED"
    store = sa.create_engine(store_db)
    with store.connect() as connection:
        assert connection.execute(sa.text("SELECT status FROM exports")).scalar_one() == "completed"
    store.dispose()
