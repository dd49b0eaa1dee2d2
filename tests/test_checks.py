"""Pre-export checks (emailexport/checks.py): each one triggered by a crafted email and absent from a
clean one; ESP syntax never mistaken for a problem; the example email clean."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from emailexport.checks import CHECK_CODES, CheckSettings, Finding, run_checks
from tests.test_pdf import EXAMPLE_LOCALES, render_example

CLEAN = """<!DOCTYPE html><html lang="en-US" dir="ltr"><head><meta charset="utf-8"><title>Sale</title>
<style>.hero { background-image: url('https://cdn.example.com/bg.png') }</style></head><body>
<table role="presentation" width="100%"><tr><td>
  <img src="https://cdn.example.com/hero.png" alt="A sunlit patio" width="600">
  <img src="https://cdn.example.com/spacer.gif" alt="" width="1" height="1">
  <p>Hello, spring.</p>
  <a href="https://example.com/sale?utm_source=x">Shop the sale</a>
  <a href="mailto:help@example.com">Write to us</a> <a href="#details">Details</a>
  <table><tr><th>Item</th><th>Price</th></tr><tr><td>Can</td><td>$12</td></tr></table>
</td></tr></table>
<!--[if mso]><table><tr><td><a href="#">Outlook only</a><img src="x.png"></td></tr></table><![endif]-->
</body></html>"""
SUBJECT, PREHEADER = "The Spring Sale is here", "Up to 30% off until April 6"


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def check(html: str = CLEAN, subject: str = SUBJECT, preheader: str = PREHEADER, **kwargs) -> list[Finding]:
    return run_checks(html, subject, preheader, settings=kwargs.pop("settings", CheckSettings()), **kwargs)


def with_body(extra: str) -> str:
    return CLEAN.replace("<p>Hello, spring.</p>", f"<p>Hello, spring.</p>{extra}")


def test_the_clean_email_has_no_findings():
    assert check() == []


# (code, email, subject, preheader, image_sizes, what the message must name)
CASES = [
    ("html_over_102kb", with_body("<p>" + "a" * 103 * 1024 + "</p>"), SUBJECT, PREHEADER, None, "Gmail clips"),
    # 36,000 characters but 108,000 bytes: the limit is on UTF-8 bytes, not characters.
    ("html_over_102kb", with_body("<p>" + "春" * 36_000 + "</p>"), SUBJECT, PREHEADER, None, "KB"),
    ("image_missing_alt", with_body('<img src="https://cdn.example.com/hero2.png">'), SUBJECT, PREHEADER, None,
     "image https://cdn.example.com/hero2.png has no alt attribute"),
    ("link_empty", with_body("<a>Read more</a>"), SUBJECT, PREHEADER, None, 'link "Read more"'),
    ("link_empty", with_body('<a href="  ">Read more</a>'), SUBJECT, PREHEADER, None, "an empty href"),
    ("link_placeholder", with_body('<a href="#">Buy</a>'), SUBJECT, PREHEADER, None, "'#'"),
    ("link_placeholder", with_body('<a href="http://">Buy</a>'), SUBJECT, PREHEADER, None, "'http://'"),
    ("link_placeholder", with_body('<a href="https://">Buy</a>'), SUBJECT, PREHEADER, None, "'https://'"),
    ("link_unsafe_scheme", with_body('<a href=" JavaScript:void(0)">Buy</a>'), SUBJECT, PREHEADER, None,
     "'javascript:'"),
    ("link_unsafe_scheme", with_body('<a href="java&#9;script:alert(4)">Buy</a>'), SUBJECT, PREHEADER, None,
     "'javascript:'"),
    ("link_unsafe_scheme", with_body('<a href="VBScript:msgbox(1)">Buy</a>'), SUBJECT, PREHEADER, None,
     "'vbscript:'"),
    ("link_unreplaced_tag", with_body('<a href="https://example.com/?n=[[tag:first_name]]">Hi</a>'), SUBJECT,
     PREHEADER, None, "[[tag:"),
    ("link_unreplaced_tag", with_body('<a href="https://example.com/?n=%5B%5Btag:first_name%5D%5D">Hi</a>'),
     SUBJECT, PREHEADER, None, "%5B%5Btag:"),
    ("subject_missing", CLEAN, "  ", PREHEADER, None, "subject"),
    ("preheader_missing", CLEAN, SUBJECT, "", None, "preheader"),
    ("image_over_1mb", CLEAN, SUBJECT, PREHEADER, {"https://cdn.example.com/hero.png": 2_500_000},
     "image https://cdn.example.com/hero.png is 2.4 MB"),
    ("image_over_1mb", CLEAN, SUBJECT, PREHEADER, {"https://cdn.example.com/bg.png": 1_048_577},
     "https://cdn.example.com/bg.png"),  # a CSS background counts too
    ("html_missing_lang", CLEAN.replace(' lang="en-US"', ""), SUBJECT, PREHEADER, None, "lang"),
    ("html_missing_lang", CLEAN.replace(' lang="en-US"', ' lang=""'), SUBJECT, PREHEADER, None, "lang"),
    ("table_missing_role", with_body('<table class="cols"><tr><td>a</td><td>b</td></tr></table>'), SUBJECT,
     PREHEADER, None, 'layout table at line 6 (class="cols") has no role="presentation"'),
]


@pytest.mark.parametrize(("code", "html", "subject", "preheader", "sizes", "named"), CASES,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(CASES)])
def test_each_check_finds_its_problem_and_only_it(code, html, subject, preheader, sizes, named):
    findings = check(html, subject, preheader, image_sizes=sizes)
    assert codes(findings) == [code], findings
    assert named in findings[0].message
    assert not findings[0].blocking


def test_every_check_has_a_case():
    # token_in_comment depends on the preset: its cases are in tests/test_checks_comments.py
    assert {case[0] for case in CASES} | {"token_in_comment"} == set(CHECK_CODES)


def test_images_at_or_under_the_limits_are_fine():
    sizes = {"https://cdn.example.com/hero.png": 1024 * 1024}
    assert check(image_sizes=sizes) == []
    exact = with_body("<p>" + "a" * (102 * 1024 - len(CLEAN.encode()) - 7) + "</p>")
    assert len(exact.encode()) == 102 * 1024 and check(exact) == []


ESP_HTML = [
    '<a href="{{ url }}">Open</a>',
    '<a href="{{ url | default: "#" }}">Open</a>',  # quotes inside the token
    '<a href="*|ARCHIVE|*">View online</a>',
    '<a href="%%=RedirectTo(@url)=%%">Open</a>',
    '<a href="%%view_email_url%%">Open</a>',
    '<a href="{{{unsubscribe}}}">Unsubscribe</a>',
    '<a href="https://example.com/stores?city={{ ${city} | default: "all of our stores" }}">Stores</a>',
    '<a {% if vip %}class="vip"{% endif %} href="https://example.com/">VIP</a>',
    # A `>` inside a token in a start tag would end the tag early for a parser: no href, no alt.
    '<a {% if points > 100 %}class="vip"{% endif %} href="https://example.com/">VIP</a>',
    '<img %%[ IF @n > 3 THEN ]%%class="big"%%[ ENDIF ]%% src="https://cdn.example.com/a.png" alt="A">',
    '<table role="presentation"><tr><td>a</td></tr>{% for item in items %}<tr><td>{{ item }}</td></tr>'
    '{% endfor %}</table>',
    '<img src="{{ hero_url }}" alt="{{ hero_alt | default: "Spring" }}">',
    "%%[ IF @tier == 'gold' THEN ]%%<p>Gold</p>%%[ ENDIF ]%%",
]


@pytest.mark.parametrize("fragment", ESP_HTML)
def test_esp_syntax_is_not_a_finding(fragment):
    assert check(with_body(fragment)) == []


def test_a_message_shows_the_esp_token_the_author_wrote():
    findings = check(with_body('<a href="#">{{ first_name }}, shop now</a>'))
    assert findings[0].message == "link \"{{ first_name }}, shop now\" (line 6) has the placeholder href '#'"


def test_blocking_codes_make_findings_errors():
    settings = CheckSettings(blocking={"image_missing_alt"})
    findings = check(with_body('<img src="https://cdn.example.com/a.png"><a href="#">x</a>'), settings=settings)
    assert [(f.code, f.blocking) for f in findings] == [("image_missing_alt", True), ("link_placeholder", False)]
    assert str(findings[0]) == "image https://cdn.example.com/a.png has no alt attribute [image_missing_alt]"


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("EMAILEXPORT_CHECKS_BLOCKING", "image_missing_alt, html_over_102kb")
    monkeypatch.setenv("EMAILEXPORT_CHECKS_IMAGE_MAX_BYTES", "500000")
    settings = CheckSettings()
    assert settings.blocking == {"image_missing_alt", "html_over_102kb"}
    assert settings.image_max_bytes == 500_000 and settings.html_max_bytes == 102 * 1024
    assert codes(check(image_sizes={"https://cdn.example.com/hero.png": 600_000}, settings=settings)) == [
        "image_over_1mb"]


def test_an_unknown_blocking_code_is_refused_with_the_known_ones():
    with pytest.raises(ValidationError, match=r"unknown check code.*image_mising_alt.*known: html_missing_lang"):
        CheckSettings(blocking="image_mising_alt")


def test_empty_html_reports_only_what_it_can():
    assert codes(check("", "", "")) == ["subject_missing", "preheader_missing"]


@pytest.mark.parametrize("preset", [None, "braze", "mailchimp", "ampscript"])
def test_the_example_email_passes_every_check(tmp_path, preset):
    """Every locale of the example, even with every check blocking, has no findings at all
    (so it produces no warnings either)."""
    renders = render_example(tmp_path, EXAMPLE_LOCALES, preset=preset)
    strict = CheckSettings(blocking=set(CHECK_CODES))
    for locale, render in renders.items():
        findings = run_checks(render.html, render.subject, render.preheader, settings=strict)
        assert findings == [], f"{locale}: {[str(f) for f in findings]}"
