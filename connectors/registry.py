"""Connector type name -> implementation, imported on first use (fsspec-style registry).

Registering over an existing name raises; an unknown name raises an error that lists what exists.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from connectors.errors import ConnectorNotFoundError

if TYPE_CHECKING:
    from connectors.base import EspConnector

__all__ = ["ESP_CONNECTORS", "esp_connector_class", "known_esp_types", "register_esp_connector"]

# Kept sorted; values are "module:Class" so a vendor's module loads only when it is used.
ESP_CONNECTORS: dict[str, str] = {
    "braze": "connectors.esp.braze:BrazeConnector",
    "brevo": "connectors.esp.brevo:BrevoConnector",
    "campaign_monitor": "connectors.esp.campaign_monitor:CampaignMonitorConnector",
    "customerio": "connectors.esp.customerio:CustomerIoConnector",
    "hubspot": "connectors.esp.hubspot:HubSpotConnector",
    "iterable": "connectors.esp.iterable:IterableConnector",
    "klaviyo": "connectors.esp.klaviyo:KlaviyoConnector",
    "mailchimp": "connectors.esp.mailchimp:MailchimpConnector",
    "mailjet": "connectors.esp.mailjet:MailjetConnector",
    "marketo": "connectors.esp.marketo:MarketoConnector",
    "salesforce_marketing_cloud": "connectors.esp.sfmc:SalesforceMarketingCloudConnector",
    "sendgrid": "connectors.esp.sendgrid:SendGridConnector",
}


def known_esp_types() -> list[str]:
    return sorted(ESP_CONNECTORS)


def register_esp_connector(name: str, target: str) -> None:
    """Add an implementation ("module:Class") under `name`; an existing name is an error."""
    if name in ESP_CONNECTORS:
        raise ValueError(f"an ESP connector named {name!r} is already registered ({ESP_CONNECTORS[name]})")
    ESP_CONNECTORS[name] = target


def esp_connector_class(name: str) -> type[EspConnector]:
    """The implementation for a connector type, or `ConnectorNotFoundError` naming the known ones."""
    target = ESP_CONNECTORS.get(name)
    if target is None:
        raise ConnectorNotFoundError(f"no ESP connector of type {name!r}; known types: {', '.join(known_esp_types())}")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConnectorNotFoundError(f"the {name} connector could not be loaded: {exc}") from None
    cls: type[EspConnector] = getattr(module, class_name)
    return cls
