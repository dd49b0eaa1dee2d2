"""Create-export latency of the API under 1, 8 and 32 concurrent clients on loopback, while the created
flow runs execute, against `GET /docs` served by the same process as the baseline.

    .venv/bin/python benchmarks/api_benchmark.py --concurrency 1 8 32 --requests 96

Starts `emailexport serve` (Prefect server, runner, API) in a temporary data dir, imports the example
workspace, then for each concurrency level sends `--requests` GET /docs and then `--requests` POSTs,
each client sending its next request as soon as its last one was answered.
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
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emailexport.bundle import import_bundle, load_bundle, read_bundle_file  # noqa: E402
from emailexport.store import Store  # noqa: E402

TOKEN = "benchmark-token"


def start_serve(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    out = data_dir.parent / "serve.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EMAILEXPORT_"))}
    env.update(EMAILEXPORT_DATA_DIR=str(data_dir), COLUMNS="200")
    with open(out, "wb") as handle:
        process = subprocess.Popen([str(Path(sys.executable).parent / "emailexport"), "serve", "--port", "0",
                                    "--prefect-port", "0"], env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while "Prefect UI:" not in out.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(out.read_text())
        time.sleep(0.3)
    api = re.search(r"API docs: (http://\S+)/docs", out.read_text())
    assert api
    return process, api.group(1)


def measure(send: Callable[[httpx.Client], int], clients: int, total: int) -> list[float]:
    """Latencies (s) of `total` requests spread over `clients` threads, each with its own connection."""
    latencies: list[float] = []
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
                status = send(http)
                elapsed = time.perf_counter() - start
                if status != 200:
                    raise SystemExit(f"unexpected status {status}")
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=96, help="requests per level and endpoint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        process, api = start_serve(data_dir)
        try:
            store = Store(f"sqlite:///{data_dir / 'emailexport.db'}")
            bundle = load_bundle(read_bundle_file(ROOT / "examples" / "workspace.yaml"))
            import_bundle(store, bundle)
            store.add_token(TOKEN, [bundle.workspace.id])
            email = bundle.emails[0]
            url = f"{api}/api/v1/workspaces/{bundle.workspace.id}/exports"
            body = {"email_id": email.id, "export_type": "html", "options": {"locales": list(email.locales)}}
            headers = {"Authorization": f"Bearer {TOKEN}"}
            print("| clients | GET /docs p50 | p99 | POST create p50 | p99 | ratio p50 | ratio p99 |")
            print("|---|---|---|---|---|---|---|")
            for clients in args.concurrency:
                docs = measure(lambda h: h.get(f"{api}/docs").status_code, clients, args.requests)
                posts = measure(lambda h: h.post(url, json=body, headers=headers).status_code, clients, args.requests)
                d50, d99, p50, p99 = pct(docs, 50), pct(docs, 99), pct(posts, 50), pct(posts, 99)
                print(f"| {clients} | {d50 * 1000:.1f} ms | {d99 * 1000:.1f} ms | {p50 * 1000:.1f} ms | "
                      f"{p99 * 1000:.1f} ms | {p50 / d50:.1f}x | {p99 / d99:.1f}x |", flush=True)
            records, total = store.list_exports(bundle.workspace.id, per=100)
            done = sum(1 for r in store.list_exports(bundle.workspace.id, per=100_000)[0] if r.status != "in_progress")
            del records
            print(f"\n{total} exports created; {done} finished by the end of the measurement")
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(60)


if __name__ == "__main__":
    main()
