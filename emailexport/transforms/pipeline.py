"""The transform stage: one rendered locale's HTML -> the HTML that ships, in a fixed order.

Each step is a small pure function in its own module; this function only sequences them and
says why each one sits where it does (see docs/domain.md, "Rendering one locale", step 7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from emailexport.transforms.images import rewrite_image_urls
from emailexport.transforms.inline import inline_css
from emailexport.transforms.lang import set_lang_dir
from emailexport.transforms.minify import minify_document
from emailexport.transforms.plaintext import html_to_plaintext
from emailexport.transforms.protect import protect
from emailexport.transforms.references import reescape_esp_syntax
from emailexport.transforms.restore import restore_placeholders
from emailexport.transforms.tracking import LinkTracking, add_link_tracking

__all__ = ["LinkTracking", "TransformOptions", "TransformResult", "html_to_plaintext", "transform_html"]


@dataclass(frozen=True)
class TransformOptions:
    """How to transform one locale's HTML (`lang=""`: leave `<html lang dir>` as the document has it)."""

    lang: str
    direction: Literal["ltr", "rtl"]
    minify: bool = False
    link_tracking: LinkTracking | None = None
    image_urls: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class TransformResult:
    """The transformed HTML and what degraded on the way."""

    html: str
    warnings: tuple[str, ...]


def transform_html(html: str, tokens: Sequence[str], options: TransformOptions) -> TransformResult:
    """Rendered HTML with markers, its tokens, options -> the final HTML with the tokens restored."""
    warnings: list[str] = []
    # 1. Protect first: every later tool parses HTML and would move, mangle or drop ESP syntax
    #    and Outlook conditional comments.
    protected = protect(html, tokens, drop_comments=options.minify, reserved=_reserved_text(options))
    warnings.extend(protected.warnings)
    # 2. Inline before any attribute rewriting: css-inline re-serializes the whole document, and
    #    the URLs it copies into `style` attributes must be seen by the image step.
    page, inline_warnings = inline_css(protected.html, protected.placeholder_re, f"{protected.prefix}-guard")
    warnings.extend(inline_warnings)
    # 3. Images after inlining (CSS url() now sits in style attributes), inside the stashed Outlook
    #    bodies and <style> blocks too, before minifying so URLs are matched as written.
    if options.image_urls:
        page = rewrite_image_urls(page, options.image_urls)
        protected = protected.map_bodies(lambda body: rewrite_image_urls(body, options.image_urls))
    # 4. Link tracking while tokens are still placeholders, so a token-only href is recognisable
    #    and no parameter lands inside a token; VML buttons in Outlook bodies get the same links.
    if options.link_tracking is not None:
        tracking, source = options.link_tracking, protected.source_text
        page = add_link_tracking(page, tracking, source)
        protected = protected.map_bodies(lambda body: add_link_tracking(body, tracking, source))
    # 5. Minify last among the tools that parse HTML, with every fragile piece still hidden.
    if options.minify:
        try:
            page = minify_document(page)
        except Exception as error:  # an optional step degrades, it never fails the export
            warnings.append(f"minify failed: {error}; output left unminified")
    # 5b. The inliner and the minifier decode character references: ESP syntax the input held only
    #     as text (`&#123;&#123; x }}`) must not come out live. Every real token is still a
    #     placeholder here, so whatever ESP syntax the page holds now was made by decoding.
    page, _count = reescape_esp_syntax(page)
    # 6. Restore once no tool will parse the document again.
    page = restore_placeholders(page, protected)
    # 7. lang/dir at the very end so nothing can drop or reorder them ("" keeps the document's own).
    if options.lang:
        page = set_lang_dir(page, options.lang, options.direction)
    return TransformResult(html=page, warnings=tuple(warnings))


def _reserved_text(options: TransformOptions) -> str:
    """Text the pipeline adds itself (URLs, parameters), which the placeholder prefix must avoid."""
    parts = [*options.image_urls.keys(), *options.image_urls.values()]
    if options.link_tracking is not None:
        parts.extend(f"{k}={v}" for k, v in options.link_tracking.parameters.items())
        for extra in options.link_tracking.per_url_parameters.values():
            parts.extend(f"{k}={v}" for k, v in extra.items())
    return "\n".join(parts)
