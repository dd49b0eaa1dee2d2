"""The transform stage with minify against unprotected css-inline + minify-html, on the corpus.

    .venv/bin/python benchmarks/transform_benchmark.py [--repeat 5]

For every template of tests/fixtures/corpus (36 real-world-style templates written for the
project), two pipelines, each timed as the median of `--repeat` runs:

- **baseline**: css-inline with the project's settings (`inline._inliner`: `<style>` kept for
  `@media`, inlined selectors removed) then minify-html with the project's settings
  (`minify.minify_document`), with no protection of ESP syntax or comments: the fair pair, same
  inliner, same minifier;
- **transform**: `transform_html(..., minify=True)`, the whole protected stage (lang/dir left as
  the file has them, no tracking, no image rewriting).

Reported: median output/input size of each, the median per-template size ratio transform /
baseline, the median time per template of each and the median per-template time ratio. The
baseline is also checked with the issue-10 invariants (tests/transforms/visible.py): how many
templates it breaks (visible text, ESP tokens, Outlook comments), or where css-inline refused
the unprotected document.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emailexport.transforms import TransformOptions, transform_html  # noqa: E402
from emailexport.transforms.inline import _EMPTY_STYLE_RE, _inliner  # noqa: E402
from emailexport.transforms.minify import minify_document  # noqa: E402
from tests.transforms.visible import conditional_comments, esp_tokens, visible_text  # noqa: E402

CORPUS = ROOT / "tests" / "fixtures" / "corpus"


def baseline(html: str) -> str:
    """css-inline + minify-html, nothing protected."""
    return minify_document(_EMPTY_STYLE_RE.sub("", _inliner().inline(html)))


def protected(html: str) -> str:
    return transform_html(html, [], TransformOptions(lang="", direction="ltr", minify=True)).html


def timed(function: Callable[[str], str], html: str, repeat: int) -> tuple[str, float]:
    times, output = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        output = function(html)
        times.append(time.perf_counter() - start)
    return output, statistics.median(times)


def breaks(source: str, output: str) -> bool:
    return (visible_text(output) != visible_text(source) or esp_tokens(output) != esp_tokens(source)
            or conditional_comments(output) != conditional_comments(source))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = []
    refused = broken_base = broken_ours = 0
    for path in sorted(CORPUS.glob("*.html")):
        source = path.read_text(encoding="utf-8")
        ours, our_time = timed(protected, source, args.repeat)
        try:
            base, base_time = timed(baseline, source, args.repeat)
        except ValueError:  # css_inline.InlineError: a token where CSS is expected
            refused += 1
            continue
        broken_base += breaks(source, base)
        broken_ours += breaks(source, ours)
        rows.append((len(source), len(base), len(ours), base_time, our_time))
    median = statistics.median
    print(f"templates: {len(rows) + refused} ({refused} refused by unprotected css-inline, left out of the medians)")
    print(f"median output/input size: baseline {median(b / s for s, b, *_ in rows):.3f}, "
          f"transform {median(o / s for s, _, o, *_ in rows):.3f}")
    print(f"median per-template size ratio transform/baseline: {median(o / b for _, b, o, *_ in rows):.3f} "
          f"(max {max(o / b for _, b, o, *_ in rows):.3f})")
    print(f"median time per template: baseline {median(r[3] for r in rows) * 1000:.2f} ms, "
          f"transform {median(r[4] for r in rows) * 1000:.2f} ms")
    print(f"median per-template time ratio transform/baseline: {median(r[4] / r[3] for r in rows):.2f}x")
    print(f"templates whose visible text, ESP tokens or Outlook comments changed: baseline {broken_base}, "
          f"transform {broken_ours}")


if __name__ == "__main__":
    main()
