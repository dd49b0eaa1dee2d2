"""The ESP connector interface (dlt-style destinations: one module per vendor, one registry).

A connector turns one rendered locale (`PushItem`) into one resource in the vendor (a template or
an email asset) and says where to open it (`PushResult`). Vendors implement `create`, `update`,
`find_by_name` (when the vendor can list resources by name) and `resource_url`; the shared
`push` adds what every vendor needs the same way: update-or-recreate for
`update_previous_export`, and recovery from a create whose answer was lost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ValidationError

from connectors.errors import AmbiguousCreateError, ResourceNotFoundError, TerminalConnectorError
from connectors.http import VendorHttp
from emailexport.models import Connector

__all__ = ["EspConnector", "PushItem", "PushResult"]

# Options of `per_locale_options.<locale>` every connector understands.
COMMON_PER_LOCALE_KEYS = frozenset({"resource_name", "folder_id", "campaign_id", "subject", "preheader"})


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
    # False where the vendor offers no way to find a template by name (documented per vendor)
    supports_lookup_by_name: ClassVar[bool] = True

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

    # -- what each vendor implements ------------------------------------------------------

    @abstractmethod
    def create(self, item: PushItem) -> PushResult:
        """Create the resource; raise `AmbiguousCreateError` when the answer was lost."""

    @abstractmethod
    def update(self, resource_id: str, item: PushItem) -> PushResult:
        """Replace the resource's content; raise `ResourceNotFoundError` when it is gone."""

    def find_by_name(self, name: str) -> str | None:
        """The id of the resource called `name`, or None (only when `supports_lookup_by_name`)."""
        raise NotImplementedError

    @abstractmethod
    def resource_url(self, resource_id: str) -> str | None:
        """The resource's page in the vendor's app (`open_in_integration_url`)."""

    def close(self) -> None:
        """Release connections."""
        if self.http is not None:
            self.http.close()

    # -- shared behaviour ------------------------------------------------------------------

    @classmethod
    def check_options(cls, export_field_values: Mapping[str, Any],
                      per_locale_options: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
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
        return errors

    def push(self, item: PushItem, previous_resource_id: str | None = None) -> PushResult:
        """Update the previous export's resource (recreating it if it was deleted), or create one."""
        if previous_resource_id:
            try:
                return self.update(previous_resource_id, item)
            except ResourceNotFoundError:
                created = self._create(item)
                return created.warn(f"{self.integration_name} resource {previous_resource_id} from the previous "
                                    f"export no longer exists; created {created.resource_id} instead")
        return self._create(item)

    def _create(self, item: PushItem) -> PushResult:
        try:
            return self.create(item)
        except AmbiguousCreateError:
            if not self.supports_lookup_by_name:
                raise  # documented: this vendor cannot tell; the task retry may create a second one
            existing = self.find_by_name(item.name)
            if existing is None:
                return self.create(item)
            return self.update(existing, item).warn(
                f"{self.integration_name} did not answer the create in time; found the resource it had made "
                f"({existing}) by name and updated it instead of creating a second one")


def _first_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
