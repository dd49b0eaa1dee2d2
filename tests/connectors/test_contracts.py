"""The vendor contracts the connector tests validate against, and the validator's parameter checks.

The contracts in `tests/connectors/contracts/` are derived by `scripts/derive-contracts` from the
vendors' published specs in `../shared/specs/` (beside the checkout, or `$VENDOR_SPECS`). A clone
without that folder uses the committed contracts as they are; where the folder exists, the
committed files must equal what the script derives from it now.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.connectors.spec import CONTRACTS, RecordedRequest, load_spec

ROOT = Path(__file__).resolve().parents[2]


def _derive_module() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("derive_contracts", str(ROOT / "scripts" / "derive-contracts"))
    spec = importlib.util.spec_from_loader("derive_contracts", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


derive_contracts = _derive_module()
SPECS = derive_contracts.DEFAULT_SPECS


@pytest.mark.parametrize("vendor", sorted(derive_contracts.VENDORS))
def test_the_committed_contract_matches_the_vendor_spec_it_is_derived_from(vendor):
    if not Path(SPECS).is_dir():
        pytest.skip(f"vendor specs not present at {SPECS} (set VENDOR_SPECS to check the contracts against them)")
    committed = (CONTRACTS / f"{vendor}.json").read_text(encoding="utf-8")
    derived = derive_contracts.render(derive_contracts.derive(vendor, Path(SPECS)))
    assert committed == derived, f"contracts/{vendor}.json is stale: run scripts/derive-contracts"


def test_every_contract_resolves_inside_itself_and_names_its_source():
    for vendor, (relative, prefixes) in derive_contracts.VENDORS.items():
        data = json.loads((CONTRACTS / f"{vendor}.json").read_text(encoding="utf-8"))
        assert data["x-contract"]["derived-from"] == relative
        assert all(p.startswith(prefixes) for p in data["paths"])
        assert load_spec(relative).data is not None
        refs = derive_contracts._refs(data)
        assert refs, vendor
        for ref in refs:  # every $ref points at something the contract carries
            assert derive_contracts._pointer(data, ref) is not None


def test_the_contracts_are_read_from_the_repository_not_from_beside_it():
    assert CONTRACTS.is_relative_to(ROOT)
    load_spec.cache_clear()
    spec = load_spec("sendgrid/tsg_templates_v3.json")
    assert spec.operation("POST", "/v3/templates")[0] == "/v3/templates"
    with pytest.raises(ValueError, match=r"derived from sendgrid/tsg_templates_v3\.json"):
        load_spec("sendgrid/other.json")


def test_the_script_check_mode_reports_a_stale_contract(tmp_path, monkeypatch):
    if not Path(SPECS).is_dir():
        pytest.skip(f"vendor specs not present at {SPECS}")
    for vendor in derive_contracts.VENDORS:
        (tmp_path / f"{vendor}.json").write_text((CONTRACTS / f"{vendor}.json").read_text())
    monkeypatch.setattr(derive_contracts, "CONTRACTS", tmp_path)
    monkeypatch.setattr(derive_contracts, "ROOT", tmp_path)
    assert derive_contracts.main(["--check", "--specs", str(SPECS)]) == 0
    (tmp_path / "brevo.json").write_text("{}\n")
    assert derive_contracts.main(["--check", "--specs", str(SPECS)]) == 1


# -- parameter values, not only their presence ---------------------------------------------------

SENDGRID_AUTH = {"authorization": "Bearer SG.x"}


def _sendgrid(path: str, query: dict[str, list[str]], method: str = "GET") -> list[str]:
    request = RecordedRequest(method, path, query, SENDGRID_AUTH, b"")
    return load_spec("sendgrid/tsg_templates_v3.json").problems(request)


def test_a_query_value_above_the_schema_maximum_is_rejected():
    assert _sendgrid("/v3/templates", {"page_size": ["200"], "generations": ["dynamic"]}) == []
    problems = _sendgrid("/v3/templates", {"page_size": ["201"]})
    assert problems == ["GET /v3/templates: query parameter page_size: 201 is greater than the maximum of 200"]
    assert "0 is less than the minimum of 1" in _sendgrid("/v3/templates", {"page_size": ["0"]})[0]
    assert "'many' is not a number" in _sendgrid("/v3/templates", {"page_size": ["many"]})[0]


def test_a_query_value_outside_the_enum_is_rejected():
    problems = _sendgrid("/v3/templates", {"page_size": ["10"], "generations": ["Dynamic"]})
    assert problems == ["GET /v3/templates: query parameter generations: 'Dynamic' is not one of "
                        "['legacy', 'dynamic', 'legacy,dynamic']"]


def test_a_single_valued_parameter_sent_twice_is_rejected():
    problems = _sendgrid("/v3/templates", {"page_size": ["10", "20"]})
    assert problems == ["GET /v3/templates: query parameter page_size: sent 2 times, the spec takes one value"]


def test_a_path_value_is_checked_against_its_format_with_documented_errata():
    version = "/v3/templates/d-0123456789abcdef0123456789abcdef/versions/{}"
    good = "8aefe0ee-f12b-4575-b5b7-c97e21cb36f3"
    assert _sendgrid(version.format(good), {}, method="GET") == []  # template_id: ERRATA (ids are "d-...")
    problems = _sendgrid(version.format("not-a-uuid"), {}, method="GET")
    assert problems == ["GET /v3/templates/{template_id}/versions/{version_id}: path parameter version_id: "
                        "'not-a-uuid' is not a 'uuid'"]


def test_swagger2_parameters_are_typed_and_bounded():
    spec = load_spec("brevo/swagger.yaml", "/v3")
    headers = {"api-key": "k"}

    def problems(path: str, query: dict[str, list[str]]) -> list[str]:
        return spec.problems(RecordedRequest("GET", path, query, headers, b""))

    assert problems("/v3/smtp/templates", {"limit": ["1000"], "offset": ["0"], "sort": ["desc"]}) == []
    assert problems("/v3/smtp/templates", {"limit": ["1001"]}) == [
        "GET /smtp/templates: query parameter limit: 1001 is greater than the maximum of 1000"]
    assert problems("/v3/smtp/templates", {"sort": ["newest"]}) == [
        "GET /smtp/templates: query parameter sort: 'newest' is not one of ['asc', 'desc']"]
    assert problems("/v3/smtp/templates", {"templateStatus": ["yes"]}) == [
        "GET /smtp/templates: query parameter templateStatus: 'yes' is not true or false"]
    assert problems("/v3/smtp/templates/12", {}) == []
    assert problems("/v3/smtp/templates/abc", {}) == [
        "GET /smtp/templates/{templateId}: path parameter templateId: 'abc' is not an integer"]


def test_oas3_arrays_split_as_their_style_says_and_each_item_is_checked():
    spec = load_spec("klaviyo/templates.json")
    headers = {"authorization": "Klaviyo-API-Key pk", "revision": "2026-07-15"}

    def problems(query: dict[str, list[str]]) -> list[str]:
        request = RecordedRequest("GET", "/api/templates", query, headers, b"")
        return [p for p in spec.problems(request) if "credentials" not in p]

    assert problems({"fields[template]": ["name,html"], "page[size]": ["10"], "sort": ["-created"]}) == []
    assert problems({"fields[template]": ["name,subject"]}) == [
        "GET /api/templates: query parameter fields[template]: 'subject' is not one of " + repr(
            ['amp', 'created', 'definition', 'definition.body', 'definition.body.id', 'definition.body.properties',
             'definition.body.properties.css_class', 'definition.body.properties.id', 'definition.body.sections',
             'definition.body.styles', 'definition.body.styles.background_color', 'definition.body.styles.width',
             'definition.id', 'definition.styles', 'definition.template_id', 'editor_type', 'html', 'id', 'name',
             'text', 'updated'])]
    assert problems({"page[size]": ["11"]}) == [
        "GET /api/templates: query parameter page[size]: 11 is greater than the maximum of 10"]
