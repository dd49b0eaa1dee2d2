"""`previews/index.html`: every locale side by side, with a desktop / mobile / dark switch.

One self-contained file that works when opened straight from the unzipped export: no script (the
switch is three radio buttons and CSS `:checked` rules, so it works with JavaScript off too), no
external asset, images by relative path (`<locale>/<view>.png`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from emailexport.previews.browser import VIEWS

__all__ = ["GalleryLocale", "gallery_html"]


@dataclass
class GalleryLocale:
    locale: str
    direction: str
    subject: str
    views: dict[str, str]  # view -> relative PNG path, for the views that rendered
    variants: list[tuple[str, str]] = field(default_factory=list)  # (label, relative PNG path)
    problems: list[str] = field(default_factory=list)


_CSS = """
:root { color-scheme: light dark; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
body { margin: 0; background: #f3f4f6; color: #111827; }
header { position: sticky; top: 0; z-index: 1; display: flex; gap: 16px; align-items: center; padding: 12px 20px;
         background: #111827; color: #f9fafb; }
header h1 { font-size: 16px; margin: 0 12px 0 0; font-weight: 600; }
.switch { display: flex; gap: 4px; }
body > input[type=radio] { position: absolute; opacity: 0; pointer-events: none; }
.switch label { padding: 6px 14px; border-radius: 6px; cursor: pointer; background: #374151; }
#view-desktop:checked ~ header label[for=view-desktop],
#view-mobile:checked ~ header label[for=view-mobile],
#view-dark:checked ~ header label[for=view-dark] { background: #2563eb; }
main { display: flex; gap: 20px; padding: 20px; overflow-x: auto; align-items: flex-start; }
figure { margin: 0; flex: none; background: #fff; border-radius: 8px; padding: 12px;
         box-shadow: 0 1px 3px rgba(0,0,0,.15); }
figcaption { margin-bottom: 8px; max-width: 520px; }
figcaption b { font-size: 15px; }
figcaption span { display: block; color: #4b5563; overflow-wrap: anywhere; }
.shot { display: none; border: 1px solid #e5e7eb; }
.shot.desktop { width: 512px; } .shot.dark { width: 512px; } .shot.mobile { width: 260px; }
#view-desktop:checked ~ main .shot.desktop,
#view-mobile:checked ~ main .shot.mobile,
#view-dark:checked ~ main .shot.dark { display: block; }
.missing { color: #b91c1c; max-width: 512px; }
details { margin-top: 10px; max-width: 512px; }
details img { width: 512px; border: 1px solid #e5e7eb; margin-top: 6px; }
"""


def gallery_html(title: str, locales: Sequence[GalleryLocale]) -> str:
    """The gallery page for `locales`, desktop view shown first."""
    radios = "".join(
        f'<input type="radio" name="view" id="view-{v}" value="{v}"{" checked" if v == "desktop" else ""}>'
        for v in VIEWS
    )
    labels = "".join(f'<label for="view-{v}">{v.capitalize()}</label>' for v in VIEWS)
    figures = []
    for loc in locales:
        parts = [
            f'<figure id="locale-{escape(loc.locale)}" data-locale="{escape(loc.locale)}">',
            f'<figcaption dir="{escape(loc.direction)}"><b>{escape(loc.locale)}</b>'
            f"<span>{escape(loc.subject)}</span></figcaption>",
        ]
        for view in VIEWS:
            path = loc.views.get(view)
            if path:
                parts.append(f'<img class="shot {view}" data-view="{view}" src="{escape(path)}" '
                             f'alt="{escape(loc.locale)} {view}">')
            else:
                parts.append(f'<p class="shot {view} missing">No {view} preview for this locale.</p>')
        if loc.variants:
            parts.append(f"<details><summary>{len(loc.variants)} variant(s)</summary>")
            for label, path in loc.variants:
                parts.append(f'<p>{escape(label)}</p><img src="{escape(path)}" alt="{escape(label)}" loading="lazy">')
            parts.append("</details>")
        for problem in loc.problems:
            parts.append(f'<p class="missing">{escape(problem)}</p>')
        parts.append("</figure>")
        figures.append("".join(parts))
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style></head><body>{radios}"
        f'<header><h1>{escape(title)}</h1><div class="switch">{labels}</div></header>'
        f"<main>{''.join(figures)}</main></body></html>\n"
    )
