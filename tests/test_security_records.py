"""Issue 18, item 3: the first terminal state wins. A record the reconciler failed (its heartbeat
starved by a long render) never flips back to completed, and the flow that finds its record
failed stops: nothing more is pushed to the ESP, so a client that retried after seeing `failed`
does not get a duplicate there."""

from __future__ import annotations

import pytest

import flows.export_email as export_flow
import tasks.push as push_module
from tests.test_flow_delivery import _connector_export, brevo, with_brevo  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("prefect_harness")
LOST = "export flow run stopped sending heartbeats: the process running it was lost"


def test_a_record_failed_while_its_flow_renders_stays_failed_and_nothing_is_pushed(with_brevo, brevo,  # noqa: F811
                                                                                   monkeypatch):
    original = export_flow.check_locales

    class FailsTheRecordFirst:
        """The reconciler runs while the flow is still rendering and judges the run lost."""

        @staticmethod
        def fn(renders, inputs):
            with_brevo.fail_if_in_progress(next(iter(with_brevo.exports_in_progress())).id, LOST)
            return original.fn(renders, inputs)

    monkeypatch.setattr(export_flow, "check_locales", FailsTheRecordFirst)
    record, state = _connector_export(with_brevo, ["en-US", "de-DE"])
    assert record.status == "failed" and record.export_errors["base"] == [LOST]
    assert state.is_failed() and "already failed" in (state.message or "")
    assert brevo.count("POST") == 0 and brevo.count("PUT") == 0  # no template made in the ESP


def test_a_record_failed_as_pushing_starts_gets_no_push(with_brevo, brevo, monkeypatch):  # noqa: F811
    original = push_module.build_push_item
    failed: list[int] = []

    def fail_then_build(record, render):
        if not failed:  # the reconciler fails the record just after the flow's own check passed
            failed.append(record.id)
            with_brevo.fail_if_in_progress(record.id, LOST)
        return original(record, render)

    monkeypatch.setattr(push_module, "build_push_item", fail_then_build)
    record, _ = _connector_export(with_brevo, ["en-US", "de-DE"])
    assert failed and record.status == "failed" and record.export_errors["base"] == [LOST]
    assert brevo.count("POST") == 0 and brevo.count("PUT") == 0


def test_finishing_an_export_does_not_overwrite_a_terminal_state(with_brevo):  # noqa: F811
    from emailexport.validation import validate_export_request

    checked = validate_export_request(with_brevo, 3, {"email_id": 1, "export_type": "html",
                                                      "options": {"locales": ["en-US"]}})
    record = with_brevo.create_export(workspace=checked.workspace, email=checked.email, export_type="html",
                                      options=checked.request.options)
    assert with_brevo.fail_if_in_progress(record.id, LOST).status == "failed"
    after = with_brevo.finish_export(record.id, status="completed", export_errors={"base": None})
    assert after.status == "failed" and after.export_errors["base"] == [LOST]
    # and the other order: a finished record is not failed afterwards
    second = with_brevo.create_export(workspace=checked.workspace, email=checked.email, export_type="html",
                                      options=checked.request.options)
    assert with_brevo.finish_export(second.id, status="completed").status == "completed"
    assert with_brevo.fail_if_in_progress(second.id, LOST).status == "completed"
    assert with_brevo.require_export(second.id).status == "completed"


def test_the_final_record_write_redacts_every_secret_of_the_process(with_brevo):  # noqa: F811
    from emailexport.secrets import register_secret
    from emailexport.validation import validate_export_request
    from tasks.record import record_result

    secret = "sk-final-write-0123456789ABCDEF"
    register_secret(secret)
    checked = validate_export_request(with_brevo, 3, {"email_id": 1, "export_type": "html",
                                                      "options": {"locales": ["en-US"]}})
    record = with_brevo.create_export(workspace=checked.workspace, email=checked.email, export_type="html",
                                      options=checked.request.options)
    stored = record_result.fn(record, {}, [f"vendor echoed {secret.lower()[:20]} back"], None)
    assert stored.status == "failed" and stored.export_errors["base"] == ["vendor echoed *** back"]
