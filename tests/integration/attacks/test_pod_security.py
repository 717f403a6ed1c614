"""A tenant admin taking over a node through a pod, on the real 1.20 API server (no Pod Security Admission).

Tenant namespaces carry `pod-security.kubernetes.io/enforce: restricted`, which nothing reads
before Kubernetes 1.23. The tenant admin acts by impersonation (`kubectl --as max@mustermann.de`),
with exactly the RoleBinding the operator gives a tenant's admins.

Attacks covered:
- webhook down (the default operator fixture, as with failurePolicy Ignore and an unreachable
  webhook): a pod sharing the node's PIDs and network, mounting the node's / and adding SYS_ADMIN
  is stored by the API server, and the operator deletes it: Warning Event in the tenant namespace,
  Tenant condition PodSecurity=False naming the pod and the problem (kept by later reconciles),
  Ready untouched; a compliant pod in the same namespace stays
- the same with a ReplicaSet's pods coming back: each deleted, the Tenant told once (naming the
  ReplicaSet), the ReplicaSet itself left alone
- the tenant admin relabels their namespace (e.g. enforce=privileged) or deletes it to escape the
  check: refused by RBAC, labels unchanged
- webhook up (the chart's configuration, served by the operator): hostPath, hostNetwork, hostPID
  and added-capability pods, a Deployment and a CronJob (batch/v1beta1 on 1.20) whose templates
  do the same, and an update that turns a compliant Deployment's template bad: each refused with
  upstream's PodSecurity words and the offending field; nothing stored; compliant pods and
  Deployments are accepted
Note: this control plane runs with --allow-privileged=false, so `privileged: true` itself is
refused by the API server before any webhook; that rule is covered by tests/unit/test_podsecurity.py.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.integration.fixtures import ChartPartner, ClusterHandle, OperatorProcess, Partner, wait_for
from tests.integration.test_admission import webhook  # noqa: F401  (the fixture: the chart's webhook, served)

pytestmark = pytest.mark.integration

ADMIN = "max@mustermann.de"  # the tenant's admin in Partner.tenant()
COMPLIANT_POD_SPEC: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [{"name": "app", "image": "busybox",
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
}
# Root on the node: its processes, its network, its whole file system, and the capability to mount.
TAKEOVER_POD_SPEC: dict[str, Any] = {
    "hostPID": True, "hostNetwork": True,
    "containers": [{"name": "sh", "image": "busybox", "command": ["nsenter", "-t", "1", "-m", "-u", "-n", "-i", "sh"],
                    "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}},
                    "volumeMounts": [{"name": "root", "mountPath": "/host"}]}],
    "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
}


def _pod(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _deployment(name: str, pod_spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}}}


def _cronjob(name: str, pod_spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {
                "spec": {**pod_spec, "restartPolicy": "Never"}}}}}}


def _as_admin(cluster: ClusterHandle, namespace: str, *args: str, manifest: dict | None = None
              ) -> subprocess.CompletedProcess:
    """kubectl as the tenant's admin (impersonated by the cluster admin)."""
    return cluster.kubectl("--as", ADMIN, "-n", namespace, *args, check=False,
                           input=yaml.safe_dump(manifest) if manifest is not None else None)


def _exists(cluster: ClusterHandle, kind: str, name: str, namespace: str) -> bool:
    result = cluster.kubectl("get", kind, name, "-n", namespace, "--ignore-not-found", "-o", "name", check=False)
    assert result.returncode == 0, result.stderr
    return bool(result.stdout.strip())


def _events(cluster: ClusterHandle, namespace: str, involved: str) -> list[dict[str, Any]]:
    items = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    return [e for e in items if e["reason"] == "PodSecurityViolation" and e["involvedObject"]["name"] == involved]


@pytest.fixture
def tenant_namespace(partner: Partner) -> Iterator[str]:
    slug = partner.slug("pods")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug, "True", "Provisioned")
    yield f"tenant-{slug}"


# --- webhook down: the operator deletes what got through -----------------------------------------

