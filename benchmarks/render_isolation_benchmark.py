"""Cost of rendering in the bounded worker process against rendering in-process.

    .venv/bin/python benchmarks/render_isolation_benchmark.py [--locales 53] [--repeat 3]

The example email widened to N locales (as in export_benchmark.py) is rendered with
`render_document` (a) in this process (the baseline: sandbox budget only), (b) through
`render_isolated` one locale after another (one pickle round trip per locale to a warm worker),
(c) through `render_isolated` from 4 threads (the flow's task runner) sharing 2 workers. The first
isolated call (worker start-up) is timed separately: it is paid once per process. Medians over
`--repeat` runs, as ratios to (a) from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from benchmarks.export_benchmark import widen  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locales", type=int, default=53)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ["EMAILEXPORT_DATA_DIR"] = tempfile.mkdtemp(prefix="emailexport-bench-")

    from emailexport.bundle import import_bundle, load_bundle
    from emailexport.models import Email, ExportOptions
    from emailexport.render import render_document
    from emailexport.render.isolated import limits_from_settings, render_isolated, shutdown_workers
    from emailexport.runtime import open_store
    from emailexport.settings import get_settings
    from tasks.load import build_job

    store = open_store()
    example = yaml.safe_load((ROOT / "examples" / "workspace.yaml").read_text(encoding="utf-8"))
    shutdown_workers()
    import_bundle(store, load_bundle(widen(example, args.locales, "bench")))
    email = store.require(1, Email, 1)
    record = store.create_export(workspace=store.workspace(1), email=email, export_type="html",
                                 options=ExportOptions(locales=email.locales))
    inputs = list(build_job(store, record).inputs.values())
    limits = limits_from_settings(get_settings())

    shutdown_workers()
    start = time.perf_counter()
    render_isolated(inputs[0], limits)
    startup = time.perf_counter() - start

    def in_process() -> Any:
        return [render_document(i, limits) for i in inputs]

    def isolated_serial() -> Any:
        return [render_isolated(i, limits) for i in inputs]

    def isolated_threads() -> Any:
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda i: render_isolated(i, limits), inputs))

    results: dict[str, list[float]] = {"in_process": [], "isolated_serial": [], "isolated_4_threads": []}
    for _ in range(args.repeat):
        for name, fn in (("in_process", in_process), ("isolated_serial", isolated_serial),
                         ("isolated_4_threads", isolated_threads)):
            start = time.perf_counter()
            fn()
            results[name].append(time.perf_counter() - start)
    base = statistics.median(results["in_process"])
    row = {"locales": len(inputs), "first_isolated_call_s": round(startup, 2),
           **{name: round(statistics.median(v), 3) for name, v in results.items()},
           **{f"{name}_ratio": round(statistics.median(v) / base, 2) for name, v in results.items()}}
    print(json.dumps(row))
    shutdown_workers()


if __name__ == "__main__":
    main()
