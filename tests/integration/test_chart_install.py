"""The Helm chart's rendered manifests, applied to the real API server (server-side apply), rendered
for the cluster's Kubernetes version as `helm install` renders them there (policy/v1beta1
PodDisruptionBudget on 1.20).

Tested here:
- default values: every object is accepted by a server-side dry run in the platform namespace
  (the webhook configuration, the CRDs and the `helm test` pod included)
- full values (2 partners, cert-manager, ServiceMonitor, PrometheusRule, dashboards, RFC 2136 DNS,
  3 replicas): every object is created for real in a fresh release namespace, except the webhook
  configuration (dry run: a real one would send every Tenant write to a Service with no pod here),
  and the partner namespaces come out labelled as partners

The CRDs of cert-manager (Issuer, Certificate) and prometheus-operator (ServiceMonitor,
PrometheusRule) are stand-ins: the real ones cannot be downloaded here. They accept any spec, so
for those objects the test checks apiVersion, kind, metadata and namespacing only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tenantry.devtools import chart
from tenantry.devtools.localwebhook import WEBHOOK_KINDS
from tests.integration.fixtures import PLATFORM_NAMESPACE, ClusterHandle, stand_in_crd
from tests.unit.chart import FULL_VALUES

pytestmark = pytest.mark.integration

STAND_INS = [("cert-manager.io", "v1", "Issuer", "issuers"),
             ("cert-manager.io", "v1", "Certificate", "certificates"),
             ("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors"),
             ("monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules")]


def _apply(cluster: ClusterHandle, objects: list[dict], *extra: str) -> set[str]:
    """kind/name of every object the API server accepted, e.g. deployment.apps/tenantry."""
    out = cluster.kubectl("apply", "--server-side", "--field-manager=helm", *extra, "-o", "name", "-f", "-",
                          input=yaml.safe_dump_all(objects)).stdout
    accepted = set()
    for line in out.split():
        kind_and_group, name = line.split("/", 1)
        accepted.add(f"{kind_and_group.split('.', 1)[0]}/{name}")
    return accepted


def _names(objects: list[dict]) -> set[str]:
    return {f"{o['kind'].lower()}/{o['metadata']['name']}" for o in objects}


def test_default_values_are_accepted_by_the_api_server(cluster: ClusterHandle) -> None:
    version = chart.server_version(cluster.kubeconfig)
    objects = [*chart.crds(namespace=PLATFORM_NAMESPACE, kube_version=version),
               *chart.render(namespace=PLATFORM_NAMESPACE, kube_version=version),
               *chart.hooks(namespace=PLATFORM_NAMESPACE, kube_version=version)]
    assert {"CustomResourceDefinition", "PodDisruptionBudget", "Pod"} <= {o["kind"] for o in objects}
    # Forcing conflicts: the CRDs may have fields of a real Helm release's manager (test_chart_helm.py).
    assert _apply(cluster, objects, "--dry-run=server", "--force-conflicts") == _names(objects)


@pytest.fixture
def release(cluster: ClusterHandle) -> Iterator[tuple[str, list[str]]]:
    suffix = uuid.uuid4().hex[:6]
    namespace = f"chart-full-{suffix}"
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([stand_in_crd(*s) for s in STAND_INS]))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    cluster.kubectl("create", "namespace", namespace)
    partner_namespaces = [f"partner-full-a-{suffix}", f"full-b-{suffix}"]
    cluster.kubectl("create", "namespace", "grafana", check=False)
    yield namespace, partner_namespaces
    for name in (namespace, *partner_namespaces):
        cluster.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")
    cluster.kubectl("delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance=full-{suffix}",
                    "--ignore-not-found")


def test_full_values_are_created_for_real(cluster: ClusterHandle, release: tuple[str, list[str]],
                                          tmp_path: Path) -> None:
    namespace, partner_namespaces = release
    suffix = namespace.rsplit("-", 1)[1]
    values = {**FULL_VALUES, "partners": [{"id": f"full-a-{suffix}"},
                                          {"id": f"full-b-{suffix}", "namespace": partner_namespaces[1]}]}
    objects = chart.render(values, name=f"full-{suffix}", namespace=namespace,
                           kube_version=chart.server_version(cluster.kubeconfig))
    webhooks = [o for o in objects if o["kind"] in WEBHOOK_KINDS]
    created = [o for o in objects if o["kind"] not in WEBHOOK_KINDS]
    assert {o["kind"] for o in created} >= {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                                            "RoleBinding", "Service", "Deployment", "Issuer", "Certificate",
                                            "ServiceMonitor", "PrometheusRule", "ConfigMap", "PodDisruptionBudget"}
    assert _apply(cluster, created) == _names(created)
    assert _apply(cluster, webhooks, "--dry-run=server") == _names(webhooks)
    for partner_namespace, partner_id in zip(partner_namespaces, (f"full-a-{suffix}", f"full-b-{suffix}"),
                                             strict=True):
        labels = cluster.kubectl("get", "namespace", partner_namespace, "-o", "jsonpath={.metadata.labels}").stdout
        assert f'"tenantry.dev/partner":"{partner_id}"' in labels
        sa = cluster.kubectl("get", "serviceaccount", "flux-applier", "-n", partner_namespace, "-o", "name").stdout
        assert sa.strip() == "serviceaccount/flux-applier"
    deployment = cluster.kubectl("get", "deployment", f"full-{suffix}-tenantry", "-n", namespace, "-o",
                                 "jsonpath={.spec.replicas} {.spec.template.spec.securityContext.runAsNonRoot}").stdout
    assert deployment == "3 true"
