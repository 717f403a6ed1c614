"""Partner isolation on the real API server, with real ServiceAccount tokens (no impersonation).

Tested here, for two partners made by the chart's `partners` value:
- a partner's GitOps ServiceAccount creates Tenants, Brandings and FeatureSets in its own
  namespace, and the operator (itself running as the chart's ServiceAccount) provisions them
- the same account gets 403 on the other partner's namespace (read and write), on the platform's
  plans (write), on cluster-wide writes (namespaces, RBAC, CRDs), on Secrets and on the tenant
  namespaces the operator made
- it can read the platform's FeatureSets and Brandings (what it may reference)
"""

from __future__ import annotations

import pytest

from tests.integration.fixtures import PLATFORM_NAMESPACE, ChartPartner

pytestmark = pytest.mark.integration


def _refused(result, partner: ChartPartner) -> None:
    assert result.returncode != 0, f"expected a refusal, got: {result.stdout}"
    assert "forbidden" in result.stderr.lower(), result.stderr
    # The API server names who was refused: the partner's own ServiceAccount.
    assert f"system:serviceaccount:{partner.namespace}:tenantry-gitops" in result.stderr, result.stderr


def test_partner_account_provisions_its_own_tenants(chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    slug = alpha.slug("iso-own")
    result = alpha.apply_as_partner(alpha.tenant(slug))
    assert result.returncode == 0, result.stderr
    alpha.wait_condition(slug, "True", "Provisioned")
    listed = alpha.kubectl("get", "tenants", "-n", alpha.namespace, "-o", "name")
    assert f"tenant.tenantry.dev/{slug}" in listed.stdout.split()
    branding = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Branding",
                "metadata": {"name": "default", "namespace": alpha.namespace},
                "spec": {"colours": {"primary": "#003366", "secondary": "#FFCC00"}}}
    assert alpha.apply_as_partner(branding).returncode == 0


def test_partner_account_cannot_touch_another_partner(chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, bravo = chart_partners
    _refused(alpha.kubectl("get", "tenants", "-n", bravo.namespace), alpha)
    _refused(alpha.apply_as_partner(alpha.tenant(alpha.slug("iso-intruder"), namespace=bravo.namespace)), alpha)
    _refused(alpha.kubectl("get", "featuresets", "-n", bravo.namespace), alpha)
    _refused(alpha.kubectl("get", "events", "-n", bravo.namespace), alpha)


@pytest.mark.parametrize("args", [
    ("create", "namespace", "stolen-namespace"),
    ("create", "clusterrole", "escalate", "--verb=*", "--resource=*"),
    ("create", "clusterrolebinding", "escalate", "--clusterrole=cluster-admin", "--user=partner"),
    ("delete", "crd", "tenants.tenantry.dev"),
    ("label", "namespace", "default", "tenantry.dev/partner=mine"),
], ids=["namespace", "clusterrole", "clusterrolebinding", "crd", "label-namespace"])
def test_partner_account_has_no_cluster_wide_writes(chart_partners: tuple[ChartPartner, ChartPartner],
                                                    args: tuple[str, ...]) -> None:
    alpha, _ = chart_partners
    _refused(alpha.kubectl(*args), alpha)


def test_partner_account_reads_but_cannot_change_platform_plans(
        chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    plans = alpha.kubectl("get", "featuresets", "-n", PLATFORM_NAMESPACE, "-o", "name")
    assert plans.returncode == 0, plans.stderr
    assert "featureset.tenantry.dev/business" in plans.stdout.split()
    assert alpha.kubectl("get", "branding", "default", "-n", PLATFORM_NAMESPACE).returncode == 0
    _refused(alpha.kubectl("patch", "featureset", "business", "-n", PLATFORM_NAMESPACE, "--type=merge",
                           "-p", '{"spec":{"displayName":"mine"}}'), alpha)
    _refused(alpha.kubectl("get", "secrets", "-n", PLATFORM_NAMESPACE), alpha)


def test_partner_account_cannot_reach_into_tenant_namespaces(chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    slug = alpha.slug("iso-inside")
    assert alpha.apply_as_partner(alpha.tenant(slug)).returncode == 0
    alpha.wait_condition(slug, "True", "Provisioned")
    # The partner manages the Tenant object, not what the operator made of it.
    _refused(alpha.kubectl("delete", "resourcequota", "tenantry-quota", "-n", f"tenant-{slug}"), alpha)
    _refused(alpha.kubectl("delete", "namespace", f"tenant-{slug}"), alpha)
    _refused(alpha.kubectl("patch", "tenant", slug, "-n", alpha.namespace, "--subresource=status", "--type=merge",
                           "-p", '{"status":{"usage":{"activeUsers":1}}}'), alpha)
