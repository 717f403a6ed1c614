"""Render the Helm charts charts/tenantry and charts/tenantry-partners with the real Helm engine
(helm-python-sdk, Helm v4 as a library).

Shared by the charts' unit tests (tests/unit/test_chart_*.py) and by integration tests that apply
the rendered manifests to a real API server:

    from tests.unit.chart import crds, render
    objects = render({"partners": [{"id": "acme-it"}]})   # ordered like `helm install` applies them

`render`, `crds`, `hooks`, `notes` and `render_partners` live in tenantry.devtools.chart (also used
by the integration tests and the demo; render passes operator.platformDomain=platform.example
unless the values have one); this module adds the documented values combinations and small lookups.
"""

from __future__ import annotations

import copy
from typing import Any

from tenantry.devtools.chart import (  # noqa: F401  (re-exported for the chart tests)
    CHART,
    DEMO_DOMAIN,
    PARTNERS_CHART,
    crds,
    hooks,
    manifests,
    notes,
    render,
    render_partners,
)

# Every optional part on: two partners, monitoring, cert-manager mode, RFC 2136 DNS with a TSIG
# Secret reference, an SMTP relay with credentials, scheduling and spreading constraints, a
# PodDisruptionBudget by minAvailable, extra volumes, labels and environment variables, a parent
# chart's globals; the portal with every setting, its Ingress, scheduling and trusted proxy.
FULL_VALUES: dict[str, Any] = {
    "replicas": 3,
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
        "allowedPriorityClasses": ["tenant-low", "tenant-high"],
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
        "smtp": {"host": "relay.example.com", "port": 465, "tls": "tls", "from": "welcome@saas.example.com",
                 "allowedFromDomains": ["saas.example.com"], "existingSecret": "tenantry-smtp"},
    },
    "extraEnv": [{"name": "TENANTRY_VERBOSE", "value": "1"},
                 {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
    "partners": [{"id": "acme-it"}, {"id": "nordlicht-digital", "namespace": "nordlicht"}],
    "partnerServiceAccount": "flux-applier",
    "webhook": {"enabled": True, "failurePolicy": "Fail", "timeoutSeconds": 10, "certManager": {"enabled": True}},
    "metrics": {"port": 9090, "serviceMonitor": {"enabled": True, "interval": "1m", "labels": {"release": "prom"}}},
    "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
    "dashboards": {"enabled": True, "namespace": "grafana", "portalUrl": "https://portal.saas.example.com"},
    "global": {"imagePullSecrets": ["parent-regcred"], "storageClass": "fast"},
    "commonLabels": {"example.com/cost-centre": "platform"},
    "podLabels": {"example.com/tier": "control"},
    "serviceAccount": {"annotations": {"iam.example.com/role": "tenantry"}},
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                   "whenUnsatisfiable": "ScheduleAnyway"}],
    "podDisruptionBudget": {"enabled": True, "minAvailable": 2},
    "extraVolumes": [{"name": "relay-ca", "configMap": {"name": "relay-ca"}}],
    "extraVolumeMounts": [{"name": "relay-ca", "mountPath": "/etc/relay-ca", "readOnly": True}],
    "portal": {
        "replicas": 2,
        "prometheusUrl": "http://prometheus.monitoring:9090",
        "prometheusSelector": 'job="tenantry"',
        "supportTiers": ["Basic", "Gold"],
        "gitUrl": "https://git.example/org/tenants/blob/main",
        # The ingress controller authenticates (oauth2-proxy through auth-url) and sets the headers.
        "trustProxyHeaders": True,
        "proxyFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
        "proxyUserPrefix": "sso:",
        "proxyGroupsPrefix": "sso:",
        "audiences": ["portal"],
        "resources": {"requests": {"cpu": 0.1, "memory": 134217728}, "limits": {"cpu": 1, "memory": "512Mi"}},
        "ingress": {"enabled": True, "className": "nginx",
                    "annotations": {"nginx.ingress.kubernetes.io/auth-url": "http://oauth2-proxy.oauth2-proxy/oauth2/auth"},
                    "hosts": [{"host": "portal.saas.example.com"},
                              {"host": "partners.saas.example.com", "paths": [{"path": "/p", "pathType": "Prefix"}]}],
                    "tls": [{"secretName": "portal-tls", "hosts": ["portal.saas.example.com",
                                                                  "partners.saas.example.com"]}]},
        "podAnnotations": {"example.com/team": "partners"},
        "podLabels": {"example.com/tier": "web"},
        "priorityClassName": "tenantry-portal",
        "nodeSelector": {"node-role.example.com/web": "true"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "preference": {"matchExpressions": [
                {"key": "node-role.example.com/web", "operator": "Exists"}]}}]}},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                       "whenUnsatisfiable": "ScheduleAnyway"}],
        "extraEnv": [{"name": "TENANTRY_VERBOSE", "value": "1"}],
    },
}

# On OpenShift (restricted-v2): no fixed user, group or fsGroup; the platform assigns them.
OPENSHIFT = {"podSecurityContext": {"runAsUser": None, "runAsGroup": None, "fsGroup": None}}
# Every documented combination of values (charts/tenantry/README.md), each rendered by the unit tests
# and accepted by the API server in a server-side dry run (tests/integration/test_chart_values.py).
COMBINATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "full": FULL_VALUES,
    "crds-not-installed": {"crds": {"install": False}},
    "crds-not-kept": {"crds": {"keep": False}},
    "existing-service-account": {"serviceAccount": {"create": False, "name": "platform-operator"}},
    "openshift": OPENSHIFT,
    "digest": {"image": {"repository": "ghcr.io/example/tenantry-operator",
                         "digest": "sha256:" + "0123456789abcdef" * 4}},
    "name-override": {"nameOverride": "saas"},
    "fullname-override": {"fullnameOverride": "platform-operator"},
    "subchart-global": {"global": {"imagePullSecrets": [{"name": "parent-regcred"}], "imageRegistry": "x"}},
    "pdb-min-available": {"podDisruptionBudget": {"minAvailable": 1}},
    "pdb-percentage": {"podDisruptionBudget": {"maxUnavailable": "50%"}},
    "pdb-off": {"podDisruptionBudget": {"enabled": False}},
    "single-replica": {"replicas": 1},
    "no-webhook-no-portal-no-tests": {"webhook": {"enabled": False}, "portal": {"enabled": False},
                                      "tests": {"enabled": False}, "networkPolicy": {"enabled": False}},
    "legacy-partners": {"partners": [{"id": "acme-it", "commissionRate": 0.25}]},
    # docs/welcome.md: a relay with a private CA
    "smtp-private-ca": {"operator": {"smtp": {"host": "relay.example.com", "from": "welcome@saas.example.com"}},
                        "extraVolumes": [{"name": "smtp-ca", "secret": {"secretName": "smtp-relay-ca"}}],
                        "extraVolumeMounts": [{"name": "smtp-ca", "mountPath": "/etc/tenantry/smtp-ca",
                                               "readOnly": True}],
                        "extraEnv": [{"name": "TENANTRY_SMTP_CA_FILE", "value": "/etc/tenantry/smtp-ca/ca.crt"}]},
}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Values over values as Helm coalesces them: maps merge key by key, anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else copy.deepcopy(value)
    return out


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
