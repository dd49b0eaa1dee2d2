"""Which URLs a url field may hold: http, https, mailto, tel, an in-page `#anchor`, or a
personalization tag alone (the ESP fills it in at send time). Everything else is refused, at import,
at render and by the link checks (docs/security.md).

Browsers ignore tabs, newlines and other control characters inside a URL and read the scheme
case-insensitively, so `java\\tscript:`, ` JaVaScRiPt:` and `java&#10;script:` all run script. The
value is compacted first (every C0/C1 control character, whitespace and zero-width character removed)
and the scheme compared lower-cased. A hand-written check because no URL library answers "would a
mail client run this": `urllib.parse` keeps the tab, WHATWG parsers differ on the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["ALLOWED_SCHEMES", "disallowed_scheme", "url_problem"]

ALLOWED_SCHEMES = frozenset({"http", "https", "mailto", "tel"})

_IGNORED_RE = re.compile(r"[\x00-\x20\x7f-\x9f\u00a0\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]+")
_SCHEME_RE = re.compile(r"^([a-z][a-z0-9+.\-]*):")
_TAG_RE = re.compile(r"\[\[tag:([^\]\s]+)\]\]")


def _compact(value: str) -> str:
    return _IGNORED_RE.sub("", value)


def disallowed_scheme(value: str) -> str | None:
    """The scheme of `value` when it has one that is not allowed (`javascript`, `data`, ...), else None."""
    match = _SCHEME_RE.match(_compact(value).lower())
    if match and match.group(1) not in ALLOWED_SCHEMES:
        return match.group(1)
    return None


def url_problem(value: str, fallback_of: Callable[[str], str | None] | None = None) -> str | None:
    """Why `value` may not be a url field's value, or None when it may.

    `fallback_of(tag key)`: the fallback text a tag becomes where the ESP has no value; a tag-only
    URL is allowed when that fallback is an allowed URL too.
    """
    compact = _compact(value)
    if not compact:
        return None
    if not _TAG_RE.sub("", compact):
        for key in _TAG_RE.findall(compact):
            fallback = fallback_of(key) if fallback_of else None
            problem = url_problem(fallback) if fallback and _TAG_RE.search(fallback) is None else None
            if problem:
                return f"the fallback of [[tag:{key}]] is not an allowed URL: {problem}"
        return None
    scheme = disallowed_scheme(value)
    if scheme is not None:
        return f"the URL scheme '{scheme}:' is not allowed (only http, https, mailto and tel)"
    if _SCHEME_RE.match(compact.lower()) or compact.startswith("#"):
        return None
    if compact.startswith("[[tag:"):
        return "a URL starting with a personalization tag must be the tag alone (the tag could supply any scheme)"
    return "a URL needs an http, https, mailto or tel scheme"
