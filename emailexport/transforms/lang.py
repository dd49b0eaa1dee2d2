"""Step 7: set `<html lang="..." dir="...">` on the finished document.

Last, so no later tool can drop or reorder the attributes; only the `<html>` start tag is edited
(see `_tags`), or one is added when the document has none.
"""

from __future__ import annotations

import re

from emailexport.transforms._tags import escape_attr, iter_start_tags, rewrite_attrs

__all__ = ["set_lang_dir"]

_PROLOGUE_RE = re.compile(r"\A(?:\s|<!--.*?-->|<!doctype[^>]*>)*", re.IGNORECASE | re.DOTALL)


def set_lang_dir(html: str, lang: str, direction: str) -> str:
    """HTML, a language tag, "ltr"/"rtl" -> the HTML whose `<html>` carries exactly these."""
    wanted = {"lang": escape_attr(lang), "dir": escape_attr(direction)}
    tag = next((t for t in iter_start_tags(html) if t.name == "html"), None)
    if tag is None:
        prologue = _PROLOGUE_RE.match(html)
        cut = prologue.end() if prologue else 0
        return f'{html[:cut]}<html lang="{wanted["lang"]}" dir="{wanted["dir"]}">{html[cut:]}</html>'
    return html[: tag.start] + _with_attrs(html[tag.start : tag.end], wanted) + html[tag.end :]


def _with_attrs(tag_text: str, wanted: dict[str, str]) -> str:
    """The `<html ...>` text -> the same with `lang`/`dir` replaced or added."""
    found: set[str] = set()

    def replace(name: str, raw: str) -> str | None:
        if name in wanted:
            found.add(name)
            return wanted[name]
        return None

    tag_text = rewrite_attrs(tag_text, replace)
    # A valueless `lang`/`dir` (rare) is not a value rewrite_attrs can replace: drop it, then add.
    for name in wanted.keys() - found:
        tag_text = re.sub(rf"\s{name}(?=[\s/>])", "", tag_text, flags=re.IGNORECASE)
    added = "".join(f' {name}="{wanted[name]}"' for name in ("lang", "dir") if name not in found)
    return f"{tag_text[:5]}{added}{tag_text[5:]}" if added else tag_text
