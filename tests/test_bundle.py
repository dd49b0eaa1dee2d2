import subprocess
import sys

import pytest
import yaml

from emailexport.bundle import load_bundle, read_bundle_file
from emailexport.errors import ValidationFailed


def _errors(data):
    with pytest.raises(ValidationFailed) as info:
        load_bundle(data)
    return info.value.errors


def test_the_mini_bundle_is_valid(mini_data):
    bundle = load_bundle(mini_data)
    assert bundle.workspace.id == 3 and len(bundle.emails) == 1


def test_every_problem_is_reported_with_its_path(mini_data):
    email = mini_data["emails"][0]
    email["content"]["instances"][0]["component"] = "nope"
    email["content"]["instances"][1]["field_values"]["platinum"] = {}
    email["content"]["subject"]["branch_content"]["null_branch"]["en-US"] = "Hi [[tag:nickname]]"
    mini_data["design_systems"][0]["components"][1]["template"] = "<tr>{% if %}</tr>"
    errors = _errors(mini_data)
    assert "component 'nope' is not in design system 1" in errors["emails[0].content.instances[0].component"][0]
    assert "branch 'platinum'" in errors["emails[0].content.instances[1].field_values.platinum"][0]
    assert "unknown personalization tag [[tag:nickname]]" in errors[
        "emails[0].content.subject.branch_content.null_branch.en-US"][0]
    assert "template syntax error in 'paragraph' line 1" in errors["design_systems[0].components[1].template"][0]


def test_schema_errors_carry_their_path(mini_data):
    mini_data["emails"][0]["locales"] = ["en-US", "xx-XX"]
    del mini_data["design_systems"][0]["components"][0]["template"]
    errors = _errors(mini_data)
    assert "emails[0].locales[1]" in errors
    assert errors["design_systems[0].components[0].template"] == ["Field required"]


def test_a_malformed_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "ws.yaml"
    bad.write_text("organization: {id: 1\n  name: [", encoding="utf-8")
    with pytest.raises(ValidationFailed) as info:
        read_bundle_file(bad)
    assert "ws.yaml is not valid YAML" in info.value.errors["file"][0]
    with pytest.raises(ValidationFailed, match="a bundle is a mapping"):
        load_bundle(yaml.safe_load("- just a list"))


def test_the_cli_reports_a_bad_bundle_without_a_traceback(tmp_path, mini_data):
    mini_data["emails"][0]["content"]["instances"][0]["component"] = "nope"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(mini_data), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "emailexport.cli", "workspace", "import", str(path)],
                          capture_output=True, text=True, env={"EMAILEXPORT_DATA_DIR": str(tmp_path / "d"),
                                                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "emails[0].content.instances[0].component" in done.stderr


def test_connector_types_and_settings_are_checked_against_the_connector(mini_data):
    mini_data["connectors"] = [
        {"id": 1, "type": "hotmail", "name": "H"},
        {"id": 2, "type": "brevo", "name": "B", "settings": {"sender_email": "a@b.example", "reply_to": "x"}},
        {"id": 3, "type": "brevo", "name": "B2", "settings": {}},
    ]
    errors = _errors(mini_data)
    assert "no ESP connector of type 'hotmail'; known types: braze, brevo" in errors["connectors[0].type"][0]
    assert errors["connectors[1].settings.reply_to"] == ["Extra inputs are not permitted"]
    assert "exactly one of sender_email and sender_id" in errors["connectors[2].settings"][0]
