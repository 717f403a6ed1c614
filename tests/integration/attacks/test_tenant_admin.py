"""Attacks by a tenant admin (impersonated: `kubectl --as max@mustermann.de`) on the real API server.

Security issue 12, findings 7 and 8:
- editing the operator's tenantry-flags ConfigMap again and again (6 and more times, also under the
  operator's own field-manager name) to outlast the operator's pause for contested objects;
- forging another tenant's owner annotation on ConfigMaps in their own namespace, to make the
  operator reconcile (i.e. load) any other tenant;
- an ExternalName Service `frontend` behind a verified custom domain (the domain as a proxy into
  the cluster), and Services with externalIPs (intercepting traffic to others' addresses) or
  external-dns annotations (publishing any name in the platform's zones);
- a pod naming a PriorityClass the platform did not allow (preempting other tenants' pods);
- padding the operator's tenantry-flags with about 100 KB of annotations and labels under the
  operator's own prefix (unknown keys, and tenantry.dev/domain, a key it reads elsewhere), which no
  write of the operator compares: the operator's memory (tenantry_cached_bytes) must not keep them.
- adding to the operator's ConfigMaps what its memory does not keep or its comparison let pass: a
  file in binaryData, a logo.svg the Branding does not have (never checked against the SVG
  allow-list), and a value that only reads the same as a quantity (seats "0.05k" for "50"): each
  is reverted.
- filling the quota's count of ConfigMaps and taking the slot of the operator's own branding
  ConfigMap, so that the operator cannot create it again (a concurrency review, 3 Dec): the tenant
  is not Ready and says why, yet it keeps its namespace in its status and is billed (the refused
  write used to drop status.namespace and the url, and the tenant's MRR to 0 while it was served).
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube.types import PatchType

from tenantry.adapters.kube import Tenant
from tests.integration.attacks.domains import (  # noqa: F401  (fixtures)
    CUSTOMER_ZONE,
    bind_fixture,
    dns_bind_fixture,
    get_json,
    unverify,
    verify,
)
from tests.integration.bind import Bind
from tests.integration.fixtures import ClusterHandle, OperatorProcess, Partner, wait_for
from tests.integration.net import free_port

pytestmark = pytest.mark.integration

ADMIN = "max@mustermann.de"


def as_admin(cluster: ClusterHandle, *args: str, input: str | None = None) -> Any:
    return cluster.kubectl("--as", ADMIN, *args, input=input, check=False)


def flags(cluster: ClusterHandle, ns: str) -> dict[str, Any]:
    cm = get_json(cluster, "configmap", "tenantry-flags", "-n", ns)
    assert cm is not None
    return {"data": cm["data"], "owner": cm["metadata"]["annotations"].get("tenantry.dev/owner"),
            "labels": cm["metadata"].get("labels")}


def test_tenant_admin_cannot_outlast_the_operator_on_its_configmaps(partner: Partner, cluster: ClusterHandle,
                                                                   operator: OperatorProcess) -> None:
    """Six edits within the contest window (limit 5 per 60 s), then one under the operator's own
    field-manager name, then one that also strips the managed-by label (out of the operator's
    labelled watch), then one that also makes it immutable, then an immutable one held by a finalizer
    of the admin's (so the operator's delete leaves it terminating): each is reverted at once, with the
    resync off (so only the edit's own event can bring the pass), and the tenant never reports the
    object as contested."""
    slug = partner.slug("flags")
    operator.restart_with({"TENANTRY_RESYNC_SECONDS": "3600"})
    try:
        partner.apply(partner.tenant(slug))
        partner.wait_condition(slug)
        ns = f"tenant-{slug}"
        original = flags(cluster, ns)
        forged = json.dumps({"flags": {"tables": {"state": "ENABLED", "variants": {"on": True},
                                                  "defaultVariant": "on"}}})
        for attempt in range(9):
            manager = ["--field-manager=tenantry"] if attempt >= 6 else []
            patch: dict[str, Any] = {"data": {"flags.json": forged}}
            if attempt == 7:
                patch["metadata"] = {"labels": {"app.kubernetes.io/managed-by": None}}
            if attempt == 8:
                patch["immutable"] = True  # no apply can change it any more: replaced
            edit = as_admin(cluster, "patch", "configmap", "tenantry-flags", "-n", ns, "--type=merge", *manager,
                            "-p", json.dumps(patch))
            assert edit.returncode == 0, edit.stderr  # RBAC allows it: the operator guards
            wait_for(lambda: flags(cluster, ns) == original, timeout=30, what=f"edit {attempt + 1} reverted")
        # An immutable copy under a finalizer of the admin's own: the operator's delete leaves it
        # terminating (neither writable nor creatable again) unless the finalizer goes.
        edit = as_admin(cluster, "patch", "configmap", "tenantry-flags", "-n", ns, "--type=merge", "-p",
                        json.dumps({"data": {"flags.json": forged}, "immutable": True,
                                    "metadata": {"finalizers": ["example.com/hold"]}}))
        assert edit.returncode == 0, edit.stderr

        def replaced() -> bool:
            live = get_json(cluster, "configmap", "tenantry-flags", "-n", ns)
            if live is None:
                return False  # between the delete and the create
            meta = live["metadata"]
            return not live.get("immutable") and not meta.get("deletionTimestamp") and not meta.get("finalizers") \
                and {"data": live["data"], "owner": (meta.get("annotations") or {}).get("tenantry.dev/owner"),
                     "labels": meta.get("labels")} == original
        wait_for(replaced, timeout=30, what="the immutable copy held by a finalizer replaced")
        assert partner.condition(slug, "ManagedObjectsInSync").get("status") == "True"
        assert flags(cluster, ns) == original
    finally:
        operator.restart_with({})


def _stale_url(cluster: ClusterHandle, slug: str, namespace: str) -> None:
    cluster.client.patch(Tenant.Status, slug, {"status": {"url": "https://stale.invalid"}}, namespace=namespace,
                         patch_type=PatchType.MERGE)


def _url(partner: Partner, slug: str) -> str | None:
    return ((partner.get(slug) or {}).get("status") or {}).get("url")


def test_forged_owner_annotation_queues_no_other_tenant(partner: Partner, other_partner: Partner,
                                                        cluster: ClusterHandle, operator: OperatorProcess) -> None:
    """Victim B's status is made stale (only a reconcile of B would fix it) with resync off. A's admin
    puts B's owner annotation on ConfigMaps in A's namespace: A is reconciled (its flags restored),
    B is not. A legitimate change of B's objects then does reconcile B (the check can fail)."""
    mine, victim = partner.slug("forger"), other_partner.slug("victim")
    partner.apply(partner.tenant(mine))
    other_partner.apply(other_partner.tenant(victim, admins=["erika@beispiel.de"]))
    partner.wait_condition(mine)
    other_partner.wait_condition(victim)
    operator.stop()
    _stale_url(cluster, victim, other_partner.namespace)
    operator.restart_with({"TENANTRY_RESYNC_SECONDS": "3600"})
    try:
        # The start's first listing reconciles every tenant once: wait until B's was done.
        wait_for(lambda: _url(other_partner, victim) == f"https://{victim}.platform.test", what="first pass over B")
        _stale_url(cluster, victim, other_partner.namespace)
        ns, victim_key = f"tenant-{mine}", f"{other_partner.namespace}/{victim}"
        original = flags(cluster, ns)
        before = operator.metric("tenantry_reconcile_total")
        forged_cm = {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "forged", "namespace": ns, "annotations": {"tenantry.dev/owner": victim_key},
                                  "labels": {"app.kubernetes.io/managed-by": "tenantry"}}, "data": {"x": "1"}}
        assert as_admin(cluster, "apply", "-f", "-", input=yaml.safe_dump(forged_cm)).returncode == 0
        edit = as_admin(cluster, "annotate", "configmap", "tenantry-flags", "-n", ns, "--overwrite",
                        f"tenantry.dev/owner={victim_key}")
        assert edit.returncode == 0, edit.stderr
        # The namespace's own tenant is reconciled: its flags get their owner back.
        wait_for(lambda: flags(cluster, ns) == original, timeout=30, what="A's flags restored by a pass over A")
        wait_for(lambda: operator.metric("tenantry_reconcile_total") >= before + 1, what="the pass counted")
        assert _url(other_partner, victim) == "https://stale.invalid"  # B was not reconciled
        # A real change of B's own objects does reconcile B.
        cluster.kubectl("delete", "limitrange", "tenantry-limits", "-n", f"tenant-{victim}")
        wait_for(lambda: _url(other_partner, victim) == f"https://{victim}.platform.test", timeout=30,
                 what="B reconciled after a change of its own objects")
    finally:
        operator.restart_with({})


