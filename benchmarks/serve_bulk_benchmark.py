"""CSV bulk mode against `emailexport serve` (deployment mode): N rows x 3 locales, each row a run
of the `export-email` deployment executed by serve's runner, with the store and the Prefect server
on SQLite files or on serve's local PostgreSQL cluster (`serve --postgres`).

    .venv/bin/python benchmarks/serve_bulk_benchmark.py [--database sqlite postgres] [--rows 100]

For each database it starts `emailexport serve` in a temporary data dir (as api_benchmark.py does),
imports the example workspace, and times `emailexport bulk rows.csv` run as a user runs it beside
`serve` (PREFECT_API_URL pointing at serve's Prefect server, the same data dir and store), from the
command's start until it exits (every export ended). The baseline is the plain loop of stage
functions of bulk_benchmark.py over the same rows, in the same run. One JSON line per figure, then
a table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from api_benchmark import start_serve  # noqa: E402
from bulk_benchmark import write_csv  # noqa: E402

from emailexport.bundle import import_bundle, load_bundle, read_bundle_file  # noqa: E402
from emailexport.store import Store  # noqa: E402


def plain_loop(work: Path, csv_path: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EMAILEXPORT_"))}
    env.update(EMAILEXPORT_DATA_DIR=str(work / "loop"), PREFECT_LOGGING_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bulk_benchmark.py"), "--child", "loop",
                          str(csv_path)], env=env, capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def bulk_against_serve(database: str, work: Path, csv_path: Path) -> tuple[float, str]:
    data_dir = work / database / "data"
    data_dir.parent.mkdir(parents=True)
    os.chmod(data_dir.parent, 0o755)  # `serve --postgres` as root runs the cluster as the postgres user
    process, _api, store_url = start_serve(data_dir, database == "postgres")
    store = Store(store_url)
    try:
        import_bundle(store, load_bundle(read_bundle_file(ROOT / "examples" / "workspace.yaml")))
        ui = re.search(r"Prefect UI: (http://\S+)", (data_dir.parent / "serve.out").read_text())
        assert ui, "serve printed no Prefect UI address"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EMAILEXPORT_"))}
        env.update(EMAILEXPORT_DATA_DIR=str(data_dir), PREFECT_API_URL=f"{ui.group(1)}/api",
                   EMAILEXPORT_DATABASE_URL=store_url, PREFECT_LOGGING_LEVEL="WARNING", COLUMNS="200")
        started = time.perf_counter()
        out = subprocess.run([str(Path(sys.executable).parent / "emailexport"), "bulk", str(csv_path)], env=env,
                             cwd=ROOT, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        line = next((ln for ln in out.stdout.splitlines() if "rows read" in ln), out.stdout[-500:] + out.stderr[-500:])
        return elapsed, line.strip()
    finally:
        store.engine.dispose()
        process.send_signal(signal.SIGINT)
        process.wait(120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", nargs="+", choices=("sqlite", "postgres"), default=["sqlite", "postgres"])
    parser.add_argument("--rows", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        csv_path = work / "rows.csv"
        write_csv(csv_path, args.rows)
        os.chmod(csv_path, 0o644)
        loop = plain_loop(work, csv_path)
        print(json.dumps({"mode": "loop", "seconds": round(loop, 2)}), flush=True)
        figures = {}
        for database in args.database:
            seconds, summary = bulk_against_serve(database, work, csv_path)
            figures[database] = (seconds, summary)
            print(json.dumps({"mode": f"serve-{database}", "seconds": round(seconds, 2), "summary": summary}),
                  flush=True)
    print(f"\n| mode | time | exports/min | summary |\n|---|---|---|---|\n"
          f"| plain loop of stage functions | {loop:.1f} s (1.00) | {60 * args.rows / loop:.0f} | |")
    for database, (seconds, summary) in figures.items():
        print(f"| `emailexport bulk` against `serve{' --postgres' if database == 'postgres' else ''}` | "
              f"{seconds:.1f} s ({seconds / loop:.2f}x) | {60 * args.rows / seconds:.0f} | {summary} |")


if __name__ == "__main__":
    main()
