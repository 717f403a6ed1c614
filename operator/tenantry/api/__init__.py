"""The API of tenantry.dev/v1alpha1: pydantic models that are the single source of truth.

The CRDs in crds/ and charts/tenantry/crds/ are generated from these models (`make crds`).
This layer is pure: no kopf, no Kubernetes client, no I/O.
"""

from tenantry.api.branding import BrandingSpec
from tenantry.api.common import GROUP, VERSION, Condition
from tenantry.api.featureset import FeatureSetSpec
from tenantry.api.tenant import TenantSpec, TenantStatus

__all__ = [
    "GROUP",
    "VERSION",
    "BrandingSpec",
    "Condition",
    "FeatureSetSpec",
    "TenantSpec",
    "TenantStatus",
]
