"""Stage 4b, pdf: the final HTML of each locale -> a PDF per locale (WeasyPrint), and their zip.

WeasyPrint lays the email out as a print document. Three things make that safe and faithful:

- Every resource goes through a restricted url_fetcher: images of an include_in_zip export are served
  from memory, http(s) only through the caller's `fetch` (the project's SSRF-safe image fetcher),
  `data:` is decoded in memory, and anything else (file:, ftp:, ...) is refused. An email is
  author-controlled input; without this, `<img src="file:///etc/passwd">` would read local files.
- The page is as wide as an email client's reading pane (`PAGE_CSS`), so a 600 px email lays out
  as it does in an inbox instead of being squeezed into A4's 794 px minus margins.
- Rendering is CPU-bound (about 0.25 CPU-seconds per locale of the example email): `render_pdfs`
  runs locales in a pool of processes, one per CPU (benchmarks/README.md, `pdf_benchmark.py`).
  The workers end with the process that started them, even a SIGKILLed one (`die_with_parent`).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import logging
import mimetypes
import multiprocessing
import os
import pickle
import posixpath
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    pass

# Worker processes import this module to run `_worker_render`: it must stay light (no Prefect,
# no pydantic models at import time) so a worker starts in the time WeasyPrint takes to load.

__all__ = ["PAGE_CSS", "Fetch", "PdfRenderError", "render_pdf", "render_pdfs"]

Fetch = Callable[[str], tuple[bytes, str]]
"""An http(s) URL -> (body, content type); raises on anything it will not or cannot fetch."""

# 700 px: a 600 px email plus the margin a reading pane shows around it. Margin 0 so the email's
# own background reaches the page edges. 1000 px pages (about A4's proportions at this width) keep
# the PDF printable; `break-inside: avoid` on images stops a picture being cut across two pages.
PAGE_CSS = """
@page { size: 700px 1000px; margin: 0 }
img { break-inside: avoid }
"""

# Relative URLs in the email (`images/hero.png`, `../images/hero.png` in an include_in_zip export,
# whose zip has `<locale>/index.html` next to `images/`) are resolved against this base. The
# `.invalid` TLD is reserved (RFC 2606): a URL under it never reaches the network, and the fetcher
# recognises it to serve the image from memory.
_ZIP_BASE = "https://export.invalid/locale/"
_ZIP_ORIGIN = "https://export.invalid/"


class PdfRenderError(Exception):
    """A locale's PDF could not be rendered (the message says why)."""


def render_pdf(
    html: str,
    *,
    base_url: str | None = None,
    fetch: Fetch | None = None,
    images: Mapping[str, bytes] | None = None,
    warnings: list[str] | None = None,
) -> bytes:
    """Final email HTML -> PDF bytes.

    `images` maps zip paths (`images/hero.png`) to their bytes; relative URLs in the HTML are
    looked up there. `base_url`, when given, is what relative URLs resolve against instead (they
    then go through `fetch` like any http(s) URL). `fetch` fetches http(s) URLs; None refuses them.
    Resources that are refused or fail to load are left out of the PDF (an image shows its alt
    text) and described in `warnings` when a list is passed.
    """
    from weasyprint import CSS, HTML

    fetcher = _restricted_fetcher_class()(fetch, images or {}, warnings if warnings is not None else [])
    try:
        with _quiet_weasyprint():
            document = HTML(string=html, base_url=base_url or _ZIP_BASE, url_fetcher=fetcher)
            _honour_fluid_widths(document.etree_element)
            pdf = document.write_pdf(stylesheets=[CSS(string=PAGE_CSS)])
    except Exception as exc:  # WeasyPrint raises many types; the caller needs one, with the cause
        raise PdfRenderError(f"WeasyPrint could not render the PDF: {type(exc).__name__}: {exc}") from exc
    if pdf is None:  # write_pdf returns None only when given a target
        raise PdfRenderError("WeasyPrint returned no PDF")
    return bytes(pdf)


_DECLARATION_RE = re.compile(r"(?:^|;)\s*(max-width|width)\s*:\s*([^;!]+?)\s*(?:!important\s*)?(?=;|$)", re.I)


