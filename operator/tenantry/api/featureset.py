"""The FeatureSet: a plan, i.e. which features a tenant gets and what resources it may use."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from tenantry.api.common import ApiModel, Limits, Quantity, ResourceName
from tenantry.api.features import KNOWN_FEATURES, known_features


class Feature(ApiModel):
    """One feature of a plan and its included limits."""

    enabled: bool = Field(default=True, description="Whether the feature is on in this plan.")
    limits: Limits = Field(
        default_factory=dict, description="Included limits by name, e.g. {tables: 100}."
    )


class ResourceAmounts(ApiModel):
    """Compute resources, as Kubernetes quantities."""

    cpu: Quantity = Field(default="0", description="CPU requests, e.g. 2 or 500m.")
    memory: Quantity = Field(default="0", description="Memory requests, e.g. 4Gi.")
    storage: Quantity = Field(default="0", description="Persistent volume storage requests, e.g. 20Gi.")
    pods: int = Field(default=0, ge=0, le=100_000, description="Number of pods.")


class Resources(ApiModel):
    """The namespace quota of a tenant on this plan: base + perSeat x seats."""

    base: ResourceAmounts = Field(
        default_factory=ResourceAmounts, description="Resources every tenant gets regardless of seats."
    )
    per_seat: ResourceAmounts = Field(
        default_factory=ResourceAmounts, description="Resources added for each licensed seat."
    )


class FeatureSetSpec(ApiModel):
    """Desired plan: features with included limits, and the tenant's resource quota."""

    display_name: str | None = Field(default=None, max_length=100, description="Name shown to people.")
    extends: ResourceName | None = Field(
        default=None, description="Another FeatureSet whose features this one inherits and overrides."
    )
    features: Annotated[dict[str, Feature], BeforeValidator(known_features)] = Field(
        default_factory=dict, max_length=len(KNOWN_FEATURES),
        description="Features by name (chat, files, tables, meetings, ...)."
    )
    resources: Resources | None = Field(
        default=None, description="Namespace quota of tenants on this plan; else inherited, else the "
        "platform default."
    )
