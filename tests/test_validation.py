import pytest

from emailexport.errors import NotFoundError, ValidationFailed
from emailexport.validation import validate_export_request


def _errors(store, body, workspace=3):
    with pytest.raises(ValidationFailed) as info:
        validate_export_request(store, workspace, body)
    return info.value.errors


def _body(**overrides):
    body = {"email_id": 1, "export_type": "html", "options": {"locales": ["en-US", "de-DE"]}}
    body.update(overrides)
    return body


def test_a_good_request_is_normalized(mini):
    checked = validate_export_request(mini, 3, _body(options={"locales": ["en-US"], "cdn_connector_id": None}))
    assert checked.request.options.image_mode == "use_cdn" and checked.request.options.minify_html is False
    assert checked.email.name == "Mini News" and checked.profile is None


def test_unknown_workspace_is_not_found(mini):
    # the message names the record; the API still answers its 404 with "Record not found"
    with pytest.raises(NotFoundError, match=r"^workspace 99 not found$"):
        validate_export_request(mini, 99, _body())


def test_a_locale_in_the_wrong_case_or_with_an_underscore_gets_a_suggestion(mini):
    errors = _errors(mini, _body(options={"locales": ["en-us", "de_DE", "EN-gb", "xx-XX"]}))
    assert errors["options.locales"] == [
        "'en-us' is not a supported locale (did you mean 'en-US'?)",
        "'de_DE' is not a supported locale (did you mean 'de-DE'?)",
        "'EN-gb' is not a supported locale (did you mean 'en-GB'?)",
        "'xx-XX' is not a supported locale",
    ]


def test_every_problem_is_reported_at_once(mini):
    errors = _errors(mini, {
        "email_id": 1,
        "export_type": "connector",
        "dynamic_content_profile_id": "missing",
        "options": {"locales": ["en-US", "en-US", "fr-FR", "xx-XX"], "image_mode": "include_in_zip",
                    "per_locale_options": {"ja-JP": {}}},
    })
    assert "'xx-XX' is not a supported locale" in errors["options.locales"]
    assert "en-US is listed more than once" in errors["options.locales"]
    assert any("fr-FR is not a locale of email 1" in m for m in errors["options.locales"])
    assert errors["connector_id"] == ["is required when export_type is connector"]
    assert errors["options.image_mode"] == ["include_in_zip is not valid for connector exports"]
    assert errors["dynamic_content_profile_id"] == ["dynamic content profile missing not found"]
    assert errors["options.per_locale_options.ja-JP"] == ["ja-JP is not among options.locales"]


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ({"export_type": "html", "options": {"locales": ["en-US"]}}, "email_id", "is required"),
        (_body(email_id=42), "email_id", "email 42 not found in this workspace"),
        (_body(options={"locales": []}), "options.locales", "must name at least one locale"),
        (_body(options={}), "options.locales", "is required"),
        (_body(options={"locales": ["en-US"], "export_field_values": {"tag": "x"}}), "options.export_field_values",
         "is only used by connector exports"),
        (_body(dynamic_content_profile_id="p\x00x"), "dynamic_content_profile_id", "must not contain NUL characters"),
        (_body(export_type="zip"), "export_type", "Input should be 'html', 'connector', 'json' or 'pdf'"),
        (_body(connector_id=9, export_type="html"), "connector_id", "connector 9 not found in this workspace"),
        (_body(options={"locales": ["en-US"], "image_mode": "use_cdn_connector"}), "cdn_connector_id",
         "is required when options.image_mode is use_cdn_connector"),
        (_body(unexpected=True), "unexpected", "is not a known field"),
    ],
)
def test_each_rule_names_its_field(mini, body, path, message):
    assert message in _errors(mini, body)[path][0]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_malformed_json_is_a_validation_error(mini, raw):
    errors = _errors(mini, raw)
    assert list(errors) == ["body"]


@pytest.mark.parametrize("export_type", ["html", "json"])
def test_include_in_zip_is_accepted_for_file_exports(mini, export_type):
    checked = validate_export_request(mini, 3, _body(export_type=export_type,
                                                     options={"locales": ["en-US"], "image_mode": "include_in_zip"}))
    assert checked.request.options.image_mode == "include_in_zip"


def test_use_cdn_connector_needs_a_known_connector_of_a_known_type(mini, mini_data):
    from emailexport.bundle import import_bundle, load_bundle

    mini_data["cdn_connectors"] = [
        {"id": 4, "type": "s3", "bucket": "b", "base_url": "https://cdn.example.com"},
        {"id": 5, "type": "gcs", "bucket": "b", "base_url": "https://cdn.example.com"},
    ]
    import_bundle(mini, load_bundle(mini_data))
    options = {"locales": ["en-US"], "image_mode": "use_cdn_connector"}
    assert validate_export_request(mini, 3, _body(cdn_connector_id=4, options=options)).cdn_connector.id == 4
    assert _errors(mini, _body(cdn_connector_id=5, options=options))["cdn_connector_id"] == [
        "CDN connector 5 has type 'gcs', which is not supported (known types: s3)"]
    assert _errors(mini, _body(cdn_connector_id=9, options=options))["cdn_connector_id"] == [
        "CDN connector 9 not found in this workspace"]
    inside = {**options, "cdn_connector_id": 4}
    assert validate_export_request(mini, 3, _body(options=inside)).cdn_connector.id == 4