def _service(name: str, ns: str, **spec: Any) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                           "spec": spec})


def test_no_route_to_an_external_name_service_and_no_external_ips(partner: Partner, cluster: ClusterHandle,
                                                                  dns_bind: Bind) -> None:
    """ExternalName `frontend` + verified domain: no Ingress, DomainsRouted=False RouteRefused with a fix.
    A ClusterIP `frontend` is routed (the refusal is specific). externalIPs on any Service are removed."""
    slug, domain = partner.slug("proxy"), f"shop.{CUSTOMER_ZONE}"
    ns = f"tenant-{slug}"
    partner.apply(partner.tenant(slug, domains=[domain]))
    partner.wait_condition(slug)
    created = as_admin(cluster, "apply", "-f", "-", input=_service(
        "frontend", ns, type="ExternalName", externalName="kubernetes.default.svc.cluster.local"))
    assert created.returncode == 0, created.stderr
    try:
        verify(partner, dns_bind, slug, domain)
        cond = partner.wait_condition(slug, status="False", reason="RouteRefused", kind="DomainsRouted")
        assert "ExternalName" in cond["message"] and "ClusterIP" in cond["message"]
        assert get_json(cluster, "ingress", "tenantry-domains", "-n", ns) is None
        assert json.loads(cluster.kubectl("get", "certificates.cert-manager.io", "-n", ns, "-o", "json").stdout)[
            "items"] == []
        # A proper Service is routed.
        as_admin(cluster, "delete", "service", "frontend", "-n", ns)
        assert as_admin(cluster, "apply", "-f", "-", input=_service(
            "frontend", ns, selector={"app": "web"}, ports=[{"port": 80}])).returncode == 0
        partner.wait_condition(slug, reason="Routed", kind="DomainsRouted", timeout=60)
        assert get_json(cluster, "ingress", "tenantry-domains", "-n", ns) is not None
        # externalIPs: accepted by the API server (1.20 has no admission plugin against them), removed at once.
        sneaky = as_admin(cluster, "apply", "-f", "-", input=_service(
            "sneaky", ns, selector={"app": "web"}, ports=[{"port": 443}], externalIPs=["198.51.100.10"]))
        assert sneaky.returncode == 0, sneaky.stderr
        wait_for(lambda: not (get_json(cluster, "service", "sneaky", "-n", ns) or {}).get("spec", {}).get(
            "externalIPs"), timeout=30, what="externalIPs removed")
        patched = as_admin(cluster, "patch", "service", "frontend", "-n", ns, "--type=merge",
                           "-p", json.dumps({"spec": {"externalIPs": ["198.51.100.11"]}}))
        assert patched.returncode == 0, patched.stderr
        wait_for(lambda: not (get_json(cluster, "service", "frontend", "-n", ns) or {}).get("spec", {}).get(
            "externalIPs"), timeout=30, what="externalIPs removed from frontend")
        # external-dns's annotations (its Service source would publish any name in the platform's
        # zones, past the slug and domain claims): removed, the tenant's own annotations kept.
        published = {"external-dns.alpha.kubernetes.io/hostname": "login.platform.test",
                     "external-dns.alpha.kubernetes.io/target": "203.0.113.7", "team": "web"}
        annotated = as_admin(cluster, "annotate", "service", "sneaky", "-n", ns, "--overwrite",
                             *(f"{key}={value}" for key, value in published.items()))
        assert annotated.returncode == 0, annotated.stderr

        def annotations() -> dict[str, str]:
            return ((get_json(cluster, "service", "sneaky", "-n", ns) or {}).get("metadata") or {}).get(
                "annotations") or {}

        wait_for(lambda: not any(key.startswith("external-dns.") for key in annotations()), timeout=30,
                 what="external-dns annotations removed")
        assert annotations().get("team") == "web", annotations()
    finally:
        unverify(dns_bind, domain)


