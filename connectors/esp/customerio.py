"""Customer.io: each locale becomes email content in Customer.io, through the App API (bearer App API key).

Customer.io's App API (its OpenAPI file https://docs.customer.io/files/journeys-app.json; the operations
used here are kept in tests/connectors/contracts/customerio.json) cannot create a transactional message
or add a language to one, and the name of a message or newsletter cannot be changed after it is created.
What it can do gives three targets (the `message` setting and the export's `campaign_id`,
docs/connectors/customerio.md):

- **a new one-time send per locale** (`message: newsletter`, no campaign_id): `POST /v1/newsletters`
  creates a draft (never with `send_now` or `scheduled_at`) named with the marker, to the recipients of
  `segment_id`; its one content (`content_ids`) is the resource, updated with
  `PUT /v1/newsletters/{id}/contents/{content_id}`. A lost create is looked up by listing
  `GET /v1/newsletters` newest first (`next` / `start` pages) for the exact marked name;
- **a translation of an existing newsletter** (`message: newsletter`, campaign_id = its id): the locale's
  language variant is added with `POST /v1/newsletters/{id}/language` when the newsletter has none, and
  updated otherwise. Customer.io keeps one variant per language (adding a second is a 422), so the
  language identifies the resource: a lost add is found in `GET /v1/newsletters/{id}/contents`, and a
  refused one leads to the variant that exists;
- **a translation of an existing transactional message** (`message: transactional`, campaign_id or
  `message_id`): the locale's language variant is updated (`GET /v1/transactional/{id}/contents`, then
  `PUT /v1/transactional/{id}/content/{content_id}`). Nothing is created, so nothing can be duplicated;
  a language the message does not have is an error that names the ones it has.

A locale's Customer.io language is `per_locale_options.<locale>.language`, else the settings'
`languages[<locale>]`, else the locale itself; "" is the message's default content. Customer.io matches
a person's language attribute exactly (`de` and `de-DE` are different variants).

Resource ids are the path of the content in Customer.io's app, `newsletters/<id>/templates/<content_id>`
or `transactional/<id>/templates/<content_id>`, which `resource_url` puts after
`https://fly.customer.io/env/<workspace>/composer/` (`fly-eu` in the EU region).

Errors come as `{"errors": [{"detail", "status", "code"?, "source"?}]}`, or `{"meta": {"error": ...}}` on
the transactional endpoints; a 429 (10 requests per second per workspace) carries `Retry-After` for the
per-second limit and nothing when a daily quota is spent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Literal, NamedTuple

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, field_validator

from connectors.base import EspConnector, PushItem, PushResult
from connectors.errors import AmbiguousCreateError, ConnectorError, ResourceNotFoundError, TerminalConnectorError
from connectors.http import VendorHttp, error_body
from emailexport.models import Connector

__all__ = ["CustomerIoConnector", "CustomerIoCredentials", "CustomerIoSettings", "customerio_error_message"]

API_HOSTS = {"us": "https://api.customer.io/v1", "eu": "https://api-eu.customer.io/v1"}
APP_HOSTS = {"us": "https://fly.customer.io", "eu": "https://fly-eu.customer.io"}
# Customer.io's language values: a two-letter language, or language and region ("en", "en-US"); "" is
# the message's default content.
LANGUAGE = r"^(?:[a-z]{2}(?:-[A-Za-z]{2,4})?)?$"
NAME_LIMIT = 190  # "The name of the one-time send. Must be 190 characters or less."
_PAGE = 100
_CLOCK_SKEW = 600.0  # seconds: how much older than our first create a listed newsletter may look
_RESOURCE = re.compile(r"^(newsletters|transactional)/(\d+)/templates/(\d+)$")


class CustomerIoSettings(BaseModel):
    """`Connector.settings` of a Customer.io connector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: Literal["us", "eu"] = "us"  # the account's data center
    api_base_url: HttpUrl | None = None  # overrides the region's App API host (a proxy, the tests' fake)
    app_url: HttpUrl | None = None  # overrides the region's web app host for "open in Customer.io" links
    workspace_id: str = Field(default="last", pattern=r"^(last|\d+)$")  # in those links; "last" = last used
    message: Literal["newsletter", "transactional"] = "newsletter"
    # The newsletter or transactional message the locales are translations of, when the export names none
    # in campaign_id (a transactional message must be named one way or the other).
    message_id: int | None = Field(default=None, ge=1)
    segment_id: int | None = Field(default=None, ge=1)  # recipients of a new one-time send (required for one)
    subscription_topic_id: int | None = Field(default=None, ge=1)  # needed when a subscription center is on
    from_id: int | None = Field(default=None, ge=1)  # sender identity ("List sender identities")
    reply_to_id: int | None = Field(default=None, ge=1)
    languages: dict[str, str] = Field(default_factory=dict)  # export locale -> Customer.io language ("" = default)

    @field_validator("languages")
    @classmethod
    def _language_tags(cls, languages: dict[str, str]) -> dict[str, str]:
        wrong = {k: v for k, v in languages.items() if not re.fullmatch(LANGUAGE, v)}
        if wrong:
            raise ValueError(f"not Customer.io languages (like 'de' or 'de-DE', or '' for the default content): "
                             f"{wrong}")
        return languages


