"""The chart's operator install (Deployment, Service, RBAC, admission webhook), rendered by the real Helm engine.

Tested here:
- `helm lint` reports no errors or warnings, with the default values and with every option on
- the default render is exactly the expected set of objects (kind, name, namespace)
- object names follow `tenantry.fullname` (release name with "tenantry" in it, else <release>-tenantry, <= 63)
- the Deployment runs non-root with a read-only root file system, no privilege escalation, no
  capabilities, RuntimeDefault seccomp, probes on the health port, resources from values, /tmp and /tls
- the environment variables the operator reads (names and values), optional ones only when set, and
  the chart's operator defaults agree with the operator's own built-in defaults; `shards` and
  `replicas` reach the operator's settings and the Deployment
- the Service has the ports the ServiceMonitor and the webhook configuration use
- the webhook configuration: three webhooks for tenantry's kinds and nine for pods and every workload
  kind in tenant namespaces only (namespaceSelector), paths, rules, failure policy, timeout; its caBundle is
  the generated Secret's ca.crt, and that CA really signed a serving certificate for the Service's
  DNS names (checked with a TLS handshake); webhook.enabled=false removes all webhook parts together
- operator RBAC: exactly the contracted rules, no wildcards, `bind` only on the tenant-admin
  ClusterRole by name, Secrets only in the release namespace, pods read and deleted (pod security
  re-check) but never created or changed, leases also listed and deleted (shards and replicas'
  memberships); the tenant-admin ClusterRole's rules
"""

from __future__ import annotations

import base64
import dataclasses
import ssl
import tempfile
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from tenantry.devtools.localwebhook import WEBHOOK_KINDS
from tenantry.domain.config import DnsSettings, OperatorConfig, Rfc2136Settings, parse_labels
from tenantry.domain.settings import ProcessSettings, Settings
from tenantry.domain.usage import parse_levels
from tenantry.handlers.podsecurity import WORKLOADS, webhook_id
from tests.unit.chart import CHART, DEMO_DOMAIN, FULL_VALUES, PARTNERS_CHART, container, env, find, keys, render

NS = "tenantry-system"
VERBS_ALL = ["get", "list", "watch", "create", "patch", "delete"]  # namespaces: applied, never updated
# Children: created, then updated whole (PUT naming the version read); patch for labels and older objects.
CHILD_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
VERBS_UNWATCHED = ["get", "list", "create", "update", "patch", "delete"]
# The operator's pod security handler ids, which the chart's webhook paths must name.
POD_SECURITY_HANDLERS = [webhook_id(plural, version) for _, version, plural, _ in WORKLOADS]


@pytest.fixture(scope="module")
def default() -> list[dict]:
    return render()


@pytest.fixture(scope="module")
def full() -> list[dict]:
    return render(FULL_VALUES)


def _rules(objects: list[dict], kind: str, name: str) -> list[tuple]:
    """Rules as comparable tuples (every list sorted)."""
    return [(tuple(sorted(r.get("apiGroups", []))), tuple(sorted(r.get("resources", []))),
             tuple(sorted(r["verbs"])), tuple(sorted(r.get("resourceNames", []))))
            for r in find(objects, kind, name)["rules"]]


def _rule(groups: list[str], resources: list[str], verbs: list[str], names: tuple = ()) -> tuple:
    return (tuple(sorted(groups)), tuple(sorted(resources)), tuple(sorted(verbs)), tuple(sorted(names)))


# --- lint ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("chart", "values"), [
    (CHART, {"operator": {"platformDomain": DEMO_DOMAIN}}), (CHART, FULL_VALUES),
    (PARTNERS_CHART, None), (PARTNERS_CHART, {"partners": [{"id": "acme-it"}]}),
], ids=["defaults", "full", "partners-defaults", "partners-one"])
def test_lint_has_no_errors_or_warnings(chart: object, values: dict | None) -> None:
    result = helm.lint(str(chart), values, namespace=NS)
    assert result["errors"] == []
    # Severity 1 is INFO: only "icon is recommended" (an icon URL would name an external host).
    assert [m for m in result["messages"] if m["severity"] > 1] == [], result["messages"]


def test_lint_reports_bad_values() -> None:
    result = helm.lint(str(CHART), {"replicas": "two"}, namespace=NS)
    assert any("replicas" in error for error in result["errors"])


# --- what is rendered ---------------------------------------------------------------------------

