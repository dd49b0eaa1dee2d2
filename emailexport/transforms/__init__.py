"""The transform stage: protect ESP syntax, inline CSS, rewrite images, track links, minify, restore."""

from emailexport.transforms.markers import MARKER_CLOSE, MARKER_OPEN, MARKER_RE, marker, restore_markers
from emailexport.transforms.pipeline import (
    LinkTracking,
    TransformOptions,
    TransformResult,
    html_to_plaintext,
    transform_html,
)

__all__ = [
    "MARKER_CLOSE",
    "MARKER_OPEN",
    "MARKER_RE",
    "LinkTracking",
    "TransformOptions",
    "TransformResult",
    "html_to_plaintext",
    "marker",
    "restore_markers",
    "transform_html",
]
