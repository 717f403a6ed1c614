"""Offboarding against the real API server, a real BIND and the real controller-manager.

Security issue 12, findings 5 and 6:
- a tenant deleted under deletionPolicy Retain kept serving (Ingress, Certificate, admins'
  RoleBinding, running pods) while its domain claim was released, so a tenant of another partner
  could claim the host still served from the old namespace;
- a Cancelled tenant kept its pods running; a Suspended one too;
- a tenant that lost a slug race (same name in another partner namespace, webhook off), when
  deleted, removed the holder's DNSEndpoint (only the managed-by label was checked).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tenantry.domain.dns import claim_name
from tests.integration.attacks.domains import (  # noqa: F401  (fixtures)
    CUSTOMER_ZONE,
    bind_fixture,
    dns_bind_fixture,
    get_json,
    unverify,
    verify,
)
from tests.integration.attacks.test_pod_security import COMPLIANT_POD_SPEC
from tests.integration.bind import Bind
from tests.integration.fixtures import PLATFORM_NAMESPACE, ClusterHandle, OperatorProcess, Partner, wait_for
from tests.integration.test_dns import dns_env

pytestmark = pytest.mark.integration

HOLD = "tests.tenantry.dev/hold"


def _pod(ns: str, name: str) -> dict[str, Any]:
    # Restricted-compliant: the operator's pod security re-check would delete any other pod itself.
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
            "spec": COMPLIANT_POD_SPEC}


def _workloads(cluster: ClusterHandle, ns: str) -> None:
    """A Deployment of 2 with its 2 pods (the local control plane runs no Deployment controller and
    no node: the pods are created here and stay Pending, which is all the API sees of a running pod),
    a volume claim, and the tenant's own ConfigMap and Secret: its data."""
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": COMPLIANT_POD_SPEC}}}
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": ns},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-data", "namespace": ns},
              "data": {"customers": "42"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-secret", "namespace": ns},
              "stringData": {"key": "s3cr3t"}}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(
        [deployment, _pod(ns, "web-1"), _pod(ns, "web-2"), pvc, config, secret]))
    # No PVC-protection controller runs here to lift its finalizer: lift it now, or the test's
    # namespace would stay Terminating after the clean-up.
    cluster.kubectl("patch", "pvc", "data", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    assert len(_pods(cluster, ns)) == 2


def _pods(cluster: ClusterHandle, ns: str) -> list[dict[str, Any]]:
    return json.loads(cluster.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]


def _replicas(cluster: ClusterHandle, ns: str) -> int | None:
    deployment = get_json(cluster, "deployment", "web", "-n", ns)
    return None if deployment is None else deployment["spec"]["replicas"]


def _data_kept(cluster: ClusterHandle, ns: str) -> None:
    assert get_json(cluster, "persistentvolumeclaim", "data", "-n", ns) is not None
    assert (get_json(cluster, "configmap", "app-data", "-n", ns) or {}).get("data") == {"customers": "42"}
    assert get_json(cluster, "secret", "app-secret", "-n", ns) is not None


def _certificates(cluster: ClusterHandle, ns: str) -> list[dict[str, Any]]:
    return json.loads(cluster.kubectl("get", "certificates.cert-manager.io", "-n", ns, "-o", "json").stdout)["items"]


def test_retain_deletion_stops_serving_keeps_data_and_holds_the_domain_until_the_route_is_gone(
        partner: Partner, other_partner: Partner, cluster: ClusterHandle, dns_bind: Bind) -> None:
    """The Ingress is held by a finalizer (as a slow ingress controller would): while it exists the
    claim stays and another partner's tenant is refused the domain; once it is gone the claim goes."""
    slug, domain = partner.slug("leaving"), f"ki.{CUSTOMER_ZONE}"
    ns, claim = f"tenant-{slug}", claim_name(domain)
    partner.apply(partner.tenant(slug, domains=[domain]))
    partner.wait_condition(slug)
    try:
        verify(partner, dns_bind, slug, domain)
        wait_for(lambda: get_json(cluster, "ingress", "tenantry-domains", "-n", ns) and _certificates(cluster, ns),
                 what="Ingress and Certificate")
        _workloads(cluster, ns)
        cluster.kubectl("patch", "ingress", "tenantry-domains", "-n", ns, "--type=merge",
                        "-p", json.dumps({"metadata": {"finalizers": [HOLD]}}))
        partner.delete(slug, wait=False)

        wait_for(lambda: (get_json(cluster, "ingress", "tenantry-domains", "-n", ns) or {}).get("metadata", {}).get(
            "deletionTimestamp"), timeout=60, what="the Ingress deleted")
        wait_for(lambda: get_json(cluster, "rolebinding", "tenantry-tenant-admins", "-n", ns) is None,
                 what="admin access revoked")
        wait_for(lambda: _replicas(cluster, ns) == 0 and _pods(cluster, ns) == [], what="workloads stopped")
        # Stopped only once the quota refuses new pods (its status says pods: 0; pods deleted before
        # would come back and run on, the Tenant gone).
        quota = get_json(cluster, "resourcequota", "tenantry-quota", "-n", ns) or {}
        assert ((quota.get("status") or {}).get("hard") or {}).get("pods") == "0", quota.get("status")
        wait_for(lambda: _certificates(cluster, ns) == [], what="Certificates removed")
        assert quota["spec"]["hard"]["pods"] == "0"
        # The route still exists (terminating): the claim is kept, another partner is refused.
        second = other_partner.slug("grabber")
        other_partner.apply(other_partner.tenant(second, domains=[domain], admins=["erika@beispiel.de"]))
        other_partner.wait_condition(second, status="False", reason="DomainConflict", kind="DomainsVerified")
        assert get_json(cluster, "secret", claim, "-n", PLATFORM_NAMESPACE) is not None
        assert partner.get(slug) is not None  # the finalizer waits for the route

        cluster.kubectl("patch", "ingress", "tenantry-domains", "-n", ns, "--type=json",
                        "-p", json.dumps([{"op": "remove", "path": "/metadata/finalizers"}]))
        def released() -> bool:
            live = get_json(cluster, "secret", claim, "-n", PLATFORM_NAMESPACE)  # read once: it may go meanwhile
            owner = live and live["metadata"]["annotations"]["tenantry.dev/owner"]
            return owner != f"{partner.namespace}/{slug}"
        wait_for(released, timeout=60, what="the claim released")
        wait_for(lambda: partner.get(slug) is None, timeout=60, what="the Tenant gone")
        other_partner.wait_condition(second, status="False", reason="DomainsPending", kind="DomainsVerified",
                                     timeout=60)
        # The data stays, in a namespace marked orphaned; nothing runs or routes there.
        _data_kept(cluster, ns)
        namespace = get_json(cluster, "namespace", ns) or {}
        assert namespace["metadata"]["labels"].get("tenantry.dev/orphaned") == "true"
        assert _replicas(cluster, ns) == 0 and _pods(cluster, ns) == []
        assert get_json(cluster, "ingress", "tenantry-domains", "-n", ns) is None
    finally:
        unverify(dns_bind, domain)
        if get_json(cluster, "ingress", "tenantry-domains", "-n", ns):
            cluster.kubectl("patch", "ingress", "tenantry-domains", "-n", ns, "--type=merge",
                            "-p", json.dumps({"metadata": {"finalizers": None}}), check=False)


def test_cancel_stops_the_pods_and_suspend_pauses_them(partner: Partner, cluster: ClusterHandle) -> None:
    """Suspended: pods deleted, new ones refused, replica count kept; allowed again when reactivated.
    Cancelled (Retain): scaled to 0, pods deleted, admins' access gone, data kept."""
    slug = partner.slug("cancel")
    ns = f"tenant-{slug}"
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug)
    _workloads(cluster, ns)
    partner.apply(partner.tenant(slug, state="Suspended"))
    partner.wait_condition(slug, reason="Suspended")
    # Reported only once the quota refuses pods: admission judges by the quota's status, which
    # its controller fills a moment after the operator's write (pods deleted before would return).
    quota = get_json(cluster, "resourcequota", "tenantry-quota", "-n", ns) or {}
    assert ((quota.get("status") or {}).get("hard") or {}).get("pods") == "0", quota.get("status")
    wait_for(lambda: _pods(cluster, ns) == [], what="pods of the suspended tenant deleted")
    assert _replicas(cluster, ns) == 2
    assert get_json(cluster, "rolebinding", "tenantry-tenant-admins", "-n", ns) is not None
    refused = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(_pod(ns, "web-3")), check=False)
    assert refused.returncode != 0 and "exceeded quota" in refused.stderr
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug)
    # Reactivated: pods may run again (a Deployment controller would recreate them by itself).
    wait_for(lambda: cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(_pod(ns, "web-3")),
                                     check=False).returncode == 0, timeout=30, what="pods allowed again")

    partner.apply(partner.tenant(slug, state="Cancelled"))
    partner.wait_condition(slug, reason="Cancelled")
    wait_for(lambda: _replicas(cluster, ns) == 0 and _pods(cluster, ns) == [], what="workloads stopped")
    assert get_json(cluster, "rolebinding", "tenantry-tenant-admins", "-n", ns) is None
    _data_kept(cluster, ns)


