"""The 58 locales of the Create Export contract, with language and writing direction.

Direction comes from the Unicode CLDR data that Babel ships, not from a hand-kept list.
"""

from __future__ import annotations

from functools import cache
from typing import Literal, get_args

from babel import Locale as BabelLocale
from babel.core import UnknownLocaleError

LocaleCode = Literal[
    "ar-SA", "bn-BD", "bn-IN", "ca-ES", "cs-CZ", "da-DK", "de-AT", "de-CH", "de-DE", "el-GR",
    "en-AU", "en-CA", "en-GB", "en-IE", "en-IN", "en-NZ", "en-US", "en-ZA", "es-AR", "es-CL",
    "es-CO", "es-ES", "es-MX", "es-US", "fi-FI", "fr-BE", "fr-CA", "fr-CH", "fr-FR", "he-IL",
    "hi-IN", "hu-HU", "id-ID", "it-CH", "it-IT", "ja-JP", "ko-KR", "nl-BE", "nl-NL", "no-NO",
    "pl-PL", "pt-BR", "pt-PT", "ro-RO", "ru-RU", "sk-SK", "sv-SE", "ta-IN", "ta-LK", "th-TH",
    "tr-TR", "zh-CN", "zh-HK",
]  # fmt: skip

LOCALES: tuple[str, ...] = get_args(LocaleCode)

# CLDR has no "no_NO"; Norwegian Bokmål is the locale people mean by it.
_CLDR_ALIASES = {"no": "nb"}


@cache
def _babel(locale: str) -> BabelLocale:
    language, _, territory = locale.partition("-")
    try:
        return BabelLocale(_CLDR_ALIASES.get(language, language), territory)
    except UnknownLocaleError:  # pragma: no cover - every contract locale is in CLDR
        return BabelLocale(_CLDR_ALIASES.get(language, language))


def language_of(locale: str) -> str:
    """`ja-JP` -> `ja`: the value for `<html lang>` is the full tag; this is the language alone."""
    return locale.partition("-")[0]


def direction_of(locale: str) -> Literal["ltr", "rtl"]:
    """`ar-SA` -> `rtl`, from CLDR's character order for the locale."""
    return "rtl" if _babel(locale).character_order == "right-to-left" else "ltr"
