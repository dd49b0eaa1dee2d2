"""The ESP connector interface (dlt-style destinations: one module per vendor, one registry).

A connector turns one rendered locale (`PushItem`) into one resource in the vendor (a template or
an email asset) and says where to open it (`PushResult`). Vendors implement `create`, `update`,
`find_by_marker` and `resource_url`; the shared `push` adds what every vendor needs the same
way: update-or-recreate for `update_previous_export`, and the guarantee that a locale never
ends up with two resources, whatever answers are lost (docs/connectors/README.md, "Duplicates").

How a duplicate is made impossible:

- every create carries the item's `marker`, unique to (export, locale) and derived again by
  every attempt of that export's push (so a Prefect task retry or a flow retry carries the same
  one); the vendor keeps it (in the resource name for every vendor, and as SFMC's customerKey)
  and `find_by_marker` finds exactly the resources carrying it, never another export's;
- a create whose answer is lost or unusable (timeout after sending, dropped connection, 5xx, a
  2xx without the new id) is "unresolved": before anything is created again, the marker is
  looked up, waiting `lookup_waits` between looks (their sum is the vendor's documented bound
  for a new resource to be listed). Found: that resource is adopted (updated, not made again).
  Listed nowhere within the bound: the create did not happen, and it is sent again (at most
  `max_creates` times per push). A lookup that itself fails leaves the create unresolved and
  fails the locale with "may exist: <marker>"; nothing is created while it is unresolved;
- a retried push looks before it creates when a create of its marker is unresolved here, or when
  it is `retrying=True` and this instance did not see the earlier attempts (a new process); a
  create an earlier attempt completed is updated, not repeated.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ValidationError

from connectors.errors import (
    AmbiguousCreateError,
    ConnectorError,
    ResourceNotFoundError,
    TerminalConnectorError,
    VendorValidationError,
)
from connectors.http import VendorHttp
from emailexport.models import Connector

__all__ = ["EspConnector", "PushItem", "PushResult", "make_marker", "marked_name"]

# Options of `per_locale_options.<locale>` every connector understands.
COMMON_PER_LOCALE_KEYS = frozenset({"resource_name", "folder_id", "campaign_id", "subject", "preheader"})
MARKER_PREFIX = "ee-"


def make_marker(*parts: object) -> str:
    """A short marker unique to `parts` (e.g. workspace, export id, created_at, locale): "ee-" and
    12 base32 characters (60 bits of SHA-256), so it fits every vendor's name and SFMC's customerKey."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return MARKER_PREFIX + base64.b32encode(digest).decode()[:12].lower()


def marked_name(name: str, marker: str) -> str:
    """The resource name the vendor keeps: the user's name, then the marker in brackets."""
    suffix = f" [{marker}]"
    return name if name.endswith(suffix) else name + suffix


@dataclass(frozen=True)
class PushItem:
    """One locale to push: what the vendor's template holds, with per-locale options applied."""

    locale: str
    name: str
    subject: str
    preheader: str
    html: str
    plaintext: str
    folder_id: str | None = None
    campaign_id: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)  # export_field_values (declared by the connector)
    options: Mapping[str, Any] = field(default_factory=dict)  # this locale's per_locale_options
    # Unique to (export, locale): set by tasks.push.build_push_item; `push` makes one if it is empty.
    marker: str = ""


@dataclass(frozen=True)
class PushResult:
    """The vendor's id of the resource, its page in the vendor's app, and what to tell the user."""

    resource_id: str
    resource_url: str | None = None
    warnings: tuple[str, ...] = ()

    def warn(self, message: str) -> PushResult:
        return replace(self, warnings=(*self.warnings, message))


