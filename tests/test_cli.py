"""The command line, in-process through its real entry point (`emailexport.cli.main`)."""

from __future__ import annotations

import sys

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
    assert f"file://{data_dir.resolve()}/outputs/exports/1/mini-news-1.zip" in out.replace("\n", "")


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
