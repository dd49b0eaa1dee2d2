"""How ESP syntax travels from the renderer to the transform stage.

The renderer never writes an ESP token (a personalization tag's syntax, a conditional's opening or
closing tag) straight into the HTML: it appends the token to a token list and writes a *marker*,
`\\ue000<index>\\ue001`, made of two Unicode private-use characters that no template, escaper or
parser treats as special. The transform stage swaps each marker for a placeholder that suits where
it stands (an HTML comment between elements, a plain word inside attribute values and raw text)
and puts the exact token back at the very end.
"""

from __future__ import annotations

import re

__all__ = ["MARKER_CLOSE", "MARKER_OPEN", "MARKER_RE", "marker", "restore_markers"]

MARKER_OPEN = "\ue000"
MARKER_CLOSE = "\ue001"
MARKER_RE = re.compile("\ue000(\\d+)\ue001")


def marker(index: int) -> str:
    """The marker that stands for `tokens[index]`."""
    return f"{MARKER_OPEN}{index}{MARKER_CLOSE}"


def restore_markers(text: str, tokens: list[str] | tuple[str, ...]) -> str:
    """Replace every marker in `text` by its token (for subject, preheader and other plain text)."""
    return MARKER_RE.sub(lambda m: tokens[int(m.group(1))], text)
