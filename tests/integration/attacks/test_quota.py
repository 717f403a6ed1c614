"""Quota attacks by a partner (its own GitOps ServiceAccount token) and a tenant admin (impersonated).

Attacks covered, each against the real API server and the real operator (no webhook running, i.e.
the webhook is down):
- a partner asks for 1,000,000 seats to multiply the per-seat resources: the quota stops at the
  platform's ceiling and the status says it was clamped and how to get more
- a partner writes its own FeatureSet with huge spec.resources (refused only by the webhook, which
  is down): the quota stays what the platform plan gives, and the status names the FeatureSet
- a tenant admin asks for one container or one volume larger than a node: the LimitRange max refuses it
- a tenant admin floods the namespace with Secrets: the API server refuses the 11th of 10
- a partner creates more tenants than the platform allows, and tries to take the place of a
  provisioned tenant with a name that sorts first: the extra tenants are not provisioned, the
  provisioned ones keep their place, the oldest waiting tenant gets a freed place; another partner
  is not affected; a waiting tenant at the highest price adds nothing to the partner's revenue or
  commission in the metrics
- a partner creates and deletes tenants under deletionPolicy Retain to pile up kept namespaces:
  each kept namespace holds its place under the cap until the platform team deletes it
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tenantry.domain import naming
from tests.integration.fixtures import ChartPartner, ClusterHandle, OperatorProcess, namespace_of, settle, wait_for

ADMIN = "max@mustermann.de"  # the tenants' admin (Partner.tenant's default)


@pytest.fixture(scope="module")
def partners(chart_partners: tuple[ChartPartner, ChartPartner]) -> tuple[ChartPartner, ChartPartner]:
    return chart_partners


def _get(cluster: ClusterHandle, kind: str, name: str, namespace: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)


def _apply(partner: ChartPartner, manifest: dict[str, Any]) -> None:
    result = partner.apply_as_partner(manifest)
    assert result.returncode == 0, result.stderr


def _provisioned(partner: ChartPartner, slug: str) -> str:
    partner.wait_condition(slug, "True", timeout=90)
    return f"tenant-{slug}"


def test_a_million_seats_get_the_ceiling(cluster: ClusterHandle, partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = partners
    slug = alpha.slug("million")
    _apply(alpha, alpha.tenant(slug, plan={"featureSet": "business", "seats": 1_000_000}))
    ns = _provisioned(alpha, slug)
    hard = _get(cluster, "resourcequota", naming.QUOTA, ns)["spec"]["hard"]
    # business: 2 cores + 20m per seat would be 20,002 cores; the platform's ceiling is 128.
    assert (hard["requests.cpu"], hard["limits.cpu"], hard["requests.memory"]) == ("128", "256", "512Gi")
    assert hard["pods"] == "20"  # below the ceiling: unchanged
    condition = alpha.wait_condition(slug, "False", "ClampedToCeiling", kind="QuotaWithinCeiling")
    assert "cpu 20002 -> 128" in condition["message"] and "operator.tenantQuotaCeiling" in condition["message"]
    assert alpha.condition(slug)["status"] == "True"  # served, with the ceiling's quota


def test_a_partner_feature_set_cannot_raise_the_quota(cluster: ClusterHandle,
                                                       partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = partners
    huge = {"base": {"cpu": "100000", "memory": "1000Ti", "storage": "1000Ti", "pods": 100000},
            "perSeat": {"cpu": "100", "memory": "100Gi"}}
    _apply(alpha, {"apiVersion": "tenantry.dev/v1alpha1", "kind": "FeatureSet",
                   "metadata": {"name": "gold", "namespace": alpha.namespace},
                   "spec": {"extends": "business", "features": {"tables": {"limits": {"tables": 500}}},
                            "resources": huge}})  # accepted: only the (absent) webhook would refuse it
    slug = alpha.slug("gold")
    _apply(alpha, alpha.tenant(slug, plan={"featureSet": "gold", "seats": 50}))
    ns = _provisioned(alpha, slug)
    hard = _get(cluster, "resourcequota", naming.QUOTA, ns)["spec"]["hard"]
    # What the platform's business plan gives for 50 seats: 2 + 50 x 20m cores, 4Gi + 50 x 32Mi, 20 pods.
    assert (hard["requests.cpu"], hard["requests.memory"], hard["pods"]) == ("3", "5696Mi", "20")
    condition = alpha.wait_condition(slug, "False", "PartnerResourcesIgnored", kind="PlanResourcesAccepted")
    assert f"FeatureSet {alpha.namespace}/gold" in condition["message"] and "spec.resources" in condition["message"]
    # The partner's features still apply: only the resources were ignored.
    flags = _get(cluster, "configmap", naming.FEATURES_CONFIG, ns)["data"]["features.json"]
    assert json.loads(flags)["features"]["tables"]["limits"] == {"tables": 500}


def test_the_limit_range_refuses_a_container_or_volume_above_the_max(
        cluster: ClusterHandle, partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = partners
    slug = alpha.slug("limits")
    _apply(alpha, alpha.tenant(slug))
    ns = _provisioned(alpha, slug)
    limits = _get(cluster, "limitrange", naming.LIMITS, ns)["spec"]["limits"]
    assert {item["type"]: item.get("max") for item in limits} == {
        "Container": {"cpu": "8", "memory": "32Gi"}, "PersistentVolumeClaim": {"storage": "1Ti"}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "greedy", "namespace": ns},
           "spec": {"containers": [{"name": "c", "image": "busybox",
                                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                                  "limits": {"cpu": "16", "memory": "1Gi"}}}]}}
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "huge", "namespace": ns},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Ti"}}}}
    for manifest, words in ((pod, "maximum cpu usage per Container is 8"),
                            (claim, "maximum storage usage per PersistentVolumeClaim is 1Ti")):
        refused = cluster.kubectl(f"--as={ADMIN}", "create", "-f", "-", input=json.dumps(manifest), check=False)
        assert refused.returncode != 0 and words in refused.stderr, refused.stderr
    # Nothing was created.
    assert cluster.kubectl("get", "pods,pvc", "-n", ns, "-o", "name").stdout.strip() == ""


@pytest.fixture
def strict_operator(operator: OperatorProcess) -> Iterator[OperatorProcess]:
    """The operator with 10 Secrets per tenant and 2 tenants per partner, restored afterwards; no
    resync within the test, so a freed place must be noticed when the tenant goes."""
    operator.restart_with({"TENANTRY_OBJECT_COUNT_QUOTA": "secrets=10", "TENANTRY_MAX_TENANTS_PER_PARTNER": "2",
                           "TENANTRY_RESYNC_SECONDS": "600", "TENANTRY_DNS_CHECK_SECONDS": "600"})
    yield operator
    operator.restart_with({})


def _secret_count(cluster: ClusterHandle, ns: str) -> int:
    return len(cluster.kubectl("get", "secrets", "-n", ns, "-o", "name").stdout.split())


def _quota_secrets(cluster: ClusterHandle, ns: str, field: str = "used") -> str | None:
    """The quota's status.hard or status.used of count/secrets, as the quota controller wrote it."""
    return _get(cluster, "resourcequota", naming.QUOTA, ns).get("status", {}).get(field, {}).get("count/secrets")