def test_takeover_pod_is_deleted_by_the_operator_when_the_webhook_is_down(
        cluster: ClusterHandle, operator: OperatorProcess, partner: Partner, tenant_namespace: str) -> None:
    """Attack: with no webhook answering, the tenant admin's node-takeover pod is stored by the API
    server; the operator deletes it, says why (Event, Tenant condition), and leaves good pods alone."""
    namespace, slug = tenant_namespace, tenant_namespace.removeprefix("tenant-")
    good = _as_admin(cluster, namespace, "create", "-f", "-", manifest=_pod("good", COMPLIANT_POD_SPEC))
    assert good.returncode == 0, good.stderr
    stored = _as_admin(cluster, namespace, "create", "-f", "-", manifest=_pod("takeover", TAKEOVER_POD_SPEC))
    # Before the fix this is where the attack ended: the API server (1.20, no PSA) stores the pod.
    assert stored.returncode == 0, stored.stderr

    wait_for(lambda: not _exists(cluster, "pod", "takeover", namespace), timeout=60,
             what="the operator to delete the takeover pod")

    warnings = wait_for(lambda: _events(cluster, namespace, "takeover"), timeout=30, what="the pod's Event")
    assert warnings[0]["type"] == "Warning", warnings
    assert 'violates PodSecurity "restricted:latest"' in warnings[0]["message"]
    assert "host namespaces (hostNetwork=true, hostPID=true)" in warnings[0]["message"]
    assert 'hostPath volumes (volume "root") at spec.volumes[0].hostPath' in warnings[0]["message"]

    condition = wait_for(lambda: partner.condition(slug, "PodSecurity"), timeout=30, what="PodSecurity condition")
    assert (condition["status"], condition["reason"]) == ("False", "ViolatingPodDeleted")
    assert f"pod takeover in namespace {namespace}: deleted for breaking" in condition["message"]
    assert 'must not include "SYS_ADMIN" in securityContext.capabilities.add' in condition["message"]
    tenant_events = wait_for(lambda: _events(cluster, partner.namespace, slug), timeout=30, what="the Tenant's Event")
    assert tenant_events[0]["message"][:300] == condition["message"][:300]

    # Later reconciles (resync every 3 s) keep the condition and the tenant stays Ready.
    passes = operator.metric("tenantry_reconcile_total", kind="Tenant")
    wait_for(lambda: operator.metric("tenantry_reconcile_total", kind="Tenant") >= passes + 2, timeout=30,
             what="two more reconcile passes")
    assert partner.condition(slug, "PodSecurity") == condition
    assert partner.condition(slug, "Ready")["status"] == "True"
    assert _exists(cluster, "pod", "good", namespace), "a compliant pod must stay"


def test_a_workloads_replacement_pods_are_deleted_and_reported_once(
        cluster: ClusterHandle, partner: Partner, tenant_namespace: str) -> None:
    """Attack: a ReplicaSet with the takeover template (stored while the webhook is down) whose
    pods keep coming back (made here by hand: this control plane runs no ReplicaSet controller).
    Each pod is deleted; the Tenant is told once, naming the ReplicaSet, not once per pod."""
    namespace, slug = tenant_namespace, tenant_namespace.removeprefix("tenant-")
    template = {"metadata": {"labels": {"app": "evil"}}, "spec": TAKEOVER_POD_SPEC}
    replica_set = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "evil"},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "evil"}}, "template": template}}
    assert _as_admin(cluster, namespace, "create", "-f", "-", manifest=replica_set).returncode == 0
    uid = cluster.kubectl("get", "replicaset", "evil", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "evil", "uid": uid, "controller": True}
    for pod in ("evil-1", "evil-2"):
        body = {**_pod(pod, TAKEOVER_POD_SPEC), "metadata": {"name": pod, "labels": {"app": "evil"},
                                                           "ownerReferences": [owner]}}
        created = _as_admin(cluster, namespace, "create", "-f", "-", manifest=body)
        assert created.returncode == 0, created.stderr
        wait_for(lambda pod=pod: not _exists(cluster, "pod", pod, namespace) and _events(cluster, namespace, pod),
                 timeout=60, what=f"the operator to delete {pod}")
    # A bare pod afterwards: once the Tenant is told about it, it has been told all it will be about evil-2.
    canary = _as_admin(cluster, namespace, "create", "-f", "-", manifest=_pod("canary", TAKEOVER_POD_SPEC))
    assert canary.returncode == 0, canary.stderr
    wait_for(lambda: any("pod canary" in e["message"] for e in _events(cluster, partner.namespace, slug)), timeout=60,
             what="the Tenant's Event about the canary pod")
    about_workload = [e for e in _events(cluster, partner.namespace, slug) if "ReplicaSet evil" in e["message"]]
    assert len(about_workload) == 1 and about_workload[0].get("count", 1) == 1, about_workload
    assert about_workload[0]["message"].startswith(f"pods of ReplicaSet evil in namespace {namespace}: deleted for")
    assert _exists(cluster, "replicaset", "evil", namespace), "workloads are not deleted or rewritten"


def test_tenant_admin_cannot_relabel_or_delete_the_namespace(
        cluster: ClusterHandle, tenant_namespace: str) -> None:
    """Attack: escape the check by changing the namespace's pod security or managed-by labels, or
    by deleting the namespace (and recreating it unlabelled): RBAC refuses, the labels stay."""
    namespace = tenant_namespace
    before = json.loads(cluster.kubectl("get", "namespace", namespace, "-o", "json").stdout)["metadata"]["labels"]
    assert before["pod-security.kubernetes.io/enforce"] == "restricted"
    for args in (("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=privileged", "--overwrite"),
                 ("label", "namespace", namespace, "app.kubernetes.io/managed-by-"),
                 ("patch", "namespace", namespace, "--type=merge",
                  "-p", '{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}'),
                 ("delete", "namespace", namespace, "--wait=false"),
                 ("create", "namespace", f"{namespace}-free")):
        result = _as_admin(cluster, namespace, *args)
        assert result.returncode != 0, f"{args}: {result.stdout}"
        assert "forbidden" in result.stderr.lower() and f'User "{ADMIN}"' in result.stderr, result.stderr
    after = json.loads(cluster.kubectl("get", "namespace", namespace, "-o", "json").stdout)
    assert after["metadata"]["labels"] == before
    assert after["status"]["phase"] == "Active"
    assert not _exists(cluster, "namespace", f"{namespace}-free", "default")


