"""PDF rendering of many locales: serial in one process against a pool of worker processes.

    .venv/bin/python benchmarks/pdf_benchmark.py [--locales 20] [--repeat 3] [--workers N]

The example email is widened to `--locales` locales (values reused, as export_benchmark.py does)
and rendered to final HTML once. Then `tasks.html_to_pdf.render_pdfs` turns all of them into PDFs, with
`workers=1` (serial, in-process) and with `workers=N` (default: the CPU count; spawned processes).
Each run happens in a fresh child process, so peak memory is that run's own: the child samples the
resident memory of itself plus its pool workers every 20 ms (/proc) and reports the highest sum.
Wall time includes starting the pool (spawn, WeasyPrint import in each worker): a flow pays it too.
Images are served by a local fetcher (one 600x320 PNG), so image decoding is part of the work.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_PNG: list[bytes] = []


def serve_png(url: str) -> tuple[bytes, str]:
    """Every http(s) image is the same 600x320 PNG (module level: the pool pickles it)."""
    if not _PNG:
        from PIL import Image, ImageDraw

        image = Image.new("RGB", (600, 320), (120, 160, 110))
        ImageDraw.Draw(image).ellipse((200, 60, 400, 260), fill=(230, 200, 90))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        _PNG.append(buffer.getvalue())
    return _PNG[0], "image/png"


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0  # the process just ended


class PeakMemory:
    """Samples RSS of this process plus its live children; `peak` is the highest total seen."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            total = _rss(os.getpid()) + sum(_rss(p.pid) for p in multiprocessing.active_children() if p.pid)
            self.peak = max(self.peak, total)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def child(html_file: Path, workers: int) -> None:
    """One measured run: print {"wall_s", "peak_mb", "pdfs", "failed"} as JSON."""
    import weasyprint  # noqa: F401  (both modes start with WeasyPrint loaded in this process)

    from tasks.html_to_pdf import render_pdfs

    items = [tuple(item) for item in json.loads(html_file.read_text(encoding="utf-8"))]
    with PeakMemory() as memory:
        start = time.perf_counter()
        results = render_pdfs(items, fetch=serve_png, workers=workers)  # type: ignore[arg-type]
        wall = time.perf_counter() - start
    failed = {loc: repr(r) for loc, r in results.items() if not isinstance(r, bytes)}
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(u.ru_utime + u.ru_stime for u in usage)  # includes the WeasyPrint import before timing
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_mb": memory.peak / 2**20,
                      "pdfs": len(results) - len(failed), "failed": failed}))


def final_html(count: int, workdir: Path) -> list[tuple[str, str]]:
    """The example email widened to `count` locales, rendered to final HTML."""
    import yaml

    from benchmarks.export_benchmark import widen
    from emailexport.bundle import import_bundle, load_bundle
    from emailexport.models import Email, ExportOptions
    from emailexport.runtime import open_store
    from emailexport.settings import Settings
    from tasks.load import build_job
    from tasks.render import render_locale

    store = open_store(Settings(data_dir=workdir / "data"))
    example = yaml.safe_load((ROOT / "examples" / "workspace.yaml").read_text(encoding="utf-8"))
    import_bundle(store, load_bundle(widen(example, count, uuid.uuid4().hex[:8])))
    email = store.require(1, Email, 1)
    record = store.create_export(workspace=store.workspace(1), email=email, export_type="html",
                                 options=ExportOptions(locales=email.locales))
    renders = [render_locale.fn(loc, inp) for loc, inp in build_job(store, record).inputs.items()]
    return [(r.locale, r.html) for r in renders if r.ok]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locales", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.workers)
        return

    workdir = Path(tempfile.mkdtemp(prefix="emailexport-pdf-bench-"))
    items = final_html(args.locales, workdir)
    html_file = workdir / "html.json"
    html_file.write_text(json.dumps(items), encoding="utf-8")
    print(f"{len(items)} locales, {sum(len(h) for _, h in items) / len(items) / 1024:.0f} KB of HTML each; "
          f"{os.cpu_count()} CPUs", flush=True)

    runs: dict[int, list[dict[str, Any]]] = {1: [], args.workers: []}
    for _ in range(args.repeat):  # interleaved, so a noisy moment hits both modes alike
        for workers in runs:
            out = subprocess.run([sys.executable, __file__, "--child", str(html_file), "--workers", str(workers)],
                                 capture_output=True, text=True, check=True, cwd=ROOT).stdout
            run = json.loads(out.strip().splitlines()[-1])
            assert not run["failed"] and run["pdfs"] == len(items), run
            runs[workers].append(run)
            print(json.dumps({"workers": workers, **run}), flush=True)

    serial, parallel = (statistics.median(r["wall_s"] for r in runs[w]) for w in runs)
    serial_mb, parallel_mb = (max(r["peak_mb"] for r in runs[w]) for w in runs)
    serial_cpu, parallel_cpu = (statistics.median(r["cpu_s"] for r in runs[w]) for w in runs)
    load = os.getloadavg()[0]
    print(f"\nload average at the end: {load:.2f} on {os.cpu_count()} CPUs (other work on the machine slows both)")
    print(f"\n| mode | wall time (median of {args.repeat}) | CPU time, all processes | peak memory (RSS, all "
          "processes) |")
    print("|---|---|---|---|")
    print(f"| serial, 1 process | {serial:.2f} s (1.00) | {serial_cpu:.2f} s | {serial_mb:.0f} MB |")
    print(f"| {args.workers} worker processes | {parallel:.2f} s (speedup {serial / parallel:.2f}x) | "
          f"{parallel_cpu:.2f} s | {parallel_mb:.0f} MB |")


if __name__ == "__main__":
    main()
