"""Level-triggered reconcile against the real API server.

The operator runs with a resync of an hour here (watch_triggered): a correction seen within a
test was triggered by a watch event, not by the periodic pass.

Tested here:
- drift: a deleted or edited managed object is restored (the watches on children)
- an admin binding of an earlier version (roleRef to a namespace Role; roleRef is immutable) is
  replaced by one to the shipped ClusterRole
- Tenants listed again by kopf (its watch resumed from a version the API server no longer holds)
  are not reconciled when unchanged: no pass, no read of the Tenant, no write (API server counts)
- a Tenant deleted while kopf's watch had to start over (410 Gone: kopf lists again and reports
  only what it finds, never its DELETED event) is let go by the check against a LIST: its series
  leave /metrics
- a second pass over an unchanged tenant makes zero write requests, counted by the API server
  itself (apiserver_request_total), across an operator restart and several resyncs (3 s)
- the operator killed (SIGKILL) mid-onboarding (proven: some tenants not Ready at the kill)
  converges after restart: no duplicates, all Ready
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import yaml
from lightkube import operators
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Namespace
from lightkube.resources.rbac_authorization_v1 import RoleBinding

from tenantry.adapters.kube import Tenant
from tests.integration.fixtures import (
    LONG_RESYNC,
    OPERATOR_RESOURCES,
    RESYNC_SECONDS,
    ClusterHandle,
    OperatorProcess,
    Partner,
    at_rest,
    diff,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("watch_triggered")]

RELISTED = "Restarting the watch-stream for tenants.v1alpha1.tenantry.dev"  # kopf's words, at debug level


def test_deleted_child_is_restored(partner: Partner, cluster: ClusterHandle) -> None:
    slug = partner.slug("drift")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug)
    ns = f"tenant-{slug}"
    cluster.kubectl("delete", "networkpolicy", "tenantry-isolation", "-n", ns)
    wait_for(lambda: cluster.kubectl("get", "networkpolicy", "tenantry-isolation", "-n", ns,
                                     check=False).returncode == 0, timeout=30, what="policy restored")
    cluster.kubectl("delete", "rolebinding", "tenantry-tenant-admins", "-n", ns)
    wait_for(lambda: cluster.kubectl("get", "rolebinding", "tenantry-tenant-admins", "-n", ns,
                                     check=False).returncode == 0, timeout=30, what="binding restored")


def test_binding_to_another_role_is_replaced(partner: Partner, cluster: ClusterHandle) -> None:
    slug = partner.slug("rebind")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug)
    ns = f"tenant-{slug}"
    old = json.loads(cluster.kubectl("get", "rolebinding", "tenantry-tenant-admins", "-n", ns, "-o", "json").stdout)
    legacy = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
              "metadata": {"name": "tenantry-tenant-admins", "namespace": ns, "labels": old["metadata"]["labels"]},
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenantry-tenant-admin"},
              "subjects": old["subjects"]}

    def replaced_by_legacy() -> bool:
        # The operator restores a deleted binding within moments: retry until ours got in first.
        try:
            cluster.client.delete(RoleBinding, "tenantry-tenant-admins", namespace=ns)
            cluster.client.create(RoleBinding.from_dict(legacy))
        except ApiError:
            return False
        return True
    wait_for(replaced_by_legacy, timeout=30, what="the legacy binding in place")
    wait_for(lambda: cluster.kubectl("get", "rolebinding", "tenantry-tenant-admins", "-n", ns, "-o",
                                     "jsonpath={.roleRef.kind}/{.roleRef.name}", check=False).stdout
             == "ClusterRole/tenantry-tenant-admin", timeout=30, what="binding moved to the ClusterRole")


def test_edited_child_is_corrected(partner: Partner, cluster: ClusterHandle) -> None:
    slug = partner.slug("edited")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug)
    ns = f"tenant-{slug}"
    cluster.kubectl("patch", "resourcequota", "tenantry-quota", "-n", ns, "--type=merge",
                    "-p", '{"spec":{"hard":{"pods":"500"}}}')
    cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=privileged", "--overwrite")

    def corrected() -> bool:
        hard = json.loads(cluster.kubectl("get", "resourcequota", "tenantry-quota", "-n", ns,
                                          "-o", "json").stdout)["spec"]["hard"]
        labels = json.loads(cluster.kubectl("get", "namespace", ns, "-o", "json").stdout)["metadata"]["labels"]
        return hard["pods"] == "20" and labels["pod-security.kubernetes.io/enforce"] == "restricted"

    wait_for(corrected, timeout=30, what="quota and pod security restored")


@contextmanager
def _new_tenant_storage(cluster: ClusterHandle) -> Iterator[None]:
    """A changed Tenant CRD (one more printer column) for as long as the block runs.

    The API server serves a changed CRD from new storage with a new watch cache, which starts at
    the current version: the watches on the old storage end, and kopf, resuming from the last
    version it saw, is told 410 Gone and lists every Tenant again, as it does when its resource
    version has become too old. Real, quick, and nothing else about the Tenants changes.
    """
    crd = "tenants.tenantry.dev"
    column = {"name": "Relisted", "type": "string", "jsonPath": ".metadata.uid", "priority": 1}
    cluster.kubectl("patch", "crd", crd, "--type=json", "-p", json.dumps(
        [{"op": "add", "path": "/spec/versions/0/additionalPrinterColumns/-", "value": column}]))
    try:
        yield
    finally:
        columns = json.loads(cluster.kubectl("get", "crd", crd, "-o", "json").stdout)["spec"]["versions"][0][
            "additionalPrinterColumns"]
        cluster.kubectl("patch", "crd", crd, "--type=json", "-p", json.dumps(
            [{"op": "remove", "path": f"/spec/versions/0/additionalPrinterColumns/{columns.index(column)}"}]))


def test_relisted_unchanged_tenants_are_not_reconciled(partner: Partner, cluster: ClusterHandle,
                                                       operator: OperatorProcess) -> None:
    # kopf says at debug level when it restarts a watch-stream (and so lists again): the only
    # sign that tells its listing from the controller-manager's, which lists Tenants too.
    operator.restart_with({**LONG_RESYNC, "TENANTRY_VERBOSE": "1"})
    try:
        slugs = [partner.slug(f"relist{i}") for i in range(3)]
        for slug in slugs:
            partner.apply(partner.tenant(slug))
        for slug in slugs:
            partner.wait_condition(slug)
        relists = operator.log_path.read_text().count(RELISTED)
        writes = at_rest(cluster, operator, OPERATOR_RESOURCES)
        reads = cluster.tenant_reads()
        passes = operator.metric("tenantry_reconcile_total")
        with _new_tenant_storage(cluster):
            wait_for(lambda: operator.log_path.read_text().count(RELISTED) > relists, timeout=120,
                     what="kopf to list the Tenants again")
            after = at_rest(cluster, operator, OPERATOR_RESOURCES)
        # Each pass begins with a read of its Tenant: none began, none ended, nothing was written.
        assert diff(reads, cluster.tenant_reads()) == {}
        assert operator.metric("tenantry_reconcile_total") == passes
        assert diff(writes, after) == {}
    finally:
        operator.restart_with(LONG_RESYNC)


def test_a_tenant_deleted_while_kopf_lists_again_is_let_go(partner: Partner, cluster: ClusterHandle,
                                                           operator: OperatorProcess) -> None:
    operator.restart_with({**LONG_RESYNC, "TENANTRY_VANISHED_CHECK_SECONDS": "2"})
    assert operator.process is not None
    try:
        slug, kept = partner.slug("vanished"), partner.slug("stays")
        for name in (slug, kept):
            partner.apply(partner.tenant(name))
        for name in (slug, kept):
            partner.wait_condition(name)
        wait_for(lambda: operator.metric("tenantry_tenant_info", tenant=slug) == 1.0, timeout=30,
                 what="the tenant's series")
        # Frozen, the operator sees nothing of what follows until its watch starts over: the
        # changed CRD ends every watch of the old storage (a watch of the test's own shows when),
        # and kopf, resuming from a version the new storage does not hold, is told 410 Gone and
        # lists the Tenants again, where this one is missing.
        own_watch = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.kubeconfig), "get", "--raw",
                                      "/apis/tenantry.dev/v1alpha1/tenants?watch=true"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert own_watch.stdout is not None and own_watch.stdout.readline()  # watching: the first event came
        operator.process.send_signal(signal.SIGSTOP)
        try:
            with _new_tenant_storage(cluster):
                wait_for(lambda: own_watch.poll() is not None, timeout=60, what="the old storage's watches to end")
                cluster.kubectl("delete", "tenant", slug, "-n", partner.namespace, "--wait=false")
                cluster.kubectl("patch", "tenant", slug, "-n", partner.namespace, "--type=merge",
                                "-p", '{"metadata":{"finalizers":null}}')
                wait_for(lambda: partner.get(slug) is None, timeout=30, what="the Tenant gone")
                os.kill(operator.process.pid, signal.SIGCONT)
                wait_for(lambda: operator.metric("tenantry_tenant_info", tenant=slug) == 0.0, timeout=60,
                         what="the gone tenant's series to leave /metrics")
        finally:
            os.kill(operator.process.pid, signal.SIGCONT)
            own_watch.kill()
            own_watch.wait()
        assert "is gone, though no watch event said so" in operator.log_path.read_text()
        assert operator.metric("tenantry_tenant_info", tenant=kept) == 1.0  # listed: kept
    finally:
        operator.restart_with(LONG_RESYNC)


def test_unchanged_tenant_costs_zero_writes(partner: Partner, cluster: ClusterHandle,
                                            operator: OperatorProcess) -> None:
    slugs = [partner.slug(f"steady{i}") for i in range(3)]
    at_start = cluster.apiserver_writes(OPERATOR_RESOURCES)
    for slug in slugs:
        partner.apply(partner.tenant(slug))
    for slug in slugs:
        partner.wait_condition(slug)
    provisioning = cluster.apiserver_writes(OPERATOR_RESOURCES)
    # The counter does see the operator's writes (children are created with POST).
    assert provisioning.get("POST configmaps/", 0) - at_start.get("POST configmaps/", 0) >= 3 * len(slugs)
    # Earlier tests' namespaces being emptied by the namespace controller would add DELETEs.
    wait_for(lambda: "Terminating" not in cluster.kubectl("get", "namespaces", "--no-headers").stdout,
             timeout=120, what="no namespace terminating")
    writes_before = at_rest(cluster, operator, OPERATOR_RESOURCES)
    # Resume (every tenant listed and reconciled again), then resync passes: the subject here.
    operator.restart_with({"TENANTRY_RESYNC_SECONDS": str(RESYNC_SECONDS)})
    try:
        # The counter restarted with the process: the resumed pass and two resyncs of each tenant.
        wait_for(lambda: operator.metric("tenantry_reconcile_total", kind="Tenant") >= 3 * len(slugs),
                 timeout=120, what="passes after the restart")
        assert diff(writes_before, cluster.apiserver_writes(OPERATOR_RESOURCES)) == {}, \
            "write requests during passes over unchanged tenants"
    finally:
        operator.restart_with(LONG_RESYNC)


def _ready(cluster: ClusterHandle, namespace: str) -> list[str]:
    """The Tenants of a namespace that are Ready at their current generation."""
    ready = []
    for tenant in cluster.client.list(Tenant, namespace=namespace):
        body = tenant.to_dict()
        cond = next((c for c in (body.get("status") or {}).get("conditions", []) if c["type"] == "Ready"), {})
        if cond.get("status") == "True" and cond.get("observedGeneration") == body["metadata"]["generation"]:
            ready.append(body["metadata"]["name"])
    return ready


def test_operator_killed_mid_onboarding_converges(partner: Partner, cluster: ClusterHandle,
                                                   operator: OperatorProcess) -> None:
    slugs = [partner.slug(f"crash{i}") for i in range(20)]
    manifests = yaml.safe_dump_all(partner.tenant(s) for s in slugs)
    selector = f"tenantry.dev/partner=acme-{partner.suffix},tenantry.dev/tenant"
    # The first namespace, the first step of a pass: the operator is at work on them. A watch from
    # before the apply, in a thread beside it, kills at its first event (polling with kubectl took
    # long enough for a fast operator to finish them all).
    labels = {"tenantry.dev/partner": f"acme-{partner.suffix}", "tenantry.dev/tenant": operators.exists()}
    listing = cluster.client.list(Namespace, labels=labels)
    assert list(listing) == []

    def kill_at_first_namespace() -> None:
        for _ in cluster.client.watch(Namespace, labels=labels, resource_version=listing.resourceVersion):
            operator.kill()
            return
    killer = threading.Thread(target=kill_at_first_namespace)
    killer.start()
    cluster.kubectl("apply", "-f", "-", input=manifests)
    killer.join(timeout=60)
    assert operator.process is not None and operator.process.poll() is not None, "the operator was not killed"
    # Only the operator marks tenants Ready: what is Ready now was Ready when the kill landed.
    ready_at_kill = _ready(cluster, partner.namespace)
    print(f"killed with {len(ready_at_kill)} of {len(slugs)} tenants Ready")
    assert len(ready_at_kill) < len(slugs), "the kill landed after the onboarding, not in it"
    created_while_down = partner.slug("whiledown")
    partner.apply(partner.tenant(created_while_down))
    operator.start()
    for slug in [*slugs, created_while_down]:
        partner.wait_condition(slug, timeout=120)
    for slug in [*slugs, created_while_down]:
        quotas = cluster.kubectl("get", "resourcequota", "-n", f"tenant-{slug}", "-o", "name").stdout.split()
        assert quotas == ["resourcequota/tenantry-priority-classes", "resourcequota/tenantry-quota"]
    namespaces = cluster.kubectl("get", "namespaces", "-l", selector, "-o", "name").stdout.split()
    assert len(namespaces) == len(slugs) + 1
