"""`emailexport transform FILE` and `transform_file`: the transform stage on a file a team brings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from emailexport.cli import main
from emailexport.transform_file import TransformFileError, transform_file
from tests.transforms.visible import esp_tokens, visible_text

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
BRAZE = CORPUS / "tokens_inside_comments.html"


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["emailexport", *args])
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping of messages by rich
    with pytest.raises(SystemExit) as info:
        main()
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.mark.parametrize("minify", [False, True])
def test_function_transforms_and_keeps_what_recipients_read(minify: bool) -> None:
    source = (CORPUS / "mailchimp_blueprint_newsletter.html").read_text(encoding="utf-8")
    result = transform_file(CORPUS / "mailchimp_blueprint_newsletter.html", minify=minify)
    assert visible_text(result.html) == visible_text(source)
    assert esp_tokens(result.html) == esp_tokens(source)
    assert "#templatePreheader{" not in result.html  # the rule was inlined into the element's style
    assert "#templatePreheader{" in source


def test_function_keeps_the_files_own_lang(tmp_path: Path) -> None:
    path = tmp_path / "a.html"
    path.write_text('<html lang="fr"><body><p>Bonjour {{ prenom }}</p></body></html>', encoding="utf-8")
    assert '<html lang="fr">' in transform_file(path).html


def test_function_writes_out_and_reports_preset_warnings_with_source_lines(tmp_path: Path) -> None:
    out = tmp_path / "out.html"
    result = transform_file(BRAZE, minify=True, preset="braze", out=out)
    assert out.read_text(encoding="utf-8") == result.html
    comment = [w for w in result.warnings if "[token_in_comment]" in w]
    assert len(comment) == 3 and all("Braze" in w for w in comment)
    assert "(line 12)" in comment[1]  # the <!--[if mso]> of the source file, not of the one-line output


@pytest.mark.parametrize("preset", [None, "mailchimp"])
def test_no_comment_warning_without_a_comment_blind_preset(preset: str | None) -> None:
    assert not [w for w in transform_file(BRAZE, preset=preset).warnings if "token_in_comment" in w]


def test_function_errors(tmp_path: Path) -> None:
    (tmp_path / "latin1.html").write_bytes("<p>caf\xe9</p>".encode("latin-1"))
    with pytest.raises(TransformFileError, match="cannot read"):
        transform_file(tmp_path / "missing.html")
    with pytest.raises(TransformFileError, match="cannot read"):
        transform_file(tmp_path)
    with pytest.raises(TransformFileError, match="not UTF-8 text"):
        transform_file(tmp_path / "latin1.html")
    with pytest.raises(TransformFileError, match="unknown preset 'nope'; known: braze"):
        transform_file(BRAZE, preset="nope")
    with pytest.raises(TransformFileError, match="cannot write"):
        transform_file(BRAZE, out=tmp_path / "no" / "such" / "dir.html")


def test_cli_prints_html_to_stdout_and_warnings_to_stderr(monkeypatch, capsys) -> None:
    code, out, err = _cli(monkeypatch, capsys, "transform", str(BRAZE), "--minify", "--preset", "braze")
    assert code == 0
    assert out.startswith("<!DOCTYPE html>") and "Hi {{ ${first_name} | default: 'there' }}, your" in out
    assert err.count("[token_in_comment]") == 3 and "Braze does not process" in err


def test_cli_writes_out(monkeypatch, capsys, tmp_path: Path) -> None:
    target = tmp_path / "x.html"
    code, out, err = _cli(monkeypatch, capsys, "transform", str(BRAZE), "--out", str(target))
    assert code == 0 and out == "" and f"Wrote {target}" in err
    assert "{{ ${event_name} }}" in target.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["missing.html", "."])
def test_cli_exits_2_on_unreadable_input(monkeypatch, capsys, tmp_path: Path, name: str) -> None:
    code, out, err = _cli(monkeypatch, capsys, "transform", str(tmp_path / name))
    assert code == 2 and out == ""
    assert "Error: cannot read" in err and "Traceback" not in err


def test_cli_exits_2_on_unknown_preset(monkeypatch, capsys) -> None:
    code, _out, err = _cli(monkeypatch, capsys, "transform", str(BRAZE), "--preset", "nope")
    assert code == 2 and "unknown preset 'nope'" in err


def test_cli_escapes_rich_markup_in_user_data(monkeypatch, capsys, tmp_path: Path) -> None:
    path = tmp_path / "[bold]odd.html"
    path.write_text('<html lang="en"><body><!-- {{ [red]x[/red] }} --><p>a</p></body></html>', encoding="utf-8")
    code, _out, err = _cli(monkeypatch, capsys, "transform", str(path), "--preset", "braze", "--out",
                           str(tmp_path / "[b]o.html"))
    assert code == 0
    assert "{{ [red]x[/red] }}" in err and f"Wrote {tmp_path / '[b]o.html'}" in err