def test_default_render_is_exactly_the_operator_install(default: list[dict]) -> None:
    assert sorted(keys(default), key=str) == sorted([
        ("ServiceAccount", "tenantry", NS),
        ("Secret", "tenantry-webhook-tls", NS),
        ("ClusterRole", "tenantry-operator", None),
        ("ClusterRole", "tenantry-tenant-admin", None),
        ("ClusterRole", "tenantry-partner", None),
        ("ClusterRoleBinding", "tenantry-operator", None),
        ("ServiceAccount", "tenantry-portal", NS),
        ("ClusterRole", "tenantry-portal", None),
        ("ClusterRoleBinding", "tenantry-portal", None),
        ("Service", "tenantry-portal", NS),
        ("Deployment", "tenantry-portal", NS),
        ("Role", "tenantry-operator", NS),
        ("Role", "tenantry-platform-catalogue", NS),
        ("RoleBinding", "tenantry-operator", NS),
        ("Service", "tenantry", NS),
        ("Deployment", "tenantry", NS),
        ("NetworkPolicy", "tenantry", NS),
        ("PodDisruptionBudget", "tenantry", NS),
        ("MutatingWebhookConfiguration", "tenantry", None),
        ("ValidatingWebhookConfiguration", "tenantry", None),
    ], key=str)


def test_objects_come_in_helm_install_order(default: list[dict]) -> None:
    kinds = [o["kind"] for o in default]
    assert kinds.index("ServiceAccount") < kinds.index("ClusterRoleBinding") < kinds.index("Deployment")
    assert kinds[-1] == "ValidatingWebhookConfiguration"


@pytest.mark.parametrize(("release", "fullname"), [
    ("tenantry", "tenantry"),
    ("prod", "prod-tenantry"),
    ("tenantry-eu", "tenantry-eu"),
    ("my-tenantry", "my-tenantry"),
    ("a" * 53, "a" * 53 + "-tenantry"),  # the longest release name Helm accepts
    ("a" * 60, "a" * 60 + "-te"),  # longer only when rendered offline: truncated to 63
    ("a" * 62, "a" * 62),  # no trailing "-" after truncation
])
def test_names_follow_fullname(release: str, fullname: str) -> None:
    objects = render(name=release)
    assert len(fullname) <= 63
    find(objects, "Deployment", fullname)
    find(objects, "ServiceAccount", fullname)
    find(objects, "ClusterRole", f"{fullname}-tenant-admin")
    assert env(objects, fullname)["TENANTRY_LEASE_NAME"]["value"] == f"{fullname}-leader"
    portal = f"{fullname[:56].rstrip('-')}-portal"
    assert len(portal) <= 63 and portal != fullname
    find(objects, "Deployment", portal)
    find(objects, "ClusterRole", portal)


# --- Deployment ---------------------------------------------------------------------------------

