"""Stage 4 for connector exports, push: each rendered locale -> one resource in the ESP.

One connector instance is shared by the locales of an export (a "session"), so its request bound
(VendorHttp's in-flight limit) and any OAuth token are per export and connector, not per locale;
exports running side by side in one process each have their own. Push tasks retry transient
errors only, with exponential backoff and jitter; after a 429 the retry also waits what the vendor
asked (`RateLimitedError.retry_after`, e.g. Braze's hourly window), and a wait longer than
`MAX_RATE_LIMIT_WAIT` fails the locale at once, saying how long the vendor asked to wait.

Every item carries a marker derived from (workspace, export id, export creation time, locale), so
every attempt of the same export's locale (task retries, a flow retry) carries the same one, and
a retried attempt tells the connector to look for it before creating (connectors/base.py).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext, TaskRunContext
from prefect.tasks import exponential_backoff

from connectors.base import EspConnector, PushItem, PushResult, make_marker
from connectors.errors import RateLimitedError
from connectors.registry import esp_connector_class
from emailexport.errors import EmailExportError, TransientError
from emailexport.models import Connector, ExportRecord, format_timestamp
from emailexport.render.result import LocaleRender
from emailexport.secrets import resolve_credentials
from emailexport.store import Store

__all__ = [
    "PushOutcome",
    "build_push_item",
    "open_connector",
    "previous_resource_ids",
    "push_locale",
    "push_locales",
    "retry_push",
]

# The longest vendor-requested wait a push task sleeps through before its retry; a longer one
# (Braze's hourly window) fails the locale at once with the wait in the message.
MAX_RATE_LIMIT_WAIT = 900.0
_sleep = time.sleep  # replaced in tests

_SESSIONS: dict[str, EspConnector] = {}
_SESSION_EXPORTS: dict[str, int] = {}  # session -> export id, checked before each push (issue 18)
_LOCK = threading.Lock()


def resource_name(record: ExportRecord, locale: str) -> str:
    """per_locale_options.<locale>.resource_name, else options.resource_name (with the locale added
    when several locales would otherwise share it), else "<email name> (<locale>)"."""
    own = record.options.per_locale_options.get(locale, {}).get("resource_name")
    if own:
        return str(own)
    if record.options.resource_name:
        shared = record.options.resource_name
        return shared if len(record.options.locales) == 1 else f"{shared} ({locale})"
    return f"{record.email.name} ({locale})"


def build_push_item(record: ExportRecord, render: LocaleRender) -> PushItem:
    """A rendered locale and the export's options -> what the connector pushes."""
    options = record.options
    own = options.per_locale_options.get(render.locale, {})
    return PushItem(
        locale=render.locale,
        name=resource_name(record, render.locale),
        subject=str(own.get("subject") or render.subject),
        preheader=str(own.get("preheader") or render.preheader),
        html=render.html,
        plaintext=render.plaintext,
        folder_id=str(own.get("folder_id") or options.folder_id or "") or None,
        campaign_id=str(own.get("campaign_id") or options.campaign_id or "") or None,
        fields=dict(options.export_field_values),
        options=dict(own),
        # created_at as the record shows it (UTC, milliseconds): the same however the record was loaded.
        marker=make_marker(record.workspace_id, record.id, format_timestamp(record.created_at), render.locale),
    )


def previous_resource_ids(store: Store, record: ExportRecord) -> dict[str, str]:
    """For `update_previous_export`: per locale, the resource of the newest earlier export of this
    email to the same connector in which that locale completed."""
    if not record.options.update_previous_export or record.connector_id is None:
        return {}
    found: dict[str, str] = {}
    for earlier in store.connector_exports(record.workspace_id, record.email_id, record.connector_id,
                                           before_id=record.id):
        for locale, outcome in earlier.results.items():
            if locale not in found and outcome.status == "completed" and outcome.resource_id:
                found[locale] = outcome.resource_id
        if all(loc in found for loc in record.options.locales):
            break
    return found


