"""Every documented values combination of the charts, accepted by the real API server; the
tenantry-partners chart created for real; the `helm test` pod's check run against the real operator.

Tested here:
- each combination in tests/unit/chart.py COMBINATIONS (defaults, every option on, CRDs not
  installed or not kept, an existing ServiceAccount, OpenShift's security context, an image
  digest, name and fullname overrides, a parent chart's globals, PodDisruptionBudget variants, one
  replica, webhook/portal/tests off, the legacy `partners` value), rendered by the real Helm engine
  for the cluster's Kubernetes version as `helm install` renders it there: every object, the CRDs
  and the `helm test` pod included, passes a server-side dry run (the partner namespaces a
  combination creates are created for real first, since nothing can be dry-run into a namespace
  that does not exist)
- the tenantry-partners chart (two partners in one release), created for real: the namespaces are
  labelled as partners and annotated as given; each partner's own ServiceAccount token may manage
  Tenants in its own namespace only, read the platform's FeatureSets and Brandings, and no Secrets
- the `helm test` pod's script, run here against the real operator's /metrics and its admission
  webhook's TLS port (a certificate for 127.0.0.1): passes; with another CA it fails
"""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tenantry.devtools import chart, localwebhook
from tests.integration.fixtures import PLATFORM_NAMESPACE, ClusterHandle, OperatorProcess, stand_in_crd, wait_for
from tests.integration.net import free_port
from tests.integration.test_chart_install import STAND_INS
from tests.unit.chart import COMBINATIONS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kube_version(cluster: ClusterHandle) -> str:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([stand_in_crd(*s) for s in STAND_INS]))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    cluster.kubectl("create", "namespace", "grafana", check=False)  # the full values' dashboards namespace
    return chart.server_version(cluster.kubeconfig)


def _own_partners(values: dict[str, Any], suffix: str) -> dict[str, Any]:
    """The values with partner ids and namespaces of this test run only (never a real partner's)."""
    values = copy.deepcopy(values)
    for partner in values.get("partners", []):
        partner["id"] = f"{partner['id']}-{suffix}"
        if "namespace" in partner:
            partner["namespace"] = f"{partner['namespace']}-{suffix}"
    return values


def _dry_run(cluster: ClusterHandle, objects: list[dict]) -> set[str]:
    # Forcing conflicts: the cluster's CRDs may have fields of another manager (a real Helm release
    # of test_chart_helm.py); what is checked here is what the API server accepts.
    out = cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=helm", "--dry-run=server",
                          "-o", "name", "-f", "-", input=yaml.safe_dump_all(objects)).stdout
    return {f"{line.split('/', 1)[0].split('.', 1)[0]}/{line.split('/', 1)[1]}" for line in out.split()}


@pytest.mark.parametrize("combination", sorted(COMBINATIONS))
def test_every_documented_combination_is_accepted(cluster: ClusterHandle, kube_version: str,
                                                  combination: str) -> None:
    suffix = uuid.uuid4().hex[:6]
    values = _own_partners(COMBINATIONS[combination], suffix)
    name = "tenantry" if combination == "defaults" else f"c-{combination}"[:40]
    options = {"name": name, "namespace": PLATFORM_NAMESPACE, "kube_version": kube_version}
    objects = [*chart.crds(values, **options), *chart.render(values, **options), *chart.hooks(values, **options)]
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    try:
        if namespaces:
            chart.apply(cluster.kubeconfig, namespaces)
        others = [o for o in objects if o["kind"] != "Namespace"]
        assert _dry_run(cluster, others) == {f"{o['kind'].lower()}/{o['metadata']['name']}" for o in others}
    finally:
        for namespace in namespaces:
            cluster.kubectl("delete", "namespace", namespace["metadata"]["name"], "--wait=false", "--ignore-not-found")
    kinds = {o["kind"] for o in objects}
    assert ("CustomResourceDefinition" in kinds) == (combination != "crds-not-installed")
    assert ("PodDisruptionBudget" in kinds) == (combination != "pdb-off")


