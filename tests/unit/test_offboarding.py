"""Pure parts of security issue 12 (findings 5-8): offboarding stops serving, clean-ups check the
owner, operator ConfigMaps are always corrected, no route to anywhere, allowed PriorityClasses only.
"""

from __future__ import annotations

from typing import Any

from tenantry.api.tenant import TenantSpec
from tenantry.domain import naming, offboarding
from tenantry.domain.children import PRIORITY_QUOTA, TenantInput, desired_state, priority_quota
from tenantry.domain.config import OperatorConfig
from tenantry.domain.contest import USER_WRITABLE_KINDS, Contest
from tenantry.domain.dns import CLAIMED_DOMAIN_ANNOTATION
from tenantry.domain.naming import owned_by
from tenantry.handlers.writer import _immutable_changed
from tests.unit.chart import find, render

OWNER = "partner-a/shop"


def _obj(kind: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "resourceVersion": "7", **extra.pop("meta", {})}, **extra}


def test_stop_scales_only_running_workloads_and_deletes_only_live_pods() -> None:
    workloads = [_obj("Deployment", "web", spec={"replicas": 3}), _obj("Deployment", "idle", spec={"replicas": 0}),
                 _obj("StatefulSet", "db", spec={})]  # replicas defaults to 1
    going = {"deletionTimestamp": "2026-01-01T00:00:00Z", "deletionGracePeriodSeconds": 30}
    # A tenant admin's pod that ignores SIGTERM under a grace of years: deleted again, with 30 s.
    stalling = {"deletionTimestamp": "2026-01-01T00:00:00Z", "deletionGracePeriodSeconds": 10**9}
    pods = [_obj("Pod", "web-1"), _obj("Pod", "going", meta=going), _obj("Pod", "stalling", meta=stalling)]
    stop = offboarding.stop_workloads(workloads, pods, scale=True)
    assert stop.scale == (("Deployment", "web", "7"), ("StatefulSet", "db", "7"))
    assert stop.delete_pods == ("web-1", "stalling")
    # Suspended: pods go, replica counts stay (reactivating restores them).
    assert offboarding.stop_workloads(workloads, pods, scale=False).scale == ()
    # Everything stopped: nothing to write.
    stopped = [_obj("Deployment", "web", spec={"replicas": 0})]
    assert offboarding.stop_workloads(stopped, [], scale=True) == offboarding.Stop((), ())


def test_routed_hosts_reads_rules_and_tls() -> None:
    ingresses = [{"spec": {"rules": [{"host": "a.example"}, {"http": {}}], "tls": [{"hosts": ["b.example"]}]}},
                 {"metadata": {"deletionTimestamp": "x"}, "spec": {"rules": [{"host": "c.example"}]}}, {}]
    assert offboarding.routed_hosts(ingresses) == {"a.example", "b.example", "c.example"}


def _claim(name: str, domain: str | None, owner: str = OWNER, managed: bool = True) -> dict[str, Any]:
    annotations = {naming.OWNER_ANNOTATION: owner}
    if domain is not None:
        annotations[CLAIMED_DOMAIN_ANNOTATION] = domain
    labels = {naming.MANAGED_BY: naming.OPERATOR} if managed else {}
    return {"metadata": {"name": name, "annotations": annotations, "labels": labels}}


def test_a_claim_is_released_only_when_no_ingress_routes_its_domain_and_only_our_own() -> None:
    claims = [_claim("c1", "free.example"), _claim("c2", "served.example"), _claim("c3", None),
              _claim("c4", "other.example", owner="partner-b/shop"), _claim("c5", "forged.example", managed=False)]
    free, kept = offboarding.releasable(claims, OWNER, {"served.example"})
    assert free == ["c1"]
    assert kept == ["served.example", "c3"]


def test_route_refusal() -> None:
    assert offboarding.route_refusal(None, "frontend") is None
    assert offboarding.route_refusal({"spec": {"type": "ClusterIP", "externalIPs": []}}, "frontend") is None
    why = offboarding.route_refusal({"spec": {"type": "ExternalName", "externalName": "kubernetes.default"}},
                                    "frontend")
    assert why is not None and "ExternalName" in why and "ClusterIP" in why
    why = offboarding.route_refusal({"spec": {"type": "ClusterIP", "externalIPs": ["10.0.0.1"]}}, "frontend")
    assert why is not None and "externalIPs" in why


def test_ownership_needs_label_and_this_tenants_owner_key() -> None:
    ours = {"metadata": {"labels": {naming.MANAGED_BY: naming.OPERATOR},
                         "annotations": {naming.OWNER_ANNOTATION: OWNER}}}
    assert owned_by(ours, OWNER)
    assert not owned_by(ours, "partner-b/shop")  # the loser of a slug race: same namespace, not its object
    assert not owned_by({"metadata": {"annotations": {naming.OWNER_ANNOTATION: OWNER}}}, OWNER)
    assert not owned_by({"metadata": {"labels": {naming.MANAGED_BY: naming.OPERATOR}}}, OWNER)


