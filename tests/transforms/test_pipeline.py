"""The whole stage on a realistic email: each rule checked on the final output."""

from __future__ import annotations

from html import unescape

import lxml.html
import minify_html
import pytest

from emailexport.transforms import LinkTracking, TransformOptions, html_to_plaintext, marker, transform_html

TOKENS = [
    "{% if ${tier} == 'gold' %}",  # 0
    "{% endif %}",  # 1
    "{{ ${first_name} | default: 'there' }}",  # 2
    """{{ ${nick} | default: "l'ami" }}""",  # 3: spaces and both quote types
    "*|IF:TIER=gold|*",  # 4
    "*|END:IF|*",  # 5
    "{{ ${unsubscribe_url} }}",  # 6
    '{{ ${first_name} | default: "friend" }}',  # 7: double quotes, written in a double-quoted attribute
]
MSO_BUTTON = (
    '<!--[if mso]><v:roundrect xmlns:v="urn:schemas-microsoft-com:vml" href="https://shop.example.com/sale" '
    'style="height:40px;v-text-anchor:middle;width:200px;" arcsize="10%" fillcolor="#1a73e8">'
    '<v:fill type="tile" src="https://cdn.example.com/bg.png" /><w:anchorlock/><center>Shop</center>'
    "</v:roundrect><![endif]-->"
)
MSO_OPEN, MSO_CLOSE = "<!--[if !mso]><!-->", "<!--<![endif]-->"
EMBED = "<style data-embed>[data-ogsc] .title { color: #ffffff !important; } u + .body .x { color: inherit; }</style>"
EMAIL = f"""<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:v="urn:schemas-microsoft-com:vml" lang="en">
<head>
<meta charset="utf-8">
<title>Hello {marker(2)}</title>
<style>
.title {{ color: #111111; font-size: 24px; }}
.btn {{ background-color: #1a73e8; }}
@media (max-width:600px) {{ .title {{ font-size: 18px !important; }} }}
@media (prefers-color-scheme: dark) {{ .title {{ color: #eeeeee !important; }} }}
</style>
{EMBED}
<!--[if mso]><style>.title {{ font-family: Arial, sans-serif; }}</style><![endif]-->
</head>
<body class="body">
<table id="layout" role="presentation" width="100%">
<tr id="r0"><td class="title">Hi {marker(2)},</td></tr>
{marker(0)}
<tr id="r1"><td>Gold members only</td></tr>
{marker(1)}
<tr id="r2"><td>{marker(4)}<img src="https://cdn.example.com/hero.png" alt="Hi {marker(3)}">{marker(5)}</td></tr>
{{{{#each products}}}}
<tr id="r3"><td title='{marker(3)}' style="color: {marker(2)}" data-greeting="{marker(7)}">{{{{this.name}}}}</td></tr>
{{{{/each}}}}
<tr id="r4"><td>
{MSO_BUTTON}
{MSO_OPEN}<a class="btn" href="https://shop.example.com/sale">Shop</a>{MSO_CLOSE}
<a href="https://x.com/?u={marker(2)}#top">Profile</a>
<a href="{marker(6)}">Unsubscribe</a>
<a href="mailto:help@example.com">Mail</a>
</td></tr>
</table>
</body>
</html>
"""
IMAGES = {"https://cdn.example.com/hero.png": "images/hero.png", "https://cdn.example.com/bg.png": "images/bg.png"}
TRACKING = LinkTracking({"utm_source": "newsletter", "utm_medium": "email"})


def _run(minify: bool, **options: object) -> str:
    result = transform_html(EMAIL, TOKENS, TransformOptions(lang="ar-SA", direction="rtl", minify=minify, **options))  # type: ignore[arg-type]
    assert result.warnings == ()
    return result.html


def _gaps(html: str) -> list[str]:
    """Text found before the first row and after each row of the layout table, stripped."""
    table = lxml.html.document_fromstring(html).get_element_by_id("layout")
    body = table.find("tbody")
    rows = body.findall("tr")
    return [(body.text or "").strip()] + [(row.tail or "").strip() for row in rows]


@pytest.mark.parametrize("minify", [False, True])
def test_tokens_between_rows_stay_between_the_same_rows(minify: bool) -> None:
    assert _gaps(_run(minify)) == ["", TOKENS[0], TOKENS[1], "{{#each products}}", "{{/each}}", ""]


@pytest.mark.parametrize("minify", [False, True])
def test_tokens_in_attributes_and_title_restored_exactly(minify: bool) -> None:
    html = _run(minify)
    document = lxml.html.document_fromstring(html)
    assert document.find(".//title").text == f"Hello {TOKENS[2]}"
    assert f'alt="Hi {TOKENS[3]}"' in html  # both quote types: no delimiter helps, the source's is kept
    cell = document.get_element_by_id("r3").find("td")
    assert TOKENS[2] in cell.get("style")
    assert cell.get("data-greeting") == TOKENS[7]  # switched to single quotes, so it parses
    assert f"""title='{TOKENS[3]}'""" in html  # the author's quote kept: the token holds `"`
    assert f'href="{TOKENS[6]}"' in html


