"""Property-based fuzzing from the served OpenAPI document (Schemathesis): no 5xx, and every response
has a documented status code, content type and body schema. Bounded to stay fast."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from emailexport.api import create_app
from emailexport.runs.flow_runs import FlowRuns
from emailexport.settings import get_settings
from tests.api.conftest import auth

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def api_schema(workspaces, prefect_server):
    app = create_app(get_settings(), store=workspaces, flow_runs=FlowRuns(prefect_server))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _fuzz(schema, max_examples: int, headers: dict[str, str] | None, allowed: set[int] | None = None) -> int:
    """Every operation with `max_examples` generated requests; the number of requests sent.
    (Driven by hand: schemathesis' pytest fixture integration does not run on pytest 9.)"""
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            nonlocal sent
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            sent += 1
            if allowed is not None:
                assert response.status_code in allowed, (case.path, response.status_code, response.text)

        run()
    return sent


def test_no_server_errors_and_every_response_matches_the_document(api_schema):
    # With the workspace's token, so requests get past authentication into validation and the store.
    assert _fuzz(api_schema, 25, auth()) >= 4 * 10


def test_without_a_token_every_answer_is_a_documented_error(api_schema):
    # 403: a download with `expires`/`signature` that do not form a valid signed link.
    assert _fuzz(api_schema, 5, None, allowed={401, 403, 404, 422}) >= 4
