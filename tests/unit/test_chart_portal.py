"""The chart's partner portal (charts/tenantry/templates/portal.yaml), rendered by the real Helm engine.

Tested here:
- its pods carry their own name label: neither the operator's Deployment nor its Service selects them
- its ServiceAccount only reads (namespaces, events, Tenants, FeatureSets, Brandings) and creates
  TokenReviews and SubjectAccessReviews: no Secrets, no writes
- its settings reach the container as TENANTRY_PORTAL_* variables
- trusting a proxy's headers without naming the proxy is refused; with it, a NetworkPolicy lets
  only the proxy reach the portal
- a partner's own commission rate and quarterly target become annotations of its namespace
- portal.enabled=false renders no portal object
"""

from __future__ import annotations

import helm_python as helm
import pytest

from tests.unit.chart import find, render

NS = "tenantry-system"


def _portal(objects: list[dict], kind: str) -> dict:
    return find(objects, kind, "tenantry-portal")


def test_portal_pods_are_never_the_operators() -> None:
    objects = render(namespace=NS)
    pods = _portal(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    operator_selector = find(objects, "Deployment", "tenantry")["spec"]["selector"]["matchLabels"]
    service_selector = find(objects, "Service", "tenantry")["spec"]["selector"]
    for selector in (operator_selector, service_selector):
        assert not all(pods.get(k) == v for k, v in selector.items()), selector
    assert _portal(objects, "Service")["spec"]["selector"].items() <= pods.items()


def test_portal_account_only_reads_and_reviews() -> None:
    rules = _portal(render(namespace=NS), "ClusterRole")["rules"]
    verbs = {(group, resource): set(rule["verbs"]) for rule in rules
             for group in rule["apiGroups"] for resource in rule["resources"]}
    assert verbs == {("authentication.k8s.io", "tokenreviews"): {"create"},
                     ("authorization.k8s.io", "subjectaccessreviews"): {"create"},
                     ("", "namespaces"): {"list", "watch"}, ("", "events"): {"list"},
                     ("tenantry.dev", "tenants"): {"list", "watch"}, ("tenantry.dev", "featuresets"): {"list", "watch"},
                     ("tenantry.dev", "brandings"): {"list", "watch"}, ("tenantry.dev", "deals"): {"list", "watch"}}


def test_portal_settings_reach_the_container() -> None:
    objects = render({"portal": {"prometheusUrl": "http://prometheus.monitoring:9090",
                                 "gitUrl": "https://git.example/org/tenants/blob/main",
                                 "supportTiers": ["Basic", "Gold"], "audiences": ["portal"]}}, namespace=NS)
    container = _portal(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TENANTRY_PORTAL_PROMETHEUS_URL"] == "http://prometheus.monitoring:9090"
    assert env["TENANTRY_PORTAL_GIT_URL"] == "https://git.example/org/tenants/blob/main"
    assert env["TENANTRY_PORTAL_SUPPORT_TIERS"] == "Basic,Gold"
    assert env["TENANTRY_PORTAL_AUDIENCES"] == "portal"
    assert env["TENANTRY_PORTAL_TRUST_PROXY_HEADERS"] == "false"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # History from the operator's own series: its namespace unless the platform says otherwise.
    assert env["TENANTRY_PORTAL_PROMETHEUS_SELECTOR"] == f'namespace="{NS}"'
    for chosen, expected in (('job="tenantry"', 'job="tenantry"'), ("", None)):
        objects = render({"portal": {"prometheusUrl": "http://p:9090", "prometheusSelector": chosen}}, namespace=NS)
        container = _portal(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        assert {e["name"]: e.get("value") for e in container["env"]}.get("TENANTRY_PORTAL_PROMETHEUS_SELECTOR") \
            == expected


def test_trusted_proxy_headers_need_the_proxy_named() -> None:
    with pytest.raises(helm.errors.HelmRenderError, match="portal.trustProxyHeaders needs portal.proxyFrom"):
        render({"portal": {"trustProxyHeaders": True}}, namespace=NS)
    proxy = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "oauth2-proxy"}}}]
    objects = render({"portal": {"trustProxyHeaders": True, "proxyFrom": proxy, "proxyUserPrefix": "sso:",
                                 "proxyGroupsPrefix": "sso:"}}, namespace=NS)
    env = {e["name"]: e.get("value") for e in
           _portal(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["TENANTRY_PORTAL_PROXY_USER_PREFIX"], env["TENANTRY_PORTAL_PROXY_GROUPS_PREFIX"]) == ("sso:", "sso:")
    policy = _portal(objects, "NetworkPolicy")
    assert policy["spec"]["ingress"] == [{"from": proxy, "ports": [{"port": 8088, "protocol": "TCP"}]}]
    assert policy["spec"]["policyTypes"] == ["Ingress"]


def test_partner_rate_and_target_are_namespace_annotations() -> None:
    objects = render({"partners": [{"id": "acme-it", "commissionRate": 0.25, "quarterlyTarget": 15000},
                                   {"id": "other"}]}, namespace=NS)
    acme = find(objects, "Namespace", "partner-acme-it")["metadata"]["annotations"]
    assert acme["tenantry.dev/commission-rate"] == "0.25" and acme["tenantry.dev/quarterly-target"] == "15000"
    other = find(objects, "Namespace", "partner-other")["metadata"]["annotations"]
    assert "tenantry.dev/commission-rate" not in other


def test_portal_can_be_left_out() -> None:
    assert not [o for o in render({"portal": {"enabled": False}}, namespace=NS) if "portal" in o["metadata"]["name"]]
