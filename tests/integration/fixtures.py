"""Fixtures for tests against a real control plane (a plugin: tests/conftest.py registers it once).

- `cluster`: the local kube-apiserver + etcd + kube-controller-manager, started by the same code
  as `make cluster` (or an existing cluster when TENANTRY_USE_EXISTING_CLUSTER=1 and KUBECONFIG).
- `operator`: the real operator as a subprocess (restartable, SIGKILL-able), resync every 3 s,
  authenticated as the Helm chart's own ServiceAccount with the chart's RBAC (a TokenRequest
  token), never as cluster admin: every integration test is also a least-privilege test.
- `watch_triggered`: the same operator with a resync of an hour, for modules proving watch triggers.
- `partner`: a fresh partner namespace per test, so tests cannot see each other; everything the
  test created is removed afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Namespace
from prometheus_client.parser import text_string_to_metric_families

from tenantry.adapters.kube import Tenant
from tenantry.devtools import chart
from tenantry.devtools import cluster as local_cluster
from tests.integration.net import free_port

REPO = Path(__file__).resolve().parents[2]
PLATFORM_NAMESPACE = "tenantry-system"
RESYNC_SECONDS = 3
# For tests that prove a watch triggers a pass: no resync falls inside a test.
LONG_RESYNC = {"TENANTRY_RESYNC_SECONDS": "3600"}
# What the operator writes for tenants (events: a Ready transition), for counting its write requests.
OPERATOR_RESOURCES = {"tenants", "namespaces", "resourcequotas", "limitranges", "networkpolicies", "roles",
                      "rolebindings", "configmaps", "events"}
WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE"}  # APPLY: server-side apply


def wait_for(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


@dataclass
class ClusterHandle:
    kubeconfig: Path
    local: local_cluster.Cluster | None
    client: Client

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["kubectl", "--kubeconfig", str(self.kubeconfig), *args], input=input,
                                capture_output=True, text=True, timeout=360)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def apiserver_requests(self, verbs: set[str], resources: set[str],
                           scopes: set[str] | None = None) -> dict[str, float]:
        """Requests the API server counted (apiserver_request_total), per verb and resource/subresource;
        `scopes`: only those of these scopes (cluster, namespace, resource)."""
        text = self.kubectl("get", "--raw", "/metrics").stdout
        counts: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "apiserver_request":
                continue
            for sample in family.samples:
                labels = sample.labels
                if (sample.name == "apiserver_request_total" and labels.get("verb") in verbs
                        and labels.get("resource") in resources and labels.get("subresource", "") in ("", "status")
                        and (scopes is None or labels.get("scope") in scopes)
                        and not (labels.get("resource") == "resourcequotas" and labels.get("subresource") == "status")):
                    key = f"{labels['verb']} {labels['resource']}/{labels.get('subresource', '')}"
                    counts[key] = counts.get(key, 0) + sample.value
        return counts

    def apiserver_writes(self, resources: set[str]) -> dict[str, float]:
        """Write requests (POST/PUT/PATCH/DELETE) the API server counted, per resource."""
        return self.apiserver_requests(WRITE_VERBS, resources)

    def tenant_reads(self) -> dict[str, float]:
        """Reads of Tenants within a namespace the API server counted: each pass begins with one
        (kube-apiserver 1.20 counts a GET of a custom resource as a namespace-scoped LIST)."""
        return self.apiserver_requests({"GET", "LIST"}, {"tenants"}, scopes={"namespace", "resource"})


def settle(*counters: Callable[[], Any], scrapes: int = 3, interval: float = 1.0, timeout: float = 180,
           what: str = "counters") -> list[Any]:
    """The counters' values once `scrapes` readings in a row, `interval` seconds apart, agree."""
    deadline = time.monotonic() + timeout
    readings: list[list[Any]] = []
    while time.monotonic() < deadline:
        readings = [*readings[-(scrapes - 1):], [count() for count in counters]]
        if len(readings) == scrapes and all(r == readings[0] for r in readings):
            return readings[-1]
        time.sleep(interval)
    raise AssertionError(f"{what} still changing after {timeout}s; last readings: {readings!r}")


