"""The workspace bundle: one YAML or JSON document holding a whole workspace."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from emailexport.models import (
    BrandProfile,
    CdnConnector,
    Conditional,
    Connector,
    DynamicContentProfile,
    Email,
    EmailDesignSystem,
    Image,
    LinkTrackingProfile,
    Organization,
    PersonalizationTag,
    Workspace,
)

__all__ = ["WorkspaceBundle"]


class WorkspaceBundle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organization: Organization
    workspace: Workspace
    design_systems: list[EmailDesignSystem] = []
    brand_profiles: list[BrandProfile] = []
    emails: list[Email] = []
    conditionals: list[Conditional] = []
    personalization_tags: list[PersonalizationTag] = []
    dynamic_content_profiles: list[DynamicContentProfile] = []
    link_tracking_profiles: list[LinkTrackingProfile] = []
    images: list[Image] = []
    connectors: list[Connector] = []
    cdn_connectors: list[CdnConnector] = []
