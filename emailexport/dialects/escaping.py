"""Text stays text: a value's own characters must not become the ESP's template syntax.

A text value `{{ 7*7 }}` or `{% if %}` would run in the ESP (with Braze, `connected_content` can call
out). `escape_text(preset, text)` splits a value into pieces: `(False, text)` is written as text (the
renderer still HTML-escapes it), `(True, syntax)` is ESP syntax that makes the ESP print the next
piece literally (written as a token, like a tag's syntax). Where a platform documents no way to
write its delimiter literally, the value cannot be written and `DialectError` is raised; the locale
fails with that message instead of shipping live template code.

| family | delimiters | written as |
|---|---|---|
| Liquid (braze, customerio, hubspot, mailjet) | `{{`, `{%` | `{% raw %}{{{% endraw %}` |
| Django-like (klaviyo, brevo) | `{{`, `{%`, `{#` | `{% templatetag openvariable %}` (openblock, opencomment) |
| Handlebars (sendgrid, iterable) | `{{` | `\\{{` (a backslash right before `{{` cannot be written) |
| AMPscript | `%%` (`%%[`, `%%=`, `%%Attr%%`) | `%%=Char(37,2)=%%` |
| Marketo | `{{`, `{%` | refused (no documented escape) |
| Mailchimp | `*\\|` | refused (no documented escape) |
| Campaign Monitor | `[if:` `[elseif:` `[else]` `[endif]` `[x,fallback=…]`, built-in `[firstname]` etc. | refused |
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ._common import DialectError

__all__ = ["escape_text"]

Piece = tuple[bool, str]

_LIQUID_RE = re.compile(r"\{[{%]")
_DJANGO_RE = re.compile(r"\{[{%#]")
_DJANGO_NAMES = {"{{": "openvariable", "{%": "openblock", "{#": "opencomment"}
# Campaign Monitor runs its conditionals, any tag with a fallback, and the tags of its built-in Name and
# Email address fields (which need no fallback) wherever they appear.
_CM_RE = re.compile(r"\[(?:if:|elseif:|else\]|endif\]|(?:firstname|lastname|fullname|email)\]|[^\[\]]*,\s*fallback=)",
                    re.I)
_REFUSED = {
    "marketo": (re.compile(r"\{[{%]"), "'{{' or '{%'"),
    "mailchimp": (re.compile(r"\*\|"), "'*|'"),
    "campaign_monitor": (_CM_RE, "a [if:]/[else]/[endif], [field,fallback=] or [firstname]/[email] tag"),
}


def _split(text: str, pattern: re.Pattern[str], syntax: Callable[[str], list[Piece]]) -> list[Piece]:
    pieces: list[Piece] = []
    last = 0
    for match in pattern.finditer(text):
        if match.start() > last:
            pieces.append((False, text[last:match.start()]))
        pieces.extend(syntax(match.group(0)))
        last = match.end()
    if last < len(text):
        pieces.append((False, text[last:]))
    return pieces


def escape_text(preset: str, text: str) -> list[Piece]:
    """`text` as pieces that the `preset`'s engine prints literally (see the module table)."""
    if preset in ("braze", "customerio", "hubspot", "mailjet"):
        return _split(text, _LIQUID_RE, lambda d: [(True, "{% raw %}"), (False, d), (True, "{% endraw %}")])
    if preset in ("klaviyo", "brevo"):
        return _split(text, _DJANGO_RE, lambda d: [(True, f"{{% templatetag {_DJANGO_NAMES[d]} %}}")])
    if preset in ("sendgrid", "iterable"):
        if "\\{{" in text:
            raise DialectError(f"{preset}: a backslash right before '{{{{' cannot be written as text")
        return _split(text, re.compile(r"\{\{"), lambda d: [(True, "\\"), (False, d)])
    if preset == "ampscript":
        return _split(text, re.compile(r"%%"), lambda d: [(True, "%%=Char(37,2)=%%")])
    if preset in _REFUSED:
        pattern, what = _REFUSED[preset]
        if pattern.search(text):
            raise DialectError(f"{preset}: the text {_excerpt(text)!r} contains {what}, which {preset} would run "
                               "as template code and has no way to write literally")
        return [(False, text)] if text else []
    raise DialectError(f"unknown template engine preset {preset!r}")


def _excerpt(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