# --- webhook up: refused before anything is stored ------------------------------------------------

@pytest.fixture
def webhook_tenant(webhook: dict, chart_partners: tuple[ChartPartner, ChartPartner]) -> str:  # noqa: F811
    alpha, _ = chart_partners
    slug = alpha.slug("pods-wh")
    assert alpha.apply_as_partner(alpha.tenant(slug)).returncode == 0
    alpha.wait_condition(slug, "True", "Provisioned")
    return f"tenant-{slug}"


def _refused(result: subprocess.CompletedProcess, webhook_name: str, *words: str) -> None:
    assert result.returncode != 0, f"expected a refusal, got: {result.stdout}"
    assert f'admission webhook "{webhook_name}.podsecurity.tenantry.dev" denied the request' in result.stderr, \
        result.stderr
    assert 'violates PodSecurity "restricted:latest"' in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.mark.parametrize(("change", "words"), [
    ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
     ['hostPath volumes (volume "root") at spec.volumes[0].hostPath',
      'restricted volume types (volumes ["root"] have restricted types)']),
    ({"hostNetwork": True}, ["host namespaces (hostNetwork=true) at spec.hostNetwork"]),
    ({"hostPID": True, "hostIPC": True}, ["host namespaces (hostIPC=true, hostPID=true)"]),
    ({"containers": [{**COMPLIANT_POD_SPEC["containers"][0], "securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}}]},
     ['unrestricted capabilities (container "app" must not include "SYS_ADMIN" in securityContext.capabilities.add)']),
    ({"securityContext": {"runAsUser": 0}},
     ["runAsNonRoot != true", "runAsUser=0 (pod must not set runAsUser=0)"]),
], ids=["hostPath", "hostNetwork", "hostPID-hostIPC", "capability", "root"])
def test_webhook_refuses_pods_that_break_the_restricted_profile(
        cluster: ClusterHandle, webhook_tenant: str, change: dict, words: list[str]) -> None:
    """Attack: the tenant admin creates a pod that reaches into the node, with the webhook up."""
    volumes = {"volumeMounts": [{"name": "root", "mountPath": "/host"}]} if "volumes" in change else {}
    spec = {**COMPLIANT_POD_SPEC, **change}
    spec["containers"] = [{**spec["containers"][0], **volumes}]
    _refused(_as_admin(cluster, webhook_tenant, "create", "-f", "-", manifest=_pod("attack", spec)), "pods", *words)
    assert not _exists(cluster, "pod", "attack", webhook_tenant)


def test_webhook_refuses_workloads_with_bad_templates_and_accepts_compliant_ones(
        cluster: ClusterHandle, webhook_tenant: str) -> None:
    """Attack: the node-takeover pod as a Deployment's or a CronJob's template, or swapped into a
    compliant Deployment by an update; compliant pods and Deployments pass."""
    namespace = webhook_tenant
    _refused(_as_admin(cluster, namespace, "create", "-f", "-", manifest=_deployment("attack", TAKEOVER_POD_SPEC)),
             "deployments", "host namespaces (hostNetwork=true, hostPID=true) at spec.template.spec.hostNetwork",
             "spec.template.spec.volumes[0].hostPath")
    _refused(_as_admin(cluster, namespace, "create", "-f", "-", manifest=_cronjob("attack", TAKEOVER_POD_SPEC)),
             "cronjobs-v1beta1", "spec.jobTemplate.spec.template.spec.hostPID")
    assert not _exists(cluster, "deployment", "attack", namespace)
    assert not _exists(cluster, "cronjob", "attack", namespace)

    accepted = _as_admin(cluster, namespace, "create", "-f", "-", manifest=_pod("good", COMPLIANT_POD_SPEC))
    assert accepted.returncode == 0, accepted.stderr
    accepted = _as_admin(cluster, namespace, "create", "-f", "-", manifest=_deployment("web", COMPLIANT_POD_SPEC))
    assert accepted.returncode == 0, accepted.stderr
    # Scaling and labelling a stored workload leave its template alone: not judged again.
    # (Patched, not `kubectl scale`: the tenant-admin role has no deployments/scale.)
    scaled = _as_admin(cluster, namespace, "patch", "deployment", "web", "--type=merge",
                       "-p", '{"spec":{"replicas":2}}')
    assert scaled.returncode == 0, scaled.stderr
    assert _as_admin(cluster, namespace, "label", "deployment", "web", "tier=front").returncode == 0

    swapped = _deployment("web", TAKEOVER_POD_SPEC)
    _refused(_as_admin(cluster, namespace, "replace", "-f", "-", manifest=swapped), "deployments",
             "spec.template.spec.volumes[0].hostPath")
    stored = json.loads(cluster.kubectl("get", "deployment", "web", "-n", namespace, "-o", "json").stdout)
    assert "hostPID" not in stored["spec"]["template"]["spec"]
    assert stored["spec"]["replicas"] == 2
