"""The desired child objects of a tenant (pure builders, no cluster).

Tested here:
- names, labels and ownership marks are deterministic
- quota = base + perSeat x seats; Suspended and Cancelled tenants may run no pods
- admins bind to the tenant's own Role only; no admins or Cancelled -> binding removed
- Cancelled + Delete removes the namespace; the isolation policy allows the ingress namespace
"""

from __future__ import annotations

from typing import Any

import pytest

from tenantry.api.branding import BrandingSpec
from tenantry.api.featureset import Feature, ResourceAmounts, Resources
from tenantry.api.tenant import TenantSpec
from tenantry.domain import naming
from tenantry.domain.branding import ResolvedBranding
from tenantry.domain.children import PRIORITY_QUOTA, TenantInput, desired_state, quota_hard, ref
from tenantry.domain.config import OperatorConfig
from tenantry.domain.features import Plan

CONFIG = OperatorConfig(platform_domain="platform.test", ingress_namespace_labels={"role": "ingress"})
RESOURCES = Resources(base=ResourceAmounts(cpu="2", memory="4Gi", storage="10Gi", pods=20),
                      per_seat=ResourceAmounts(cpu="20m", memory="32Mi", storage="0", pods=0))
PLAN = Plan(("tenantry-system/business",), {"chat": Feature(), "tables": Feature(limits={"tables": 50})},
            RESOURCES)


def spec(**overrides: Any) -> TenantSpec:
    raw = {"company": "Mustermann GmbH", "contact": {"name": "Max", "email": "max@mustermann.de"},
           "plan": {"featureSet": "business", "seats": 50}, "admins": ["max@mustermann.de"]}
    raw.update(overrides)
    return TenantSpec.model_validate(raw)


def state(plan: Plan | None = PLAN, **overrides: Any):
    return desired_state(TenantInput("mustermann", "partner-acme", "acme", spec(**overrides), plan, None), CONFIG)


def by_kind(desired) -> dict[str, dict[str, Any]]:
    """Manifests by kind, ConfigMaps (and the PriorityClass quota) by name."""
    by_name = ("ConfigMap",)
    return {m["metadata"]["name"] if m["kind"] in by_name or m["metadata"]["name"] == PRIORITY_QUOTA else m["kind"]: m
            for m in desired.apply}


def test_active_tenant_gets_every_object_with_ownership_marks() -> None:
    desired = state()
    kinds = [m["kind"] for m in desired.apply]
    assert kinds == ["Namespace", "ResourceQuota", "ConfigMap", "ConfigMap", "LimitRange", "NetworkPolicy",
                     "ConfigMap", "ResourceQuota", "RoleBinding"]
    for manifest in desired.apply:
        meta = manifest["metadata"]
        assert meta["labels"][naming.TENANT_LABEL] == "mustermann"
        assert meta["labels"][naming.PARTNER_LABEL] == "acme"
        assert meta["annotations"][naming.OWNER_ANNOTATION] == "partner-acme/mustermann"
        if manifest["kind"] != "Namespace":
            assert meta["namespace"] == "tenant-mustermann"
    assert desired.remove == ()
    assert state() == desired  # deterministic


def test_quota_scales_with_seats() -> None:
    assert quota_hard(RESOURCES, 50, True)["requests.cpu"] == "3"
    assert quota_hard(RESOURCES, 51, True)["requests.cpu"] == "3020m"
    assert quota_hard(RESOURCES, 50, True)["requests.memory"] == "5696Mi"
    assert quota_hard(RESOURCES, 64, True)["requests.memory"] == "6Gi"
    assert quota_hard(RESOURCES, 50, True)["limits.cpu"] == "6"
    assert quota_hard(RESOURCES, 50, True)["services.nodeports"] == "0"


@pytest.mark.parametrize("lifecycle", ["Suspended", "Cancelled"])
def test_blocked_tenants_may_run_no_pods(lifecycle: str) -> None:
    quota = by_kind(state(state=lifecycle))["ResourceQuota"]
    assert quota["spec"]["hard"]["pods"] == "0"
    assert by_kind(state(state=lifecycle))["Namespace"]["metadata"]["labels"][naming.STATE_LABEL] == lifecycle


def test_admins_are_bound_to_the_shipped_cluster_role_in_their_namespace_only() -> None:
    binding = by_kind(state(admins=["b@x.de", "a@x.de"]))["RoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "tenantry-tenant-admin"}
    assert binding["metadata"]["namespace"] == "tenant-mustermann"
    assert [s["name"] for s in binding["subjects"]] == ["a@x.de", "b@x.de"]


def test_binding_removed_without_admins() -> None:
    desired = state(admins=[])
    assert "RoleBinding" not in by_kind(desired)
    assert [r.name for r in desired.remove] == [naming.ADMIN_BINDING]


def test_cancelled_tenant_has_no_flags_and_no_admins() -> None:
    desired = state(state="Cancelled")
    assert "RoleBinding" not in by_kind(desired) and naming.FLAGS_CONFIG not in by_kind(desired)
    assert sorted(r.name for r in desired.remove) == sorted([naming.ADMIN_BINDING, naming.FEATURES_CONFIG,
                                                             naming.FLAGS_CONFIG])


def test_unresolved_plan_keeps_the_last_quota_and_flags() -> None:
    desired = state(plan=None)
    assert "ResourceQuota" not in by_kind(desired) and naming.FLAGS_CONFIG not in by_kind(desired)
    assert [m["kind"] for m in desired.ensure] == ["ResourceQuota"]  # only if there is none yet
    assert naming.FLAGS_CONFIG not in [r.name for r in desired.remove]


def test_cancelled_with_delete_policy_removes_the_namespace() -> None:
    desired = state(state="Cancelled", deletionPolicy="Delete")
    assert desired.apply == ()
    assert desired.remove == (ref(desired.namespace),)


def test_cancelled_with_retain_keeps_the_namespace() -> None:
    assert "Namespace" in by_kind(state(state="Cancelled"))


def test_isolation_policy() -> None:
    policy = by_kind(state())["NetworkPolicy"]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    sources = policy["ingress"][0]["from"]
    assert {"podSelector": {}} in sources
    assert {"namespaceSelector": {"matchLabels": {"role": "ingress"}}} in sources


def test_namespace_is_restricted_by_pod_security() -> None:
    labels = by_kind(state())["Namespace"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_tenant_config_names_the_url() -> None:
    data = by_kind(state(domains=["ki.mustermann.de"]))[naming.TENANT_CONFIG]["data"]
    assert data["url"] == "https://mustermann.platform.test"
    assert data["domains"] == "ki.mustermann.de"


def test_the_informers_keep_every_configmap_key_the_operator_writes() -> None:
    # The ConfigMap informer keeps only naming.OPERATOR_CONFIGMAP_KEYS (a tenant admin may pad the
    # operator's ConfigMaps): a key missing there would be rewritten on every pass.
    svg = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><rect width="1" height="1"/></svg>'
    look = ResolvedBranding("tenantry-system/default", BrandingSpec.model_validate(
        {"colours": {"primary": "#1F4E79", "secondary": "#F2A900"}, "logo": {"svg": svg}}))
    desired = desired_state(TenantInput("mustermann", "partner-acme", "acme", spec(domains=["ki.kunde.de"]), PLAN,
                                        look), CONFIG)
    keys = {key for m in desired.apply if m["kind"] == "ConfigMap" for key in m["data"]}
    assert "logo.svg" in keys and "flags.json" in keys
    assert keys <= naming.OPERATOR_CONFIGMAP_KEYS, keys - naming.OPERATOR_CONFIGMAP_KEYS
