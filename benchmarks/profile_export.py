"""Where an export spends its time: pyinstrument profiles of a cold 20-locale export, the same
export fully cached, and a bulk row (3 locales), on the embedded default.

    .venv/bin/python benchmarks/profile_export.py [--locales 20] [--out DIR]

Writes one text profile per case to `--out` (default: a temporary folder) and prints one JSON line
per case (wall seconds, the profile's file). pyinstrument samples every thread of this process, so
the Prefect client and the flow's worker threads show up; the ephemeral server is a separate
process and shows up as time spent waiting for HTTP answers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locales", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="emailexport-profile-"))
    out = args.out or workdir
    out.mkdir(parents=True, exist_ok=True)
    os.environ["EMAILEXPORT_DATA_DIR"] = str(workdir / "data")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from emailexport.runtime import use_embedded_prefect

    use_embedded_prefect()

    import yaml
    from export_benchmark import widen
    from pyinstrument import Profiler

    from emailexport.bundle import import_bundle, load_bundle
    from emailexport.launch import run_export_flow
    from emailexport.models import Email, ExportOptions
    from emailexport.runtime import open_store

    store = open_store()
    example = yaml.safe_load((ROOT / "examples" / "workspace.yaml").read_text(encoding="utf-8"))

    def new_record(count: int, fresh: bool = True) -> Any:
        if fresh:
            import_bundle(store, load_bundle(widen(example, count, uuid.uuid4().hex[:8])))
        email = store.require(1, Email, 1)
        return store.create_export(workspace=store.workspace(1), email=email, export_type="html",
                                   options=ExportOptions(locales=email.locales[:count]))

    run_export_flow(new_record(6).id)  # start the server, warm imports
    cases = [("cold", args.locales, True), ("cached", args.locales, False), ("bulk-row", 3, True)]
    for name, count, fresh in cases:
        record = new_record(count, fresh)
        profiler = Profiler(interval=0.001, async_mode="disabled")
        started = time.perf_counter()
        profiler.start()
        run_export_flow(record.id)
        profiler.stop()
        elapsed = time.perf_counter() - started
        path = out / f"profile-{name}.txt"
        path.write_text(profiler.output_text(unicode=False, color=False, show_all=False), encoding="utf-8")
        print(json.dumps({"case": name, "locales": count, "seconds": round(elapsed, 3), "profile": str(path)}),
              flush=True)


if __name__ == "__main__":
    main()
