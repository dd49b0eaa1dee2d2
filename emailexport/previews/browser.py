"""Full-page screenshots of preview HTML in headless Chromium, offline.

Driven by Playwright's Python package pointed at the system Chromium (Debian's `chromium`,
installed by scripts/system-deps): Playwright is maintained by the Chromium team's neighbours,
talks to the browser over a pipe (no port, no driver binary to match), has an async API for a
bounded number of pages in one browser, and can answer every request the page makes itself
(`route`), which is how the page gets the export's own images and nothing else. Selenium would
need chromedriver of the same version and has no request interception. Playwright's own browser
downloads are never used (they cannot be fetched here, and need not be).

Containment: JavaScript is off; every request goes through `_route`, which serves the page, the
export's images (zip paths or library bytes, through `resources`) and aborts everything else;
Chromium's background networking is off and its host resolver maps every name to nothing, so even
a request that escaped the route could not leave the machine.
"""

from __future__ import annotations

import asyncio
import mimetypes
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from emailexport.previews.settings import PreviewSettings

__all__ = ["ORIGIN", "VIEWS", "BrowserUnavailable", "Shot", "chromium_path", "take_screenshots"]

# The page's own (unresolvable) origin: relative URLs in the email resolve under it.
ORIGIN = "https://preview.emailexport.invalid"

# The three views. desktop: the 600 px email in a wider reading pane; mobile: a phone (390 px,
# under the 480 px breakpoint emails use); dark: desktop with prefers-color-scheme: dark.
VIEWS: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1024, "height": 768}, "color_scheme": "light"},
    "mobile": {"viewport": {"width": 390, "height": 844}, "color_scheme": "light", "is_mobile": True,
               "has_touch": True, "device_scale_factor": 1},
    "dark": {"viewport": {"width": 1024, "height": 768}, "color_scheme": "dark"},
}

_ARGS = [
    "--no-sandbox",  # root in containers has no user namespace sandbox; JS is off and requests routed
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


class BrowserUnavailable(RuntimeError):
    """No Chromium to drive (not installed, or it did not start)."""


@dataclass(frozen=True)
class Shot:
    """One screenshot to take: `html` shown at `ORIGIN/<path>` in `view`; `key` names the result."""

    key: str
    path: str
    html: str
    view: str


def chromium_path(settings: PreviewSettings | None = None) -> str | None:
    """The configured browser, else `chromium` (or `chromium-browser`) on PATH."""
    settings = settings or PreviewSettings()
    if settings.chromium_path:
        return settings.chromium_path if shutil.which(settings.chromium_path) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _content_type(path: str, data: bytes) -> str:
    for magic, kind in ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif")):
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


async def _shoot_all(shots: Sequence[Shot], resources: Callable[[str], bytes | None],
                     settings: PreviewSettings, executable: str) -> tuple[dict[str, bytes], dict[str, str]]:
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright

    results: dict[str, bytes] = {}
    failures: dict[str, str] = {}
    pages = asyncio.Semaphore(settings.max_pages)
    timeout_ms = settings.page_timeout_seconds * 1000

    async with async_playwright() as playwright:
        try:
            browser = await playwright.chromium.launch(executable_path=executable, args=_ARGS,
                                                       timeout=settings.launch_timeout_seconds * 1000)
        except PlaywrightError as exc:
            raise BrowserUnavailable(f"Chromium at {executable} did not start: {exc.message.splitlines()[0]}") from exc
        try:
            contexts = {
                view: await browser.new_context(java_script_enabled=False, offline=False, **options)
                for view, options in VIEWS.items() if any(s.view == view for s in shots)
            }

            async def one(shot: Shot) -> None:
                page_url = f"{ORIGIN}/{shot.path}"

                async def route(request_route: Any) -> None:
                    url = request_route.request.url
                    if url.split("#", 1)[0] == page_url:
                        await request_route.fulfill(status=200, content_type="text/html; charset=utf-8",
                                                    body=shot.html)
                        return
                    key = unquote(urlsplit(url).path.lstrip("/")) if url.startswith(ORIGIN + "/") else url
                    data = resources(key)
                    if data is None:
                        await request_route.abort("blockedbyclient")
                    else:
                        await request_route.fulfill(status=200, content_type=_content_type(key, data), body=data)

                async with pages:
                    page = await contexts[shot.view].new_page()
                    try:
                        page.set_default_timeout(timeout_ms)
                        await page.route("**/*", route)
                        await page.goto(page_url, wait_until="load", timeout=timeout_ms)
                        results[shot.key] = await page.screenshot(full_page=True, type="png", timeout=timeout_ms)
                    except PlaywrightError as exc:
                        failures[shot.key] = exc.message.splitlines()[0] if exc.message else type(exc).__name__
                    finally:
                        await page.close()

            await asyncio.gather(*(one(s) for s in shots))
        finally:
            await browser.close()
    return results, failures


def take_screenshots(shots: Sequence[Shot], resources: Callable[[str], bytes | None],
                     settings: PreviewSettings | None = None) -> tuple[dict[str, bytes], dict[str, str]]:
    """Screenshot every shot (at most `max_pages` at once, one browser) -> (key -> PNG, key -> why it
    failed). Raises BrowserUnavailable when there is no browser to start.

    Runs its own event loop in a thread of its own, so it works from sync code, from a Prefect
    flow, and from inside a running event loop alike.
    """
    settings = settings or PreviewSettings()
    executable = chromium_path(settings)
    if executable is None:
        raise BrowserUnavailable("Chromium was not found (install Debian's `chromium`; scripts/system-deps does, "
                                 "or set EMAILEXPORT_PREVIEWS_CHROMIUM_PATH)")
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = asyncio.run(_shoot_all(shots, resources, settings, executable))
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="previews", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    results, failures = outcome["value"]
    return results, failures
