"""Tenant provisioning against the real API server, controller manager and operator.

Tested here:
- create -> Ready (kubectl wait) with every child object, labels, status and an Event
- seats and plan changes -> quota updated
- suspend and reactivate; cancel with deletionPolicy Delete
- deletion with Retain (namespace kept, labelled orphaned, re-adopted) and with Delete
- a missing FeatureSet; a Tenant outside a partner namespace
- global slug uniqueness across partners, without revealing the holder
- a namespace tenantry does not own is never touched
"""

from __future__ import annotations

import pytest

from tests.integration.fixtures import ClusterHandle, Partner, namespace_of, wait_for

pytestmark = pytest.mark.integration


def _quota(cluster: ClusterHandle, ns: str) -> dict[str, str]:
    import json
    out = cluster.kubectl("get", "resourcequota", "tenantry-quota", "-n", ns, "-o", "json").stdout
    return json.loads(out)["spec"]["hard"]


def test_create_reaches_ready_with_every_child(partner: Partner, cluster: ClusterHandle) -> None:
    slug = partner.slug("mustermann")
    partner.apply(partner.tenant(slug, industry="Maschinenbau"))
    result = cluster.kubectl("wait", "--for=condition=Ready", f"tenant/{slug}", "-n", partner.namespace,
                             "--timeout=60s")
    assert "condition met" in result.stdout
    body = partner.get(slug)
    assert body is not None
    status = body["status"]
    assert status["url"] == f"https://{slug}.platform.test"
    assert status["partner"] == f"acme-{partner.suffix}"
    assert status["namespace"] == f"tenant-{slug}"
    assert status["observedGeneration"] == body["metadata"]["generation"]
    types = {c["type"]: c["status"] for c in status["conditions"]}
    assert types == {"Ready": "True", "NamespaceReady": "True", "FeaturesReady": "True", "BrandingReady": "True",
                     "BrandingContrast": "True", "DNSReady": "True", "DomainsVerified": "True",
                     "UsageValid": "True", "ManagedObjectsInSync": "True", "PlanResourcesAccepted": "True",
                     "QuotaWithinCeiling": "True",
                     "WelcomeSent": "False"}  # the session's operator has no SMTP relay (SmtpNotConfigured)
    assert [item["name"] for item in status["onboarding"] if not item["done"]] == ["WelcomeSent", "FirstUsageReported"]

    ns = namespace_of(cluster, f"tenant-{slug}")
    assert ns is not None
    labels = ns["metadata"]["labels"]
    assert labels["tenantry.dev/tenant"] == slug
    assert labels["tenantry.dev/partner"] == f"acme-{partner.suffix}"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ns["metadata"]["annotations"]["tenantry.dev/owner"] == f"{partner.namespace}/{slug}"

    names = cluster.kubectl("get", "resourcequota,limitrange,networkpolicy,rolebinding,configmap",
                            "-n", f"tenant-{slug}", "-l", "app.kubernetes.io/managed-by=tenantry",
                            "-o", "name").stdout.split()
    assert sorted(names) == sorted([
        "resourcequota/tenantry-quota", "resourcequota/tenantry-priority-classes", "limitrange/tenantry-limits",
        "networkpolicy.networking.k8s.io/tenantry-isolation",
        "rolebinding.rbac.authorization.k8s.io/tenantry-tenant-admins", "configmap/tenantry-tenant",
        "configmap/tenantry-features", "configmap/tenantry-flags", "configmap/tenantry-branding",
    ])
    # business plan: 2 cpu + 20m x 50 seats = 3 cpu; 4Gi + 32Mi x 50 = 5696Mi; 20 pods
    assert _quota(cluster, f"tenant-{slug}")["requests.cpu"] == "3"
    assert _quota(cluster, f"tenant-{slug}")["pods"] == "20"
    subjects = cluster.kubectl("get", "rolebinding", "tenantry-tenant-admins", "-n", f"tenant-{slug}",
                               "-o", "jsonpath={.subjects[*].name}").stdout
    assert subjects == "max@mustermann.de"
    can = cluster.kubectl("auth", "can-i", "create", "deployments", "-n", f"tenant-{slug}",
                          "--as", "max@mustermann.de", check=False).stdout.strip()
    cannot = cluster.kubectl("auth", "can-i", "delete", "networkpolicies", "-n", f"tenant-{slug}",
                             "--as", "max@mustermann.de", check=False).stdout.strip()
    elsewhere = cluster.kubectl("auth", "can-i", "create", "deployments", "-n", partner.namespace,
                                "--as", "max@mustermann.de", check=False).stdout.strip()
    assert (can, cannot, elsewhere) == ("yes", "no", "no")
    events = wait_for(lambda: cluster.kubectl(
        "get", "events", "-n", partner.namespace, "--field-selector", f"involvedObject.name={slug}",
        "-o", "jsonpath={.items[*].reason}").stdout, what="a Provisioned event")
    assert "Provisioned" in events


