"""Previews: each locale rendered for eyes (sample values instead of ESP syntax) and photographed
in headless Chromium as desktop, mobile and dark; a gallery page shows them side by side."""

from emailexport.previews.browser import ORIGIN, VIEWS, BrowserUnavailable, Shot, chromium_path, take_screenshots
from emailexport.previews.gallery import GalleryLocale, gallery_html
from emailexport.previews.sample import Variant, preview_input, variants_of
from emailexport.previews.settings import PreviewSettings

__all__ = [
    "ORIGIN",
    "VIEWS",
    "BrowserUnavailable",
    "GalleryLocale",
    "PreviewSettings",
    "Shot",
    "Variant",
    "chromium_path",
    "gallery_html",
    "preview_input",
    "take_screenshots",
    "variants_of",
]