class CustomerIoCredentials(BaseModel):
    """The secret the connector's credentials reference resolves to: {"app_api_key": "..."} (an App API key,
    not a Track API key)."""

    model_config = ConfigDict(extra="forbid")

    app_api_key: SecretStr


class _Target(NamedTuple):
    kind: Literal["newsletters", "transactional"]
    message_id: int | None  # None: a new one-time send


def customerio_error_message(response: httpx.Response) -> str:
    """Customer.io's `{"errors": [{"detail", "code"?, "source": {"pointer"}?}]}` or `{"meta": {"error"}}`."""
    body = error_body(response)
    if isinstance(body, dict):
        meta = body.get("meta")
        if isinstance(meta, dict) and meta.get("error"):
            return str(meta["error"])
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(_one_error(e) for e in errors[:3])
    if not response.content:
        return response.reason_phrase or f"HTTP {response.status_code}"
    return str(body)[:300]


def _one_error(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    text = str(error.get("detail") or error.get("message") or error)
    if error.get("code"):
        text = f"{error['code']}: {text}"
    pointer = error.get("source", {}).get("pointer") if isinstance(error.get("source"), dict) else None
    return f"{text} ({pointer})" if pointer else text


class CustomerIoConnector(EspConnector):
    """Customer.io one-time sends and message translations through the App API."""

    type_name = "customerio"
    integration_name = "Customer.io"
    preset = "customerio"
    settings_model = CustomerIoSettings
    credentials_model = CustomerIoCredentials
    # export_field_values key -> what it sets (per locale too, overriding the settings)
    declared_fields: ClassVar[Mapping[str, str]] = MappingProxyType({
        "from_id": "from_id (a sender identity id)",
        "reply_to_id": "reply_to_id (a sender identity id)",
    })
    extra_per_locale_keys = frozenset({*declared_fields, "language"})
    campaign_id_pattern = (r"[1-9]\d*", "a number (the id of the newsletter or transactional message)")
    # Customer.io refuses a second variant of a language (422): the refusal leads to the one that exists.
    rejects_duplicate_marker = True

    settings: CustomerIoSettings
    credentials: CustomerIoCredentials

    def __init__(self, connector: Connector, credentials: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(connector, credentials, **kwargs)
        key = self.credentials.app_api_key.get_secret_value()
        base = str(self.settings.api_base_url).rstrip("/") if self.settings.api_base_url \
            else API_HOSTS[self.settings.region]
        self.api = VendorHttp(
            self.integration_name,
            base,
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            secrets=[key],
            error_message=customerio_error_message,
            transport=self.transport,
            timeout=self.timeout,
            sleep=self.sleep or time.sleep,
        )
        self.http = self.api
        # Per marker, the one-time send a create made when its content could not be read yet: the lookup
        # reads that newsletter instead of trusting a listing to show it.
        self._newsletter_made: dict[str, int] = {}

    # -- the four vendor methods -----------------------------------------------------------

    def create(self, item: PushItem) -> PushResult:
        """A new one-time send; or the locale's variant of the named message (added to a newsletter when
        missing, updated when it exists)."""
        target = self._target(item)
        if target.message_id is None:
            return self._create_newsletter(item)
        language = self._language(item)
        existing = self._variant(target, language)
        if existing is not None:
            return self.update(existing, item)
        if target.kind == "transactional":
            raise TerminalConnectorError(
                f"Customer.io transactional message {target.message_id} has no {language!r} content, and the App "
                f"API cannot add a language: add it in Customer.io, or map locale {item.locale} to one the message "
                f"has ({self._languages(target)}) with settings.languages or per_locale_options.{item.locale}.language")
        self.api.request("POST", f"/newsletters/{target.message_id}/language", creates=True,
                         json={"language": language, **self._content(item)})
        # The answer holds the newsletter's content_ids, not which one is new: the language says it.
        made = self._variant(target, language)
        if made is None:
            raise AmbiguousCreateError(f"Customer.io: newsletter {target.message_id} does not list the {language!r} "
                                       "variant it answered it had added")
        # The sender ids are set on the variant; adding a language does not take them.
        return self.update(made, item) if self._senders(item, reply_to=True) else self._result(made, item, target.kind)

    def update(self, resource_id: str, item: PushItem) -> PushResult:
        """Set the content the export owns (subject, HTML, preheader, plain text where Customer.io keeps one,
        sender ids); a content deleted in Customer.io answers 404 -> ResourceNotFoundError."""
        kind, message_id, content_id = self._parse(resource_id)
        if kind == "newsletters":
            body = {**self._content(item), **self._senders(item, reply_to=True)}
            self.api.request("PUT", f"/newsletters/{message_id}/contents/{content_id}", json=body)
        else:
            body = {"subject": item.subject, "body": item.html, "preheader_text": item.preheader,
                    **self._senders(item, reply_to=True)}
            self.api.request("PUT", f"/transactional/{message_id}/content/{content_id}", json=body)
        return self._result(resource_id, item, kind)

    def find_by_marker(self, item: PushItem) -> str | None:
        """A new one-time send: the newsletter named with the marker. A translation: the variant of the
        locale's language (unique per message in Customer.io). A transactional message: nothing is ever
        created, so there is nothing to find."""
        if self.settings.message == "transactional":
            return None
        target = self._target(item)
        if target.message_id is not None:
            return self._variant(target, self._language(item))
        made = self._newsletter_made.get(item.marker)
        if made is not None:  # created here, its answer read but its content not: read that newsletter
            return self._default_content(made, None)
        name = _newsletter_name(item)
        since = self.first_sent(item)
        for newsletter in self._newsletters(since):
            if newsletter.get("name") == name:
                return self._default_content(int(newsletter["id"]), newsletter.get("content_ids"))
        return None

    def resource_url(self, resource_id: str) -> str | None:
        match = _RESOURCE.match(resource_id)
        if match is None:
            return None
        app = str(self.settings.app_url).rstrip("/") if self.settings.app_url else APP_HOSTS[self.settings.region]
        return f"{app}/env/{self.settings.workspace_id}/composer/{resource_id}"

    # -- one-time sends --------------------------------------------------------------------

    def _create_newsletter(self, item: PushItem) -> PushResult:
        if self.settings.segment_id is None:
            raise TerminalConnectorError(
                "Customer.io needs recipients for a new one-time send: set settings.segment_id, or name an "
                "existing newsletter in campaign_id (the locales then become its translations)")
        body: dict[str, Any] = {
            "type": "email",
            "name": _newsletter_name(item),
            "recipients": {"and": [{"or": [{"segment": {"id": self.settings.segment_id}}]}]},
            **self._content(item),
            **self._senders(item, reply_to=False),  # the create takes from_id only
        }
        if self.settings.subscription_topic_id is not None:
            body["subscription_topic_id"] = self.settings.subscription_topic_id
        response = self.api.request("POST", "/newsletters", json=body, creates=True)
        raw_id = self.created_id(response, "newsletter", "id")
        if not raw_id.isdigit():
            raise AmbiguousCreateError(f"Customer.io: POST /newsletters answered an id that is not a number "
                                       f"({raw_id!r}); the create may have happened")
        newsletter_id = int(raw_id)
        self._newsletter_made[item.marker] = newsletter_id
        try:
            resource = self._default_content(newsletter_id, response.json()["newsletter"].get("content_ids"))
        except ConnectorError as exc:
            resource, reason = None, str(exc)
        else:
            reason = "it lists no content"
        if resource is None:
            # Made, but its content is not known: the shared push looks the marker up (and finds it).
            raise AmbiguousCreateError(f"Customer.io: newsletter {newsletter_id} was created but its content could "
                                       f"not be read ({reason})")
        if "reply_to_id" in self._senders(item, reply_to=True):
            try:
                return self.update(resource, item)  # reply_to_id is set on the content, not at creation
            except ConnectorError:
                self._made[item.marker] = resource  # a retry finishes this one instead of making another
                raise
        return self._result(resource, item, "newsletters")

    def _newsletters(self, since: float | None) -> Iterator[dict[str, Any]]:
        """Newsletters newest first; stops at ones made well before `since` (our first create)."""
        start: str | None = None
        while True:
            params: dict[str, Any] = {"limit": _PAGE, "sort": "desc"}
            if start:
                params["start"] = start
            page = self.api.request("GET", "/newsletters", params=params).json()
            newsletters = page.get("newsletters") or []
            yield from newsletters
            start = page.get("next") or None
            older = since is not None and bool(newsletters) and all(
                isinstance(n.get("created"), int) and n["created"] < since - _CLOCK_SKEW for n in newsletters)
            if not start or not newsletters or older:
                return

    def _default_content(self, newsletter_id: int, content_ids: Any) -> str | None:
        """The content of a new one-time send: its only content id, else its default-language variant."""
        if isinstance(content_ids, list) and len(content_ids) == 1 and str(content_ids[0]).isdigit():
            return f"newsletters/{newsletter_id}/templates/{content_ids[0]}"
        return self._variant(_Target("newsletters", newsletter_id), "")

    # -- variants of a named message -------------------------------------------------------

    def _variants(self, target: _Target) -> list[dict[str, Any]]:
        path = f"/newsletters/{target.message_id}/contents" if target.kind == "newsletters" \
            else f"/transactional/{target.message_id}/contents"
        contents = self.api.request("GET", path).json().get("contents")
        return [c for c in contents or [] if isinstance(c, dict)]

    def _variant(self, target: _Target, language: str) -> str | None:
        found = [c["id"] for c in self._variants(target)
                 if (c.get("language") or "") == language and c.get("id") is not None]
        if len(found) > 1:  # A/B test groups: one variant per language and group; which one is not ours to pick
            raise TerminalConnectorError(
                f"Customer.io {target.kind} {target.message_id} has {len(found)} {language!r} variants (A/B test "
                "groups); export to a message without test groups")
        return f"{target.kind}/{target.message_id}/templates/{found[0]}" if found else None

    def _languages(self, target: _Target) -> str:
        return ", ".join(repr(c.get("language") or "") for c in self._variants(target)) or "none"

    # -- mapping ---------------------------------------------------------------------------

    def _target(self, item: PushItem) -> _Target:
        named = item.campaign_id or (str(self.settings.message_id) if self.settings.message_id else None)
        if named is not None and not re.fullmatch(r"[1-9]\d*", named):
            raise TerminalConnectorError(f"Customer.io: campaign_id must be the id of a newsletter or transactional "
                                         f"message (a number), not {named!r}")
        if self.settings.message == "transactional":
            if named is None:
                raise TerminalConnectorError(
                    "Customer.io transactional messages cannot be created through the App API: name the message "
                    "in campaign_id or settings.message_id, and its language variants receive the locales")
            return _Target("transactional", int(named))
        return _Target("newsletters", int(named) if named else None)

    def _language(self, item: PushItem) -> str:
        own = item.options.get("language")
        language = str(own) if own is not None else self.settings.languages.get(item.locale, item.locale)
        if not re.fullmatch(LANGUAGE, language):
            raise TerminalConnectorError(
                f"Customer.io: {language!r} is not a Customer.io language (like 'de' or 'de-DE'); map locale "
                f"{item.locale} with settings.languages or per_locale_options.{item.locale}.language")
        return language

    def _content(self, item: PushItem) -> dict[str, Any]:
        body: dict[str, Any] = {"subject": item.subject, "body": item.html, "preheader_text": item.preheader}
        if item.plaintext:  # omitted, Customer.io generates the plain text from the HTML
            body["body_plain"] = item.plaintext
        return body

    def _senders(self, item: PushItem, *, reply_to: bool) -> dict[str, int]:
        found: dict[str, int] = {}
        keys = ("from_id", "reply_to_id") if reply_to else ("from_id",)
        for key in keys:
            value = item.options.get(key) or item.fields.get(key) or getattr(self.settings, key)
            if value in (None, ""):
                continue
            if not str(value).isdigit():
                raise TerminalConnectorError(f"Customer.io: {key} must be a sender identity id (a number), "
                                             f"not {value!r}")
            found[key] = int(value)
        return found

    def _parse(self, resource_id: str) -> tuple[str, int, int]:
        match = _RESOURCE.match(resource_id)
        if match is None:
            raise ResourceNotFoundError(f"Customer.io: {resource_id!r} is not the path of a Customer.io content")
        return match.group(1), int(match.group(2)), int(match.group(3))

    def _result(self, resource_id: str, item: PushItem, kind: str) -> PushResult:
        result = PushResult(resource_id, self.resource_url(resource_id))
        if item.folder_id:
            result = result.warn(f"Customer.io messages have no folders; folder_id {item.folder_id} was not applied")
        if kind == "transactional" and item.plaintext:
            result = result.warn("Customer.io's App API has no plain-text field for transactional messages; "
                                 "the exported plain text was not sent (Customer.io generates one from the HTML)")
        return result


def _newsletter_name(item: PushItem) -> str:
    """The marked name within Customer.io's 190 characters, the marker kept whole at the end."""
    if len(item.name) <= NAME_LIMIT:
        return item.name
    suffix = f" [{item.marker}]"
    if item.marker and item.name.endswith(suffix):
        return item.name[: NAME_LIMIT - len(suffix)].rstrip() + suffix
    return item.name[:NAME_LIMIT]
