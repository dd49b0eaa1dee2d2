"""What previews cost: preview time per locale against the export without previews.

    .venv/bin/python benchmarks/preview_benchmark.py [--repeat 3] [--pages 1 3]

The example email in its six locales (Braze profile). The baseline (a) renders and transforms
every locale as the export does (the stage functions in a plain loop, no Prefect). Then, for each
`--pages` value (browser pages open at once): (b) previews with the three views per locale,
(c) the same plus a desktop shot of every conditional variant (the default). Medians over
`--repeat` runs, each a fresh browser; one JSON line per figure, ratios against (a) from the same
run, because this machine is shared and noisy. Needs Debian's chromium (scripts/system-deps).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BRAZE = "2b9d0a21-dadc-4d81-95f0-aed2f71e781f"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pages", type=int, nargs="+", default=[1, 3])
    args = parser.parse_args()
    os.environ["EMAILEXPORT_DATA_DIR"] = tempfile.mkdtemp(prefix="preview-bench-")

    import yaml

    from emailexport.bundle import import_bundle, load_bundle
    from emailexport.previews import PreviewSettings
    from emailexport.runtime import open_store
    from tasks.load import build_job
    from tasks.previews import build_previews, image_resources
    from tasks.render import render_locale
    from tests.helpers import create_export

    store = open_store()
    data = yaml.safe_load((ROOT / "examples" / "workspace.yaml").read_text(encoding="utf-8"))
    import_bundle(store, load_bundle(data))
    locales = list(data["emails"][0]["locales"])
    job = build_job(store, create_export(store, 1, 1, locales, profile=BRAZE))

    def export_only() -> dict[str, Any]:
        return {loc: render_locale.fn(loc, job.inputs[loc]) for loc in locales}

    def median(fn: Any) -> float:
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    renders = export_only()
    base = median(export_only)
    print(json.dumps({"case": "export without previews (render + transform)", "locales": len(locales),
                      "seconds": round(base, 3), "per_locale_ms": round(1000 * base / len(locales), 1)}))
    for pages in args.pages:
        for variants in (False, True):
            settings = PreviewSettings(max_pages=pages, variants=variants)
            files: dict[str, bytes] = {}

            def previews(settings: PreviewSettings = settings, files: dict[str, bytes] = files) -> None:
                out = build_previews("bench", job.inputs, renders, image_resources({}), settings)
                files.update(out.files)

            seconds = median(previews)
            shots = sum(1 for name in files if name.endswith(".png"))
            print(json.dumps({
                "case": "previews" + (" + variants" if variants else ""), "pages": pages, "locales": len(locales),
                "screenshots": shots, "seconds": round(seconds, 2),
                "per_locale_s": round(seconds / len(locales), 2), "x_export": round(seconds / base, 1),
            }))


if __name__ == "__main__":
    main()
