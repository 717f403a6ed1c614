"""Render the Helm chart charts/tenantry with the real Helm engine (helm-python-sdk, Helm v4 as a library).

Shared by the chart's unit tests (tests/unit/test_chart_*.py) and by integration tests that apply
the rendered manifests to a real API server:

    from tests.unit.chart import crds, render
    objects = render({"partners": [{"id": "acme-it"}]})   # ordered like `helm install` applies them

`render` returns the objects in Helm's install order (Namespaces, ServiceAccounts, Secrets, RBAC,
Services, Deployments, ... webhook configurations last), so they can be applied one after the other.
The CRDs (the chart's crds/ folder, which Helm installs before anything else) come from `crds()`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "tenantry"

# Helm's install order (InstallOrder in its kind sorter); other kinds come last.
INSTALL_ORDER = (
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
    "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList",
    "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList",
    "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler",
    "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService", "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)

# Every optional part on: two partners, monitoring, cert-manager mode, RFC 2136 DNS with a TSIG
# Secret reference, scheduling constraints and an extra environment variable.
FULL_VALUES: dict[str, Any] = {
    "replicaCount": 3,
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
        "commissionRate": 0.25,
        "partnerLevels": "Bronze=0,Gold=10000",
        "ingressNamespaceLabels": {"team": "ingress", "app.kubernetes.io/part-of": "ingress-nginx"},
        "routeService": "web",
        "routePort": 8080,
        "certIssuer": "letsencrypt-prod",
        "domainGraceSeconds": 3600,
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
    "webhook": {"enabled": True, "failurePolicy": "Ignore", "timeoutSeconds": 10, "certManager": {"enabled": True}},
    "metrics": {"port": 9090, "serviceMonitor": {"enabled": True, "interval": "1m", "labels": {"release": "prom"}}},
    "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
    "dashboards": {"enabled": True, "namespace": "grafana"},
}


def _order(obj: dict) -> int:
    kind = obj.get("kind", "")
    return INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)


def render(values: dict | None = None, name: str = "tenantry", namespace: str = "tenantry-system") -> list[dict]:
    """The chart's objects for these values (merged over values.yaml), in Helm's install order.

    Raises helm.HelmError (a subclass) when values.schema.json refuses the values or a template fails.
    """
    chart = helm.Chart.load(str(CHART))
    try:
        out = chart.render(copy.deepcopy(values or {}), name=name, namespace=namespace)
    finally:
        chart.close()
    objects = [doc for _, text in sorted(out.items()) for doc in yaml.safe_load_all(text) if doc]
    return sorted(objects, key=_order)


def crds() -> list[dict]:
    """The CustomResourceDefinitions Helm installs from the chart's crds/ folder before the templates."""
    return [yaml.safe_load(path.read_text()) for path in sorted((CHART / "crds").glob("*.yaml"))]


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
