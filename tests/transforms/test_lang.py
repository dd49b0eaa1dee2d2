"""Step 7: `<html lang dir>` set on the existing tag or on a new one."""

from __future__ import annotations

import pytest

from emailexport.transforms.lang import set_lang_dir


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<html><body>x</body></html>", '<html lang="ar-SA" dir="rtl"><body>x</body></html>'),
        (
            '<html xmlns:v="urn:schemas-microsoft-com:vml" lang="en" dir=ltr>',
            '<html xmlns:v="urn:schemas-microsoft-com:vml" lang="ar-SA" dir="rtl">',
        ),
        ("<HTML lang='fr'>", "<HTML dir=\"rtl\" lang='ar-SA'>"),
        ("<html dir lang>", '<html lang="ar-SA" dir="rtl">'),
        ("<!doctype html><p>x</p>", '<!doctype html><html lang="ar-SA" dir="rtl"><p>x</p></html>'),
        (
            "<!-- top --><!--[if mso]><![endif]--><html>",
            '<!-- top --><!--[if mso]><![endif]--><html lang="ar-SA" dir="rtl">',
        ),
    ],
)
def test_lang_and_dir_set(html: str, expected: str) -> None:
    assert set_lang_dir(html, "ar-SA", "rtl") == expected


def test_lang_value_is_escaped() -> None:
    assert set_lang_dir("<html>", 'x"y', "ltr") == '<html lang="x&quot;y" dir="ltr">'