@pytest.mark.parametrize("minify", [False, True])
def test_outlook_comments_and_embedded_style_byte_identical(minify: bool) -> None:
    html = _run(minify)
    for kept in (
        MSO_BUTTON,
        MSO_OPEN,
        MSO_CLOSE,
        EMBED,
        "<!--[if mso]><style>.title { font-family: Arial, sans-serif; }</style><![endif]-->",
    ):
        assert kept in html


@pytest.mark.parametrize("minify", [False, True])
def test_styles_inlined_and_media_rules_kept(minify: bool) -> None:
    html = _run(minify)
    head = html[: html.index("</head>")]
    assert "@media (max-width:600px) { .title { font-size: 18px !important; } }" in head
    assert "@media (prefers-color-scheme: dark) { .title { color: #eeeeee !important; } }" in head
    title_cell = lxml.html.document_fromstring(html).get_element_by_id("r0").find("td")
    assert "color: #111111" in title_cell.get("style")
    assert "font-size: 24px" in title_cell.get("style")


def test_doctype_and_lang_dir() -> None:
    html = _run(True)
    assert html.startswith('<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"')
    root = lxml.html.document_fromstring(html)
    assert (root.get("lang"), root.get("dir")) == ("ar-SA", "rtl")
    assert html.count("lang=") == 1


@pytest.mark.parametrize("minify", [False, True])
def test_link_tracking(minify: bool) -> None:
    html = _run(minify, link_tracking=TRACKING)
    added = "utm_source=newsletter&amp;utm_medium=email" if not minify else "utm_source=newsletter&utm_medium=email"
    assert f'href="https://shop.example.com/sale?{added}"' in html  # the VML button, inside the mso comment
    assert unescape(html).count(f"https://shop.example.com/sale?{unescape(added)}") == 2  # ... and its <a> twin
    assert f"https://x.com/?u={TOKENS[2]}&" in html
    assert "#top" in html.split(f"https://x.com/?u={TOKENS[2]}", 1)[1].split(">", 1)[0]
    assert f'href="{TOKENS[6]}"' in html
    assert "mailto:help@example.com" in html.replace('"', "")
    assert "mailto:help@example.com?" not in html


def test_skip_and_per_url_parameters_through_the_pipeline() -> None:
    tracking = LinkTracking(
        {"utm_source": "newsletter"},
        skip_urls=frozenset({f"https://x.com/?u={marker(2)}#top"}),
        per_url_parameters={"https://shop.example.com/sale": {"utm_content": "button"}},
    )
    html = _run(False, link_tracking=tracking)
    assert f'href="https://x.com/?u={TOKENS[2]}#top"' in html
    assert html.count("https://shop.example.com/sale?utm_source=newsletter&amp;utm_content=button") == 2


def test_image_urls_rewritten_everywhere() -> None:
    html = _run(True, image_urls=IMAGES)
    assert "cdn.example.com" not in html
    assert '<v:fill type="tile" src="images/bg.png" />' in html  # inside the Outlook comment
    assert "src=images/hero.png" in html


def test_minify_failure_degrades_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object, **_kwargs: object) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(minify_html, "minify", broken)
    result = transform_html(EMAIL, TOKENS, TransformOptions(lang="en", direction="ltr", minify=True))
    assert result.warnings == ("minify failed: boom; output left unminified",)
    assert MSO_BUTTON in result.html
    assert TOKENS[0] in result.html


def test_minify_drops_plain_comments_but_not_outlook_ones() -> None:
    html = f"<html><body><!-- build 42 --><p>x</p>{MSO_BUTTON}</body></html>"
    result = transform_html(html, [], TransformOptions(lang="en", direction="ltr", minify=True))
    assert "build 42" not in result.html
    assert MSO_BUTTON in result.html
    kept = transform_html(html, [], TransformOptions(lang="en", direction="ltr"))
    assert "<!-- build 42 -->" in kept.html


def test_result_reads_as_plaintext() -> None:
    text = html_to_plaintext(EMAIL, TOKENS)
    assert text.startswith(f"Hi {TOKENS[2]},\n{TOKENS[0]}\nGold members only\n{TOKENS[1]}")
    assert f"Unsubscribe ({TOKENS[6]})" in text
    assert "Shop (https://shop.example.com/sale)" in text
    assert "Arial" not in text and "[data-ogsc]" not in text


def test_token_in_declaration_position_keeps_other_elements_inlined() -> None:
    html = (
        '<html><head><style>.c{padding:1px}</style></head><body><p class="c" style="{% if vip %}color:red;{% endif %}">'
        f"x</p><table><tr><td {marker(0)} class=c>y</td></tr></table></body></html>"
    )
    result = transform_html(html, ["{% if x %}"], TransformOptions(lang="en", direction="ltr", minify=True))
    assert '<p style="{% if vip %}color:red;{% endif %}" class=c>x</p>' in result.html
    assert "{% if x %}" in result.html.split("<td", 1)[1].split(">", 1)[0]
    assert 'style="padding: 1px;"' in result.html
    assert len(result.warnings) == 2  # the token among attributes, the element left un-inlined
