"""Moved to `emailexport.runs` (issue 13): kept so that existing imports keep working."""

from emailexport.runs.flow_runs import FlowRuns, PrefectUnavailable, RunView, heartbeat_seconds, run_name, run_tags
from emailexport.runs.reconcile import dead_reason, reconcile_record

__all__ = ["FlowRuns", "PrefectUnavailable", "RunView", "dead_reason", "heartbeat_seconds", "reconcile_record",
           "run_name", "run_tags"]