def diff(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What changed between two readings of request counts."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterHandle]:
    if os.environ.get("TENANTRY_USE_EXISTING_CLUSTER") == "1":
        kubeconfig, local = Path(os.environ["KUBECONFIG"]), None
    else:
        local = local_cluster.default_cluster()
        started_here = not local_cluster.running(local)
        local_cluster.up(local)
        kubeconfig = local.kubeconfig
    client = Client(config=KubeConfig.from_file(str(kubeconfig)), field_manager="tests")
    handle = ClusterHandle(kubeconfig, local, client)
    handle.kubectl("apply", "-f", str(REPO / "crds"))
    handle.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    handle.kubectl("apply", "-f", "-", input=PLATFORM_YAML)
    rbac = [obj for obj in chart.render(namespace=PLATFORM_NAMESPACE) if obj["kind"] in chart.RBAC_KINDS]
    chart.apply(kubeconfig, rbac)
    yield handle
    client.close()
    if local is not None and started_here:
        local_cluster.down(local)  # a developer's own `make cluster` keeps running


PLATFORM_YAML = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {PLATFORM_NAMESPACE}}}
---
apiVersion: tenantry.dev/v1alpha1
kind: FeatureSet
metadata: {{name: starter, namespace: {PLATFORM_NAMESPACE}}}
spec:
  features: {{chat: {{enabled: true}}}}
  resources: {{base: {{cpu: "1", memory: 2Gi, storage: 5Gi, pods: 10}}, perSeat: {{cpu: 10m, memory: 16Mi}}}}
---
apiVersion: tenantry.dev/v1alpha1
kind: FeatureSet
metadata: {{name: business, namespace: {PLATFORM_NAMESPACE}}}
spec:
  features: {{chat: {{enabled: true}}, tables: {{limits: {{tables: 50}}}}}}
  resources: {{base: {{cpu: "2", memory: 4Gi, storage: 10Gi, pods: 20}}, perSeat: {{cpu: 20m, memory: 32Mi}}}}
---
apiVersion: tenantry.dev/v1alpha1
kind: Branding
metadata: {{name: default, namespace: {PLATFORM_NAMESPACE}}}
spec:
  colours: {{primary: "#1F4E79", secondary: "#F2A900"}}
  assistantName: Assistent
  welcome: {{de: "Willkommen!", en: "Welcome!"}}
"""


@dataclass
class OperatorProcess:
    kubeconfig: Path
    log_path: Path
    metrics_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def restart_with(self, extra_env: dict[str, str]) -> None:
        """Run with other settings from now on (e.g. a DNS provider), until the next restart_with."""
        self.stop()
        self.extra_env = dict(extra_env)
        self.start()

    def start(self, leading: bool = True) -> None:
        """Start; wait until it leads (kopf started), or with leading=False only until it is alive (a standby).

        Already running: nothing to do (two processes of one fixture would both act).
        """
        if self.process is not None and self.process.poll() is None:
            return
        env = {**os.environ, **self.extra_env, "KUBECONFIG": str(self.kubeconfig),
               "TENANTRY_PLATFORM_NAMESPACE": PLATFORM_NAMESPACE,
               "TENANTRY_PLATFORM_DOMAIN": "platform.test",
               "TENANTRY_RESYNC_SECONDS": str(RESYNC_SECONDS),
               "TENANTRY_METRICS_PORT": str(self.metrics_port),
               "TENANTRY_HEALTH_PORT": str(self.health_port), **self.extra_env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "tenantry"], env=env, stdout=log,
                                        stderr=subprocess.STDOUT)
        path = "/leader" if leading else "/healthz"
        wait_for(lambda: self.answers(path), timeout=60, what=f"the operator's {path}")

    def answers(self, path: str = "/leader") -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"operator exited with {self.process.returncode}; log:\n"
                                 + self.log_path.read_text()[-4000:])
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}{path}", timeout=1).read()
        except OSError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL: no cleanup, as in a crash or an OOM kill."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)  # a loaded machine; SIGKILL only if it hangs
            except subprocess.TimeoutExpired:
                self.kill()

    def metrics_text(self) -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples (matching the labels) from the operator's /metrics."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read()
        total = 0.0
        for family in text_string_to_metric_families(text.decode()):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total


@pytest.fixture
def namespace(cluster: ClusterHandle) -> Iterator[str]:
    """A fresh namespace that is not a partner's: nothing but the API server touches what is in it."""
    name = f"scratch-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="session")
