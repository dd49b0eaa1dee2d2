"""Resolving and typing field values (docs/domain.md, Rendering one locale, step 2).

Order: the branch's value in this locale; the branch's value in the email's default locale (an
"untranslated" warning); the brand profile's field default; the field's default_value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import nh3
from markupsafe import Markup

from emailexport.models import ComponentField, FieldValue, Image, Instance

__all__ = ["ImageValue", "Resolved", "convert_value", "resolve_value"]

# Inline and block tags an email author may use in rich text; anything else is removed.
RICH_TEXT_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "li", "ol", "p", "s", "small", "span", "strong", "sub", "sup", "u", "ul",
}  # fmt: skip
RICH_TEXT_ATTRIBUTES = {
    "*": {"style", "class", "dir", "lang", "align"},
    "a": {"href", "title", "target"},
}
_COLOR_RE = re.compile(r"^(#[0-9a-fA-F]{3,8}|[a-zA-Z]+|rgba?\([\d\s.,%]+\)|transparent)$")
_ALIGN = {"horizontal_align": {"left", "center", "right"}, "vertical_align": {"top", "middle", "bottom"}}


@dataclass(frozen=True)
class ImageValue:
    """What a template sees for an image field; prints as its URL."""

    url: str
    width: int | None = None
    height: int | None = None
    alt: str = ""
    image_id: str | None = None

    def __str__(self) -> str:
        return self.url

    def __html__(self) -> str:
        return Markup.escape(self.url)


@dataclass(frozen=True)
class Resolved:
    value: Any
    source: str  # "locale", "default_locale", "brand", "default", "none"
    link_tracking_parameters: dict[str, str]


def resolve_value(
    instance: Instance,
    branch_key: str,
    locale: str,
    default_locale: str,
    field: ComponentField,
    brand_defaults: dict[str, Any],
) -> Resolved:
    """The value of `field` for one branch and locale, and where it came from."""
    by_locale = instance.field_values.get(branch_key, {})
    for source, loc in (("locale", locale), ("default_locale", default_locale)):
        found: FieldValue | None = by_locale.get(loc, {}).get(field.variable)
        if found is not None and not _empty(found.value):
            return Resolved(found.value, source, dict(found.link_tracking_parameters))
    if field.variable in brand_defaults and not _empty(brand_defaults[field.variable]):
        return Resolved(brand_defaults[field.variable], "brand", {})
    if not _empty(field.default_value):
        return Resolved(field.default_value, "default", {})
    return Resolved(None, "none", {})


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def convert_value(field: ComponentField, value: Any, images: dict[str, Image], replace_tags: Any) -> Any:
    """A resolved raw value -> what the template sees, by field type. Raises ValueError when the
    value does not fit the type (the message names what was expected)."""
    if value is None:
        return ImageValue(url="") if field.type == "image" else None
    kind = field.type
    if kind in ("text", "url"):
        return replace_tags(str(value), "html_text")  # escaped by the template's autoescape
    if kind == "rich_text":
        clean = nh3.clean(str(value), tags=RICH_TEXT_TAGS, attributes=RICH_TEXT_ATTRIBUTES,
                          url_schemes={"http", "https", "mailto", "tel"}, link_rel=None)
        return Markup(replace_tags(clean, "html_markup"))
    if kind == "code":
        return Markup(str(value))  # the type exists to pass author HTML through untouched
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"expected a number, got {value!r}")
        number = float(value)
        return int(number) if number.is_integer() else number
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if kind == "color":
        if not _COLOR_RE.match(str(value)):
            raise ValueError(f"expected a colour like #1a2b3c, got {value!r}")
        return str(value)
    if kind == "enum":
        if str(value) not in (field.options or []):
            raise ValueError(f"{value!r} is not one of {', '.join(field.options or [])}")
        return str(value)
    if kind in _ALIGN:
        if str(value) not in _ALIGN[kind]:
            raise ValueError(f"{value!r} is not one of {', '.join(sorted(_ALIGN[kind]))}")
        return str(value)
    if kind == "image":
        return _image(value, images)
    raise ValueError(f"unknown field type {kind}")  # pragma: no cover - the model forbids it


def _image(value: Any, images: dict[str, Image]) -> ImageValue:
    if isinstance(value, dict) and "image_id" in value:
        image = images.get(str(value["image_id"]))
        if image is None:
            raise ValueError(f"image {value['image_id']} is not in the workspace's image library")
        return ImageValue(url=image.ref_url, width=image.width, height=image.height,
                          alt=str(value.get("alt") or ""), image_id=image.id)
    if isinstance(value, dict) and "url" in value:
        url = str(value["url"])
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"an external image needs an http(s) URL, got {url!r}")
        alt = str(value.get("alt") or "")
        return ImageValue(url=url, width=value.get("width"), height=value.get("height"), alt=alt)
    raise ValueError("an image value is {image_id: ...} or {url: ...}")