def test_pod_with_an_unlisted_priority_class_is_refused_by_quota(partner: Partner, cluster: ClusterHandle) -> None:
    """A PriorityClass exists in the cluster (the platform's), but tenants may not use it."""
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": "attack-preemptor"}, "value": 1000000000}))
    try:
        _priority_class_refused(partner, cluster)
    finally:
        cluster.kubectl("delete", "priorityclass", "attack-preemptor", "--ignore-not-found")


def _priority_class_refused(partner: Partner, cluster: ClusterHandle) -> None:
    slug = partner.slug("prio")
    ns = f"tenant-{slug}"
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug)

    def pod(name: str, priority_class: str | None) -> str:
        spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
        if priority_class:
            spec["priorityClassName"] = priority_class
        return yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
                               "spec": spec})
    refused = as_admin(cluster, "apply", "-f", "-", input=pod("preemptor", "attack-preemptor"))
    assert refused.returncode != 0 and "exceeded quota: tenantry-priority-classes" in refused.stderr, refused.stderr
    assert get_json(cluster, "pod", "preemptor", "-n", ns) is None
    allowed = as_admin(cluster, "apply", "-f", "-", input=pod("plain", None))  # no class: allowed as before
    assert allowed.returncode == 0, allowed.stderr


def test_tenant_admin_configmaps_cost_the_operator_no_memory_and_no_passes(partner: Partner, cluster: ClusterHandle,
                                                                          operator: OperatorProcess) -> None:
    """Issue 13: the operator keeps the objects it reads in memory. A tenant admin creates 20
    ConfigMaps of 100 KB each named like the operator's (tenantry-junk-<i>, managed-by label
    forged): none of them is kept (tenantry_cached_objects unchanged) and none costs a pass (resync
    off); a change to the operator's own tenantry-flags still does, and is reverted."""
    slug = partner.slug("hoarder")
    operator.restart_with({"TENANTRY_RESYNC_SECONDS": "3600"})
    try:
        partner.apply(partner.tenant(slug))
        partner.wait_condition(slug)
        ns = f"tenant-{slug}"
        original = flags(cluster, ns)
        # The count is of every tenant's: earlier tests' namespaces must be gone first.
        wait_for(lambda: "Terminating" not in cluster.kubectl("get", "namespaces", "--no-headers").stdout,
                 timeout=180, what="no namespace terminating")
        cached = operator.metric("tenantry_cached_objects", kind="ConfigMap")
        passes = operator.metric("tenantry_reconcile_total")
        junk = [{"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": f"tenantry-junk-{i}", "namespace": ns,
                              "labels": {"app.kubernetes.io/managed-by": "tenantry"}},
                 "data": {"blob": "x" * 100_000}} for i in range(20)]
        created = as_admin(cluster, "apply", "-f", "-", input=yaml.safe_dump_all(junk))
        assert created.returncode == 0, created.stderr
        # After the junk in the same watch stream: once this edit is reverted, the junk was seen too.
        edit = as_admin(cluster, "patch", "configmap", "tenantry-flags", "-n", ns, "--type=merge",
                        "-p", '{"data": {"flags.json": "{}"}}')
        assert edit.returncode == 0, edit.stderr
        wait_for(lambda: flags(cluster, ns) == original, timeout=30, what="tenantry-flags reverted")
        assert operator.metric("tenantry_cached_objects", kind="ConfigMap") == cached
        # The edit's pass, and at most one more for the echo of its own correction.
        assert 1 <= operator.metric("tenantry_reconcile_total") - passes <= 2
    finally:
        operator.restart_with({})


