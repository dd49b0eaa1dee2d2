"""Create-export latency of the API under 1, 8 and 32 concurrent clients on loopback, while the created
flow runs execute, against `GET /health` (no database, no Prefect) served by the same process as the
baseline; the goal (issue 13): POST p99 <= 5x the baseline's p99 at every level, no error status.

    .venv/bin/python benchmarks/api_benchmark.py --database sqlite postgres --concurrency 1 8 32 --requests 64

For each `--database` it starts `emailexport serve` in a temporary data dir (`postgres`: `serve
--postgres`, the store and the Prefect server on a local PostgreSQL cluster), imports the example
workspace, then for each concurrency level sends `--requests` GET /health and then `--requests`
POSTs, each client sending its next request as soon as its last one was answered. Exports created
at one level run (up to 8 at once, the runner's limit) while the next levels are measured. At the
end it waits up to `--drain` seconds and reports how many exports got a flow run and finished.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emailexport.bundle import import_bundle, load_bundle, read_bundle_file  # noqa: E402
from emailexport.store import Store  # noqa: E402

TOKEN = "benchmark-token"


def start_serve(data_dir: Path, postgres: bool) -> tuple[subprocess.Popen[bytes], str, str]:
    """`emailexport serve`; its process, API base URL and store URL."""
    out = data_dir.parent / "serve.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EMAILEXPORT_"))}
    env.update(EMAILEXPORT_DATA_DIR=str(data_dir), COLUMNS="250")
    argv = [str(Path(sys.executable).parent / "emailexport"), "serve", "--port", "0", "--prefect-port", "0"]
    with open(out, "wb") as handle:
        process = subprocess.Popen(argv + (["--postgres"] if postgres else []), env=env, cwd=ROOT, stdout=handle,
                                   stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while "Prefect UI:" not in out.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(out.read_text())
        time.sleep(0.3)
    api = re.search(r"API docs: (http://\S+)/docs", out.read_text())
    store = re.search(r"PostgreSQL store: (\S+)", out.read_text())
    assert api
    return process, api.group(1), store.group(1) if store else f"sqlite:///{data_dir / 'emailexport.db'}"


def measure(send: Callable[[httpx.Client], int], clients: int, total: int) -> tuple[list[float], list[str]]:
    """Latencies (s) of `total` requests spread over `clients` threads, each with its own connection,
    and the errors (a status other than 200, or no answer within 60 s)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    remaining = [total]

    def client() -> None:
        with httpx.Client(timeout=60) as http:
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                start = time.perf_counter()
                try:
                    status = send(http)
                except httpx.HTTPError as exc:
                    status = -1
                    with lock:
                        errors.append(type(exc).__name__)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if status not in (200, -1):
                        errors.append(str(status))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def run(database: str, levels: list[int], requests: int, drain: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # `serve --postgres` as root runs the cluster as the postgres user
        data_dir = Path(tmp) / "data"
        process, api, store_url = start_serve(data_dir, database == "postgres")
        store = Store(store_url)
        try:
            bundle = load_bundle(read_bundle_file(ROOT / "examples" / "workspace.yaml"))
            import_bundle(store, bundle)
            store.add_token(TOKEN, [bundle.workspace.id])
            email = bundle.emails[0]
            url = f"{api}/api/v1/workspaces/{bundle.workspace.id}/exports"
            body = {"email_id": email.id, "export_type": "html", "options": {"locales": list(email.locales)}}
            headers = {"Authorization": f"Bearer {TOKEN}"}
            print(f"\n### store and Prefect server on {database}\n")
            print("| clients | GET /health p50 | p99 | POST create p50 | p99 | ratio p50 | ratio p99 | errors |")
            print("|---|---|---|---|---|---|---|---|")
            for clients in levels:
                base, base_errors = measure(lambda h: h.get(f"{api}/health").status_code, clients, requests)
                posts, errors = measure(lambda h: h.post(url, json=body, headers=headers).status_code, clients,
                                        requests)
                d50, d99, p50, p99 = pct(base, 50), pct(base, 99), pct(posts, 50), pct(posts, 99)
                print(f"| {clients} | {d50 * 1000:.1f} ms | {d99 * 1000:.1f} ms | {p50 * 1000:.1f} ms | "
                      f"{p99 * 1000:.1f} ms | {p50 / d50:.1f}x | {p99 / d99:.1f}x | "
                      f"{len(errors) + len(base_errors)} {sorted(set(errors + base_errors)) or ''} |", flush=True)
            deadline = time.monotonic() + drain
            while True:
                records = store.list_exports(bundle.workspace.id, per=100_000)[0]
                launched = sum(1 for r in records if r.flow_run_id)
                done = sum(1 for r in records if r.status != "in_progress")
                if done == len(records) or time.monotonic() > deadline:
                    break
                time.sleep(2)
            reasons = Counter(((r.export_errors.get("base") or ["(per locale)"])[0])[:100]
                              for r in records if r.status == "failed")
            print(f"\n{len(records)} exports accepted; {launched} got a flow run, {done} finished "
                  f"({sum(reasons.values())} failed) within {drain:.0f} s after the last POST", flush=True)
            for reason, count in reasons.most_common(5):
                print(f"- failed x{count}: {reason}")
        finally:
            store.engine.dispose()
            process.send_signal(signal.SIGINT)
            process.wait(120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=64, help="requests per level and endpoint")
    parser.add_argument("--drain", type=float, default=60, help="seconds to wait for the exports at the end")
    args = parser.parse_args()
    for database in args.database:
        run(database, args.concurrency, args.requests, args.drain)


if __name__ == "__main__":
    main()
