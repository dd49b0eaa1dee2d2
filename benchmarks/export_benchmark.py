"""Orchestration overhead of the export-email flow against the same stages in a plain loop.

    .venv/bin/python benchmarks/export_benchmark.py [--locales 6 20 53] [--repeat 3]

For each locale count: the example email is widened to that many locales (values reused across
locales), then exported as html (a) by calling the stage functions in a plain loop in this
process (the baseline), (b) by the Prefect flow with a cold render cache, (c) by the flow again
with a warm cache. Figures are medians over `--repeat` runs, reported as ratios to (a) measured
in the same run, because this machine is shared and noisy. A Prefect server is started once
before timing (its start-up is not part of an export).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from emailexport.locales import LOCALES  # noqa: E402


def widen(example: dict[str, Any], count: int, salt: str) -> dict[str, Any]:
    """The example bundle with email 1 in `count` locales (values copied round-robin), named with
    `salt` so a new run starts with a cold cache."""
    data = copy.deepcopy(example)
    email = data["emails"][0]
    own = list(email["locales"])
    extra = [loc for loc in LOCALES if loc not in own]
    locales = (own + extra)[:count]
    source = {loc: own[i % len(own)] for i, loc in enumerate(locales)}
    email["locales"], email["name"] = locales, f"{email['name']} {salt}"

    def spread(by_locale: dict[str, Any]) -> dict[str, Any]:
        return {loc: copy.deepcopy(by_locale[source[loc]]) for loc in locales if source[loc] in by_locale}

    content = email["content"]
    for text in ("subject", "preheader"):
        for branch, by_locale in content.get(text, {}).get("branch_content", {}).items():
            content[text]["branch_content"][branch] = spread(by_locale)
    for instance in [content["container"], *content["instances"]]:
        for branch, by_locale in instance.get("field_values", {}).items():
            instance["field_values"][branch] = spread(by_locale)
        instance["hidden_from_locales"] = {}
    return data


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locales", type=int, nargs="+", default=[6, 20, 53])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="emailexport-bench-"))
    os.environ["EMAILEXPORT_DATA_DIR"] = str(workdir / "data")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from emailexport.runtime import use_embedded_prefect

    use_embedded_prefect()  # as the CLI does: Prefect's home and the render cache in the data dir

    from emailexport.bundle import import_bundle, load_bundle
    from emailexport.launch import run_export_flow as export_email  # what `emailexport export` runs
    from emailexport.models import Email, ExportOptions
    from emailexport.runtime import open_storage, open_store
    from tasks.checks import check_locales
    from tasks.load import build_job
    from tasks.package import build_html_zip, output_keys
    from tasks.record import final_fields
    from tasks.render import render_locale

    store = open_store()
    example = yaml.safe_load((ROOT / "examples" / "workspace.yaml").read_text(encoding="utf-8"))

    def new_record(count: int) -> Any:
        import_bundle(store, load_bundle(widen(example, count, uuid.uuid4().hex[:8])))
        email = store.require(1, Email, 1)
        return store.create_export(workspace=store.workspace(1), email=email, export_type="html",
                                   options=ExportOptions(locales=email.locales))

    def plain_loop(record: Any) -> None:
        job = build_job(store, record)
        renders = {loc: render_locale.fn(loc, inp) for loc, inp in job.inputs.items()}
        renders = check_locales.fn(renders, job.inputs)  # the flow's checks stage: work, not overhead
        storage = open_storage()
        storage.write(output_keys(record)["zip"], build_html_zip(record, list(renders.values())))
        store.update_export(record.id, **final_fields(record, renders, [], None))

    export_email(new_record(6).id)  # start the server and warm imports before timing
    rows = []
    for count in args.locales:
        loop, cold, warm = [], [], []
        for _ in range(args.repeat):
            loop.append(timed(plain_loop, new_record(count)))
            record = new_record(count)
            cold.append(timed(export_email, record.id))
            again = store.create_export(workspace=store.workspace(1), email=store.require(1, Email, 1),
                                        export_type="html", options=record.options)
            warm.append(timed(export_email, again.id))
        base, cold_s, warm_s = statistics.median(loop), statistics.median(cold), statistics.median(warm)
        rows.append({
            "locales": count, "loop_s": round(base, 3),
            "flow_cold_s": round(cold_s, 3), "flow_warm_s": round(warm_s, 3),
            "cold_ratio": round(cold_s / base, 2), "warm_ratio": round(warm_s / base, 2),
        })
        print(json.dumps(rows[-1]), flush=True)
    print("\n| locales | plain loop | flow, cold cache | flow, warm cache |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['locales']} | {r['loop_s']:.2f} s (1.00) | {r['flow_cold_s']:.2f} s ({r['cold_ratio']:.2f}x) "
              f"| {r['flow_warm_s']:.2f} s ({r['warm_ratio']:.2f}x) |")


if __name__ == "__main__":
    main()
