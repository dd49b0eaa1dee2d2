"""Flow runs of exports, below both the API and the flows: creating them (`flow_runs`), creating them
from the outbox (`dispatcher`), and failing records whose runs died (`reconcile`)."""