def test_seats_and_plan_changes_update_the_quota(partner: Partner, cluster: ClusterHandle) -> None:
    slug = partner.slug("seats")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug)
    partner.apply(partner.tenant(slug, plan={"featureSet": "business", "seats": 100}))
    wait_for(lambda: _quota(cluster, f"tenant-{slug}")["requests.cpu"] == "4", what="cpu for 100 seats")
    partner.apply(partner.tenant(slug, plan={"featureSet": "starter", "seats": 100}))
    # starter: 1 cpu + 10m x 100 = 2 cpu; 10 pods
    wait_for(lambda: _quota(cluster, f"tenant-{slug}") ["pods"] == "10", what="starter pods")
    assert _quota(cluster, f"tenant-{slug}")["requests.cpu"] == "2"
    partner.wait_condition(slug)


def test_suspend_blocks_workloads_and_reactivation_restores_them(partner: Partner, cluster: ClusterHandle) -> None:
    slug = partner.slug("suspend")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug, reason="Provisioned")
    partner.apply(partner.tenant(slug, state="Suspended"))
    partner.wait_condition(slug, reason="Suspended")
    assert _quota(cluster, f"tenant-{slug}")["pods"] == "0"
    body = partner.get(slug)
    assert body and "url" not in body["status"]
    pod = cluster.kubectl("run", "probe", "-n", f"tenant-{slug}", "--image=busybox", "--restart=Never",
                          check=False)
    assert pod.returncode != 0 and "exceeded quota" in pod.stderr
    partner.apply(partner.tenant(slug, state="Active"))
    partner.wait_condition(slug, reason="Provisioned")
    assert _quota(cluster, f"tenant-{slug}")["pods"] == "20"


def test_cancel_with_delete_policy_removes_the_namespace(partner: Partner, cluster: ClusterHandle) -> None:
    slug = partner.slug("cancel")
    partner.apply(partner.tenant(slug, deletionPolicy="Delete"))
    partner.wait_condition(slug)
    partner.apply(partner.tenant(slug, deletionPolicy="Delete", state="Cancelled"))
    partner.wait_condition(slug, reason="Cancelled")
    wait_for(lambda: (namespace_of(cluster, f"tenant-{slug}") or {}).get("metadata", {}).get(
        "deletionTimestamp") or namespace_of(cluster, f"tenant-{slug}") is None, what="namespace deletion")


def test_cancel_with_retain_keeps_data_but_revokes_admins(partner: Partner, cluster: ClusterHandle) -> None:
    slug = partner.slug("cancelretain")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug)
    partner.apply(partner.tenant(slug, state="Cancelled"))
    partner.wait_condition(slug, reason="Cancelled")
    assert namespace_of(cluster, f"tenant-{slug}") is not None
    bindings = cluster.kubectl("get", "rolebindings", "-n", f"tenant-{slug}", "-o", "name").stdout
    assert "tenantry-tenant-admins" not in bindings


