"""Pre-export checks: the final HTML, subject and preheader of a locale -> what will break in inboxes.

Each check is a small function over the parsed document; `run_checks` runs them all in a fixed
order and returns findings in document order. A finding is a warning unless its code is listed
in `CheckSettings.blocking`, which makes it an error of the locale.

ESP syntax in the HTML (`{{ url }}`, `*|ARCHIVE|*`, `%%=RedirectTo(@u)=%%`) is the ESP's to fill
at send time, so a value that is only ESP syntax is never reported as empty or a placeholder. Each
token is swapped for a plain placeholder word before parsing: a token may hold quotes or `>`
(`href="{{ city | default: "all" }}"`), which would otherwise cut the attribute short, and may sit
inside a start tag (`<a {% if x %}...`). Messages show the tokens again. Content inside Outlook
conditional comments is a comment to the parser and is not checked by the tree checks;
`token_in_comment` scans comments in the raw HTML instead, for the presets listed in
`COMMENT_BLIND_ESPS` (which ESP processes its syntax inside comments: docs/transform.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote

from lxml import html as lxml_html
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from emailexport.transforms.esp_syntax import ESP_SYNTAX_RE
from emailexport.url_policy import disallowed_scheme

__all__ = ["CHECK_CODES", "COMMENT_BLIND_ESPS", "CheckSettings", "Finding", "run_checks"]

CHECK_CODES: dict[str, str] = {
    "html_over_102kb": "HTML over 102 KB: Gmail clips the message and hides the rest behind a link",
    "image_missing_alt": "an image without an alt attribute (alt=\"\" marks a decorative image and is fine)",
    "link_empty": "a link without an href, or with an empty one",
    "link_placeholder": "a link to #, http:// or https://",
    "link_unreplaced_tag": "a link still containing a [[tag:...]] marker",
    "link_unsafe_scheme": "a link whose scheme is not http, https, mailto or tel (javascript:, vbscript:, data:...)",
    "subject_missing": "no subject",
    "preheader_missing": "no preheader (inboxes show the first text of the body instead)",
    "image_over_1mb": "an image over 1 MB: slow to load on mobile, and some clients skip it",
    "html_missing_lang": "<html> without lang: screen readers guess the language",
    "table_missing_role": "a layout table without role=\"presentation\": screen readers announce it as data",
    "token_in_comment": "an ESP token inside an HTML comment (an Outlook conditional too) for an ESP that does "
                            "not process its syntax there: Outlook desktop readers get the raw token",
}
"""Every check's code (stable: settings and records refer to it) -> what it reports."""


COMMENT_BLIND_ESPS: dict[str, str] = {
    "braze": "Braze",  # Braze "Using Liquid": HTML comments are removed before Liquid is read (issue 10)
}
"""Preset -> the ESP's name, for the ESPs that do not evaluate their syntax inside HTML comments.

Every other preset's ESP evaluates the whole HTML source as text (AMPscript, Handlebars, Liquid
and the merge-tag languages are not HTML-aware), so a token in `<!--[if mso]>` is filled in for
Outlook readers too. Per preset, with the reference and what is unconfirmed: docs/transform.md.
"""


class CheckSettings(BaseSettings):
    """Environment (prefix `EMAILEXPORT_CHECKS_`): `BLOCKING=html_over_102kb,image_missing_alt`."""

    model_config = SettingsConfigDict(env_prefix="EMAILEXPORT_CHECKS_", env_file=".env", extra="ignore")

    blocking: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(), description="codes whose findings are errors of the locale instead of warnings"
    )
    html_max_bytes: int = Field(default=102 * 1024, ge=1, description="UTF-8 size over which Gmail clips")
    image_max_bytes: int = Field(default=1024 * 1024, ge=1, description="an image over this is reported")

    @field_validator("blocking", mode="before")
    @classmethod
    def _split_codes(cls, value: Any) -> Any:
        # A comma-separated list in the environment; a list or set from code.
        if isinstance(value, str):
            value = [code.strip() for code in value.split(",") if code.strip()]
        unknown = sorted(set(value) - set(CHECK_CODES))
        if unknown:
            raise ValueError(f"unknown check code(s) {', '.join(unknown)}; known: {', '.join(sorted(CHECK_CODES))}")
        return frozenset(value)