def test_padding_under_the_operators_prefix_costs_it_no_memory(partner: Partner, cluster: ClusterHandle,
                                                               operator: OperatorProcess, tmp_path: Path) -> None:
    slug = partner.slug("padder")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug)
    ns = f"tenant-{slug}"
    original = flags(cluster, ns)
    before = operator.metric("tenantry_cached_bytes", kind="ConfigMap")
    # Random text (deflate cannot shrink it). A revert would drop it (the operator's PUT carries
    # only its own annotations), so the padding alone, then an edit of another of its ConfigMaps
    # in the same watch stream: once that one is reverted, the padded version was seen and stored.
    # Unknown keys, a key the operator reads (on a ConfigMap no write of its compares it), labels.
    padding = {f"tenantry.dev/pad-{i}": os.urandom(512).hex() for i in range(50)}
    padding["tenantry.dev/domain"] = os.urandom(25_000).hex()
    labels = {f"tenantry.dev/pad-{i}": os.urandom(31).hex() for i in range(800)}
    patch_file = tmp_path / "padding.json"  # too long for a command line
    patch_file.write_text(json.dumps({"metadata": {"annotations": padding, "labels": labels}}))
    edit = as_admin(cluster, "patch", "configmap", "tenantry-flags", "-n", ns, "--type=merge",
                    "--patch-file", str(patch_file))
    assert edit.returncode == 0, edit.stderr
    features = get_json(cluster, "configmap", "tenantry-features", "-n", ns)["data"]
    edit = as_admin(cluster, "patch", "configmap", "tenantry-features", "-n", ns, "--type=merge",
                    "-p", json.dumps({"data": dict.fromkeys(features, "{}")}))
    assert edit.returncode == 0, edit.stderr
    wait_for(lambda: get_json(cluster, "configmap", "tenantry-features", "-n", ns)["data"] == features,
             timeout=30, what="tenantry-features reverted")
    grown = operator.metric("tenantry_cached_bytes", kind="ConfigMap") - before
    assert grown < 10_000, f"the operator keeps {grown:.0f} more bytes of ConfigMaps after 100 KB of padding"
    assert flags(cluster, ns)["data"] == original["data"]


