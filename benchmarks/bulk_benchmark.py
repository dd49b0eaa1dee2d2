"""CSV bulk mode throughput: N rows x 3 locales (html, use_cdn) through `run_bulk` (local mode, the
embedded default) against the same exports done by calling the stage functions in a plain loop.

    .venv/bin/python benchmarks/bulk_benchmark.py [--rows 200] [--concurrency 8]

Each mode runs in its own process (so each peak RSS is its own), on a fresh data dir with the
example workspace; a Prefect server (ephemeral mode) is started before timing the bulk run.
Figures: exports per minute, peak memory, and the bulk/loop time ratio measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LOCALES = ("en-US|de-DE|ar-SA", "fr-FR|es-ES|ja-JP", "en-US|ja-JP|ar-SA")


def write_csv(path: Path, rows: int) -> None:
    lines = ["workspace_id,email_id,export_type,locales,image_mode,resource_name"]
    lines += [f"1,1,html,{LOCALES[i % 3]},use_cdn,row {i}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def child(mode: str, csv_path: str, concurrency: int) -> None:
    from emailexport.runtime import use_embedded_prefect

    use_embedded_prefect()
    import yaml

    from emailexport.bundle import import_bundle, load_bundle
    from emailexport.runtime import open_storage, open_store

    store = open_store()
    import_bundle(store, load_bundle(yaml.safe_load((ROOT / "examples" / "workspace.yaml").read_text())))
    if mode == "loop":
        from emailexport.bulk import read_rows
        from emailexport.validation import validate_export_request
        from tasks.checks import check_locales
        from tasks.load import build_job
        from tasks.package import build_html_zip, output_keys
        from tasks.record import final_fields
        from tasks.render import render_locale

        started = time.perf_counter()
        for row in read_rows(csv_path):
            checked = validate_export_request(store, 1, row.body)
            record = store.create_export(workspace=checked.workspace, email=checked.email, export_type="html",
                                         options=checked.request.options)
            job = build_job(store, record)
            renders = {loc: render_locale.fn(loc, inp) for loc, inp in job.inputs.items()}
            renders = check_locales.fn(renders, job.inputs)  # the flow's checks stage
            open_storage().write(output_keys(record)["zip"], build_html_zip(record, list(renders.values())))
            store.update_export(record.id, **final_fields(record, renders, [], None))
        elapsed = time.perf_counter() - started
    else:
        from emailexport.bulk_run import run_bulk
        from emailexport.launch import run_export_flow
        from tests.helpers import create_export

        run_export_flow(create_export(store, 1, 1, ["en-US"]).id)  # start the server before timing
        started = time.perf_counter()
        summary = run_bulk(csv_path, concurrency=concurrency)
        elapsed = time.perf_counter() - started
        print(summary.line(), file=sys.stderr)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mode": mode, "seconds": round(elapsed, 2), "peak_mb": round(peak_mb)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "CSV"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.concurrency)
        return
    work = Path(tempfile.mkdtemp(prefix="emailexport-bulk-bench-"))
    csv_path = work / "rows.csv"
    write_csv(csv_path, args.rows)
    results = {}
    for mode in ("loop", "bulk"):
        # The embedded default as `emailexport bulk` runs it: Prefect's home in the data dir.
        env = {**os.environ, "EMAILEXPORT_DATA_DIR": str(work / mode), "PREFECT_LOGGING_LEVEL": "WARNING",
               "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, __file__, "--concurrency", str(args.concurrency), "--child", mode,
                              str(csv_path)], env=env, capture_output=True, text=True, check=True)
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(results[mode]), flush=True)
    loop, bulk = results["loop"], results["bulk"]
    print(f"\n| mode | time | exports/min | peak RSS |\n|---|---|---|---|\n"
          f"| plain loop of stage functions | {loop['seconds']:.1f} s (1.00) "
          f"| {60 * args.rows / loop['seconds']:.0f} | {loop['peak_mb']} MB |\n"
          f"| bulk, local mode, {args.concurrency} at once | {bulk['seconds']:.1f} s "
          f"({bulk['seconds'] / loop['seconds']:.2f}x) | {60 * args.rows / bulk['seconds']:.0f} "
          f"| {bulk['peak_mb']} MB |")


if __name__ == "__main__":
    main()
