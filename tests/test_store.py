from emailexport.models import Email, ExportOptions, Image, Workspace
from emailexport.store import Store, hash_token


def test_migrations_create_the_schema_and_are_idempotent(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.migrate()
    store.migrate()
    from sqlalchemy import inspect

    tables = set(inspect(store.engine).get_table_names())
    assert {"organizations", "workspaces", "workspace_documents", "exports", "api_tokens", "alembic_version"} <= tables


def test_documents_round_trip_and_are_scoped_to_their_workspace(mini):
    email = mini.get(3, Email, 1)
    assert email is not None and email.name == "Mini News"
    assert mini.get(4, Email, 1) is None
    assert [e.id for e in mini.list_documents(3, Email)] == [1]
    assert mini.get(3, Image, "nope") is None


def test_export_records_are_created_in_progress_and_failed_once(mini):
    workspace = mini.workspace(3)
    assert workspace == Workspace(id=3, organization_id=7, name="Tests")
    email = mini.require(3, Email, 1)
    record = mini.create_export(workspace=workspace, email=email, export_type="html",
                                options=ExportOptions(locales=["en-US"]))
    assert record.status == "in_progress" and record.organization_id == 7 and record.email.name == "Mini News"
    assert record.export_errors == {"base": None}
    failed = mini.fail_if_in_progress(record.id, "worker lost")
    assert failed.status == "failed" and failed.export_errors["base"] == ["worker lost"]
    again = mini.fail_if_in_progress(record.id, "second reason")
    assert again.export_errors["base"] == ["worker lost"]
    page, total = mini.list_exports(3)
    assert total == 1 and page[0].id == record.id


def test_tokens_are_stored_hashed(store):
    store.add_token("secret-token-value", [1, 2])
    assert store.token_workspaces("secret-token-value") == [1, 2]
    assert store.token_workspaces("other") is None
    from sqlalchemy import text

    with store.engine.connect() as connection:
        stored = connection.execute(text("select token_hash from api_tokens")).scalar_one()
    assert stored == hash_token("secret-token-value") and "secret" not in stored