@dataclass(frozen=True)
class Finding:
    """One problem: a stable `code`, a message naming the element or URL, and whether it blocks."""

    code: str
    message: str
    blocking: bool = False

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"


def run_checks(
    html: str,
    subject: str,
    preheader: str,
    *,
    image_sizes: Mapping[str, int] | None = None,
    settings: CheckSettings,
    preset: str | None = None,
) -> list[Finding]:
    """A locale's final HTML, subject and preheader -> its findings (image_sizes: URL -> bytes, when known).

    `preset` is the template engine preset the HTML was written for (None: no ESP-specific checks).
    """
    found: list[tuple[str, str]] = []
    found += _check_size(html, settings)
    found += _check_comment_tokens(html, preset)
    found += [("subject_missing", "the subject is empty")] if not subject.strip() else []
    found += [("preheader_missing", "the preheader is empty")] if not preheader.strip() else []
    tokens: list[str] = []
    root = _parse(_protect(html, tokens))
    if root is not None:
        for check in _TREE_CHECKS:
            found += check(root)
        found += _check_image_sizes(root, tokens, image_sizes or {}, settings)
    return [Finding(code, _restore(message, tokens), code in settings.blocking) for code, message in found]


Found = Iterator[tuple[str, str]]


_PLACEHOLDER_RE = re.compile(r"espTOKEN(\d+)x")


def _protect(html: str, tokens: list[str]) -> str:
    """Every ESP token -> `espTOKEN<n>x` (a word: safe in text, attribute values and start tags)."""

    def swap(match: re.Match[str]) -> str:
        tokens.append(match.group(0))
        return f"espTOKEN{len(tokens) - 1}x"

    return ESP_SYNTAX_RE.sub(swap, html)


def _restore(text: str, tokens: list[str]) -> str:
    return _PLACEHOLDER_RE.sub(lambda m: tokens[int(m.group(1))], text)


def _parse(html: str) -> Any:
    if not html.strip():
        return None
    # bytes, so a `<meta charset>` or XML declaration in the string cannot make lxml refuse it.
    return lxml_html.document_fromstring(html.encode("utf-8"), parser=lxml_html.HTMLParser(encoding="utf-8"))


_COMMENT_RE = re.compile(r"<!--(?!>|->)(.*?)--!?>", re.DOTALL)  # HTML5: `<!-->` and `<!--->` are empty


def _check_comment_tokens(html: str, preset: str | None) -> Found:
    """Tokens in HTML comments, for a preset whose ESP does not process its syntax inside comments."""
    esp = COMMENT_BLIND_ESPS.get(preset or "")
    if esp is None:
        return
    for comment in _COMMENT_RE.finditer(html):
        tokens = ESP_SYNTAX_RE.findall(comment.group(1))
        if not tokens:
            continue
        line = html.count("\n", 0, comment.start()) + 1
        conditional = comment.group(1).lstrip().lower().startswith("[if")
        where = "an Outlook conditional comment" if conditional else "an HTML comment"
        effect = ("Outlook desktop readers get it raw" if conditional
                  else "it is not filled in")
        shown = ", ".join(dict.fromkeys(tokens))
        yield ("token_in_comment", f"{shown} sits inside {where} (line {line}); {esp} does not process its "
                                       f"syntax inside HTML comments, so {effect}")


def _check_size(html: str, settings: CheckSettings) -> Found:
    size = len(html.encode("utf-8"))
    if size > settings.html_max_bytes:
        yield ("html_over_102kb", f"the HTML is {size / 1024:.1f} KB, over the {settings.html_max_bytes / 1024:g} KB "
                                  "at which Gmail clips a message")