class EspConnector(ABC):
    """Base of every ESP connector. Subclasses set the class attributes and the four methods."""

    type_name: ClassVar[str]  # the registry name, e.g. "brevo"
    integration_name: ClassVar[str]  # the display name in the record, e.g. "Brevo"
    preset: ClassVar[str]  # the dialect preset that fits this ESP
    settings_model: ClassVar[type[BaseModel]]  # Connector.settings, validated
    credentials_model: ClassVar[type[BaseModel]]  # the resolved secret, validated
    # export_field_values this connector accepts: name -> what it sets in the vendor
    declared_fields: ClassVar[Mapping[str, str]] = {}
    # per_locale_options keys beyond COMMON_PER_LOCALE_KEYS
    extra_per_locale_keys: ClassVar[frozenset[str]] = frozenset()
    # Seconds to wait before each look for the marker after an unanswered create; the sum is the
    # bound within which the vendor lists a resource it committed (documented per vendor).
    lookup_waits: ClassVar[tuple[float, ...]] = (0.0, 1.0, 2.0, 4.0)
    # Creates sent by one push at most, each only after the previous one was resolved.
    max_creates: ClassVar[int] = 3
    # What a folder_id / campaign_id must look like for this vendor: (regex, what it is), or None
    # when the vendor takes any string (or does not use the option: the push then warns).
    # True where the vendor keeps the marker unique and rejects a second create carrying it (SFMC's
    # customerKey): such a rejection means an earlier create happened, so the marker is looked up.
    rejects_duplicate_marker: ClassVar[bool] = False
    folder_id_pattern: ClassVar[tuple[str, str] | None] = None
    campaign_id_pattern: ClassVar[tuple[str, str] | None] = None

    def __init__(
        self,
        connector: Connector,
        credentials: Mapping[str, str],
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.connector = connector
        try:
            self.settings = self.settings_model.model_validate(connector.settings)
        except ValidationError as exc:
            raise TerminalConnectorError(f"{self.integration_name} connector {connector.id}: settings: "
                                         f"{_first_errors(exc)}") from None
        try:
            self.credentials = self.credentials_model.model_validate(dict(credentials))
        except ValidationError as exc:
            # Only the field names, never the values: they are secrets.
            missing = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            raise TerminalConnectorError(f"{self.integration_name} connector {connector.id}: credentials "
                                         f"are missing or invalid: {missing}") from None
        self.transport = transport
        self.timeout = timeout
        self.sleep = sleep
        self.http: VendorHttp | None = None  # set by the vendor's constructor
        # Per marker, for the pushes (and task retries) this instance serves:
        self._made: dict[str, str] = {}  # the resource a create of this marker made
        self._unresolved: set[str] = set()  # a create was sent and not answered, and not found yet
        self._first_sent: dict[str, float] = {}  # when the first create of the marker was sent (epoch s)
        self._marker_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    # -- what each vendor implements ------------------------------------------------------

    @abstractmethod
    def create(self, item: PushItem) -> PushResult:
        """Create the resource carrying `item.marker`; raise `AmbiguousCreateError` when the answer
        was lost or holds no usable id (`created_id` helps)."""

    @abstractmethod
    def update(self, resource_id: str, item: PushItem) -> PushResult:
        """Replace every field the export owns (clearing the ones it no longer has);
        raise `ResourceNotFoundError` when the resource is gone."""

    @abstractmethod
    def find_by_marker(self, item: PushItem) -> str | None:
        """The id of the resource carrying `item.marker` (created by this export's locale), or None.
        Must never return a resource of another export, whatever its name."""

    @abstractmethod
    def resource_url(self, resource_id: str) -> str | None:
        """The resource's page in the vendor's app (`open_in_integration_url`)."""

    def close(self) -> None:
        """Release connections."""
        if self.http is not None:
            self.http.close()

    # -- helpers for vendors -------------------------------------------------------------------

    def created_id(self, response: httpx.Response, *keys: str | int) -> str:
        """The new resource's id at `keys` in a create's 2xx JSON body; a body without it (not JSON,
        another shape, an empty id) is treated like a lost answer: `AmbiguousCreateError`."""
        node: Any
        try:
            node = response.json()
            for key in keys:
                node = node[key]
        except (ValueError, KeyError, IndexError, TypeError):
            node = None
        if node is None or isinstance(node, dict | list) or str(node) == "":
            raise AmbiguousCreateError(
                f"{self.integration_name}: {response.request.method} {response.request.url.path} answered "
                f"{response.status_code} without the new resource's id ({response.text[:120]!r}); the create "
                "may have happened")
        return str(node)

    def first_sent(self, item: PushItem) -> float | None:
        """When this instance first sent a create for the item's marker (epoch seconds), or None:
        vendors narrow a lookup to resources made since (minus clock skew)."""
        return self._first_sent.get(item.marker)

    # -- shared behaviour ------------------------------------------------------------------

    @classmethod
    def check_options(cls, export_field_values: Mapping[str, Any],
                      per_locale_options: Mapping[str, Mapping[str, Any]], *,
                      folder_id: Any = None, campaign_id: Any = None) -> dict[str, list[str]]:
        """Problems with the connector-specific options, by request field path (empty if fine)."""
        errors: dict[str, list[str]] = {}
        known = ", ".join(sorted(cls.declared_fields)) or "none"
        for key in export_field_values:
            if key not in cls.declared_fields:
                errors.setdefault(f"options.export_field_values.{key}", []).append(
                    f"{cls.integration_name} has no field {key!r} (fields: {known})")
        allowed = COMMON_PER_LOCALE_KEYS | cls.extra_per_locale_keys
        for locale, options in per_locale_options.items():
            for key in options:
                if key not in allowed:
                    errors.setdefault(f"options.per_locale_options.{locale}", []).append(
                        f"{key!r} is not a per-locale option of {cls.integration_name} "
                        f"(options: {', '.join(sorted(allowed))})")
        ids = [("options.folder_id", "folder_id", folder_id), ("options.campaign_id", "campaign_id", campaign_id)]
        for locale, options in per_locale_options.items():
            ids += [(f"options.per_locale_options.{locale}.{key}", key, options.get(key))
                    for key in ("folder_id", "campaign_id")]
        for path, key, value in ids:
            rule = cls.folder_id_pattern if key == "folder_id" else cls.campaign_id_pattern
            if value is None or value == "" or rule is None:
                continue
            pattern, what = rule
            if not re.fullmatch(pattern, str(value)):
                errors.setdefault(path, []).append(f"{cls.integration_name} takes {what} as {key}, not {value!r}")
        return errors

    def push(self, item: PushItem, previous_resource_id: str | None = None, *,
             retrying: bool = False) -> PushResult:
        """Update the previous export's resource (recreating it if it was deleted), or create one.

        `retrying`: an earlier attempt of this item's push may have sent a create (a task or flow
        retry): look for its marker before creating anything.
        """
        if not item.marker:
            item = replace(item, marker=make_marker("adhoc", time.time_ns(), item.locale, item.name))
        item = replace(item, name=marked_name(item.name, item.marker))
        with self._lock_for(item.marker):
            if previous_resource_id:
                try:
                    return self.update(previous_resource_id, item)
                except ResourceNotFoundError:
                    created = self._create(item, retrying)
                    return created.warn(f"{self.integration_name} resource {previous_resource_id} from the previous "
                                        f"export no longer exists; created {created.resource_id} instead")
            return self._create(item, retrying)

    def _lock_for(self, marker: str) -> threading.Lock:
        with self._locks_lock:
            return self._marker_locks.setdefault(marker, threading.Lock())

    def _create(self, item: PushItem, retrying: bool) -> PushResult:
        marker = item.marker
        made = self._made.get(marker)
        if made is not None:  # an earlier attempt made it, then a later step failed: finish that one
            try:
                return self._adopt(made, item, "an earlier attempt of this push created")
            except ResourceNotFoundError:
                self._made.pop(marker, None)  # deleted in the vendor since: make it again
        # Look first when a create of this marker is unresolved here, or when this is a retry and this
        # instance does not know what earlier attempts sent (a new process). A retry of an attempt this
        # instance saw end without a pending create (a 429, a connect error) does not need to.
        if marker in self._unresolved or (retrying and marker not in self._first_sent):
            found = self._look(item)
            if found is not None:
                return self._adopt(found, item, "an earlier attempt sent a create without a usable answer; found")
        sends = 0
        while True:
            self._first_sent.setdefault(marker, time.time())
            sends += 1
            try:
                result = self.create(item)
            except AmbiguousCreateError as exc:
                self._unresolved.add(marker)
                found = self._look(item, cause=exc)
                if found is not None:
                    return self._adopt(found, item, "did not answer a create usably; found")
                if sends >= self.max_creates:
                    raise AmbiguousCreateError(
                        f"{self.integration_name}: {sends} creates got no usable answer ({exc}) and none was listed "
                        f"within {sum(self.lookup_waits):g} s; may exist: {marker} (a retry looks for it before "
                        "creating)", status_code=exc.status_code) from None
                self._unresolved.discard(marker)  # listed nowhere within the bound: it did not happen
                continue
            except VendorValidationError:
                # A vendor that keeps the marker unique (SFMC's customerKey) rejects a second create of
                # it: the first one happened after all. Anything else: the rejection stands.
                found = self._look_once(item) if self.rejects_duplicate_marker else None
                if found is None:
                    raise
                return self._adopt(found, item, "rejected a second create of this marker; found")
            self._made[marker] = result.resource_id
            self._unresolved.discard(marker)
            return result

    def _adopt(self, resource_id: str, item: PushItem, how: str) -> PushResult:
        result = self.update(resource_id, item)
        self._made[item.marker] = resource_id
        self._unresolved.discard(item.marker)
        return result.warn(f"{self.integration_name} {how} the resource it had made ({resource_id}, marked "
                           f"{item.marker}) and updated it instead of creating a second one")

    def _look_once(self, item: PushItem) -> str | None:
        try:
            return self.find_by_marker(item)
        except ConnectorError:
            return None

    def _look(self, item: PushItem, cause: Exception | None = None) -> str | None:
        """Look for the marker, waiting `lookup_waits` before each look; a failing lookup leaves the
        create unresolved and fails the push (transient: a retry looks again)."""
        sleep = self.sleep or time.sleep
        for wait in self.lookup_waits:
            if wait:
                sleep(wait)
            try:
                found = self.find_by_marker(item)
            except (ConnectorError, ValueError, KeyError, TypeError, AttributeError) as exc:  # odd listings too
                self._unresolved.add(item.marker)
                reason = str(exc) if isinstance(exc, ConnectorError) else f"an unexpected listing: {type(exc).__name__}"
                message = (f"{self.integration_name}: could not look for the resource an unanswered create may have "
                           f"made ({reason}); may exist: {item.marker}")
                status = exc.status_code if isinstance(exc, ConnectorError) else None
                if isinstance(exc, TerminalConnectorError):
                    raise TerminalConnectorError(message, status_code=status) from None
                raise AmbiguousCreateError(message, status_code=status) from None
            if found is not None:
                return found
        return None


def _first_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
