"""The chart's partner portal (charts/tenantry/templates/portal.yaml), rendered by the real Helm engine.

Tested here:
- its pods carry their own name label: neither the operator's Deployment nor its Service selects them
- its ServiceAccount only reads (namespaces, events, Tenants, FeatureSets, Brandings) and creates
  TokenReviews and SubjectAccessReviews: no Secrets, no writes
- its settings reach the container as TENANTRY_PORTAL_* variables
- trusting a proxy's headers without naming the proxy is refused; with it, a NetworkPolicy lets
  only the proxy reach the portal's pods (selected as its Deployment selects them)
- a partner's own commission rate and quarterly target become annotations of its namespace
- portal.enabled=false renders no portal object
- portal.ingress: none by default; on, an Ingress (networking.k8s.io/v1) with the class, annotations,
  hosts, paths and TLS of the values to the portal Service's http port; on without a host: refused
- the portal's own scheduling (nodeSelector, tolerations, affinity, priorityClassName,
  topologySpreadConstraints) and pod annotations and labels: from portal.*, never the operator's
  top-level ones; empty affinity: portal replicas preferably on different nodes
- portal.extraEnv reaches the container (the names the chart sets are refused: test_chart_schema)
- resource quantities are strings, also when the values give numbers (server-side apply refuses
  `cpu: 1`), and large ones are not written in exponent form
"""

from __future__ import annotations

import shutil
from pathlib import Path

import helm_python as helm
import pytest

from tests.unit.chart import CHART, FULL_VALUES, container, find, render

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
    assert policy["spec"]["podSelector"] == _portal(objects, "Deployment")["spec"]["selector"]
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


# --- Ingress ------------------------------------------------------------------------------------

def test_no_ingress_by_default() -> None:
    assert [o for o in render(namespace=NS) if o["kind"] == "Ingress"] == []