def _honour_fluid_widths(root: Any) -> None:
    """Give fluid ("hybrid") email elements, `width: 100%; max-width: 600px`, the width a browser
    gives them; WeasyPrint gets two of them wrong:

    - a table: WeasyPrint ignores max-width on tables (CSS 2.1 leaves it undefined) and would
      stretch the email over the page; `width: min(100%, 600px)` says the same in a form it uses.
    - an image in a table cell: a percentage width counts as 0 towards the cell's minimum width,
      so a cell holding only the image collapses, and the image with it (the product columns of
      the example email vanished). `width: 196px; max-width: 100%` is the same size, said the
      other way round.
    """
    for element in root.iter():
        if element.tag not in ("table", "img"):
            continue
        style = element.get("style") or ""
        found = {name.lower(): value for name, value in _DECLARATION_RE.findall(style)}
        cap = found.get("max-width", "")
        if not cap or cap.lower() in ("none", "100%"):
            continue
        width = found.get("width") or element.get("width") or "100%"
        if not width.endswith("%"):  # a fixed width already stops it growing
            continue
        if element.tag == "table":
            extra = f"width: min({width}, {cap})"
        elif cap.endswith("px") and width == "100%":
            extra = f"width: {cap}; max-width: 100%"
        else:
            continue
        element.set("style", f"{style.rstrip().rstrip(';')}; {extra}")


@contextmanager
def _quiet_weasyprint() -> Iterator[None]:
    """WeasyPrint logs a warning for every Outlook-only CSS property (`mso-*`) and an error for
    every image it could not load; the first are expected in email HTML, the second come back to
    the caller as warnings. Errors that stop a render still raise."""
    log = logging.getLogger("weasyprint")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


