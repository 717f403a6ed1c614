"""Render the Helm chart charts/tenantry with the real Helm engine (helm-python-sdk, Helm v4 as a library).

Shared by the chart's unit tests (tests/unit/test_chart_*.py) and by integration tests that apply
the rendered manifests to a real API server:

    from tests.unit.chart import crds, render
    objects = render({"partners": [{"id": "acme-it"}]})   # ordered like `helm install` applies them

`render` and `crds` live in tenantry.devtools.chart (also used by the integration tests and the
demo); this module adds the full values and small lookups for the tests.
"""

from __future__ import annotations

from typing import Any

from tenantry.devtools.chart import CHART, crds, render  # noqa: F401  (re-exported for the chart tests)

# Every optional part on: two partners, monitoring, cert-manager mode, RFC 2136 DNS with a TSIG
# Secret reference, scheduling constraints and an extra environment variable.
FULL_VALUES: dict[str, Any] = {
    "replicaCount": 3,
    "shards": 6,
    "image": {"repository": "registry.example:5000/tenantry/operator", "tag": "1.2.3", "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "regcred"}],
    "resources": {"requests": {"cpu": "200m", "memory": "300Mi"}, "limits": {"cpu": 1, "memory": "1Gi"}},
    "podAnnotations": {"example.com/team": "platform"},
    "priorityClassName": "system-cluster-critical",
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "platform", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "node-role.example.com/platform", "operator": "Exists"}]}]}}},
    "platformGroups": ["platform-team", "system:masters"],
    "operator": {
        "platformDomain": "saas.example.com",
        "resyncSeconds": 600,
        "workers": 16,
        "logFormat": "json",
        "logLevel": "debug",
        "commissionRate": 0.25,
        "partnerLevels": "Bronze=0,Gold=10000",
        "ingressNamespaceLabels": {"team": "ingress", "app.kubernetes.io/part-of": "ingress-nginx"},
        "routeService": "web",
        "routePort": 8080,
        "certIssuer": "letsencrypt-prod",
        "domainGraceSeconds": 3600,
        "tenantQuotaCeiling": {"cpu": "64", "memory": "256Gi", "storage": "2Ti", "pods": 300},
        "containerMax": {"cpu": "4", "memory": "16Gi"},
        "pvcMaxStorage": "200Gi",
        "objectCountQuota": {"secrets": 40, "jobs.batch": 10},
        "maxTenantsPerPartner": 250,
        "egressDenyCidrs": ["10.0.0.0/8", "169.254.0.0/16", "fc00::/7"],
        "domainClaimTtlSeconds": 172800,
        "maxPendingDomainsPerPartner": 5,
        "reservedSlugs": ["saas", "billing-eu"],
        "reservedDomains": ["saas-corp.com"],
        "dns": {
            "provider": "rfc2136",
            "target": "203.0.113.10",
            "ttl": 60,
            "ownerId": "tenantry-prod",
            "checkSeconds": 15,
            "resolver": "192.0.2.53:5353",
            "rfc2136": {"server": "ns1.example.com:53", "zone": "saas.example.com", "tsigName": "tenantry-key",
                        "tsigAlgorithm": "hmac-sha512", "tsigSecretRef": {"name": "tenantry-tsig", "key": "secret"}},
        },
    },
    "extraEnv": [{"name": "TENANTRY_VERBOSE", "value": "1"},
                 {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
    "partners": [{"id": "acme-it"}, {"id": "nordlicht-digital", "namespace": "nordlicht"}],
    "partnerServiceAccount": "flux-applier",
    "webhook": {"enabled": True, "failurePolicy": "Fail", "timeoutSeconds": 10, "certManager": {"enabled": True}},
    "metrics": {"port": 9090, "serviceMonitor": {"enabled": True, "interval": "1m", "labels": {"release": "prom"}}},
    "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
    "dashboards": {"enabled": True, "namespace": "grafana"},
}


def find(objects: list[dict], kind: str, name: str) -> dict:
    """The one object of this kind and name (AssertionError naming what exists otherwise)."""
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: found {len(found)} in {sorted(keys(objects))}"
    return found[0]


def keys(objects: list[dict]) -> list[tuple[str, str, str | None]]:
    """(kind, name, namespace) of each object."""
    return [(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) for o in objects]


def container(objects: list[dict], name: str = "tenantry") -> dict:
    """The operator container of the Deployment."""
    (only,) = find(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"]
    return only


def env(objects: list[dict], name: str = "tenantry") -> dict[str, dict]:
    """The operator container's environment variables by name (each the whole EnvVar)."""
    variables = container(objects, name)["env"]
    names = [v["name"] for v in variables]
    assert len(names) == len(set(names)), f"duplicate environment variables: {names}"
    return {v["name"]: v for v in variables}
