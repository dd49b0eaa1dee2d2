"""The dispatcher: creates the flow runs of accepted exports from the outbox, and runs the reconcile
loop. `emailexport serve` starts it as a child process; next to workers it runs on its own with
`emailexport dispatcher` (or `python -m emailexport.runs.dispatcher`).

Why an outbox: the API's create answers after ONE database transaction that writes the record and
an outbox row (`Store.create_export(queue=True)`), so a POST never waits on Prefect and an export
accepted by the API is never lost: if the API process dies right after answering, the row is
committed and a dispatcher creates the run. The dispatcher claims due rows in batches
(`dispatch_batch`; a claim is a lease, so a second dispatcher skips them), creates their runs
(`dispatch_concurrency` at once) with the idempotency key `export-<id>`, so creating a run twice
(a dispatcher that died between creating the run and storing its id) yields the same run, and
stores the run id and deletes the row in one transaction.

While Prefect is unreachable the rows wait: each is retried with a backoff of 1, 2, 4 ... up to 30
seconds, and only when it has waited `dispatch_max_wait_seconds` (default 600) is its record failed
with the reason ("the export flow run could not be created within 600 s: ..."). One probe per
pass: when the first creation of a batch finds Prefect unreachable, the rest of the batch is
rescheduled without a request each.

The reconcile loop (`emailexport.runs.reconcile.reconcile_pass`) runs in a second thread every
`reconcile_interval_seconds`: it makes no flow runs, so the Prefect UI's run list shows only export
and bulk runs.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from emailexport.runs.flow_runs import FlowRuns, PrefectUnavailable
from emailexport.runs.reconcile import reconcile_pass
from emailexport.settings import Settings
from emailexport.store import Dispatch, Store

__all__ = ["DispatchReport", "Dispatcher", "run_dispatcher"]

log = logging.getLogger("emailexport.dispatcher")
LEASE_SECONDS = 120.0  # longer than one creation can take (Prefect's client timeout is 30 s)
MAX_BACKOFF_SECONDS = 30.0


@dataclass
class DispatchReport:
    claimed: int = 0
    created: int = 0
    waiting: int = 0
    failed: int = 0


class Dispatcher:
    def __init__(self, store: Store, runs: FlowRuns, settings: Settings) -> None:
        self.store = store
        self.runs = runs
        self.settings = settings

    # -- the outbox ----------------------------------------------------------------------------

    def dispatch_once(self) -> DispatchReport:
        """One pass: claim a batch of due rows and create their flow runs."""
        claims = self.store.claim_dispatches(self.settings.dispatch_batch, LEASE_SECONDS)
        report = DispatchReport(claimed=len(claims))
        if not claims:
            return report
        # The first one alone: if Prefect is down, the rest of the batch waits without a request each.
        first_error = self._create(claims[0], report)
        if isinstance(first_error, PrefectUnavailable):
            for claim in claims[1:]:
                self._postpone(claim, first_error, report)
            return report
        if len(claims) > 1:
            with ThreadPoolExecutor(self.settings.dispatch_concurrency, thread_name_prefix="dispatch") as pool:
                list(pool.map(lambda claim: self._create(claim, report), claims[1:]))
        return report

    def _create(self, claim: Dispatch, report: DispatchReport) -> Exception | None:
        try:
            record = self.store.export(claim.export_id)
            if record is None or record.status != "in_progress":
                self.store.abandon_dispatch(claim.export_id, "")  # ended meanwhile: nothing to run
                return None
            flow_run_id = self.runs.launch(record, claim.connector_type)
        except Exception as exc:  # PrefectUnavailable, or the store: retried within the bound either way
            if not isinstance(exc, PrefectUnavailable):
                log.exception("Export %s: creating its flow run failed unexpectedly", claim.export_id)
            self._postpone(claim, exc, report)
            return exc
        self.store.finish_dispatch(claim.export_id, flow_run_id)
        report.created += 1
        log.info("Export %s: flow run %s created (%d earlier attempt(s))", claim.export_id, flow_run_id,
                 claim.attempts)
        return None

    def _postpone(self, claim: Dispatch, error: Exception, report: DispatchReport) -> None:
        now = datetime.now(UTC)
        bound = self.settings.dispatch_max_wait_seconds
        give_up_at = claim.queued_at + timedelta(seconds=bound)
        if now >= give_up_at:
            reason = f"the export flow run could not be created within {bound:.0f} s: {error}"
            self.store.abandon_dispatch(claim.export_id, reason)
            report.failed += 1
            log.error("Export %s marked failed: %s", claim.export_id, reason)
            return
        backoff = timedelta(seconds=min(MAX_BACKOFF_SECONDS, 2.0 ** claim.attempts))
        self.store.retry_dispatch(claim.export_id, str(error), min(now + backoff, give_up_at))
        report.waiting += 1
        if claim.attempts == 0:
            log.warning("Export %s: its flow run cannot be created yet (%s); retrying for up to %.0f s",
                        claim.export_id, error, bound)

    # -- the loops -------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Dispatch and reconcile until `stop` is set."""
        reconciler = threading.Thread(target=self._reconcile_loop, args=(stop,), name="reconcile", daemon=True)
        reconciler.start()
        while not stop.is_set():
            try:
                report = self.dispatch_once()
            except Exception:  # the store unreachable for a moment: try again on the next pass
                log.exception("Dispatch pass failed")
                report = DispatchReport()
            if report.claimed < self.settings.dispatch_batch:  # a full batch: more may be due now
                stop.wait(self.settings.dispatch_poll_seconds)
        reconciler.join(timeout=60)

    def _reconcile_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                checked, failed = reconcile_pass(self.store, self.runs, self.settings)
                if failed:
                    log.warning("Reconcile: %d of %d in_progress export(s) had a dead flow run", failed, checked)
            except Exception:
                log.exception("Reconcile pass failed")
            stop.wait(self.settings.reconcile_interval_seconds)


def run_dispatcher(stop: threading.Event | None = None) -> None:
    """The dispatcher of this machine's settings and `PREFECT_API_URL`, until SIGINT/SIGTERM."""
    from prefect.settings import get_current_settings

    from emailexport.runtime import open_store
    from emailexport.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    runs = FlowRuns(get_current_settings().api.url, settings.export_deployment)
    log.info("Dispatcher started (Prefect API %s, deployment %s)", runs.api_url, runs.deployment)
    try:
        Dispatcher(open_store(settings), runs, settings).run(stop)
    finally:
        runs.close()
        log.info("Dispatcher stopped")


if __name__ == "__main__":
    run_dispatcher()