@pytest.fixture
def partners_release(cluster: ClusterHandle, kube_version: str) -> Iterator[tuple[str, list[dict]]]:
    suffix = uuid.uuid4().hex[:6]
    release = f"partners-{suffix}"
    objects = chart.render({"partners": [{"id": f"pa-{suffix}", "commissionRate": 0.3, "quarterlyTarget": 9000},
                                         {"id": f"pb-{suffix}", "namespace": f"pb-ns-{suffix}",
                                          "emailFromDomains": ["pb.example"]}]},
                           release, PLATFORM_NAMESPACE, chart=chart.PARTNERS_CHART, kube_version=kube_version)
    yield release, objects
    for obj in objects:
        if obj["kind"] == "Namespace":
            cluster.kubectl("delete", "namespace", obj["metadata"]["name"], "--wait=false", "--ignore-not-found")
    cluster.kubectl("delete", "rolebinding", "-n", PLATFORM_NAMESPACE, "-l", f"app.kubernetes.io/instance={release}",
                    "--ignore-not-found")


def test_the_partners_chart_gives_each_partner_its_own_namespace(cluster: ClusterHandle,
                                                                 partners_release: tuple[str, list[dict]],
                                                                 tmp_path: Path) -> None:
    _, objects = partners_release
    chart.apply(cluster.kubeconfig, objects)
    namespaces = {o["metadata"]["labels"]["tenantry.dev/partner"]: o["metadata"]["name"]
                  for o in objects if o["kind"] == "Namespace"}
    (first, own), (second, other) = sorted(namespaces.items())
    stored = yaml.safe_load(cluster.kubectl("get", "namespace", own, "-o", "yaml").stdout)["metadata"]
    assert stored["labels"]["tenantry.dev/partner"] == first
    assert stored["annotations"]["tenantry.dev/commission-rate"] == "0.3"
    assert stored["annotations"]["helm.sh/resource-policy"] == "keep"
    assert other == f"pb-ns-{second.split('-', 1)[1]}"
    kubeconfig = chart.service_account_kubeconfig(cluster.kubeconfig, own, "tenantry-gitops", tmp_path / "p.kubeconfig")

    def can(*args: str) -> bool:
        result = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "auth", "can-i", *args],
                                capture_output=True, text=True, timeout=60)
        return result.stdout.strip() == "yes"

    assert can("create", "tenants.tenantry.dev", "-n", own)
    assert not can("create", "tenants.tenantry.dev", "-n", other)
    assert can("list", "featuresets.tenantry.dev", "-n", PLATFORM_NAMESPACE)
    assert can("get", "brandings.tenantry.dev", "-n", PLATFORM_NAMESPACE)
    assert not can("create", "featuresets.tenantry.dev", "-n", PLATFORM_NAMESPACE)
    assert not can("get", "secrets", "-n", own)
    assert not can("patch", f"namespaces/{own}")


def _test_pod_script() -> str:
    (pod,) = chart.hooks()
    command = pod["spec"]["containers"][0]["command"]
    assert command[:2] == ["python", "-c"]
    return command[2]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_helm_test_check_passes_against_the_real_operator(operator: OperatorProcess,
                                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("webhook-tls")
    ca = localwebhook.serving_certificate(folder)
    port = free_port()
    operator.restart_with({"TENANTRY_WEBHOOK_PORT": str(port), "TENANTRY_WEBHOOK_ADDRESS": "127.0.0.1",
                           "TENANTRY_WEBHOOK_CERT_DIR": str(folder)})
    wait_for(lambda: _listening(port), timeout=60, what="the webhook port")
    (folder / "other-ca").mkdir()
    other_ca = localwebhook.serving_certificate(folder / "other-ca")
    try:
        environment = {**os.environ, "METRICS_URL": f"http://127.0.0.1:{operator.metrics_port}/metrics",
                       "WEBHOOK_HOST": "127.0.0.1", "WEBHOOK_PORT": str(port)}
        runs = {}
        for name, authority in (("right", ca), ("other", other_ca)):
            (folder / f"{name}.crt").write_bytes(authority)
            runs[name] = subprocess.run([sys.executable, "-c", _test_pod_script()],
                                        env={**environment, "WEBHOOK_CA": str(folder / f"{name}.crt")},
                                        capture_output=True, text=True, timeout=120)
    finally:
        operator.restart_with({})
    assert runs["right"].returncode == 0, runs["right"].stderr
    assert "/metrics: ok" in runs["right"].stdout and "certificate trusted" in runs["right"].stdout
    assert runs["other"].returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in runs["other"].stderr
