"""Step 5b: ESP syntax that only exists because a serializer decoded character references -> text again.

An author who wants the recipient to read literal braces writes `&#123;&#123; name }}` (or
`&lbrace;`, `&#42;|FNAME|*`, `&#37;&#37;=v(@x)=%%`). css-inline and minify-html both decode such
references when they re-serialize, so without this step the export would hold `{{ name }}`, which
the ESP evaluates. Every ESP syntax the input really held is a placeholder by now (see `protect`),
so any ESP syntax found in the processed page before restoring was made from references: its
opening character is written as a numeric reference again, repeatedly until no ESP syntax is
left (`{{{` needs two). Browsers decode the reference, so recipients read the same text.

Raw-text elements (`<style>`, `<script>`) are skipped: references are not decoded there, so no
syntax can have been made there, and a reference would change the CSS. Handwritten: no library
knows which strings an ESP treats as syntax.
"""

from __future__ import annotations

import re

from emailexport.transforms.esp_syntax import ESP_SYNTAX_RE

__all__ = ["reescape_esp_syntax"]

_RAW_TEXT_RE = re.compile(r"(<(script|style)\b[^>]*>.*?</\2\s*>)", re.IGNORECASE | re.DOTALL)
_MAX_ROUNDS = 64


def reescape_esp_syntax(html: str) -> tuple[str, int]:
    """Processed HTML (tokens still placeholders) -> (it with no ESP syntax outside raw text, how many re-escaped)."""
    pieces = _RAW_TEXT_RE.split(html)
    count = 0
    # split() with two groups yields: text, whole raw element, tag name, text, ...
    for index in range(0, len(pieces), 3):
        pieces[index], found = _escape(pieces[index])
        count += found
    return "".join(piece for i, piece in enumerate(pieces) if i % 3 != 2), count


def _escape(text: str) -> tuple[str, int]:
    count = 0
    for _ in range(_MAX_ROUNDS):
        found = 0

        def encode_first(match: re.Match[str]) -> str:
            nonlocal found
            found += 1
            return f"&#{ord(match.group(0)[0])};{match.group(0)[1:]}"

        text = ESP_SYNTAX_RE.sub(encode_first, text)
        count += found
        if not found:
            break
    return text, count