def _has_token(cluster: ClusterHandle, ns: str) -> bool:
    """The token controller has given the namespace's default ServiceAccount a secret that exists."""
    account = cluster.kubectl("get", "serviceaccount", "default", "-n", ns, "-o", "json", check=False)
    names = [ref.get("name") for ref in json.loads(account.stdout or "{}").get("secrets") or []]
    return any(cluster.kubectl("get", "secret", name, "-n", ns, check=False).returncode == 0 for name in names)


def _counted_secrets(cluster: ClusterHandle, ns: str) -> int:
    """The namespace's secrets, once the quota counts exactly them.

    Settled first: the token controller creates a ServiceAccount's token secret and, when its update
    of the account conflicts, deletes it and tries again. The quota controller counts from its own
    cache when it first syncs a quota; a token secret created just before can be missing there, and
    the controller counts again only when a secret goes or at its 5-minute resync. Undercounted by
    one, the quota let an 11th secret in (a fresh-clone CI run), so a scratch secret is created and
    deleted to make it count again."""
    wait_for(lambda: _has_token(cluster, ns), timeout=60, what="the default ServiceAccount's token secret")
    for _ in range(5):
        existing, used = settle(lambda: _secret_count(cluster, ns), lambda: _quota_secrets(cluster, ns),
                                what="the namespace's secrets and the quota's count of them")
        if used == str(existing):
            return existing
        # (Refused when the quota already counts 10 or more: the delete below still makes it recount.)
        cluster.kubectl("create", "secret", "generic", "recount", "-n", ns, "--from-literal=k=v", check=False)
        cluster.kubectl("delete", "secret", "recount", "-n", ns, "--ignore-not-found", "--wait=true")
    raise AssertionError(f"the quota counts {used} secrets in {ns}, which holds {existing}")


