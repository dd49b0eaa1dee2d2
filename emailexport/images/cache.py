"""Conditional re-fetch of URL images: a re-export of an unchanged email downloads no image body.

For each image URL the store keeps the last fetch's validators (ETag, Last-Modified) and content hash
(`image_fetches`); the bytes are kept in the output storage under that hash, beside the library's own
images (`library/images/<sha256>.<ext>`). The next fetch sends `If-None-Match` / `If-Modified-Since`
through the same SSRF-safe fetcher; on 304 the stored bytes are used (read back and checked against
the hash). A response without validators cannot be asked "changed since?", so it is not kept: that
URL is fetched in full every time. When the stored copy is gone, the fetch is unconditional.

Why not an HTTP cache library (hishel, cachecontrol)? They wrap the transport, and the fetcher
connects to a pinned, checked IP address per hop; a cache in front of that would either bypass the
address policy or key entries by IP. Two headers and one table are less than an adapter.
"""

from __future__ import annotations

from emailexport.images.fetch import FetchedImage, ImageFetcher, NotModified, display_url
from emailexport.images.library import ImageLibrary, LibraryImageError, library_key
from emailexport.store import Store

__all__ = ["fetch_with_cache"]


def fetch_with_cache(fetcher: ImageFetcher, store: Store, library: ImageLibrary, image_id: str,
                     url: str) -> FetchedImage:
    """The current bytes of `url`: the stored copy when the server answers 304, else downloaded."""
    last = store.image_fetch(url)
    usable = last is not None and bool(last.etag or last.last_modified) and library.has(last.sha256, last.content_type)
    if last is not None and usable:
        result = fetcher.fetch_if_changed(image_id, url, last.etag, last.last_modified)
        if isinstance(result, NotModified):
            try:
                data = library.get(last.sha256, last.content_type)
            except LibraryImageError:  # gone or damaged since the check: fetch it whole
                result = fetcher.fetch(image_id, url)
            else:
                if (result.etag, result.last_modified) != (last.etag, last.last_modified):
                    _remember(store, url, result.etag, result.last_modified, last.sha256, last.content_type,
                              last.file_size)
                return FetchedImage(image_id=image_id, data=data, content_type=last.content_type, sha256=last.sha256,
                                    etag=result.etag, last_modified=result.last_modified, origin="not_modified")
        fetched = result
    else:
        fetched = fetcher.fetch(image_id, url)
    if fetched.etag or fetched.last_modified:
        key = library_key(fetched.sha256, fetched.content_type)
        if not library.storage.exists(key):
            library.storage.write(key, fetched.data)
        _remember(store, url, fetched.etag, fetched.last_modified, fetched.sha256, fetched.content_type,
                  len(fetched.data))
    return fetched


def _remember(store: Store, url: str, etag: str | None, last_modified: str | None, sha256: str,
              content_type: str, size: int) -> None:
    store.record_image_fetch(url, shown=display_url(url), etag=etag, last_modified=last_modified, sha256=sha256,
                             content_type=content_type, file_size=size)