def open_connector(connector: Connector, credentials: Mapping[str, str] | None = None) -> EspConnector:
    """A connector instance for `connector`, its credentials resolved from the reference."""
    if credentials is None:
        credentials = resolve_credentials(connector.credentials) if connector.credentials else {}
    return esp_connector_class(connector.type)(connector, credentials)


def retry_push(task: object, task_run: object, state: object) -> bool:
    """Retry transient errors only (a terminal one repeats); after a 429, first wait what the vendor
    asked (on top of the backoff), or give up when that is longer than `MAX_RATE_LIMIT_WAIT`."""
    exc = state.result(raise_on_failure=False)  # type: ignore[attr-defined]
    if not isinstance(exc, TransientError):
        return False
    if isinstance(exc, RateLimitedError):
        if exc.retry_after > MAX_RATE_LIMIT_WAIT:
            return False
        _sleep(exc.retry_after)
    return True


def is_retry() -> bool:
    """True in a second (or later) run of the push task, or of the flow around it."""
    task_context = TaskRunContext.get()
    flow_context = FlowRunContext.get()
    task_runs = task_context.task_run.run_count if task_context is not None else 1
    flow_runs = flow_context.flow_run.run_count if flow_context is not None and flow_context.flow_run else 1
    return task_runs > 1 or flow_runs > 1


@task(
    name="push-locale",
    task_run_name="push-{locale}",
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_push,
)
def push_locale(locale: str, session: str, item: PushItem, previous_resource_id: str | None) -> PushResult:
    """Create (or update) this locale's resource in the ESP; returns its id and page. A retried run
    looks for the marker of the create an earlier run may have made before creating."""
    from tasks.record import ensure_in_progress  # tasks.record imports this module

    with _LOCK:
        connector = _SESSIONS[session]
        export_id = _SESSION_EXPORTS.get(session)
    if export_id is not None:
        ensure_in_progress(export_id)  # a record failed meanwhile: push nothing more (RecordEnded)
    return connector.push(item, previous_resource_id, retrying=is_retry())


@dataclass(frozen=True)
class PushOutcome:
    """What happened to one locale in the ESP: its resource, or why not."""

    resource_id: str | None = None
    resource_url: str | None = None
    warnings: tuple[str, ...] = ()
    error: str | None = None


def push_locales(record: ExportRecord, connector: Connector, renders: Mapping[str, LocaleRender],
                 store: Store) -> dict[str, PushOutcome]:
    """Push every rendered locale (mapped, in parallel up to the connector's request bound); a locale
    that fails is recorded under its locale while the others keep their resources."""
    previous = previous_resource_ids(store, record)
    ready = [locale for locale in record.options.locales if locale in renders and renders[locale].ok]
    try:
        instance = open_connector(connector)
    except EmailExportError as exc:  # unresolvable credentials, bad settings: every locale, one reason
        return {locale: PushOutcome(error=f"{connector.name}: {exc}") for locale in ready}
    session = uuid.uuid4().hex
    with _LOCK:
        _SESSIONS[session] = instance
        _SESSION_EXPORTS[session] = record.id
    outcomes: dict[str, PushOutcome] = {}
    try:
        futures = {
            locale: push_locale.submit(locale, session, build_push_item(record, renders[locale]), previous.get(locale))
            for locale in ready
        }
        for locale, future in futures.items():
            future.wait()
            state = future.state
            if state.is_completed():
                result: PushResult = future.result()
                outcomes[locale] = PushOutcome(result.resource_id, result.resource_url, result.warnings)
            else:
                raised = state.result(raise_on_failure=False)
                message = (str(raised) if isinstance(raised, EmailExportError)
                           else f"internal error ({type(raised).__name__})")
                if isinstance(raised, RateLimitedError) and raised.retry_after > MAX_RATE_LIMIT_WAIT:
                    message += (f" (the vendor asks to wait {raised.retry_after:.0f} s before the next request; "
                                "export again after that)")
                outcomes[locale] = PushOutcome(error=f"{connector.name}: {message}")
    finally:
        with _LOCK:
            _SESSIONS.pop(session, None)
            _SESSION_EXPORTS.pop(session, None)
        instance.close()
    return outcomes