def operator_kubeconfig(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart's operator ServiceAccount, with only the chart's RBAC."""
    return chart.service_account_kubeconfig(cluster.kubeconfig, PLATFORM_NAMESPACE, "tenantry",
                                            tmp_path_factory.mktemp("identity") / "operator.kubeconfig")


@pytest.fixture(scope="session")
def operator(operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(operator_kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def watch_triggered(operator: OperatorProcess) -> Iterator[OperatorProcess]:
    """The operator with a resync of an hour, for a module: whatever it corrects or propagates
    within a test, a watch event made it do so, not the periodic pass."""
    operator.restart_with(LONG_RESYNC)
    yield operator
    operator.restart_with({})


def at_rest(cluster: ClusterHandle, operator: OperatorProcess, resources: set[str]) -> dict[str, float]:
    """The API server's write counts for `resources` once the operator is at rest: no write, no
    pass begun (each begins with a GET of its Tenant) and none finished, over several scrapes, and
    no key waiting in its work queue.

    Needs a long resync (watch_triggered): with the short one, passes never stop.
    """
    writes, _, _, queue_empty = settle(lambda: cluster.apiserver_writes(resources),
                                       cluster.tenant_reads,
                                       lambda: operator.metric("tenantry_reconcile_total"),
                                       lambda: operator.metric("tenantry_workqueue_depth") == 0,
                                       what="the operator's work")
    assert queue_empty, "keys wait in the operator's work queue, yet no pass began or finished for seconds"
    return writes


@dataclass
class Partner:
    """A partner namespace of one test, with helpers to manage its Tenants."""

    cluster: ClusterHandle
    namespace: str
    suffix: str
    slugs: list[str] = field(default_factory=list)

    def slug(self, base: str) -> str:
        """A tenant name unique to this test run (tenant names are global)."""
        name = f"{base}-{self.suffix}"
        self.slugs.append(name)
        return name

    def tenant(self, name: str, namespace: str | None = None, **overrides: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "company": "Mustermann GmbH",
            "contact": {"name": "Max Mustermann", "email": "max@mustermann.de"},
            "plan": {"featureSet": "business", "seats": 50},
            "admins": ["max@mustermann.de"],
        }
        spec.update(overrides)
        return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
                "metadata": {"name": name, "namespace": namespace or self.namespace}, "spec": spec}

    def apply(self, manifest: dict[str, Any]) -> None:
        self.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))

    def get(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return self.cluster.client.get(Tenant, name, namespace=namespace or self.namespace).to_dict()
        except ApiError as error:
            if error.status.code == 404:
                return None
            raise

    def condition(self, name: str, kind: str = "Ready", namespace: str | None = None) -> dict[str, Any]:
        body = self.get(name, namespace) or {}
        for cond in (body.get("status") or {}).get("conditions", []):
            if cond["type"] == kind:
                return cond
        return {}

    def wait_condition(self, name: str, status: str = "True", reason: str | None = None,
                       kind: str = "Ready", namespace: str | None = None, timeout: float = 60) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            body = self.get(name, namespace) or {}
            cond = self.condition(name, kind, namespace)
            current = body.get("metadata", {}).get("generation") == cond.get("observedGeneration")
            ok = cond.get("status") == status and (reason is None or cond.get("reason") == reason)
            seen[:] = [cond]
            return cond if ok and current else None
        seen: list[dict[str, Any]] = []
        try:
            return wait_for(check, timeout, f"{kind}={status} ({reason}) on tenant {name}")
        except AssertionError as error:
            raise AssertionError(f"{error}; its {kind} condition: {seen[0] if seen else None}") from None

    def delete(self, name: str, namespace: str | None = None, wait: bool = True) -> None:
        self.cluster.kubectl("delete", "tenant", name, "-n", namespace or self.namespace,
                             "--ignore-not-found", f"--wait={'true' if wait else 'false'}", "--timeout=60s")


def namespace_of(cluster: ClusterHandle, name: str) -> dict[str, Any] | None:
    try:
        return cluster.client.get(Namespace, name).to_dict()
    except ApiError as error:
        if error.status.code == 404:
            return None
        raise


def _remove_namespace(cluster: ClusterHandle, name: str) -> None:
    cluster.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


@pytest.fixture
def partner(cluster: ClusterHandle, operator: OperatorProcess) -> Iterator[Partner]:
    suffix = uuid.uuid4().hex[:6]
    yield from _partner(cluster, operator, suffix, f"partner-{suffix}", f"acme-{suffix}")


def _partner(cluster: ClusterHandle, operator: OperatorProcess, suffix: str, namespace: str,
             partner_id: str) -> Iterator[Partner]:
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("label", "namespace", namespace, f"tenantry.dev/partner={partner_id}")
    handle = Partner(cluster, namespace, suffix)
    yield handle
    # Tenants first (their finalizer needs the operator), then every namespace the test made.
    if operator.process is None or operator.process.poll() is not None:
        operator.start()
    cluster.kubectl("delete", "tenants", "--all", "-n", namespace, "--timeout=300s")
    _remove_namespace(cluster, namespace)
    for slug in handle.slugs:
        _remove_namespace(cluster, f"tenant-{slug}")


@pytest.fixture
def other_partner(cluster: ClusterHandle, operator: OperatorProcess, partner: Partner) -> Iterator[Partner]:
    yield from _partner(cluster, operator, partner.suffix, f"partner-{partner.suffix}-b", f"beta-{partner.suffix}")


@dataclass
class ChartPartner(Partner):
    """A partner made by the chart's `partners` value, acting through its own ServiceAccount's token."""

    kubeconfig: Path = Path()

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        """kubectl as the partner's GitOps ServiceAccount (no check: refusals are what tests look at)."""
        return subprocess.run(["kubectl", "--kubeconfig", str(self.kubeconfig), *args], input=input,
                              capture_output=True, text=True, timeout=120)

    def apply_as_partner(self, manifest: dict[str, Any]) -> subprocess.CompletedProcess:
        return self.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))


