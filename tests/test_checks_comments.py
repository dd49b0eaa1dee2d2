"""The `token_in_comment` check (issue 10): tokens inside HTML comments, for ESPs that skip them."""

from __future__ import annotations

import pytest

from emailexport.checks import COMMENT_BLIND_ESPS, CheckSettings, run_checks
from emailexport.dialects import PRESETS
from tests.test_checks import CLEAN, PREHEADER, SUBJECT, with_body

VML = (
    '<!--[if mso]><v:roundrect href="https://example.com/?u={{ ${user_id} }}" arcsize="10%">'
    "<center>Go</center></v:roundrect><![endif]-->"
)


def _check(html: str, preset: str | None, **kwargs) -> list:
    return run_checks(html, SUBJECT, PREHEADER, settings=kwargs.pop("settings", CheckSettings()), preset=preset)


def test_token_in_an_outlook_conditional_warns_for_braze_naming_the_esp_and_line():
    findings = _check(with_body(VML), "braze")
    assert [f.code for f in findings] == ["token_in_comment"]
    message = findings[0].message
    assert "{{ ${user_id} }}" in message and "Braze" in message and "Outlook" in message
    assert "(line 6)" in message
    assert not findings[0].blocking


def test_token_in_a_plain_comment_warns_too():
    findings = _check(with_body("<!-- debug {{ ${user_id} }} {{ ${user_id} }} -->"), "braze")
    assert [f.code for f in findings] == ["token_in_comment"]
    assert "an HTML comment" in findings[0].message and "not filled in" in findings[0].message
    assert findings[0].message.count("{{ ${user_id} }}") == 1  # each token named once


@pytest.mark.parametrize("preset", sorted(set(PRESETS) - set(COMMENT_BLIND_ESPS)))
def test_presets_whose_esp_reads_comments_do_not_warn(preset):
    assert _check(with_body(VML), preset) == []


def test_without_a_preset_nothing_is_checked():
    assert _check(with_body(VML), None) == []


@pytest.mark.parametrize(
    "fragment",
    [
        '<a href="{{ ${url} }}">x</a>',  # a token outside comments
        "<!--[if !mso]><!--><p>{{ ${first_name} }}</p><!--<![endif]-->",  # revealed content is not a comment
        "<![if !mso]><p>{{ ${first_name} }}</p><![endif]>",
        "<!-- no token here -->",
        "<!---->{{ ${first_name} }}",
    ],
)
def test_tokens_outside_comments_are_fine(fragment):
    assert _check(with_body(fragment), "braze") == []


def test_can_be_made_blocking():
    findings = _check(with_body(VML), "braze", settings=CheckSettings(blocking={"token_in_comment"}))
    assert findings[0].blocking


def test_clean_email_is_clean_for_braze():
    assert _check(CLEAN, "braze") == []