def test_tenants_per_partner_and_secrets_per_tenant_are_capped(
        cluster: ClusterHandle, partners: tuple[ChartPartner, ChartPartner], strict_operator: OperatorProcess) -> None:
    alpha, bravo = partners
    for name in list(alpha.slugs):  # the tenants of the tests above, and the namespaces they kept: start from none
        alpha.delete(name)
    if alpha.slugs:
        cluster.kubectl("delete", "namespace", *(f"tenant-{name}" for name in alpha.slugs), "--ignore-not-found",
                        "--wait=true", "--timeout=120s")
    first, second, third = (alpha.slug(f"cap-{letter}") for letter in "bcd")
    for slug in (first, second, third):
        _apply(alpha, alpha.tenant(slug))
    _provisioned(alpha, first), _provisioned(alpha, second)
    waiting = alpha.wait_condition(third, "False", "PartnerTenantLimit")
    assert "2 tenants the platform allows per partner" in waiting["message"]
    # An attempt to evict: a name that sorts before every other one, created after them (creation
    # times have whole seconds, and names order the tenants of one second).
    created = datetime.datetime.fromisoformat(alpha.get(third)["metadata"]["creationTimestamp"])
    wait_for(lambda: datetime.datetime.now(datetime.UTC).replace(microsecond=0) > created, timeout=5,
             what="the next second")
    usurper = alpha.slug("cap-a")
    # At the highest price there is: a Tenant the partner may not have must not add to its revenue,
    # commission or level (the metrics platforms pay partners by).
    _apply(alpha, alpha.tenant(usurper, plan={"featureSet": "business", "seats": 50,
                                              "price": {"monthly": 10_000_000, "currency": "EUR"}}))
    alpha.wait_condition(usurper, "False", "PartnerTenantLimit")
    partner_id = json.loads(cluster.kubectl("get", "namespace", alpha.namespace, "-o", "json").stdout)[
        "metadata"]["labels"]["tenantry.dev/partner"]
    wait_for(lambda: strict_operator.metric("tenantry_tenant_info", tenant=usurper) == 1.0, timeout=30,
             what="the waiting tenant's series")
    assert strict_operator.metric("tenantry_tenant_mrr", tenant=usurper) == 0.0
    assert strict_operator.metric("tenantry_partner_mrr", partner=partner_id) == 0.0
    assert strict_operator.metric("tenantry_partner_commission", partner=partner_id) == 0.0
    for slug in (first, second):
        assert alpha.condition(slug)["status"] == "True"
    assert namespace_of(cluster, f"tenant-{third}") is None and namespace_of(cluster, f"tenant-{usurper}") is None
    # Another partner is not affected by alpha's cap.
    other = bravo.slug("cap-other")
    _apply(bravo, bravo.tenant(other))
    _provisioned(bravo, other)

    # Secrets: the tenant admin may hold 10, the 11th is refused by the API server.
    ns = f"tenant-{first}"
    wait_for(lambda: _quota_secrets(cluster, ns, "hard") == "10", timeout=60,
             what="the quota controller to count secrets")
    existing = _counted_secrets(cluster, ns)
    for index in range(10 - existing):
        cluster.kubectl(f"--as={ADMIN}", "create", "secret", "generic", f"s{index}", "-n", ns, "--from-literal=k=v")
    # A recount from the quota controller's cache during those creates could have undercounted again.
    assert _counted_secrets(cluster, ns) == 10
    refused = cluster.kubectl(f"--as={ADMIN}", "create", "secret", "generic", "one-too-many", "-n", ns,
                              "--from-literal=k=v", check=False)
    assert refused.returncode != 0 and "exceeded quota" in refused.stderr and "count/secrets=10" in refused.stderr, \
        (existing, _quota_secrets(cluster, ns), refused)
    assert _secret_count(cluster, ns) == 10

    # A freed place goes to the oldest waiting tenant, not to the one whose name sorts first.
    # Deleted with deletionPolicy Retain, a tenant's namespace and data are kept and hold its place:
    # creating and deleting tenants cannot grow a partner's namespaces beyond the cap.
    alpha.delete(second)
    wait_for(lambda: "1 of them namespaces of deleted tenants" in alpha.condition(third).get("message", ""),
             timeout=60, what="the kept namespace counted in the refusal")
    assert (namespace_of(cluster, f"tenant-{second}") or {})["metadata"]["labels"]["tenantry.dev/orphaned"] == "true"
    assert namespace_of(cluster, f"tenant-{third}") is None
    # The platform team deletes the kept namespace: the place is free (noticed from the namespace's
    # watch: no resync within this test), and the oldest waiting tenant gets it.
    cluster.kubectl("delete", "namespace", f"tenant-{second}", "--wait=false")
    alpha.wait_condition(third, "True", timeout=90)
    assert alpha.condition(usurper)["reason"] == "PartnerTenantLimit"