def test_ingress_routes_the_hosts_to_the_portal_service() -> None:
    objects = render(FULL_VALUES, namespace=NS)
    ingress = _portal(objects, "Ingress")
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    assert ingress["metadata"]["annotations"] == FULL_VALUES["portal"]["ingress"]["annotations"]
    assert ingress["metadata"]["labels"]["app.kubernetes.io/component"] == "portal"
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == FULL_VALUES["portal"]["ingress"]["tls"]
    backend = {"service": {"name": "tenantry-portal", "port": {"name": "http"}}}
    assert spec["rules"] == [
        {"host": "portal.saas.example.com",
         "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}},
        {"host": "partners.saas.example.com",
         "http": {"paths": [{"path": "/p", "pathType": "Prefix", "backend": backend}]}},
    ]
    assert {p["name"] for p in _portal(objects, "Service")["spec"]["ports"]} == {"http"}


def test_ingress_without_class_or_tls_leaves_them_out() -> None:
    ingress = _portal(render({"portal": {"ingress": {"enabled": True, "hosts": [{"host": "portal.example.com"}]}}},
                             namespace=NS), "Ingress")
    assert "ingressClassName" not in ingress["spec"] and "tls" not in ingress["spec"]
    assert "annotations" not in ingress["metadata"]


@pytest.mark.parametrize(("ingress", "words"), [
    ({"enabled": True}, "/portal/ingress/hosts"),
    ({"enabled": True, "hosts": []}, "/portal/ingress/hosts"),
    ({"enabled": True, "hosts": [{"host": "https://portal.example.com"}]}, "/portal/ingress/hosts/0/host"),
    ({"enabled": True, "hosts": [{"host": "p.example.com", "paths": [{"path": "p"}]}]},
     "/portal/ingress/hosts/0/paths/0/path"),
    ({"enabled": True, "hosts": [{"host": "p.example.com", "paths": [{"path": "/", "pathType": "Any"}]}]},
     "/portal/ingress/hosts/0/paths/0/pathType"),
    ({"enabled": True, "hosts": [{"host": "p.example.com"}], "tls": [{"hosts": ["p.example.com"]}]},
     "/portal/ingress/tls/0"),
    ({"enabled": True, "hosts": [{"host": "p.example.com"}], "class": "nginx"}, "class"),
])
def test_wrong_ingress_values_are_refused(ingress: dict, words: str) -> None:
    with pytest.raises(helm.HelmError) as error:
        render({"portal": {"ingress": ingress}}, namespace=NS)
    assert words in str(error.value)


def test_ingress_without_a_host_is_refused_by_the_template_too(tmp_path: Path) -> None:
    unchecked = tmp_path / "tenantry"
    shutil.copytree(CHART, unchecked)
    (unchecked / "values.schema.json").unlink()
    with pytest.raises(helm.HelmError, match="portal.ingress.hosts"):
        render({"portal": {"ingress": {"enabled": True}}, "operator": {"platformDomain": "platform.example"}},
               namespace=NS, chart=unchecked)


# --- scheduling, pod metadata, environment, resources --------------------------------------------

def test_portal_scheduling_and_pod_metadata_are_its_own() -> None:
    objects = render(FULL_VALUES, namespace=NS)
    values = FULL_VALUES["portal"]
    template = _portal(objects, "Deployment")["spec"]["template"]
    spec = template["spec"]
    assert spec["nodeSelector"] == values["nodeSelector"] != FULL_VALUES["nodeSelector"]
    assert spec["tolerations"] == values["tolerations"] != FULL_VALUES["tolerations"]
    assert spec["affinity"] == values["affinity"] != FULL_VALUES["affinity"]
    assert spec["priorityClassName"] == values["priorityClassName"] != FULL_VALUES["priorityClassName"]
    selector = _portal(objects, "Deployment")["spec"]["selector"]
    assert spec["topologySpreadConstraints"] == [{**values["topologySpreadConstraints"][0], "labelSelector": selector}]
    assert template["metadata"]["annotations"] == values["podAnnotations"]
    labels = template["metadata"]["labels"]
    assert labels["example.com/tier"] == "web" and selector["matchLabels"].items() <= labels.items()
    assert labels["example.com/cost-centre"] == "platform"  # commonLabels
    # ... and the portal's never reach the operator's pods.
    operator = find(objects, "Deployment", "tenantry")["spec"]["template"]
    assert operator["metadata"]["annotations"] == FULL_VALUES["podAnnotations"]
    assert operator["metadata"]["labels"]["example.com/tier"] == "control"
    assert operator["spec"]["nodeSelector"] == FULL_VALUES["nodeSelector"]


def test_portal_defaults_schedule_replicas_on_different_nodes() -> None:
    objects = render(namespace=NS)
    deployment = _portal(objects, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    (term,) = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"] == {"topologyKey": "kubernetes.io/hostname",
                                       "labelSelector": deployment["spec"]["selector"]}
    for key in ("nodeSelector", "tolerations", "priorityClassName", "topologySpreadConstraints"):
        assert key not in spec, key
    assert "annotations" not in deployment["spec"]["template"]["metadata"]


@pytest.mark.parametrize("labels", [{"tenantry.dev/role": "leader"}, {"tenantry.dev/partner": "acme"}])
def test_portal_pod_labels_of_the_operator_are_refused(labels: dict, tmp_path: Path) -> None:
    with pytest.raises(helm.HelmError, match="invalid propertyName"):
        render({"portal": {"podLabels": labels}}, namespace=NS)
    unchecked = tmp_path / "tenantry"
    shutil.copytree(CHART, unchecked)
    (unchecked / "values.schema.json").unlink()
    with pytest.raises(helm.HelmError, match="portal.podLabels: .*labels under tenantry.dev/ are the operator's"):
        render({"portal": {"podLabels": labels}, "operator": {"platformDomain": "platform.example"}}, namespace=NS,
               chart=unchecked)


def test_portal_extra_env_reaches_the_container() -> None:
    objects = render({"portal": {"extraEnv": [
        {"name": "TENANTRY_VERBOSE", "value": "1"},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}}, namespace=NS)
    variables = container(objects, "tenantry-portal")["env"]
    assert variables[-2:] == [{"name": "TENANTRY_VERBOSE", "value": "1"},
                              {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
    names = [variable["name"] for variable in variables]
    assert len(names) == len(set(names))


def test_resource_quantities_are_strings_also_from_numbers() -> None:
    # Server-side apply (Helm 4) refuses a bare number such as `cpu: 1`; a large one must not be
    # written as 1.34217728e+08 either.
    numbers = {"requests": {"cpu": 0.1, "memory": 134217728}, "limits": {"cpu": 1, "memory": 268435456}}
    objects = render({"resources": numbers, "portal": {"resources": numbers}}, namespace=NS)
    expected = {"requests": {"cpu": "0.1", "memory": "134217728"}, "limits": {"cpu": "1", "memory": "268435456"}}
    assert container(objects, "tenantry-portal")["resources"] == expected
    assert container(objects, "tenantry")["resources"] == expected
    assert container(render(namespace=NS), "tenantry-portal")["resources"] == {
        "requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}}