@pytest.fixture(scope="module")
def chart_partners(cluster: ClusterHandle, operator: OperatorProcess,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ChartPartner, ChartPartner]]:
    """Two partners created by rendering the tenantry-partners chart for [a, b] and applying it."""
    suffix = uuid.uuid4().hex[:6]
    ids = [f"alpha-{suffix}", f"bravo-{suffix}"]
    chart.apply_partners(cluster.kubeconfig, ids, PLATFORM_NAMESPACE)
    folder = tmp_path_factory.mktemp("partners")
    partners = tuple(
        ChartPartner(cluster, f"partner-{partner_id}", suffix, kubeconfig=chart.service_account_kubeconfig(
            cluster.kubeconfig, f"partner-{partner_id}", "tenantry-gitops", folder / f"{partner_id}.kubeconfig"))
        for partner_id in ids)
    yield partners  # type: ignore[misc]
    if operator.process is None or operator.process.poll() is not None:
        operator.start()
    for partner in partners:
        cluster.kubectl("delete", "tenants", "--all", "-n", partner.namespace, "--timeout=300s")
        _remove_namespace(cluster, partner.namespace)
        for slug in partner.slugs:
            _remove_namespace(cluster, f"tenant-{slug}")


def stand_in_crd(group: str, version: str, kind: str, plural: str) -> dict[str, Any]:
    """A permissive CRD for another project's kind whose real CRD cannot be downloaded here (a stand-in)."""
    crd: dict[str, Any] = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                 "versions": [{"name": version, "served": True, "storage": True, "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                   "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}
    if group.endswith(".k8s.io"):  # the API server wants an approval link for *.k8s.io groups
        crd["metadata"]["annotations"] = {"api-approved.kubernetes.io": "unapproved, stand-in for tests"}
    return crd
