"""The example email (examples/workspace.yaml) exported through the `export_email` flow to a
vendor's loopback fake: the setup every connector's flow test shares. Each test keeps its own
checks of the run and of what its fake now holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from prefect.states import State

    from emailexport.models import Email, ExportRecord
    from emailexport.store import Store

EXAMPLE = Path(__file__).parents[2] / "examples" / "workspace.yaml"


def example_data() -> dict[str, Any]:
    """The example workspace as plain data, read afresh, for a test that looks at or changes it first."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@dataclass(frozen=True)
class ExampleExport:
    """One run of the example email through the flow."""

    state: State  # the flow run's final state
    final: ExportRecord  # the export record, read after the run
    email: Email  # the example's email
    locales: list[str]  # the locales the export asked for
    profile: str  # the id of the dynamic content profile it was exported with


def export_example(store: Store, connector: dict[str, Any], preset: str, raw: dict[str, Any] | None = None, *,
                   locales: list[str] | None = None, options: dict[str, Any] | None = None) -> ExampleExport:
    """Import the example workspace with `connector` as its only connector, validate and record an
    export of its email to that connector with the dynamic content profile of `preset`, run it
    through the `export_email` flow and return the run.

    `raw` is the example as data (default: `example_data()`); its connectors are replaced. The export
    asks for `locales` (default: all of the email's) plus any other `options`.
    """
    from emailexport.bundle import import_bundle, load_bundle
    from emailexport.validation import validate_export_request
    from flows.export_email import export_email

    raw = example_data() if raw is None else raw
    raw["connectors"] = [connector]
    bundle = load_bundle(raw)
    import_bundle(store, bundle, base_dir=EXAMPLE.parent)
    email = bundle.emails[0]
    profile = next(p.id for p in bundle.dynamic_content_profiles if p.template_engine_preset == preset)
    locales = list(email.locales) if locales is None else list(locales)
    checked = validate_export_request(store, bundle.workspace.id, {
        "email_id": email.id, "export_type": "connector", "connector_id": connector["id"],
        "dynamic_content_profile_id": str(profile), "options": {"locales": locales, **(options or {})}})
    record = store.create_export(workspace=checked.workspace, email=checked.email, export_type="connector",
                                 options=checked.request.options, connector_id=connector["id"],
                                 dynamic_content_profile_id=str(profile), integration_name=checked.integration_name)
    state = export_email(record.id, return_state=True)
    final = store.require_export(record.id)
    return ExampleExport(state=state, final=final, email=email, locales=locales, profile=str(profile))
