"""Each platform's name for a contact attribute, from a personalization tag's key.

An explicit per-preset name (`PersonalizationTag.attribute_names[preset]`) always wins. Otherwise:

| preset | convention | first_name | tier |
|---|---|---|---|
| braze | standard: `${key}`, custom: `custom_attribute.${key}` | `${first_name}` | `custom_attribute.${tier}` |
| klaviyo | the key as is (standard properties are snake_case, custom ones are case-sensitive) | `first_name` | `tier` |
| customerio | the key as is (used as `customer.<key>`) | `first_name` | `tier` |
| brevo | upper case, first/last name as `FIRSTNAME`/`LASTNAME` (used as `contact.<NAME>`) | `FIRSTNAME` | `TIER` |
| mailchimp | merge tags: `FNAME`, `LNAME`, the rest upper case | `FNAME` | `TIER` |
| ampscript | PascalCase of the words | `FirstName` | `Tier` |
| sendgrid | the key as is | `first_name` | `tier` |
| iterable | camelCase of the words | `firstName` | `tier` |
| hubspot | internal names: lower case, `firstname`/`lastname` without underscore | `firstname` | `tier` |
| marketo | the classic editor's display name: Title Case words (`email` is `Email Address`) | `First Name` | `Tier` |
| campaign_monitor | lower case, no separators; `email_address`: `email`, `name`: `fullname` | `firstname` | `tier` |
| mailjet | lower case, `firstname`/`lastname` without underscore | `firstname` | `tier` |

Marketo needs three spellings of one field; they are derived from the display name (see
`marketo_api_name` and `marketo_designer_name`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

__all__ = ["BRAZE_STANDARD", "KLAVIYO_STANDARD", "NAMING", "marketo_api_name", "marketo_designer_name", "words"]

# Braze's default user attributes, written `${name}`; anything else is a custom attribute.
BRAZE_STANDARD = frozenset({
    "first_name", "last_name", "email_address", "city", "country", "date_of_birth", "gender",
    "language", "phone_number", "time_zone", "user_id", "braze_id", "most_recent_location",
})  # fmt: skip
# Klaviyo's built-in profile properties, usable bare (`{{ first_name }}`, `person.first_name`).
KLAVIYO_STANDARD = frozenset({
    "first_name", "last_name", "email", "phone_number", "organization", "title", "city", "region",
    "country", "zip",
})  # fmt: skip


def words(key: str) -> list[str]:
    """`first_name`, `first-name`, `first.name`, `firstName` -> ['first', 'name']."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    return [w.lower() for w in re.split(r"[\s_.\-]+", spaced) if w]


def _pascal(key: str) -> str:
    return "".join(w.capitalize() for w in words(key))


def _camel(key: str) -> str:
    pascal = _pascal(key)
    return pascal[:1].lower() + pascal[1:]


def _special(table: Mapping[str, str], fallback: Callable[[str], str]) -> Callable[[str], str]:
    """A convention with a few fixed names and a rule for the rest."""
    return lambda key: table.get(key, fallback(key))


def _braze(key: str) -> str:
    return f"${{{key}}}" if key in BRAZE_STANDARD else f"custom_attribute.${{{key}}}"


def _squash(key: str) -> str:
    return "".join(words(key))


NAMING: dict[str, Callable[[str], str]] = {
    "braze": _braze,
    "klaviyo": str,
    "customerio": str,
    "brevo": _special({"first_name": "FIRSTNAME", "last_name": "LASTNAME"}, str.upper),
    "mailchimp": _special({"first_name": "FNAME", "last_name": "LNAME"}, str.upper),
    "ampscript": _pascal,
    "sendgrid": str,
    "iterable": _camel,
    "hubspot": _special({"first_name": "firstname", "last_name": "lastname"}, str.lower),
    "marketo": _special({"email": "Email Address"}, lambda k: " ".join(w.capitalize() for w in words(k))),
    # Campaign Monitor derives a field's tag from its name without spaces ("subscription date" ->
    # [subscriptiondate]); its Name and Email address fields are [fullname] / [firstname] / [lastname] and [email].
    "campaign_monitor": _special({"email_address": "email", "name": "fullname"}, _squash),
    "mailjet": _special({"first_name": "firstname", "last_name": "lastname"}, str.lower),
}


def marketo_api_name(display_name: str) -> str:
    """The Velocity (SOAP API) name of a Marketo field: the display name without spaces.

    `Email Address` is the one standard field whose API name differs (`Email`).
    """
    return "Email" if display_name == "Email Address" else display_name.replace(" ", "")


def marketo_designer_name(display_name: str) -> str:
    """The Email Designer token name: camelCase of the display name (`First Name` -> `firstName`)."""
    api = marketo_api_name(display_name)
    return api[:1].lower() + api[1:]