def test_deleting_the_loser_of_a_slug_race_leaves_the_holder_untouched(
        partner: Partner, other_partner: Partner, cluster: ClusterHandle, dns_bind: Bind,
        operator: OperatorProcess) -> None:
    """Both partners create the same name (no webhook refuses the second); the second loses. Deleting
    it must not remove the holder's DNSEndpoint (external-dns provider), namespace or data."""
    operator.restart_with(dns_env(dns_bind, provider="externaldns"))
    slug = partner.slug("race")
    ns = f"tenant-{slug}"
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug, reason="Published", kind="DNSReady")
    endpoint = get_json(cluster, "dnsendpoints.externaldns.k8s.io", "tenantry-dns", "-n", ns)
    assert endpoint is not None
    other_partner.apply(other_partner.tenant(slug, admins=["erika@beispiel.de"]))
    other_partner.wait_condition(slug, status="False", reason="SlugConflict", kind="NamespaceReady")
    other_partner.delete(slug)
    assert other_partner.get(slug) is None
    after = get_json(cluster, "dnsendpoints.externaldns.k8s.io", "tenantry-dns", "-n", ns)
    assert after is not None and after["spec"] == endpoint["spec"]
    assert after["metadata"]["uid"] == endpoint["metadata"]["uid"]
    namespace = get_json(cluster, "namespace", ns) or {}
    assert "tenantry.dev/orphaned" not in namespace["metadata"].get("labels", {})
    assert get_json(cluster, "rolebinding", "tenantry-tenant-admins", "-n", ns) is not None
    assert get_json(cluster, "resourcequota", "tenantry-quota", "-n", ns)["spec"]["hard"]["pods"] != "0"
    partner.wait_condition(slug)