def _is_esp(value: str) -> bool:
    """A (protected) value that is only ESP syntax, filled in by the ESP at send time."""
    return bool(_PLACEHOLDER_RE.search(value)) and not _PLACEHOLDER_RE.sub("", value).strip()


def _describe(element: Any, limit: int = 60) -> str:
    """How a message names an element: its text or source line, enough to find it."""
    text = " ".join(element.text_content().split())
    where = f" (line {element.sourceline})" if element.sourceline else ""
    if text:
        return f'"{text if len(text) <= limit else text[: limit - 3] + "..."}"{where}'
    return f"<{element.tag}>{where}"


def _check_alt(root: Any) -> Found:
    for img in root.iter("img"):
        if img.get("alt") is None:
            src = img.get("src") or "(no src)"
            yield ("image_missing_alt", f"image {src} has no alt attribute")


_PLACEHOLDER_HREFS = frozenset({"#", "http://", "https://", "http:", "https:", "http:///", "https:///"})


def _check_links(root: Any) -> Found:
    for link in root.iter("a"):
        href = link.get("href")
        if href is not None and _is_esp(href):
            continue
        value = (href or "").strip()
        if not value:
            state = "no href" if href is None else "an empty href"
            yield ("link_empty", f"link {_describe(link)} has {state}")
        elif value.lower() in _PLACEHOLDER_HREFS:
            yield ("link_placeholder", f"link {_describe(link)} has the placeholder href {value!r}")
        elif (scheme := disallowed_scheme(value)) is not None:
            # Normalised as a browser reads it: `java\tscript:`, `VBScript:`, `data:text/html,...`
            # (`javascript:void(0)` placeholders included).
            yield ("link_unsafe_scheme", f"link {_describe(link)} has the unsafe URL scheme '{scheme}:'")
        if "[[tag:" in unquote(value):
            yield ("link_unreplaced_tag", f"link {_describe(link)} still contains a [[tag:...]] marker: {value}")


def _check_lang(root: Any) -> Found:
    if not (root.get("lang") or "").strip():
        yield ("html_missing_lang", "<html> has no lang attribute")


def _check_tables(root: Any) -> Found:
    for table in root.iter("table"):
        if table.get("role") is not None:
            continue
        # A data table (header cells of its own, not of a nested table) is right without it.
        if table.xpath("./tr/th | ./thead/tr/th | ./tbody/tr/th"):
            continue
        names = " ".join(f'{a}="{table.get(a)}"' for a in ("id", "class") if table.get(a))
        where = f" at line {table.sourceline}" if table.sourceline else ""
        yield ("table_missing_role", f"layout table{where}{f' ({names})' if names else ''} has no "
                                     'role="presentation"')


_CSS_URL_RE = re.compile(r"""url\(\s*["']?([^"')]+?)["']?\s*\)""", re.I)


def _check_image_sizes(root: Any, tokens: list[str], sizes: Mapping[str, int], settings: CheckSettings) -> Found:
    if not sizes:
        return
    urls = [img.get("src", "") for img in root.iter("img")]
    urls += [el.get("background", "") for el in root.iter() if isinstance(el.tag, str)]
    urls += [u for el in root.iter() if isinstance(el.tag, str) for u in _CSS_URL_RE.findall(el.get("style", ""))]
    urls += [u for style in root.iter("style") for u in _CSS_URL_RE.findall(style.text or "")]
    for url in dict.fromkeys(_restore(u.strip(), tokens) for u in urls if u.strip()):  # once each, in order
        size = sizes.get(url)
        if size is not None and size > settings.image_max_bytes:
            yield ("image_over_1mb", f"image {url} is {size / 1024 / 1024:.1f} MB, over "
                                     f"{settings.image_max_bytes / 1024 / 1024:g} MB")


_TREE_CHECKS: tuple[Callable[[Any], Found], ...] = (_check_lang, _check_alt, _check_links, _check_tables)
