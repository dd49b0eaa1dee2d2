"""Which failures a task retries: writes to another system retry transient errors only."""

import pytest
from prefect.states import Failed

from connectors.errors import ServerError, VendorValidationError
from tasks.images import upload_image
from tasks.push import push_locale, retry_push
from tasks.render import render_locale
from tasks.retry import retry_only_transient, retry_unless_terminal


@pytest.mark.parametrize(
    ("error", "only_transient", "unless_terminal"),
    [(ServerError("502"), True, True), (VendorValidationError("400"), False, False),
     (RuntimeError("bug after the create"), False, True)],
)
def test_retry_conditions(error, only_transient, unless_terminal):
    state = Failed(data=error)
    assert retry_only_transient(None, None, state) is only_transient
    assert retry_unless_terminal(None, None, state) is unless_terminal


def test_tasks_that_write_elsewhere_retry_only_transient_errors():
    # An unexpected error after an ESP or CDN write must not be repeated (a second template).
    assert push_locale.retry_condition_fn is retry_push  # transient only, and the vendor's wait (test_push_task)
    assert retry_push(None, None, Failed(data=RuntimeError("bug after the create"))) is False
    assert upload_image.retry_condition_fn is retry_only_transient
    assert render_locale.retry_condition_fn is retry_unless_terminal
