"""Rendering one locale of an email: values, sandboxed templates, tags and conditionals."""

from emailexport.render.inputs import ConnectorRef, LocaleRenderInput, slice_content
from emailexport.render.render import RenderedDocument, render_document
from emailexport.render.tokens import TAG_RE

__all__ = ["TAG_RE", "ConnectorRef", "LocaleRenderInput", "RenderedDocument", "render_document", "slice_content"]