def test_deployment_is_locked_down(default: list[dict]) -> None:
    deployment = find(default, "Deployment", "tenantry")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert pod["serviceAccountName"] == "tenantry"
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                      "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}}
    operator = container(default)
    assert operator["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                           "capabilities": {"drop": ["ALL"]}}
    assert operator["image"] == "registry.example/tenantry/operator:0.1.0"  # a placeholder (values.yaml)
    assert operator["imagePullPolicy"] == "IfNotPresent"
    assert operator["command"] == ["tenantry-operator"]
    assert operator["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
    assert {p["name"]: p["containerPort"] for p in operator["ports"]} == {"metrics": 8080, "health": 8081,
                                                                          "webhook": 9443}
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert operator["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    # The liveness probe waits for the first start (up to 10 minutes: the first listing of 10,000 tenants).
    startup = operator["startupProbe"]
    assert startup["httpGet"] == {"path": "/readyz", "port": "health"}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    mounts = {m["mountPath"]: m for m in operator["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/tmp"]["name"]]["emptyDir"] == {}
    assert mounts["/tls"]["readOnly"] is True
    assert volumes[mounts["/tls"]["name"]]["secret"]["secretName"] == "tenantry-webhook-tls"
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert anti[0]["podAffinityTerm"]["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_deployment_replaces_a_pod_before_it_goes(default: list[dict]) -> None:
    # Every replica is Ready (standbys too), so a rollout never leaves the operator without a pod.
    rolling = find(default, "Deployment", "tenantry")["spec"]["strategy"]["rollingUpdate"]
    assert rolling == {"maxSurge": 1, "maxUnavailable": 0}


def test_deployment_takes_the_optional_pod_settings(full: list[dict]) -> None:
    pod = find(full, "Deployment", "tenantry")["spec"]["template"]
    spec = pod["spec"]
    assert find(full, "Deployment", "tenantry")["spec"]["replicas"] == 3
    assert pod["metadata"]["annotations"] == {"example.com/team": "platform"}
    assert spec["imagePullSecrets"] == [{"name": "parent-regcred"}, {"name": "regcred"}]  # global's first
    assert spec["priorityClassName"] == "system-cluster-critical"
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert spec["tolerations"] == FULL_VALUES["tolerations"]
    assert spec["affinity"] == FULL_VALUES["affinity"]  # replaces the default anti-affinity
    operator = container(full)
    assert operator["image"] == "registry.example:5000/tenantry/operator:1.2.3"
    assert operator["imagePullPolicy"] == "Always"
    # Every quantity a string, as server-side apply wants it (the values say `cpu: 1`).
    assert operator["resources"] == {"requests": {"cpu": "200m", "memory": "300Mi"},
                                     "limits": {"cpu": "1", "memory": "1Gi"}}
    assert {p["name"]: p["containerPort"] for p in operator["ports"]}["metrics"] == 9090


# --- environment --------------------------------------------------------------------------------

def _values(variables: dict[str, dict]) -> dict[str, str]:
    return {name: v["value"] for name, v in variables.items() if "value" in v}


def test_default_environment(default: list[dict]) -> None:
    variables = env(default)
    assert variables["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert _values(variables) == {
        "TENANTRY_PLATFORM_NAMESPACE": NS,
        "TENANTRY_LEADER_ELECTION": "true",
        "TENANTRY_LEASE_NAME": "tenantry-leader",
        "TENANTRY_SHARDS": "1",
        "TENANTRY_HEALTH_PORT": "8081",
        "TENANTRY_METRICS_PORT": "8080",
        "TENANTRY_WEBHOOK_PORT": "9443",
        "TENANTRY_WEBHOOK_CERT_DIR": "/tls",
        "TENANTRY_TENANT_ADMIN_CLUSTERROLE": "tenantry-tenant-admin",
        "TENANTRY_OPERATOR_USERNAME": "system:serviceaccount:tenantry-system:tenantry",
        "TENANTRY_PLATFORM_GROUPS": "system:masters,tenantry:platform-admins",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TENANTRY_PLATFORM_DOMAIN": "platform.example",
        "TENANTRY_RESYNC_SECONDS": "300",
        "TENANTRY_WORKERS": "64",
        "TENANTRY_LOG_LEVEL": "info",
        "TENANTRY_LOG_FORMAT": "text",
        "TENANTRY_COMMISSION_RATE": "0.2",
        "TENANTRY_PARTNER_LEVELS": "Bronze=0,Silver=5000,Gold=20000,Platinum=50000",
        "TENANTRY_PARTNER_LEVEL_CURRENCY": "EUR",
        "TENANTRY_ROUTE_SERVICE": "frontend",
        "TENANTRY_ROUTE_PORT": "80",
        "TENANTRY_CERT_ISSUER": "letsencrypt",
        "TENANTRY_DOMAIN_GRACE_SECONDS": "86400",
        "TENANTRY_TENANT_QUOTA_CEILING": "cpu=128,memory=512Gi,storage=10Ti,pods=1000",
        "TENANTRY_CONTAINER_MAX": "cpu=8,memory=32Gi",
        "TENANTRY_PVC_MAX_STORAGE": "1Ti",
        "TENANTRY_MAX_TENANTS_PER_PARTNER": "10000",
        "TENANTRY_DOMAIN_CLAIM_TTL_SECONDS": "604800",
        "TENANTRY_MAX_PENDING_DOMAINS": "20",
        "TENANTRY_DNS_PROVIDER": "none",
        "TENANTRY_DNS_TTL": "300",
        "TENANTRY_DNS_OWNER_ID": "tenantry",
        "TENANTRY_DNS_CHECK_SECONDS": "30",
        "TENANTRY_RFC2136_TSIG_ALGORITHM": "hmac-sha256",
    }
    # Empty optional values are left out, so the operator keeps its own behaviour.
    for name in ("TENANTRY_INGRESS_NAMESPACE_LABELS", "TENANTRY_RESERVED_SLUGS", "TENANTRY_RESERVED_DOMAINS",
                 "TENANTRY_DNS_TARGET", "TENANTRY_RESOLVER", "TENANTRY_EGRESS_DENY_CIDRS",
                 "TENANTRY_OBJECT_COUNT_QUOTA",
                 "TENANTRY_RFC2136_SERVER", "TENANTRY_RFC2136_ZONE",
                 "TENANTRY_RFC2136_TSIG_NAME", "TENANTRY_RFC2136_TSIG_SECRET"):
        assert name not in variables


def test_full_environment(full: list[dict]) -> None:
    variables = env(full)
    values = _values(variables)
    assert values["TENANTRY_PLATFORM_GROUPS"] == "platform-team,system:masters"
    assert values["TENANTRY_METRICS_PORT"] == "9090"
    assert values["TENANTRY_PLATFORM_DOMAIN"] == "saas.example.com"
    assert values["TENANTRY_RESYNC_SECONDS"] == "600"
    assert values["TENANTRY_WORKERS"] == "16"
    assert values["TENANTRY_COMMISSION_RATE"] == "0.25"
    assert values["TENANTRY_PARTNER_LEVELS"] == "Bronze=0,Gold=10000"
    # Sorted by key, so the pod template does not change from one render to the next.
    assert values["TENANTRY_INGRESS_NAMESPACE_LABELS"] == "app.kubernetes.io/part-of=ingress-nginx,team=ingress"
    assert values["TENANTRY_ROUTE_SERVICE"] == "web"
    assert values["TENANTRY_ROUTE_PORT"] == "8080"
    assert values["TENANTRY_CERT_ISSUER"] == "letsencrypt-prod"
    assert values["TENANTRY_DOMAIN_GRACE_SECONDS"] == "3600"
    assert values["TENANTRY_TENANT_QUOTA_CEILING"] == "cpu=64,memory=256Gi,storage=2Ti,pods=300"
    assert values["TENANTRY_CONTAINER_MAX"] == "cpu=4,memory=16Gi"
    assert values["TENANTRY_PVC_MAX_STORAGE"] == "200Gi"
    assert values["TENANTRY_OBJECT_COUNT_QUOTA"] == "jobs.batch=10,secrets=40"  # sorted
    assert values["TENANTRY_MAX_TENANTS_PER_PARTNER"] == "250"
    assert values["TENANTRY_EGRESS_DENY_CIDRS"] == "10.0.0.0/8,169.254.0.0/16,fc00::/7"
    assert values["TENANTRY_DNS_PROVIDER"] == "rfc2136"
    assert values["TENANTRY_DNS_TARGET"] == "203.0.113.10"
    assert values["TENANTRY_DNS_TTL"] == "60"
    assert values["TENANTRY_DNS_OWNER_ID"] == "tenantry-prod"
    assert values["TENANTRY_DNS_CHECK_SECONDS"] == "15"
    assert values["TENANTRY_RESOLVER"] == "192.0.2.53:5353"
    assert values["TENANTRY_RFC2136_SERVER"] == "ns1.example.com:53"
    assert values["TENANTRY_RFC2136_ZONE"] == "saas.example.com"
    assert values["TENANTRY_RFC2136_TSIG_NAME"] == "tenantry-key"
    assert values["TENANTRY_RFC2136_TSIG_ALGORITHM"] == "hmac-sha512"
    # The TSIG secret only ever comes from the Secret, never as a plain value.
    assert variables["TENANTRY_RFC2136_TSIG_SECRET"] == {
        "name": "TENANTRY_RFC2136_TSIG_SECRET",
        "valueFrom": {"secretKeyRef": {"name": "tenantry-tsig", "key": "secret"}}}
    assert values["TENANTRY_VERBOSE"] == "1"
    assert variables["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}


def test_large_numbers_are_not_written_in_exponent_form() -> None:
    objects = render({"operator": {"resyncSeconds": 10_000_000, "domainGraceSeconds": 31_536_000}})
    values = _values(env(objects))
    assert (values["TENANTRY_RESYNC_SECONDS"], values["TENANTRY_DOMAIN_GRACE_SECONDS"]) == ("10000000", "31536000")


def test_chart_defaults_are_the_operators_defaults(default: list[dict]) -> None:
    # Rendered defaults read back by the operator's own parser give its built-in configuration.
    values = _values(env(default))
    config = OperatorConfig.from_env(values)
    # The chart names the operator's account explicitly; the built-in default is the same account.
    assert config.operator_identity == OperatorConfig().operator_identity
    assert dataclasses.replace(config, operator_username="") == OperatorConfig()
    assert DnsSettings.from_env(values, config.platform_domain) == DnsSettings()
    assert parse_levels(values["TENANTRY_PARTNER_LEVELS"])
    # The process: what a pod of the chart needs beyond the built-in defaults, nothing else.
    process = Settings.from_env(values).process
    assert process == dataclasses.replace(ProcessSettings(), leader_election=True, health_port=8081,
                                          webhook_port=9443)


def test_ingress_labels_given_replace_the_default() -> None:
    # Helm merges maps: a default in values.yaml would be ANDed with the labels a user gives.
    objects = render({"operator": {"ingressNamespaceLabels": {"team": "edge"}}})
    assert parse_labels(_values(env(objects))["TENANTRY_INGRESS_NAMESPACE_LABELS"]) == {"team": "edge"}


def test_full_environment_is_understood_by_the_operator(full: list[dict]) -> None:
    config = OperatorConfig.from_env(_values(env(full)))
    assert (config.platform_domain, config.dns_target) == ("saas.example.com", "203.0.113.10")
    # The TSIG secret reaches the pod from a Secret: a stand-in takes its place here.
    secret = base64.b64encode(b"tsig" * 8).decode()
    dns = DnsSettings.from_env({**_values(env(full)), "TENANTRY_RFC2136_TSIG_SECRET": secret}, config.platform_domain)
    assert (dns.provider, dns.resolver) == ("rfc2136", ("192.0.2.53", 5353))
    assert dns.rfc2136 == Rfc2136Settings(("ns1.example.com", 53), "saas.example.com", "tenantry-key", secret,
                                          "hmac-sha512")
    assert dict(config.ingress_namespace_labels) == FULL_VALUES["operator"]["ingressNamespaceLabels"]
    assert parse_levels(_values(env(full))["TENANTRY_PARTNER_LEVELS"]) == (("Bronze", 0.0), ("Gold", 10000.0))
    assert (config.tenant_quota_ceiling.cpu, config.tenant_quota_ceiling.pods) == ("64", 300)
    assert dict(config.container_max) == {"cpu": "4", "memory": "16Gi"}
    assert (config.object_counts["secrets"], config.object_counts["jobs.batch"]) == (40, 10)
    assert config.object_counts["configmaps"] == OperatorConfig().object_counts["configmaps"]  # merged
    assert (config.max_tenants_per_partner, config.egress_deny_cidrs) == (250, ("10.0.0.0/8", "169.254.0.0/16",
                                                                                "fc00::/7"))
    assert (config.domain_claim_ttl_seconds, config.max_pending_domains) == (172800, 5)
    assert config.slug_reserved("billing-eu") and config.domain_reserved("www.saas-corp.com")
    process = Settings.from_env({**_values(env(full)), "TENANTRY_RFC2136_TSIG_SECRET": secret}).process
    assert (process.metrics_port, process.resync_seconds, process.workers, process.dns_check_seconds) == \
        (9090, 600, 16, 15)
    assert (process.log_level, process.log_format) == ("debug", "json")
    assert (process.shards, find(full, "Deployment", "tenantry")["spec"]["replicas"]) == (6, 3)


# --- Service and webhook ------------------------------------------------------------------------

def test_service_serves_metrics_and_webhook(default: list[dict]) -> None:
    service = find(default, "Service", "tenantry")
    deployment = find(default, "Deployment", "tenantry")
    # The Service reaches the active replica only: the one that labelled its pod leader.
    assert service["spec"]["selector"] == {**deployment["spec"]["selector"]["matchLabels"],
                                           "tenantry.dev/role": "leader"}
    assert service["metadata"]["labels"]["app.kubernetes.io/name"] == "tenantry"
    assert {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        "metrics": (8080, "metrics"), "webhook": (443, "webhook")}


def test_webhook_configuration(default: list[dict]) -> None:
    config = find(default, "ValidatingWebhookConfiguration", "tenantry")
    assert config["apiVersion"] == "admissionregistration.k8s.io/v1"
    paths = {}
    own, pods = config["webhooks"][:3], config["webhooks"][3:]
    for webhook in own:
        assert webhook["rules"] == [{"apiGroups": ["tenantry.dev"], "apiVersions": ["v1alpha1"],
                                     "operations": ["CREATE", "UPDATE"], "resources": [webhook["name"].split(".")[0]],
                                     "scope": "Namespaced"}]
        assert "namespaceSelector" not in webhook
    for webhook in pods:
        assert webhook["namespaceSelector"] == {"matchLabels": {
            "app.kubernetes.io/managed-by": "tenantry", "pod-security.kubernetes.io/enforce": "restricted"}}
    assert {(tuple(r["apiGroups"]), tuple(r["apiVersions"]), tuple(r["resources"]), tuple(r["operations"]),
             r["scope"]) for w in pods for r in w["rules"]} == {
        (("",), ("v1",), ("pods",), ("CREATE", "UPDATE"), "Namespaced"),
        (("",), ("v1",), ("replicationcontrollers",), ("CREATE", "UPDATE"), "Namespaced"),
        *((("apps",), ("v1",), (kind,), ("CREATE", "UPDATE"), "Namespaced")
          for kind in ("deployments", "statefulsets", "daemonsets", "replicasets")),
        (("batch",), ("v1",), ("jobs",), ("CREATE", "UPDATE"), "Namespaced"),
        (("batch",), ("v1",), ("cronjobs",), ("CREATE", "UPDATE"), "Namespaced"),
        (("batch",), ("v1beta1",), ("cronjobs",), ("CREATE", "UPDATE"), "Namespaced")}
    for webhook in config["webhooks"]:
        service = webhook["clientConfig"]["service"]
        assert (service["name"], service["namespace"], service["port"]) == ("tenantry", NS, 443)
        paths[webhook["name"]] = service["path"]
        assert webhook["sideEffects"] == "None"
        assert webhook["admissionReviewVersions"] == ["v1"]
        assert webhook["timeoutSeconds"] == 5
        assert webhook["failurePolicy"] == "Ignore"
    assert paths == {"tenants.tenantry.dev": "/validate-tenant", "brandings.tenantry.dev": "/validate-branding",
                     "featuresets.tenantry.dev": "/validate-featureset",
                     **{f"{handler.removeprefix('validate-podsecurity-')}.podsecurity.tenantry.dev": f"/{handler}"
                        for handler in POD_SECURITY_HANDLERS}}


def test_mutating_webhook_takes_tenant_creates_only(default: list[dict]) -> None:
    config = find(default, "MutatingWebhookConfiguration", "tenantry")
    [webhook] = config["webhooks"]
    assert webhook["name"] == "tenants.tenantry.dev"
    assert webhook["rules"] == [{"apiGroups": ["tenantry.dev"], "apiVersions": ["v1alpha1"], "operations": ["CREATE"],
                                 "resources": ["tenants"], "scope": "Namespaced"}]
    assert webhook["clientConfig"]["service"] == {"name": "tenantry", "namespace": NS, "port": 443,
                                                  "path": "/mutate-tenant"}
    assert (webhook["sideEffects"], webhook["reinvocationPolicy"], webhook["failurePolicy"]) == ("None", "Never",
                                                                                                  "Ignore")
    assert webhook["admissionReviewVersions"] == ["v1"]


def test_webhook_values() -> None:
    objects = render({"webhook": {"failurePolicy": "Fail", "timeoutSeconds": 12}})
    for kind in WEBHOOK_KINDS:
        config = find(objects, kind, "tenantry")
        assert {(w["failurePolicy"], w["timeoutSeconds"]) for w in config["webhooks"]} == {("Fail", 12)}


def test_the_pod_security_checks_may_fail_open_while_tenantrys_own_fail_closed() -> None:
    """Fail for every webhook refused every new pod of every tenant during a leader failover."""
    objects = render({"webhook": {"failurePolicy": "Fail", "podSecurityFailurePolicy": "Ignore"}})
    policies = {w["name"].split(".")[0] + ("/pods" if ".podsecurity." in w["name"] else ""): w["failurePolicy"]
                for kind in WEBHOOK_KINDS for w in find(objects, kind, "tenantry")["webhooks"]}
    pods = {name: policy for name, policy in policies.items() if name.endswith("/pods")}
    own = {name: policy for name, policy in policies.items() if not name.endswith("/pods")}
    assert len(pods) >= 9 and set(pods.values()) == {"Ignore"}
    assert len(own) >= 3 and set(own.values()) == {"Fail"}


def _handshake(ca_pem: bytes, crt_pem: bytes, key_pem: bytes, host: str) -> None:
    """A TLS handshake in memory: a client trusting only ca_pem connects to a server with crt/key."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "tls.crt").write_bytes(crt_pem)
        (Path(tmp) / "tls.key").write_bytes(key_pem)
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(Path(tmp) / "tls.crt", Path(tmp) / "tls.key")
    client_context = ssl.create_default_context(cadata=ca_pem.decode())
    pipes = [ssl.MemoryBIO() for _ in range(4)]  # client in/out, server in/out
    client = client_context.wrap_bio(pipes[0], pipes[1], server_hostname=host)
    server = server_context.wrap_bio(pipes[2], pipes[3], server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        pipes[2].write(pipes[1].read())
        pipes[0].write(pipes[3].read())
        if all(done.values()):
            return
    raise AssertionError("TLS handshake did not finish")


def test_generated_certificate_is_trusted_through_the_ca_bundle(default: list[dict]) -> None:
    secret = find(default, "Secret", "tenantry-webhook-tls")
    assert secret["type"] == "kubernetes.io/tls"
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        config = find(default, kind, "tenantry")
        assert {w["clientConfig"]["caBundle"] for w in config["webhooks"]} == {secret["data"]["ca.crt"]}
        assert "cert-manager.io/inject-ca-from" not in config["metadata"].get("annotations", {})
    ca, crt, key = (base64.b64decode(secret["data"][k]) for k in ("ca.crt", "tls.crt", "tls.key"))
    assert key.startswith(b"-----BEGIN EC PRIVATE KEY-----")  # cheap handshakes (see webhook.yaml)
    for host in ("tenantry.tenantry-system.svc", "tenantry.tenantry-system.svc.cluster.local"):
        _handshake(ca, crt, key, host)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(ca, crt, key, "tenantry.other-namespace.svc")


def test_webhook_disabled_removes_every_webhook_part() -> None:
    objects = render({"webhook": {"enabled": False}})
    assert {o["kind"] for o in objects} & {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "Secret",
                                           "Certificate", "Issuer"} == set()
    operator = container(objects)
    assert {"TENANTRY_WEBHOOK_PORT", "TENANTRY_WEBHOOK_CERT_DIR"} & set(env(objects)) == set()
    assert [p["name"] for p in operator["ports"]] == ["metrics", "health"]
    assert "/tls" not in {m["mountPath"] for m in operator["volumeMounts"]}
    assert [p["name"] for p in find(objects, "Service", "tenantry")["spec"]["ports"]] == ["metrics"]


# --- RBAC ---------------------------------------------------------------------------------------

def test_operator_cluster_role_is_exactly_the_contract(default: list[dict]) -> None:
    assert sorted(_rules(default, "ClusterRole", "tenantry-operator")) == sorted([
        _rule(["tenantry.dev"], ["tenants"], ["get", "list", "watch", "patch"]),
        _rule(["tenantry.dev"], ["tenants/status"], ["patch"]),
        _rule(["tenantry.dev"], ["featuresets", "brandings"], ["get", "list", "watch"]),
        _rule(["tenantry.dev"], ["deals"], ["list", "watch"]),
        _rule([""], ["namespaces"], VERBS_ALL),
        _rule([""], ["resourcequotas", "limitranges", "configmaps"], CHILD_VERBS),
        _rule(["networking.k8s.io"], ["networkpolicies", "ingresses"], CHILD_VERBS),
        _rule(["rbac.authorization.k8s.io"], ["rolebindings"], CHILD_VERBS),
        _rule(["rbac.authorization.k8s.io"], ["clusterroles"], ["bind"], ("tenantry-tenant-admin",)),
        _rule(["", "events.k8s.io"], ["events"], ["create", "patch"]),
        _rule([""], ["pods"], ["get", "list", "watch", "delete"]),
        _rule(["cert-manager.io"], ["certificates"], VERBS_UNWATCHED),
        _rule(["externaldns.k8s.io"], ["dnsendpoints"], VERBS_UNWATCHED),
        _rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], ["get", "list", "watch"]),
        _rule(["apps"], ["deployments", "statefulsets"], ["list"]),
        _rule(["apps"], ["deployments/scale", "statefulsets/scale"], ["patch"]),
        _rule([""], ["services"], ["get", "list", "watch", "patch"]),
    ])


def test_every_operator_rule_says_why() -> None:
    text = (CHART / "templates" / "rbac-operator.yaml").read_text().splitlines()
    starts = [n for n, line in enumerate(text) if line.startswith("- apiGroups:")]
    assert len(starts) == 20
    assert [text[n + 1] for n in starts if not text[n - 1].startswith("# ")] == []


@pytest.mark.parametrize("values", [None, FULL_VALUES], ids=["defaults", "full"])
def test_no_wildcards_and_bind_only_by_name(values: dict | None) -> None:
    for role in (o for o in render(values) if o["kind"] in ("ClusterRole", "Role")):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), (role["metadata"]["name"], rule)
            for verb in ("bind", "escalate", "impersonate"):
                if verb in rule["verbs"] and role["metadata"]["name"].endswith("-operator"):
                    assert verb == "bind" and rule["resourceNames"] == ["tenantry-tenant-admin"], rule


def test_no_cluster_wide_secret_access(default: list[dict]) -> None:
    cluster_roles = {o["metadata"]["name"]: o for o in default if o["kind"] == "ClusterRole"}
    bound_cluster_wide = {o["roleRef"]["name"] for o in default if o["kind"] == "ClusterRoleBinding"}
    assert bound_cluster_wide == {"tenantry-operator", "tenantry-portal"}
    for name in bound_cluster_wide:
        assert all("secrets" not in rule.get("resources", []) for rule in cluster_roles[name]["rules"])
    role = find(default, "Role", "tenantry-operator")
    assert role["metadata"]["namespace"] == NS
    assert sorted(_rules(default, "Role", "tenantry-operator")) == sorted([
        _rule([""], ["secrets"], ["get", "list", "create", "patch", "delete"]),
        _rule(["coordination.k8s.io"], ["leases"], ["get", "list", "create", "patch", "delete"]),
        _rule([""], ["pods"], ["patch"]),
    ])


def test_bindings_give_the_operator_its_roles(default: list[dict]) -> None:
    subject = [{"kind": "ServiceAccount", "name": "tenantry", "namespace": NS}]
    for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = find(default, kind, "tenantry-operator")
        assert binding["subjects"] == subject
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                                      "name": "tenantry-operator"}
    assert find(default, "ServiceAccount", "tenantry")["metadata"]["namespace"] == NS


def test_tenant_admin_role(default: list[dict]) -> None:
    assert _rules(default, "ClusterRole", "tenantry-tenant-admin") == [
        _rule(["", "apps", "batch", "autoscaling", "policy"],
              ["pods", "pods/log", "pods/exec", "pods/portforward", "services", "configmaps", "secrets",
               "persistentvolumeclaims", "serviceaccounts", "deployments", "statefulsets", "daemonsets", "replicasets",
               "jobs", "cronjobs", "horizontalpodautoscalers", "poddisruptionbudgets"],
              ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]),
        _rule(["", "networking.k8s.io"], ["resourcequotas", "limitranges", "networkpolicies", "events", "endpoints",
                                          "ingresses"],
              ["get", "list", "watch"]),
    ]
    assert env(default)["TENANTRY_TENANT_ADMIN_CLUSTERROLE"]["value"] == "tenantry-tenant-admin"


def test_rendered_documents_are_plain_yaml(default: list[dict]) -> None:
    # What an integration test applies: every object round-trips through YAML and is namespaced
    # only where it should be.
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration",
                      "MutatingWebhookConfiguration", "Namespace"}
    for obj in default:
        assert yaml.safe_load(yaml.safe_dump(obj)) == obj
        assert ("namespace" in obj["metadata"]) == (obj["kind"] not in cluster_scoped), obj["metadata"]


# --- The welcome e-mail's relay ---------------------------------------------------------------


def test_smtp_values_reach_the_operator_and_the_password_only_from_its_secret() -> None:
    objects = render({"operator": {"smtp": {"host": "smtp.example.com", "port": 465, "tls": "tls",
                                            "from": "welcome@saas.example.com",
                                            "allowedFromDomains": ["acme.example", "nordlicht.example"],
                                            "existingSecret": "tenantry-smtp", "language": "de",
                                            "partnerHourlyLimit": 50}}})
    variables = env(objects)
    assert variables["TENANTRY_SMTP_PASSWORD"] == {
        "name": "TENANTRY_SMTP_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "tenantry-smtp", "key": "password"}}}
    assert variables["TENANTRY_SMTP_USERNAME"]["valueFrom"]["secretKeyRef"] == {"name": "tenantry-smtp",
                                                                                 "key": "username"}
    # The operator's own parser reads what the chart renders (a stand-in for the Secret's values).
    smtp = Settings.from_env({**_values(variables), "TENANTRY_SMTP_USERNAME": "u",
                              "TENANTRY_SMTP_PASSWORD": "p"}).smtp
    assert (smtp.host, smtp.port, smtp.tls, smtp.sender) == ("smtp.example.com", 465, "tls", "welcome@saas.example.com")
    assert smtp.allowed_from_domains == ("acme.example", "nordlicht.example")
    assert (smtp.language, smtp.partner_hourly_limit, smtp.password) == ("de", 50, "p")


def test_without_an_smtp_host_nothing_about_smtp_is_rendered(default: list[dict]) -> None:
    assert not [name for name in env(default) if "SMTP" in name or "WELCOME" in name]
    assert not Settings.from_env(_values(env(default))).smtp.configured


def test_an_smtp_host_without_a_from_address_is_refused() -> None:
    with pytest.raises(helm.HelmError) as error:
        render({"operator": {"smtp": {"host": "smtp.example.com"}}})
    assert "from" in str(error.value)
