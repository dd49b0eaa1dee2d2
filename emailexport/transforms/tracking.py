"""Step 4: add the link tracking profile's parameters to http(s) links.

Applies to `<a href>`/`<area href>` and to VML shapes (`v:roundrect href`, inside Outlook
conditional comments), so the two links of a bulletproof button stay the same. The parameters are
appended to the raw attribute text before the fragment: the existing URL is never re-encoded, a
parameter already in the URL is never overridden, so tracking twice changes nothing.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import parse_qsl, quote, urlencode

from emailexport.transforms._tags import StartTag, edit_start_tags, rewrite_attrs
from emailexport.transforms.esp_syntax import ESP_SYNTAX_RE
from emailexport.transforms.markers import MARKER_RE

__all__ = ["LinkTracking", "add_link_tracking"]

_HTTP_RE = re.compile(r"https?://", re.IGNORECASE)
_FRAGMENT_RE = re.compile(r"(?<!&)#")  # `&#39;` is an entity, not a fragment


@dataclass(frozen=True)
class LinkTracking:
    """What to add to links: a profile's parameters, per-URL extras, URLs to leave alone.

    URLs are the exact `href` values (unescaped, markers as the renderer wrote them).
    """

    parameters: Mapping[str, str]
    skip_urls: frozenset[str] = frozenset()
    per_url_parameters: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))


def add_link_tracking(html: str, tracking: LinkTracking, source: Callable[[str], str] = lambda text: text) -> str:
    """HTML, tracking settings -> the HTML with tracking parameters added to eligible links.

    `source` maps an attribute value back to the renderer's form (placeholders undone), which is
    what `skip_urls` and `per_url_parameters` are keyed by.
    """

    def edit_tag(tag: StartTag, text: str) -> str:
        if tag.name not in {"a", "area"} and not tag.name.startswith("v:"):
            return text
        return rewrite_attrs(text, lambda name, raw: _track(raw, tracking, source) if name == "href" else None)

    return edit_start_tags(html, edit_tag)


def _track(raw: str, tracking: LinkTracking, source: Callable[[str], str]) -> str | None:
    """A raw href value -> the value with the missing parameters added, or None to leave it."""
    href = source(html_lib.unescape(raw))
    if href in tracking.skip_urls or href.strip() in tracking.skip_urls:
        return None
    start = href.lstrip()
    if MARKER_RE.match(start) or ESP_SYNTAX_RE.match(start) or not _HTTP_RE.match(start):
        return None  # a token-only (or token-first) link is the ESP's; mailto/tel/#/relative aren't web links
    parameters = {**tracking.parameters, **tracking.per_url_parameters.get(href, {})}
    present = {name for name, _ in parse_qsl(_query(href), keep_blank_values=True)}
    missing = [(name, value) for name, value in parameters.items() if name not in present]
    if not missing:
        return None
    fragment_at = _FRAGMENT_RE.search(raw)
    base, fragment = (raw[: fragment_at.start()], raw[fragment_at.start() :]) if fragment_at else (raw, "")
    separator = "" if base.endswith(("?", "&", "&amp;")) else "&amp;" if "?" in base else "?"
    addition = urlencode(missing, quote_via=quote).replace("&", "&amp;")
    return f"{base}{separator}{addition}{fragment}"


def _query(url: str) -> str:
    """A URL -> its query string (between `?` and `#`)."""
    without_fragment = url.split("#", 1)[0]
    return without_fragment.split("?", 1)[1] if "?" in without_fragment else ""
