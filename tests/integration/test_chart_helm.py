"""Real `helm install`, `upgrade` and `uninstall` (the Helm 4 engine of helm-python-sdk) on the
local control plane, with the commands the chart READMEs and docs/helm.md document, run as
written (only their first line, the names, is set for the test).

Tested here:
- CRDs from an earlier chart version (applied outside any release) stop a first install with
  Helm's ownership error; after the README's hand-over commands the release adopts them, a later
  upgrade changes them (they are templates), turning crds.install off and uninstalling keep them
- a partner namespace applied by GitOps stops a tenantry-partners install the same way; after the
  README's commands the release adopts it, and uninstalling keeps it
- partners move from the tenantry release's `partners` value to a tenantry-partners release with the
  README's commands: the ServiceAccount (so its tokens) survives, the bindings follow
- the plain-YAML partner of docs/helm.md and the README's partner kubeconfig: the kubeconfig works
  and may manage its own namespace only

Webhook off in every release here: a real webhook configuration would send every Tenant write in
the cluster to a Service without pods. The operator pods never run (no kubelet): Helm does not wait.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tenantry.devtools import chart
from tests.integration.fixtures import PLATFORM_NAMESPACE, ClusterHandle

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CRDS = ("tenants", "brandings", "featuresets", "deals")
BASE = {"operator": {"platformDomain": "helm.example"}, "webhook": {"enabled": False},
        "portal": {"enabled": False}}


def _block(path: Path, marker: str) -> str:
    """The code block after `<!-- test: marker -->` in a document."""
    after = path.read_text().split(f"<!-- test: {marker} -->\n", 1)[1]
    return after.split("```", 2)[1].split("\n", 1)[1]


def _run(cluster: ClusterHandle, block: str, cwd: Path | None = None, **names: str) -> str:
    """A documented shell block with its first line (NAME=value ...) set to these names."""
    first, rest = block.split("\n", 1)
    assert [pair.split("=", 1)[0] for pair in first.split()] == list(names), first
    script = " ".join(f"{key}={shlex.quote(value)}" for key, value in names.items()) + "\n" + rest
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=cwd, env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)})
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def namespace(cluster: ClusterHandle) -> Iterator[str]:
    name = f"helm-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@pytest.fixture
def helm_config(cluster: ClusterHandle, namespace: str) -> Iterator[helm.Config]:
    config = helm.Config(kubeconfig_path=str(cluster.kubeconfig), namespace=namespace)
    releases: list[str] = []
    config.releases = releases  # type: ignore[attr-defined]
    yield config
    for release in releases:
        config.uninstall(release, ignore_not_found=True)
        cluster.kubectl("delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={release}",
                        "--ignore-not-found")
    config.close()


def _install(config: helm.Config, chart_path: Path, release: str, values: dict[str, Any], namespace: str) -> None:
    config.releases.append(release)  # type: ignore[attr-defined]
    config.install(str(chart_path), release, values, namespace=namespace, timeout=120)


def _crd(cluster: ClusterHandle, name: str) -> dict:
    return yaml.safe_load(cluster.kubectl("get", "crd", f"{name}.tenantry.dev", "-o", "yaml").stdout)["metadata"]


@pytest.fixture
def crds_outside_any_release(cluster: ClusterHandle) -> Iterator[None]:
    """The cluster's CRDs as an earlier chart left them; afterwards with the labels and annotations of
    crds/ again (Helm's field manager still co-owns the spec: other tests apply them client-side)."""
    yield
    for name in CRDS:
        cluster.kubectl("label", "crd", f"{name}.tenantry.dev", "example.com/upgraded-", "helm.sh/chart-",
                        *(f"app.kubernetes.io/{key}-" for key in ("managed-by", "instance", "name", "component",
                                                                  "version")))
        cluster.kubectl("annotate", "crd", f"{name}.tenantry.dev", "meta.helm.sh/release-name-",
                        "meta.helm.sh/release-namespace-", "helm.sh/resource-policy-")


def test_crds_are_handed_to_a_release_upgraded_and_kept(cluster: ClusterHandle, namespace: str,
                                                        helm_config: helm.Config,
                                                        crds_outside_any_release: None) -> None:
    release = f"crd-{namespace}"
    tenants_before = cluster.kubectl("get", "tenants", "-A", "-o", "name").stdout
    # An earlier version's CRDs, applied client-side (one description differs).
    current = (REPO / "crds" / "tenantry.dev_tenants.yaml").read_text()
    old = current.replace("'Desired state of a Tenant: one customer of a partner.'", "An earlier description.")
    assert old != current
    cluster.kubectl("apply", "-f", "-", input=old)
    with pytest.raises(helm.HelmError) as refused:
        _install(helm_config, chart.CHART, release, BASE, namespace)
    assert "invalid ownership metadata" in str(refused.value) and "tenantry.dev" in str(refused.value)
    # helm-python's Helm applies as "python" (its binary's name), the helm CLI as "helm".
    _run(cluster, _block(chart.CHART / "README.md", "adopt-crds"), cwd=REPO, RELEASE=release, NAMESPACE=namespace,
         FIELD_MANAGER="python")
    helm_config.install(str(chart.CHART), release, BASE, namespace=namespace, timeout=120)
    assert "An earlier description." not in cluster.kubectl("get", "crd", "tenants.tenantry.dev", "-o", "yaml").stdout
    for name in CRDS:
        metadata = _crd(cluster, name)
        assert metadata["labels"]["app.kubernetes.io/instance"] == release
        assert metadata["labels"]["app.kubernetes.io/component"] == "crds"
        assert metadata["annotations"]["helm.sh/resource-policy"] == "keep"
    # The CRDs are templates: an upgrade changes them.
    helm_config.upgrade(str(chart.CHART), release, {**BASE, "commonLabels": {"example.com/upgraded": "yes"}},
                        namespace=namespace, timeout=120)
    assert _crd(cluster, "tenants")["labels"]["example.com/upgraded"] == "yes"
    # Neither leaving them out nor uninstalling deletes them (keep), nor any Tenant.
    helm_config.upgrade(str(chart.CHART), release, {**BASE, "crds": {"install": False}}, namespace=namespace,
                        timeout=120)
    helm_config.uninstall(release)
    for name in CRDS:
        assert _crd(cluster, name)["name"] == f"{name}.tenantry.dev"
    assert cluster.kubectl("get", "tenants", "-A", "-o", "name").stdout == tenants_before


def test_a_partner_namespace_made_by_gitops_is_handed_to_a_partners_release(
        cluster: ClusterHandle, namespace: str, helm_config: helm.Config) -> None:
    partner = f"gitops-{namespace}"
    partner_namespace = f"partner-{partner}"
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump({  # as examples/tenants/partners/ does
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": partner_namespace, "labels": {"tenantry.dev/partner": partner}}}))
    try:
        values = {"partners": [{"id": partner}], "tenantry": {"namespace": PLATFORM_NAMESPACE}}
        with pytest.raises(helm.HelmError) as refused:
            _install(helm_config, chart.PARTNERS_CHART, partner, values, namespace)
        assert "invalid ownership metadata" in str(refused.value)
        _run(cluster, _block(chart.PARTNERS_CHART / "README.md", "adopt-namespace"), RELEASE=partner,
             NAMESPACE=namespace, PARTNER_NAMESPACE=partner_namespace)
        helm_config.install(str(chart.PARTNERS_CHART), partner, values, namespace=namespace, timeout=120)
        labels = yaml.safe_load(cluster.kubectl("get", "namespace", partner_namespace, "-o", "yaml").stdout
                                )["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == partner and labels["tenantry.dev/partner"] == partner
        cluster.kubectl("get", "serviceaccount", "tenantry-gitops", "-n", partner_namespace)
        helm_config.uninstall(partner)
        assert cluster.kubectl("get", "namespace", partner_namespace, "-o", "name").stdout.strip()  # kept
        assert cluster.kubectl("get", "serviceaccount", "-n", partner_namespace, "tenantry-gitops",
                               check=False).returncode != 0
    finally:
        cluster.kubectl("delete", "namespace", partner_namespace, "--wait=false", "--ignore-not-found")


def test_partners_move_out_of_the_tenantry_release_keeping_their_account(
        cluster: ClusterHandle, namespace: str, helm_config: helm.Config) -> None:
    operator_release, partner = f"op-{namespace}", f"mv-{namespace}"
    fullname = f"{operator_release}-tenantry"
    partner_namespace = f"partner-{partner}"
    legacy = {**BASE, "crds": {"install": False}, "partners": [{"id": partner, "commissionRate": 0.25}]}
    try:
        _install(helm_config, chart.CHART, operator_release, legacy, namespace)

        def account_uid() -> str:
            return cluster.kubectl("get", "serviceaccount", "tenantry-gitops", "-n", partner_namespace, "-o",
                                   "jsonpath={.metadata.uid}").stdout

        uid = account_uid()
        _run(cluster, _block(chart.PARTNERS_CHART / "README.md", "move-partner"), RELEASE=partner,
             NAMESPACE=namespace, PARTNER_NAMESPACE=partner_namespace, FULLNAME=fullname)
        _install(helm_config, chart.PARTNERS_CHART, partner,
                 {"tenantry": {"fullname": fullname}, "partners": [{"id": partner, "commissionRate": 0.25}]},
                 namespace)
        helm_config.upgrade(str(chart.CHART), operator_release, {**legacy, "partners": []}, namespace=namespace,
                            timeout=120)
        cluster.kubectl("annotate", "-n", partner_namespace, "serviceaccount/tenantry-gitops",
                        f"rolebinding/{fullname}-partner", "helm.sh/resource-policy-")
        assert account_uid() == uid  # the same account: tokens issued before still work
        binding = yaml.safe_load(cluster.kubectl("get", "rolebinding", f"{fullname}-partner", "-n", partner_namespace,
                                                 "-o", "yaml").stdout)
        assert binding["metadata"]["annotations"]["meta.helm.sh/release-name"] == partner
        bindings = cluster.kubectl("get", "rolebinding", "-n", namespace, "-o", "name").stdout.split()
        assert f"rolebinding.rbac.authorization.k8s.io/{fullname}-partners-{partner}" in bindings
        assert f"rolebinding.rbac.authorization.k8s.io/{fullname}-partners" not in bindings  # the old release's
    finally:
        cluster.kubectl("delete", "namespace", partner_namespace, "--wait=false", "--ignore-not-found")


def test_a_gitops_partner_and_its_kubeconfig(cluster: ClusterHandle, tmp_path: Path) -> None:
    partner = f"acme-{uuid.uuid4().hex[:6]}"
    partner_namespace = f"partner-{partner}"
    text = _block(REPO / "docs" / "helm.md", "gitops-partner").replace("acme-it", partner)
    objects = list(yaml.safe_load_all(text))
    assert {o["metadata"].get("namespace") for o in objects} == {None, partner_namespace, PLATFORM_NAMESPACE}
    cluster.kubectl("apply", "-f", "-", input=text)
    try:
        _run(cluster, _block(chart.PARTNERS_CHART / "README.md", "partner-kubeconfig"), cwd=tmp_path,
             PARTNER_NAMESPACE=partner_namespace)
        kubeconfig = tmp_path / "acme-it.kubeconfig"

        def can(*args: str) -> bool:
            result = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "auth", "can-i", *args],
                                    capture_output=True, text=True, timeout=60)
            return result.stdout.strip() == "yes"

        assert can("create", "tenants.tenantry.dev")  # the context's namespace: its own
        assert can("list", "featuresets.tenantry.dev", "-n", PLATFORM_NAMESPACE)
        assert not can("create", "tenants.tenantry.dev", "-n", PLATFORM_NAMESPACE)
        assert not can("get", "secrets")
        assert not can("list", "namespaces")
    finally:
        cluster.kubectl("delete", "namespace", partner_namespace, "--wait=false", "--ignore-not-found")
        cluster.kubectl("delete", "rolebinding", f"tenantry-partner-{partner}", "-n", PLATFORM_NAMESPACE,
                        "--ignore-not-found")
