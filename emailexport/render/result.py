"""`LocaleRender`: the outcome of rendering and transforming one locale."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["LocaleRender"]


class LocaleRender(BaseModel):
    """Final subject, preheader, HTML and plaintext of one locale, or the errors that stopped it."""

    locale: str
    subject: str = ""
    preheader: str = ""
    html: str = ""
    plaintext: str = ""
    warnings: list[str] = []
    errors: list[str] = []
    conditional_ids: list[int] = []
    personalization_tag_ids: list[int] = []
    image_ids: list[str] = []
    findings: list[str] = []  # pre-export checks ("<message> [<code>]"), also in warnings or errors

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def size_bytes(self) -> int:
        return len(self.html.encode("utf-8"))
