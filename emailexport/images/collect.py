"""Every image reference in an HTML document: the URLs an email will load.

Reads the same places the rewriter (`emailexport.transforms.images`) edits: `src` of `<img>`,
`<input>` and VML `v:fill`/`v:image`/`v:imagedata`, `srcset` candidates, any `background`
attribute, CSS `url()` in `style` attributes and `<style>` elements, and all of these inside
Outlook conditional comments (`<!--[if mso]>...<![endif]-->`), which an HTML parser sees as
comments. Runs on final HTML, where attribute values may hold raw ESP syntax: a reference that is
not a plain URL is still returned, and simply matches no library image.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["collect_image_urls"]

_SRC_TAGS = frozenset({"img", "input", "v:fill", "v:image", "v:imagedata"})
_CSS_URL_RE = re.compile(r"""url\(\s*(["']?)(.*?)\1\s*\)""", re.IGNORECASE | re.DOTALL)
_OUTLOOK_BODY_RE = re.compile(r"^\[if[^\]]*\]>(.*)<!\[endif\]$", re.IGNORECASE | re.DOTALL)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def add(self, url: str) -> None:
        url = url.strip()
        if url:
            self.urls.append(url)

    def css(self, text: str) -> None:
        for match in _CSS_URL_RE.finditer(text):
            self.add(match.group(2))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if (name == "src" and tag in _SRC_TAGS) or name == "background":
                self.add(value)
            elif name == "srcset":
                for candidate in value.split(","):
                    self.add(candidate.strip().split(" ")[0] if candidate.strip() else "")
            elif name == "style":
                self.css(value)
        self._in_style = tag == "style"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self._in_style = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.css(data)

    def handle_comment(self, data: str) -> None:
        body = _OUTLOOK_BODY_RE.match(data.strip())
        if body:
            self.urls.extend(collect_image_urls(body.group(1)))


def collect_image_urls(html: str) -> list[str]:
    """HTML -> the image URLs it references, in document order, each once."""
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return list(dict.fromkeys(collector.urls))