@cache
def _restricted_fetcher_class() -> type:
    """WeasyPrint's url_fetcher must subclass its `URLFetcher`; defined on first use so importing
    this module does not load WeasyPrint (and Pango) into every process that imports the flow."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class RestrictedFetcher(URLFetcher):  # type: ignore[misc]
        """Allows only what an email export may read (module docstring)."""

        def __init__(self, fetch: Fetch | None, images: Mapping[str, bytes], warnings: list[str]) -> None:
            super().__init__(timeout=10, allowed_protocols={"data"})
            self._fetch = fetch
            self._images = images
            self._warnings = warnings

        def fetch(self, url: str, headers: Any = None) -> Any:
            try:
                body, content_type = self._resolve(url)
            except Exception as exc:
                # WeasyPrint catches this and leaves the resource out; the warning says which and why.
                self._warnings.append(f"{_short(url)} left out of the PDF: {exc}")
                raise
            return URLFetcherResponse(url, body, {"Content-Type": content_type})

        def _resolve(self, url: str) -> tuple[bytes, str]:
            scheme = urlsplit(url).scheme.lower()
            if url.startswith(_ZIP_ORIGIN):
                return _from_images(url, self._images)
            if scheme == "data":
                # urllib's DataHandler decodes in memory; the parent allows no other scheme.
                response = super().fetch(url)
                return response.read(), response.content_type
            if scheme in ("http", "https"):
                if self._fetch is None:
                    raise PermissionError("http(s) images are not fetched for this export")
                return self._fetch(url)
            raise PermissionError(f"the {scheme}: scheme is not allowed in a PDF export")

    return RestrictedFetcher


def _from_images(url: str, images: Mapping[str, bytes]) -> tuple[bytes, str]:
    """An URL under the zip base -> the export image it names (`images/a.png` resolves to
    /locale/images/a.png, `../images/a.png` to /images/a.png)."""
    path = posixpath.normpath(unquote(urlsplit(url).path))
    keys = (path.removeprefix("/locale/"), path.lstrip("/"))
    for key in keys:
        if key in images:
            return images[key], mimetypes.guess_type(key)[0] or "application/octet-stream"
    raise FileNotFoundError(f"{keys[0]} is not among the export's images")


def _short(url: str, limit: int = 120) -> str:
    if url.startswith(_ZIP_ORIGIN):
        url = url.removeprefix(_ZIP_BASE) if url.startswith(_ZIP_BASE) else "../" + url.removeprefix(_ZIP_ORIGIN)
    return url if len(url) <= limit else url[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Many locales: a process pool.


def render_pdfs(
    items: Sequence[tuple[str, str]],
    *,
    base_url: str | None = None,
    fetch: Fetch | None = None,
    images: Mapping[str, bytes] | None = None,
    workers: int | None = None,
    warnings: dict[str, list[str]] | None = None,
) -> dict[str, bytes | Exception]:
    """[(locale, html)] -> {locale: PDF bytes, or the exception that stopped that locale}.

    Locales render in parallel processes (`workers`, default one per CPU; 1 renders in this
    process). `fetch` runs in the worker processes, so it must be picklable (a module-level
    function, or a functools.partial of one with picklable arguments); each worker remembers what
    it fetched, so an image shared by every locale is fetched once per worker, not once per locale.
    Per-locale resource warnings are added to `warnings` when a dict is passed.
    """
    images = dict(images or {})
    workers = max(1, min(workers or os.cpu_count() or 1, len(items)))
    outcomes: dict[str, tuple[bytes, list[str]] | Exception] = {}
    if workers == 1:
        job = _Job(base_url, fetch, images)
        for locale, html in items:
            outcomes[locale] = _guarded(job.render, html)
    else:
        if fetch is not None:
            _require_picklable(fetch)
        # spawn, not fork: the caller is usually a Prefect flow with live threads (API client,
        # heartbeat), and forking a threaded process can deadlock the child on a copied lock.
        # Images and the fetcher go to each worker once (initializer), not once per locale.
        # The workers die with this process even when it is SIGKILLed (issue 18): see _init_worker.
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(base_url, fetch, images, os.getpid()),
        ) as pool:
            futures = {pool.submit(_worker_render, html): locale for locale, html in items}
            for future in concurrent.futures.as_completed(futures):
                outcomes[futures[future]] = _guarded(future.result)
    results: dict[str, bytes | Exception] = {}
    for locale, _ in items:
        outcome = outcomes[locale]
        if isinstance(outcome, Exception):
            results[locale] = outcome
            continue
        results[locale], found = outcome
        if warnings is not None and found:
            warnings.setdefault(locale, []).extend(found)
    return results


def _guarded(call: Callable[..., tuple[bytes, list[str]]], *args: Any) -> tuple[bytes, list[str]] | Exception:
    try:
        return call(*args)
    except Exception as exc:  # one locale's failure (or a crashed worker: BrokenProcessPool) is its own
        return exc


def _require_picklable(fetch: Fetch) -> None:
    try:
        pickle.dumps(fetch)
    except Exception as exc:
        raise TypeError(
            "render_pdfs runs `fetch` in worker processes, so it must be picklable "
            f"(a module-level function or a functools.partial of one): {exc}"
        ) from exc


class _RememberingFetch:
    """`fetch`, answering a URL it has seen from memory (failures included: a URL that timed out
    for one locale is not waited on again for the next)."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._seen: dict[str, tuple[bytes, str] | Exception] = {}

    def __call__(self, url: str) -> tuple[bytes, str]:
        if url not in self._seen:
            try:
                self._seen[url] = self._fetch(url)
            except Exception as exc:
                self._seen[url] = exc
        outcome = self._seen[url]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class _Job:
    """What every locale's render in one `render_pdfs` call shares."""

    def __init__(self, base_url: str | None, fetch: Fetch | None, images: Mapping[str, bytes]) -> None:
        self.base_url = base_url
        self.fetch = _RememberingFetch(fetch) if fetch else None
        self.images = images

    def render(self, html: str) -> tuple[bytes, list[str]]:
        found: list[str] = []
        return render_pdf(html, base_url=self.base_url, fetch=self.fetch, images=self.images, warnings=found), found


_worker_job: _Job | None = None


def _init_worker(base_url: str | None, fetch: Fetch | None, images: Mapping[str, bytes],
                 parent: int | None = None) -> None:
    global _worker_job
    if parent is not None:
        die_with_parent(parent)
    _worker_job = _Job(base_url, fetch, images)


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """End this worker process when `parent` (the flow process) ends, however it ends.

    A SIGKILLed flow process runs no cleanup, and a pool worker waiting on its call queue holds
    that queue's write end itself, so it would wait forever: orphaned until `serve` stops, and
    holding the flow process's stdout, which keeps the runner from seeing the flow process exit.
    On Linux the kernel sends SIGKILL to the worker when its parent dies (PR_SET_PDEATHSIG; the pool
    is created and shut down in one call, so the thread that spawned the workers outlives them).
    A daemon thread polling the parent id covers other systems and a parent that died before
    prctl ran.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watcher below still works
            pass
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="pdf-worker-parent-watch", daemon=True).start()


def _worker_render(html: str) -> tuple[bytes, list[str]]:
    assert _worker_job is not None, "_init_worker runs first in every worker process"
    return _worker_job.render(html)