def test_what_a_tenant_admin_adds_to_the_operators_configmaps_is_removed(partner: Partner,
                                                                         cluster: ClusterHandle) -> None:
    slug = partner.slug("adder")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug)
    ns = f"tenant-{slug}"
    branding = get_json(cluster, "configmap", "tenantry-branding", "-n", ns)
    tenant = get_json(cluster, "configmap", "tenantry-tenant", "-n", ns)
    assert "logo.svg" not in branding["data"] and tenant["data"]["seats"] == "50"
    hostile_logo = '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)"/>'
    edit = as_admin(cluster, "patch", "configmap", "tenantry-branding", "-n", ns, "--type=merge", "-p",
                    json.dumps({"data": {"logo.svg": hostile_logo}, "binaryData": {"payload.bin": "AAEC"}}))
    assert edit.returncode == 0, edit.stderr
    edit = as_admin(cluster, "patch", "configmap", "tenantry-tenant", "-n", ns, "--type=merge", "-p",
                    json.dumps({"data": {"seats": "0.05k"}}))
    assert edit.returncode == 0, edit.stderr

    def reverted() -> bool:
        now = [get_json(cluster, "configmap", name, "-n", ns) for name in ("tenantry-branding", "tenantry-tenant")]
        return now[0]["data"] == branding["data"] and "binaryData" not in now[0] and \
            now[1]["data"] == tenant["data"]
    wait_for(reverted, timeout=30, what="the additions removed and seats written back")


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> int:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except urllib.error.URLError:
        return 0


def test_a_tenant_admin_who_blocks_the_operators_configmap_is_still_billed(partner: Partner, cluster: ClusterHandle,
                                                                           operator: OperatorProcess) -> None:
    slug = partner.slug("bill")
    partner.apply(partner.tenant(slug, plan={"featureSet": "business", "seats": 50,
                                             "price": {"monthly": 5000, "currency": "EUR"}}))
    partner.wait_condition(slug)
    ns = f"tenant-{slug}"
    wait_for(lambda: operator.metric("tenantry_tenant_mrr", tenant=slug) == 5000, timeout=30, what="MRR counted")
    # A proxy as the tenant admin: the slot freed by the deletion must be taken before the
    # operator's watch has it created again (kubectl per request would rarely win the race).
    port = free_port()
    proxy = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.kubeconfig), "--as", ADMIN, "proxy",
                              f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    configmaps = f"http://127.0.0.1:{port}/api/v1/namespaces/{ns}/configmaps"
    fillers = iter(range(10_000))

    def fill() -> None:
        while _call("POST", configmaps, {"metadata": {"name": f"filler-{next(fillers)}"}}) == 201:
            pass

    def blocked() -> bool:
        fill()
        if _call("GET", f"{configmaps}/tenantry-branding") == 200:
            assert _call("DELETE", f"{configmaps}/tenantry-branding") in (200, 202, 404)
            fill()
        return partner.condition(slug, "NamespaceReady").get("reason") == "Forbidden"

    try:
        wait_for(lambda: _call("GET", configmaps) == 200, timeout=20, what="the tenant admin's proxy")
        wait_for(blocked, timeout=120, what="the operator's ConfigMap refused by the full quota")
    finally:
        proxy.terminate()
        proxy.wait()
    status = partner.get(slug)["status"]
    assert "exceeded quota" in partner.condition(slug, "NamespaceReady")["message"]
    assert partner.condition(slug)["status"] == "False"
    assert (status.get("namespace"), status.get("url")) == (ns, f"https://{slug}.platform.test")
    assert operator.metric("tenantry_tenant_mrr", tenant=slug) == 5000