def test_delete_with_retain_keeps_the_namespace_and_readopts_it(partner: Partner, cluster: ClusterHandle) -> None:
    slug = partner.slug("retain")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug)
    cluster.kubectl("create", "configmap", "customer-data", "-n", f"tenant-{slug}", "--from-literal=k=v")
    partner.delete(slug)
    ns = namespace_of(cluster, f"tenant-{slug}")
    assert ns is not None and not ns["metadata"].get("deletionTimestamp")
    assert ns["metadata"]["labels"]["tenantry.dev/orphaned"] == "true"
    assert "customer-data" in cluster.kubectl("get", "cm", "-n", f"tenant-{slug}", "-o", "name").stdout
    # The same partner applies the tenant again (e.g. a git revert): the data is re-adopted.
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug)
    wait_for(lambda: "tenantry.dev/orphaned" not in (namespace_of(cluster, f"tenant-{slug}") or {})
             .get("metadata", {}).get("labels", {}), what="orphaned label removed")


def test_delete_with_delete_policy_removes_everything(partner: Partner, cluster: ClusterHandle) -> None:
    slug = partner.slug("gone")
    partner.apply(partner.tenant(slug, deletionPolicy="Delete"))
    partner.wait_condition(slug)
    partner.delete(slug)
    assert partner.get(slug) is None
    wait_for(lambda: namespace_of(cluster, f"tenant-{slug}") is None, timeout=90,
             what="tenant namespace fully deleted by the namespace controller")


def test_missing_feature_set_is_reported(partner: Partner) -> None:
    slug = partner.slug("noplan")
    partner.apply(partner.tenant(slug, plan={"featureSet": "platinum", "seats": 5}))
    cond = partner.wait_condition(slug, status="False", reason="FeatureSetNotFound", kind="FeaturesReady")
    assert "platinum" in cond["message"] and "spec.plan.featureSet" in cond["message"]
    partner.wait_condition(slug, status="False", reason="FeatureSetNotFound")


def test_tenant_outside_a_partner_namespace_is_not_provisioned(partner: Partner, cluster: ClusterHandle) -> None:
    plain = f"plain-{partner.suffix}"
    cluster.kubectl("create", "namespace", plain)
    try:
        slug = partner.slug("stray")
        partner.apply(partner.tenant(slug, namespace=plain))
        cond = partner.wait_condition(slug, status="False", reason="NotInPartnerNamespace", namespace=plain)
        assert "tenantry.dev/partner" in cond["message"]
        assert namespace_of(cluster, f"tenant-{slug}") is None
        partner.delete(slug, namespace=plain)
    finally:
        cluster.kubectl("delete", "namespace", plain, "--wait=false")


def test_slug_conflict_first_tenant_wins(partner: Partner, other_partner: Partner, cluster: ClusterHandle) -> None:
    slug = partner.slug("contested")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug)
    other_partner.apply(other_partner.tenant(slug, company="Someone Else AG"))
    cond = other_partner.wait_condition(slug, status="False", reason="SlugConflict")
    assert partner.namespace not in cond["message"] and "acme" not in cond["message"]
    assert "metadata.name" in cond["message"]
    ns = namespace_of(cluster, f"tenant-{slug}")
    assert ns and ns["metadata"]["annotations"]["tenantry.dev/owner"] == f"{partner.namespace}/{slug}"
    config = cluster.kubectl("get", "cm", "tenantry-tenant", "-n", f"tenant-{slug}",
                             "-o", "jsonpath={.data.company}").stdout
    assert config == "Mustermann GmbH"
    # Deleting the loser (even with deletionPolicy Delete) never touches the winner's namespace.
    other_partner.apply(other_partner.tenant(slug, deletionPolicy="Delete"))
    other_partner.delete(slug)
    assert namespace_of(cluster, f"tenant-{slug}") is not None
    partner.wait_condition(slug)


def test_foreign_namespace_is_left_alone(partner: Partner, cluster: ClusterHandle) -> None:
    slug = partner.slug("foreign")
    cluster.kubectl("create", "namespace", f"tenant-{slug}")
    partner.apply(partner.tenant(slug))
    cond = partner.wait_condition(slug, status="False", reason="NamespaceNotOwned")
    assert f"tenant-{slug}" in cond["message"]
    ns = namespace_of(cluster, f"tenant-{slug}")
    assert ns and "tenantry.dev/tenant" not in (ns["metadata"].get("labels") or {})
    assert cluster.kubectl("get", "resourcequota", "-n", f"tenant-{slug}", "-o", "name").stdout == ""
