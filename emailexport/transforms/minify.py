"""Step 5: minify the protected document with minify-html.

Comments are kept (they are the placeholders), closing tags and the `<html>`/`<head>` opening tags
are kept (some email clients' sanitizers expect them), and CSS is left alone: minify-html's CSS
minifier rewrites `@media (max-width:600px)` to the range syntax `(width<=600px)`, which many email
clients do not understand.
"""

from __future__ import annotations

import minify_html

__all__ = ["minify_document"]


def minify_document(html: str) -> str:
    """HTML -> minified HTML (raises whatever minify-html raises)."""
    return minify_html.minify(
        html,
        keep_comments=True,
        keep_closing_tags=True,
        keep_html_and_head_opening_tags=True,
        minify_css=False,
        minify_js=False,
    )
