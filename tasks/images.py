"""Stage 2, images (before rendering): the library images an export uses -> their bytes once each
(the library's stored copy when it has one, never fetched; else a conditional fetch of the public
URL), put in the zip or uploaded to the CDN connector, and the URL each locale's references become.

Runs before rendering because URLs are rewritten inside the transform stage, while ESP tokens are
still placeholders (docs/domain.md step 7); the images a locale uses are known from its content.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from pydantic import BaseModel

from connectors.cdn import CdnUploader, UploadResult, open_cdn
from emailexport.errors import EmailExportError
from emailexport.images.cache import fetch_with_cache
from emailexport.images.fetch import FetchedImage, ImageFetcher, display_url
from emailexport.images.library import ImageLibrary, LibraryImageError
from emailexport.images.naming import zip_entry
from emailexport.images.settings import ImageSettings
from emailexport.models import CdnConnector, Image
from emailexport.render import LocaleRenderInput
from emailexport.render.result import LocaleRender
from emailexport.runtime import open_storage, open_store
from emailexport.secrets import resolve_credentials
from tasks.load import ExportJob
from tasks.retry import retry_only_transient

__all__ = ["ImageOutcome", "PlacedImages", "apply_image_errors", "fetch_image", "place_images", "plan_images",
           "upload_image", "with_image_urls"]


class ImageOutcome(BaseModel):
    """Where one library image went (the report lists these)."""

    image_id: str
    filename: str
    source: str  # display form of the public URL (no query string or userinfo), or "library file <file>"
    locales: list[str]
    status: Literal["kept", "placed", "failed"]
    origin: Literal["library", "downloaded", "not_modified"] | None = None  # where the bytes came from
    zip_entry: str | None = None
    cdn_url: str | None = None
    uploaded: bool | None = None  # False: the CDN already had it
    error: str | None = None


@dataclass
class PlacedImages:
    mode: str
    export_type: str
    outcomes: dict[str, ImageOutcome] = field(default_factory=dict)
    images: dict[str, Image] = field(default_factory=dict)
    data: dict[str, bytes] = field(default_factory=dict)  # image id -> bytes (zip and CDN modes)

    def url_of(self, image_id: str) -> str | None:
        """The URL references to this image become, or None to leave them."""
        outcome = self.outcomes[image_id]
        if outcome.status != "placed":
            return None
        if outcome.zip_entry:
            # From `<locale>/index.html` the zip root is one folder up; a json (or pdf) document is
            # read from the zip root, where `images/` sits.
            return ("../" if self.export_type == "html" else "") + outcome.zip_entry
        return outcome.cdn_url

    def browser_files(self, library: ImageLibrary | None = None) -> dict[str, bytes]:
        """What a preview page may load: every placed image by its zip entry, CDN URL and public URL,
        and (use_cdn) library images with stored bytes by their public URL, read from `library`:
        a preview never fetches."""
        files: dict[str, bytes] = {}
        for image_id, data in self.data.items():
            outcome = self.outcomes.get(image_id)
            image = self.images.get(image_id)
            for key in (outcome.zip_entry if outcome else None, outcome.cdn_url if outcome else None,
                        image.public_url if image else None):
                if key:
                    files[key] = data
        for image_id, image in self.images.items():
            if library is None or image_id in self.data or not image.sha256 or not image.public_url:
                continue
            try:
                files[image.public_url] = library.get(image.sha256, image.content_type)
            except LibraryImageError:
                continue  # the preview shows the alt text; the export reports the image itself
        return files

    def zip_files(self, renders: list[LocaleRender]) -> dict[str, bytes]:
        """`images/<name>` -> bytes for every placed image a delivered locale uses, each once."""
        used = {i for r in renders if r.ok for i in r.image_ids}
        return {o.zip_entry: self.data[i] for i, o in sorted(self.outcomes.items())
                if i in used and o.zip_entry and i in self.data}


def plan_images(job: ExportJob) -> dict[str, list[str]]:
    """Library image id -> the requested locales whose content uses it (sorted)."""
    users: dict[str, list[str]] = defaultdict(list)
    for locale, inp in job.inputs.items():
        for image_id in inp.images:
            users[image_id].append(locale)
    return dict(sorted(users.items()))


@task(name="fetch-image", task_run_name="fetch-image-{image.id}", cache_policy=NO_CACHE)
def fetch_image(image: Image) -> FetchedImage:
    """A library image -> its verified bytes: the library's stored copy (read back, hash checked; no
    request at all) when it has one, else its public URL fetched conditionally (a 304 reuses the
    bytes of the last fetch). No Prefect retries: the fetcher retries transient failures itself,
    because honouring Retry-After and jittering each delay need the response."""
    library = ImageLibrary(open_storage())
    if image.sha256 is not None:
        data = library.get(image.sha256, image.content_type)
        return FetchedImage(image_id=image.id, data=data, content_type=image.content_type, sha256=image.sha256,
                            origin="library")
    if image.public_url is None:
        raise LibraryImageError(f"image {image.id}: its file {image.file} was never imported into the library "
                                "(import the bundle from its folder, or `emailexport images add` the file)")
    return fetch_with_cache(ImageFetcher(ImageSettings()), open_store(), library, image.id, image.public_url)


def _no_public_url(image_id: str) -> str:
    return (f"image {image_id} has stored bytes only and no public URL, which use_cdn links to: export with "
            "image_mode include_in_zip or use_cdn_connector, or set a public_url on the image")


def _source(image: Image) -> str:
    if image.public_url is not None:
        return display_url(image.public_url)
    return f"library file {image.file or (image.sha256 or '')[:16]}"


@task(name="upload-image", task_run_name="upload-image-{fetched.image_id}", cache_policy=NO_CACHE,
      retries=2, retry_delay_seconds=[1, 5], retry_jitter_factor=0.5, retry_condition_fn=retry_only_transient)
def upload_image(fetched: FetchedImage, session: str) -> UploadResult:
    """Verified bytes -> their URL on the CDN connector (no upload when the key exists)."""
    with _LOCK:
        uploader = _UPLOADERS[session]
    return uploader.upload(fetched.data, sha256=fetched.sha256, extension=fetched.extension,
                           content_type=fetched.content_type)


# One uploader (one S3 client) per export, shared by its upload tasks: creating an s3fs client costs
# more than checking that a key exists.
_UPLOADERS: dict[str, CdnUploader] = {}
_LOCK = threading.Lock()


def _open_uploader(cdn: CdnConnector) -> tuple[str | None, str | None]:
    """A session key for a new uploader of `cdn`, or (None, why not)."""
    try:
        credentials = resolve_credentials(cdn.credentials) if cdn.credentials else None
        uploader = open_cdn(cdn, credentials)
    except EmailExportError as exc:
        return None, str(exc)
    session = uuid.uuid4().hex
    with _LOCK:
        _UPLOADERS[session] = uploader
    return session, None


def _error(future: Any) -> str | None:
    future.wait()
    if future.state.is_completed():
        return None
    exc = future.state.result(raise_on_failure=False)
    return str(exc) if isinstance(exc, EmailExportError) else f"internal error ({type(exc).__name__})"


def place_images(job: ExportJob) -> PlacedImages:
    """Fetch each image the export uses once (mapped), then put it in the zip or on the CDN."""
    mode = job.record.options.image_mode
    placed = PlacedImages(mode=mode, export_type=job.record.export_type)
    for image_id, locales in plan_images(job).items():
        image = next(inp.images[image_id] for inp in job.inputs.values() if image_id in inp.images)
        placed.images[image_id] = image
        placed.outcomes[image_id] = ImageOutcome(image_id=image_id, filename=image.filename, locales=locales,
                                                 source=_source(image), status="kept")
        if mode == "use_cdn" and image.public_url is None:
            placed.outcomes[image_id] = placed.outcomes[image_id].model_copy(
                update={"status": "failed", "error": _no_public_url(image_id)})
    if mode == "use_cdn" or not placed.images:
        return placed
    ids = list(placed.images)
    session, cdn_problem = (None, None)
    if mode == "use_cdn_connector" and job.cdn_connector is not None:
        session, cdn_problem = _open_uploader(job.cdn_connector)
    try:
        _place(placed, ids, session, cdn_problem)
    finally:
        with _LOCK:
            _UPLOADERS.pop(session or "", None)
    return placed


def _place(placed: PlacedImages, ids: list[str], session: str | None, cdn_problem: str | None) -> None:
    """Fetch (mapped) and, for the CDN, upload as each fetch finishes; outcomes into `placed`."""
    mode = placed.mode
    fetches = fetch_image.map(image=[placed.images[i] for i in ids])
    by_future = {id(f): i for i, f in zip(ids, fetches, strict=True)}
    uploads = {}
    for future in as_completed(list(fetches)):
        image_id = by_future[id(future)]
        outcome = placed.outcomes[image_id]
        if (error := _error(future)) is not None:
            placed.outcomes[image_id] = outcome.model_copy(update={"status": "failed", "error": error})
            continue
        fetched: FetchedImage = future.result()
        outcome = outcome.model_copy(update={"origin": fetched.origin})
        placed.outcomes[image_id] = outcome
        if mode == "include_in_zip":
            placed.data[image_id] = fetched.data
            entry = zip_entry(fetched.sha256, outcome.filename, fetched.extension)
            placed.outcomes[image_id] = outcome.model_copy(update={"status": "placed", "zip_entry": entry})
        elif session is None:
            why = cdn_problem or "the export has no CDN connector"
            placed.outcomes[image_id] = outcome.model_copy(update={"status": "failed",
                                                                   "error": f"image {image_id}: {why}"})
        else:  # upload as soon as its fetch is done, while others are still fetching
            placed.data[image_id] = fetched.data  # previews show it without fetching it again
            uploads[image_id] = upload_image.submit(fetched, session)
    for image_id, upload in uploads.items():
        outcome = placed.outcomes[image_id]
        if (error := _error(upload)) is not None:
            placed.outcomes[image_id] = outcome.model_copy(update={"status": "failed", "error": error})
            continue
        result: UploadResult = upload.result()
        placed.outcomes[image_id] = outcome.model_copy(update={
            "status": "placed", "cdn_url": result.url, "uploaded": result.uploaded})


def with_image_urls(inputs: dict[str, LocaleRenderInput], placed: PlacedImages) -> dict[str, LocaleRenderInput]:
    """Each locale's input with `image_urls`: public_url -> new URL, for the placed images it uses."""
    updated = {}
    for locale, inp in inputs.items():
        urls = {image.ref_url: url for image_id, image in inp.images.items()
                if (url := placed.url_of(image_id)) is not None}
        updated[locale] = inp.model_copy(update={"image_urls": urls}) if urls else inp
    return updated


def apply_image_errors(renders: dict[str, LocaleRender], placed: PlacedImages) -> dict[str, LocaleRender]:
    """A failed image becomes an error of each locale whose HTML uses it (or, when no rendered
    locale shows it, of each locale whose content named it), so only those locales fail."""
    updated = dict(renders)
    for image_id, outcome in placed.outcomes.items():
        if outcome.status != "failed":
            continue
        users = [loc for loc, r in renders.items() if image_id in r.image_ids] or outcome.locales
        for locale in users:
            render = updated.get(locale) or LocaleRender(locale=locale)
            message = f"image failed: {outcome.error}"
            if message not in render.errors:
                updated[locale] = render.model_copy(update={"errors": [*render.errors, message]})
    return updated
