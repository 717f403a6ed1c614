"""Level-triggered reconcile against the real API server.

Tested here:
- drift: a deleted or edited managed object is restored (watch on children, and the resync)
- an admin binding of an earlier version (roleRef to a namespace Role; roleRef is immutable) is
  replaced by one to the shipped ClusterRole
- a second pass over an unchanged tenant makes zero write requests, counted by the API server
  itself (apiserver_request_total), across an operator restart and several resyncs
- the operator killed (SIGKILL) mid-onboarding converges after restart: no duplicates, all Ready
"""

from __future__ import annotations

import json
import time

import pytest
import yaml
from lightkube.core.exceptions import ApiError
from lightkube.resources.rbac_authorization_v1 import RoleBinding

from tests.integration.fixtures import RESYNC_SECONDS, ClusterHandle, OperatorProcess, Partner, wait_for

pytestmark = pytest.mark.integration

OUR_RESOURCES = {"tenants", "namespaces", "resourcequotas", "limitranges", "networkpolicies", "roles",
                 "rolebindings", "configmaps", "events"}


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


def test_unchanged_tenant_costs_zero_writes(partner: Partner, cluster: ClusterHandle,
                                            operator: OperatorProcess) -> None:
    slugs = [partner.slug(f"steady{i}") for i in range(3)]
    at_start = cluster.apiserver_writes(OUR_RESOURCES)
    for slug in slugs:
        partner.apply(partner.tenant(slug))
    for slug in slugs:
        partner.wait_condition(slug)
    provisioning = cluster.apiserver_writes(OUR_RESOURCES)
    # The counter does see the operator's writes (server-side apply is counted as APPLY).
    assert provisioning.get("APPLY configmaps/", 0) - at_start.get("APPLY configmaps/", 0) >= 3 * len(slugs)
    # Earlier tests' namespaces being emptied by the namespace controller would add DELETEs.
    wait_for(lambda: "Terminating" not in cluster.kubectl("get", "namespaces", "--no-headers").stdout,
             timeout=120, what="no namespace terminating")
    time.sleep(2)  # let the last status write and child events settle
    passes_before = operator.metric("tenantry_reconcile_total", kind="Tenant")
    writes_before = cluster.apiserver_writes(OUR_RESOURCES)

    operator.stop()
    operator.start()  # resume: every tenant is listed and reconciled again
    time.sleep(RESYNC_SECONDS * 3)  # and several resync passes
    passes = operator.metric("tenantry_reconcile_total", kind="Tenant")  # counter restarted with the process
    writes_after = cluster.apiserver_writes(OUR_RESOURCES)
    diff = {k: v - writes_before.get(k, 0) for k, v in writes_after.items() if v != writes_before.get(k, 0)}
    assert passes >= 2 * len(slugs), f"only {passes} passes (before restart: {passes_before})"
    assert diff == {}, f"write requests during passes over unchanged tenants: {diff}"


def test_operator_killed_mid_onboarding_converges(partner: Partner, cluster: ClusterHandle,
                                                   operator: OperatorProcess) -> None:
    slugs = [partner.slug(f"crash{i}") for i in range(12)]
    manifests = yaml.safe_dump_all(partner.tenant(s) for s in slugs)
    cluster.kubectl("apply", "-f", "-", input=manifests)
    time.sleep(0.7)
    operator.kill()
    created_while_down = partner.slug("whiledown")
    partner.apply(partner.tenant(created_while_down))
    operator.start()
    for slug in [*slugs, created_while_down]:
        partner.wait_condition(slug, timeout=90)
    for slug in [*slugs, created_while_down]:
        quotas = cluster.kubectl("get", "resourcequota", "-n", f"tenant-{slug}", "-o", "name").stdout.split()
        assert quotas == ["resourcequota/tenantry-priority-classes", "resourcequota/tenantry-quota"]
    selector = f"tenantry.dev/partner=acme-{partner.suffix},tenantry.dev/tenant"
    namespaces = cluster.kubectl("get", "namespaces", "-l", selector, "-o", "name").stdout.split()
    assert len(namespaces) == len(slugs) + 1
