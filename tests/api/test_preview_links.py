"""Preview thumbnails in the Prefect summary artifact (issue 16): signed, expiring links to the
preview images of an export, served by the API from the export's zip, without a token."""

from __future__ import annotations

import io
import re
import time
import zipfile
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from deployments.supervisor import free_port
from emailexport.api import create_app
from emailexport.models import ExportOptions
from emailexport.runs.flow_runs import FlowRuns
from emailexport.runtime import open_storage
from emailexport.settings import get_settings
from emailexport.signing import sign_preview_url
from tasks.package import output_keys
from tasks.previews import thumbnail
from tasks.report import summary_markdown
from tests.api.conftest import auth

BASE = "http://testserver"


def _png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def previewed(workspaces, monkeypatch):
    """A completed html export with previews of en-US whose zip is on local storage."""
    from emailexport.models import Email

    monkeypatch.setenv("EMAILEXPORT_PUBLIC_BASE_URL", BASE)
    get_settings.cache_clear()
    email = workspaces.require(3, Email, 1)
    record = workspaces.create_export(workspace=workspaces.workspace(3), email=email, export_type="html",
                                      options=ExportOptions(locales=["en-US"], previews=True))
    desktop = _png(1024, 2000, (200, 30, 30))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("previews/en-US/desktop.png", desktop)
        archive.writestr("previews/en-US/thumbnail.png", thumbnail(desktop))
    open_storage().write(output_keys(record)["zip"], buffer.getvalue())
    record = workspaces.update_export(record.id, status="completed")
    app = create_app(get_settings(), store=workspaces, flow_runs=FlowRuns(f"http://127.0.0.1:{free_port()}/api"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, record, desktop


def test_the_summary_shows_a_signed_thumbnail_per_locale_that_opens_without_a_token(previewed):
    client, record, desktop = previewed
    markdown = summary_markdown(record, {}, [], previews=["en-US"], base_url=BASE)
    thumb, full = re.search(r"\[!\[en-US\]\((\S+)\)\]\((\S+)\)", markdown).groups()
    assert "/previews/en-US/thumbnail.png?expires=" in thumb and "/previews/en-US/desktop.png?expires=" in full
    response = client.get(thumb)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    small = Image.open(io.BytesIO(response.content))
    assert small.width == 320 and small.height == 400  # the top of the page, scaled down
    assert client.get(full).content == desktop
    # the bearer token works too; without either, 401
    path = urlsplit(full).path
    assert client.get(path, headers=auth()).content == desktop
    assert client.get(path).status_code == 401


def test_a_changed_expired_or_foreign_preview_link_is_refused(previewed):
    client, record, _ = previewed
    url = sign_preview_url(BASE, 3, record.id, "en-US", "thumbnail.png")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    path = urlsplit(url).path
    # another image of the same export with this signature
    assert client.get(path.replace("thumbnail", "desktop"), params=query).status_code == 403
    assert client.get(path, params={**query, "signature": query["signature"][:-2] + "AA"}).status_code == 403
    expired = sign_preview_url(BASE, 3, record.id, "en-US", "thumbnail.png", now=time.time() - 10**6)
    assert client.get(expired).status_code == 403
    # a locale the export does not have, or a name that is not a preview image
    other = sign_preview_url(BASE, 3, record.id, "de-DE", "thumbnail.png")
    assert client.get(other).status_code == 404
    assert client.get(path.replace("thumbnail.png", "index.html"), params=query).status_code == 404


def test_without_an_api_the_summary_says_where_the_gallery_is(previewed):
    _, record, _ = previewed
    markdown = summary_markdown(record, {}, [], previews=["en-US"], base_url=None)
    assert f"`emailexport preview {record.id}`" in markdown and "](" not in markdown.split("## Previews")[1]