def test_configmaps_are_corrected_however_often_other_kinds_pause() -> None:
    contest = Contest(limit=5, window=60, pause=300)
    flags, quota = ("tenant-a", "ConfigMap", naming.FLAGS_CONFIG), ("tenant-a", "ResourceQuota", naming.QUOTA)
    for key in (flags, quota):
        contest.written(key, 1)
    assert all(contest.may_write(flags, 1, now=float(t)) for t in range(50))
    assert [contest.may_write(quota, 1, now=float(t)) for t in range(7)] == [True] * 5 + [False, False]


def test_user_writable_kinds_match_the_tenant_admin_role() -> None:
    """Every kind the operator manages in a tenant namespace that the chart's tenant-admin role may
    write is never paused (and nothing else is exempt)."""
    role = find(render(), "ClusterRole", "tenantry-tenant-admin")
    writable = {resource for rule in role["rules"] for resource in rule["resources"]
                if set(rule["verbs"]) & {"create", "update", "patch", "delete"}}
    kinds = {m["kind"] for m in desired_state(_input(), OperatorConfig()).apply[1:]} | {"Ingress", "Certificate",
                                                                                   "DNSEndpoint"}
    plural = {"ConfigMap": "configmaps", "ResourceQuota": "resourcequotas", "LimitRange": "limitranges",
              "NetworkPolicy": "networkpolicies", "RoleBinding": "rolebindings", "Ingress": "ingresses",
              "Certificate": "certificates", "DNSEndpoint": "dnsendpoints"}
    assert {k for k in kinds if plural[k] in writable} == set(USER_WRITABLE_KINDS)


def _input(state: str = "Active") -> TenantInput:
    spec = TenantSpec.model_validate({"company": "A", "contact": {"name": "A", "email": "a@a.de"}, "state": state,
                                      "plan": {"featureSet": "x", "seats": 1}, "admins": ["a@a.de"]})
    return TenantInput("shop", "partner-a", "a", spec, None, None)


def test_priority_quota_refuses_every_class_but_the_allowed_ones() -> None:
    quota = priority_quota("tenant-shop", _input(), OperatorConfig())
    assert quota["metadata"]["name"] == PRIORITY_QUOTA
    assert quota["spec"] == {"hard": {"pods": "0"}, "scopeSelector": {"matchExpressions": [
        {"scopeName": "PriorityClass", "operator": "Exists"}]}}
    allowed = OperatorConfig.from_env({"TENANTRY_ALLOWED_PRIORITY_CLASSES": " tenant-low, tenant-batch ,"})
    assert allowed.allowed_priority_classes == ("tenant-low", "tenant-batch")
    expressions = priority_quota("tenant-shop", _input(), allowed)["spec"]["scopeSelector"]["matchExpressions"]
    assert expressions[1] == {"scopeName": "PriorityClass", "operator": "NotIn",
                              "values": ["tenant-batch", "tenant-low"]}
    # In every state, also Suspended and Cancelled.
    for state in ("Suspended", "Cancelled"):
        assert PRIORITY_QUOTA in {m["metadata"]["name"] for m in desired_state(_input(state), OperatorConfig()).apply}


def test_a_changed_scope_selector_is_replaced_not_patched() -> None:
    old = priority_quota("tenant-shop", _input(), OperatorConfig())
    new = priority_quota("tenant-shop", _input(), OperatorConfig(allowed_priority_classes=("low",)))
    assert _immutable_changed(new, old) and not _immutable_changed(old, old)
    assert not _immutable_changed({"spec": {"hard": {}}}, old)


def test_chart_value_reaches_the_operator() -> None:
    objects = render({"operator": {"allowedPriorityClasses": ["tenant-low", "tenant-batch"]}})
    deployment = find(objects, "Deployment", "tenantry")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert OperatorConfig.from_env(env).allowed_priority_classes == ("tenant-low", "tenant-batch")


def test_a_tenants_service_loses_external_ips_and_external_dns_annotations_only() -> None:
    from tenantry.domain.offboarding import service_correction

    assert service_correction({"metadata": {"annotations": {"team": "web"}}, "spec": {"ports": [{"port": 80}]}}) is None
    assert service_correction({"spec": {"externalIPs": ["198.51.100.10"]}}) == {"spec": {"externalIPs": None}}
    assert service_correction({"metadata": {"annotations": {
        "external-dns.alpha.kubernetes.io/hostname": "login.platform.example", "team": "web",
        "external-dns.alpha.kubernetes.io/target": "203.0.113.7"}}, "spec": {"externalIPs": ["198.51.100.10"]}}) == {
        "spec": {"externalIPs": None},
        "metadata": {"annotations": {"external-dns.alpha.kubernetes.io/hostname": None,
                                     "external-dns.alpha.kubernetes.io/target": None}}}
    # external-dns's prefix since v0.22
    assert service_correction({"metadata": {"annotations": {"external-dns.kubernetes.io/hostname": "x.example"}}}) == {
        "metadata": {"annotations": {"external-dns.kubernetes.io/hostname": None}}}
