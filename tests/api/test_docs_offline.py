"""/docs works offline (issue 13): the Swagger UI page, loaded in a real headless Chromium that may
reach nothing but the API on loopback, renders the Create Export operation. FastAPI's default page
loads its script and CSS from a CDN and stays blank without internet."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import uvicorn

from deployments.supervisor import free_port
from emailexport.api import create_app
from emailexport.runs.flow_runs import FlowRuns
from emailexport.settings import get_settings

CHROMIUM = os.environ.get("EMAILEXPORT_CHROMIUM", "/usr/bin/chromium")
# The launch flags of a locked-down headless browser: no background traffic of its own.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture
def api_url(workspaces) -> Iterator[str]:
    """The app served by uvicorn on a loopback port in this process."""
    port = free_port()
    app = create_app(get_settings(), store=workspaces, flow_runs=FlowRuns(f"http://127.0.0.1:{free_port()}/api"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


@pytest.fixture
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM):
        message = f"{CHROMIUM} is missing (scripts/system-deps installs Debian's chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


def test_the_docs_page_renders_the_create_export_operation_offline(api_url, browser):
    page = browser.new_page()  # type: ignore[attr-defined]
    own = urlsplit(api_url).netloc
    refused: list[str] = []
    loaded: list[str] = []

    def only_loopback(route, request) -> None:
        # Offline: anything but the API itself is refused, as on a machine without internet.
        if urlsplit(request.url).netloc == own:
            loaded.append(request.url)
            route.continue_()
        else:
            refused.append(request.url)
            route.abort("internetdisconnected")

    page.route("**/*", only_loopback)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    response = page.goto(f"{api_url}/docs", wait_until="networkidle", timeout=60_000)
    assert response is not None and response.status == 200
    operation = page.locator("#operations-exports-create_export_api_v1_workspaces__workspace_id__exports_post")
    operation.wait_for(state="visible", timeout=30_000)
    assert "Create Export" in operation.inner_text()
    assert "/api/v1/workspaces/{workspace_id}/exports" in operation.inner_text()
    operation.locator(".opblock-summary").click()  # expands: the request body schema from the document
    page.get_by_text("ExportRequest", exact=False).first.wait_for(timeout=30_000)
    assert refused == [] and errors == []
    assert any(url.endswith("/docs-assets/swagger-ui-bundle.js") for url in loaded)
    assert any(url.endswith("/openapi.json") for url in loaded)
