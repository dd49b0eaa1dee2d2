"""Step 3: rewrite image URLs (old -> new, exact match) wherever an email references an image.

`<img src>`, `srcset` candidates, `background` attributes, CSS `url()` in `style` attributes and
`<style>` elements, VML `v:fill` / `v:image` / `v:imagedata` `src`. Only the tags concerned are
edited (see `_tags`); `<style>` content is raw text, so finding its end tag by pattern is exact.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Mapping

from emailexport.transforms._tags import StartTag, edit_start_tags, escape_attr, rewrite_attrs

__all__ = ["rewrite_image_urls"]

_SRC_TAGS = frozenset({"img", "v:fill", "v:image", "v:imagedata", "input"})
_CSS_URL_RE = re.compile(r"""url\(\s*(?P<q>["']?)(?P<url>.*?)(?P=q)\s*\)""", re.IGNORECASE | re.DOTALL)
_STYLE_ELEMENT_RE = re.compile(r"(<style\b[^>]*>)(.*?)(</style)", re.IGNORECASE | re.DOTALL)
_SRCSET_CANDIDATE_RE = re.compile(r"(^|,)(\s*)([^\s,][^\s]*)")


def rewrite_image_urls(html: str, urls: Mapping[str, str]) -> str:
    """HTML, {old URL: new URL} -> the HTML with every image reference to an old URL replaced."""
    if not urls:
        return html

    def edit_tag(tag: StartTag, source: str) -> str:
        return rewrite_attrs(source, lambda name, raw: _rewrite_attr(tag.name, name, raw, urls))

    html = edit_start_tags(html, edit_tag)
    return _STYLE_ELEMENT_RE.sub(lambda m: m.group(1) + rewrite_css_urls(m.group(2), urls) + m.group(3), html)


def rewrite_css_urls(css: str, urls: Mapping[str, str]) -> str:
    """CSS text -> the same with `url(old)` replaced by `url(new)`, quoting kept."""

    def replace(match: re.Match[str]) -> str:
        new = urls.get(match.group("url").strip())
        return match.group(0) if new is None else f"url({match.group('q')}{new}{match.group('q')})"

    return _CSS_URL_RE.sub(replace, css)


def _rewrite_attr(tag: str, name: str, raw: str, urls: Mapping[str, str]) -> str | None:
    """One attribute's raw value -> its rewritten raw value, or None to leave it."""
    if (name == "src" and tag in _SRC_TAGS) or name == "background":
        new = urls.get(html_lib.unescape(raw).strip())
        return None if new is None else escape_attr(new)
    if name == "srcset":
        return _edited(raw, lambda value: _rewrite_srcset(value, urls))
    if name == "style":
        return _edited(raw, lambda value: rewrite_css_urls(value, urls))
    return None


def _edited(raw: str, edit: Callable[[str], str]) -> str | None:
    """Decode a raw value, edit it, and encode it again only if the edit changed something."""
    value = html_lib.unescape(raw)
    new = edit(value)
    return None if new == value else escape_attr(new)


def _rewrite_srcset(srcset: str, urls: Mapping[str, str]) -> str:
    """A srcset value -> the same with each candidate URL rewritten (descriptors kept)."""

    def replace(match: re.Match[str]) -> str:
        url = match.group(3)
        trailing = ""
        while url.endswith(","):  # `a.png,b.png` has no space: the comma ends the URL
            url, trailing = url[:-1], trailing + ","
        return match.group(1) + match.group(2) + urls.get(url, url) + trailing

    return _SRCSET_CANDIDATE_RE.sub(replace, srcset)
