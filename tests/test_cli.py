"""The command line, in-process through its real entry point (`emailexport.cli.main`)."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from emailexport.cli import main


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["emailexport", *args])
    with pytest.raises(SystemExit) as info:
        main()
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--email", "99"], "email_id: email 99 not found in this workspace"),
        (["--email", "1", "--locales", "en-US,en-US,fr-FR"], "options.locales: en-US is listed more than once"),
        (["--email", "1", "--locales", "en-US,fr-FR"], "options.locales: fr-FR is not a locale of email 1"),
        (["--email", "1", "--locales", "xx-XX"], "options.locales: 'xx-XX' is not a supported locale"),
        (["--email", "1", "--profile", "nope"], "dynamic_content_profile_id: dynamic content profile nope not found"),
        (["--email", "1", "--type", "connector"], "connector_id: is required when export_type is connector"),
    ],
)
def test_bad_export_requests_are_messages_not_tracebacks(mini, monkeypatch, capsys, args, expected):
    code, _, err = _cli(monkeypatch, capsys, "export", "--workspace", "3", *args)
    assert code == 2
    assert expected in " ".join(err.split())
    assert "Traceback" not in err


def test_unknown_export_is_a_message(store, monkeypatch, capsys):
    code, _, err = _cli(monkeypatch, capsys, "show", "12345")
    assert code == 2 and "export 12345 not found" in err


@pytest.mark.usefixtures("prefect_harness")
def test_export_runs_the_flow_and_prints_where_the_outputs_are(mini, monkeypatch, capsys, data_dir):
    code, out, _ = _cli(monkeypatch, capsys, "export", "--workspace", "3", "--email", "1", "--locales",
                        "en-US,ar-SA", "--profile", "p-braze", "--minify")
    assert code == 0, out
    assert "completed" in out and "ar-SA" in out
    assert f"zip: file://{data_dir.resolve()}/outputs/exports/1/mini-news-1.zip" in out.splitlines()


@pytest.mark.usefixtures("prefect_harness")
def test_demo_imports_the_example_and_exports_html_and_json(store, monkeypatch, capsys):
    code, out, _ = _cli(monkeypatch, capsys, "demo")
    assert code == 0, out
    records, total = store.list_exports(1)
    assert total == 3 and {(r.export_type, r.options.image_mode) for r in records} == {
        ("html", "use_cdn"), ("json", "use_cdn"), ("html", "include_in_zip")}
    assert all(r.status == "completed" and len(r.results) == 6 for r in records), [r.export_errors for r in records]
    assert "zip:" in out and "json:" in out


@pytest.mark.usefixtures("prefect_harness")
def test_a_failed_export_exits_3(mini, mini_data, monkeypatch, capsys):
    from emailexport.bundle import import_bundle, load_bundle

    mini_data["design_systems"][0]["components"][1]["template"] = "<tr><td>{{ nothing_here }}</td></tr>"
    import_bundle(mini, load_bundle(mini_data))
    code, out, _ = _cli(monkeypatch, capsys, "export", "--workspace", "3", "--email", "1", "--locales", "en-US")
    assert code == 3 and "failed" in out


# -- behaving like the click tools users know ---------------------------------------------------

def _run(*args: str) -> Any:
    """Through typer's CliRunner, which calls the same `main` the installed script does."""
    from typer.testing import CliRunner

    from emailexport.cli import app

    return CliRunner().invoke(app, list(args), prog_name="emailexport")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["bogus"], "No such command 'bogus'."),
        (["export"], "Missing option '--email'."),
        (["export", "--email", "abc"], "Invalid value for '--email'"),
        (["export", "--email", "1", "--type", "zip"], "Invalid value for '--type'"),
        (["show"], "Missing argument 'EXPORT_ID'."),
        (["serve", "--port", "-1"], "Invalid value for '--port'"),
        (["list", "--status", "done"], "Invalid value for '--status'"),
    ],
)
def test_usage_errors_print_clicks_usage_message_and_exit_2(store, args, error):
    result = _run(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Usage: emailexport {args[0] if args[0] != 'bogus' else ''}".rstrip())
    assert "Try 'emailexport" in result.stderr and f"Error: {error}" in result.stderr
    assert "Internal error" not in result.output and "Traceback" not in result.output
    assert result.stdout == ""


def test_the_bare_command_prints_the_help_and_exits_0():
    result = _run()
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: emailexport [OPTIONS] COMMAND [ARGS]...")
    assert "export" in result.stdout and "list" in result.stdout and result.stderr == ""
    group = _run("workspace")
    assert group.exit_code == 0 and group.stdout.startswith("Usage: emailexport workspace [OPTIONS] COMMAND")


def test_version_prints_the_version():
    from importlib.metadata import version

    result = _run("--version")
    assert result.exit_code == 0 and result.stdout == f"emailexport {version('emailexport')}\n"


@pytest.mark.parametrize(
    ("args", "code", "stream", "text"),
    [
        ([], 0, "stdout", "Usage: emailexport [OPTIONS] COMMAND [ARGS]..."),
        (["bogus"], 2, "stderr", "Error: No such command 'bogus'."),
        (["export"], 2, "stderr", "Error: Missing option '--email'."),
        (["export", "--email", "abc"], 2, "stderr", "Invalid value for '--email'"),
        (["--version"], 0, "stdout", "emailexport "),
        (["show", "424242"], 2, "stderr", "Error: export 424242 not found"),
    ],
)
def test_exit_codes_of_the_real_process(data_dir, args, code, stream, text):
    import subprocess

    done = subprocess.run([sys.executable, "-c", "from emailexport.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == code, done.stderr
    assert text in getattr(done, stream)
    assert "Traceback" not in done.stderr and "Internal error" not in done.stderr


def test_help_texts_are_clicks_plain_help_with_choices_and_no_placeholders():
    texts = {name: _run(*name.split(), "--help") for name in
             ("", "export", "show", "list", "serve", "bulk", "workspace import", "token create", "demo")}
    for name, result in texts.items():
        assert result.exit_code == 0, name
        for bad in ("<bool>", "{", "[default: -1]", "╭"):
            assert bad not in result.stdout, (name, bad, result.stdout)
    export = " ".join(texts["export"].stdout.split())
    assert "--type <html|json|pdf|connector>" in export
    assert "--image-mode <use_cdn|include_in_zip|use_cdn_connector>" in export
    assert "--json print only the record, as JSON, on stdout" in export
    show = " ".join(texts["show"].stdout.split())
    assert "Usage: emailexport show [OPTIONS] EXPORT_ID" in show
    assert "EXPORT_ID <int> the export's id" in show and "--json print the record as JSON" in show
    serve = " ".join(texts["serve"].stdout.split())
    assert "0 = any free port; unset: 8000, or a free one when 8000 is taken" in serve
    assert "Usage: emailexport workspace import [OPTIONS] FILE" in texts["workspace import"].stdout
    assert "--status <in_progress|completed|failed>" in " ".join(texts["list"].stdout.split())


def test_rich_markup_in_data_is_printed_as_written(store, mini_data, tmp_path):
    mini_data["emails"][0]["content"]["subject"]["branch_content"]["null_branch"]["en-US"] = "Hi [[tag:first_nme]]"
    bundle = tmp_path / "[b]bundle.json"
    bundle.write_text(json.dumps(mini_data))
    result = _run("workspace", "import", str(bundle))
    assert result.exit_code == 2
    assert "unknown personalization tag [[tag:first_nme]]" in result.stderr
    assert "unknown personalization tag []" not in result.stderr


def test_messages_name_the_missing_record_and_suggest_locales(mini):
    workspace = _run("export", "--workspace", "7", "--email", "1")
    assert workspace.exit_code == 2 and "workspace 7 not found" in workspace.stderr
    assert "Record not found" not in workspace.stderr
    locale = _run("export", "--workspace", "3", "--email", "1", "--locales", "en-us,de_DE")
    assert locale.exit_code == 2
    assert "options.locales: 'en-us' is not a supported locale (did you mean 'en-US'?)" in locale.stderr
    assert "options.locales: 'de_DE' is not a supported locale (did you mean 'de-DE'?)" in locale.stderr
    email = _run("export", "--workspace", "3", "--email", "99")
    assert email.exit_code == 2 and "email_id: email 99 not found in this workspace" in email.stderr
    assert "options.locales" not in email.stderr
    assert _run("list", "--workspace", "7").exit_code == 2


def test_list_filters_by_status_and_email_newest_first(mini):
    from emailexport.validation import validate_export_request

    ids = []
    for email_id in (1, 1, 1):
        checked = validate_export_request(mini, 3, {"email_id": email_id, "export_type": "html",
                                                    "options": {"locales": ["en-US"]}})
        record = mini.create_export(workspace=checked.workspace, email=checked.email, export_type="html",
                                    options=checked.request.options, connector_id=None, cdn_connector_id=None,
                                    dynamic_content_profile_id=None, integration_name=None)
        ids.append(record.id)
    mini.update_export(ids[0], status="completed")
    mini.update_export(ids[2], status="failed")
    listed = _run("list", "--workspace", "3", "--json")
    assert listed.exit_code == 0
    document = json.loads(listed.stdout)
    assert [r["id"] for r in document["results"]] == ids[::-1]
    assert document["pagination"] == {"per": 25, "page": 1, "total": 3}
    failed = json.loads(_run("list", "--workspace", "3", "--status", "failed", "--json").stdout)
    assert [r["id"] for r in failed["results"]] == [ids[2]]
    assert json.loads(_run("list", "--workspace", "3", "--email", "2", "--json").stdout)["results"] == []
    table = _run("list", "--workspace", "3", "--status", "completed")
    assert table.exit_code == 0 and "completed" in table.stdout and "in_progress" not in table.stdout
    assert "Mini News" in table.stdout or "1 " in table.stdout


def test_prefect_console_logs_go_through_the_progress_console_and_back():
    import io
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler
    from rich.console import Console

    from emailexport.cli import _prefect_logs_through

    original, target = io.StringIO(), io.StringIO()
    handler = PrefectConsoleHandler(stream=original)
    logger = logging.getLogger("prefect.test-cli-progress")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with _prefect_logs_through(Console(file=target, markup=False)):
            logger.info("rendered [b]de-DE[/b]")
        logger.info("after")
    finally:
        logger.removeHandler(handler)
    assert "rendered [b]de-DE[/b]" in target.getvalue() and "after" not in target.getvalue()
    assert "after" in original.getvalue() and "rendered" not in original.getvalue()


@pytest.mark.usefixtures("prefect_harness")
def test_export_json_prints_one_json_document_and_the_rest_on_stderr(mini, monkeypatch, capsys, data_dir):
    code, out, err = _cli(monkeypatch, capsys, "export", "--workspace", "3", "--email", "1", "--locales",
                          "en-US,de-DE", "--json")
    assert code == 0, err
    record = json.loads(out)  # the whole of stdout is one JSON document
    assert record["status"] == "completed" and set(record["results"]) == {"en-US", "de-DE"}
    assert "Export 1 created" in err
    assert "export 1: done" in err and "2/2" in err  # the progress bar of locales
    # piped output never wraps a path or URL mid-word
    code, out, _ = _cli(monkeypatch, capsys, "show", "1")
    url = f"file://{data_dir.resolve()}/outputs/exports/1/"
    assert f"zip: {url}mini-news-1.zip" in out.splitlines(), out
