"""A reconcile reads from watch-fed memory (informers), not from the API server.

Tested here, counting requests with the API server's own apiserver_request_total (never the
operator's own counters):
- passes over unchanged tenants (the resync) make no GET of anything the operator reads
- an operator restart reads nothing per tenant: at most one LIST per kind an informer watches,
  no GET of them, and no write
- what changed while the operator was away (a child deleted) is repaired after the restart
- a child changed behind the operator's back is seen by the informer's watch (no resync: it is
  an hour here), and the memory then holds the corrected object (the next pass writes nothing)
- an informer reads its LIST in pages (continue tokens), keeps every object of every page, and
  watches from the list's version: a change made after the LIST is seen, none before it is lost
"""

from __future__ import annotations

import asyncio

from lightkube.config.kubeconfig import KubeConfig

from tenantry.adapters.http import Api
from tenantry.adapters.informer import Informer, Scope
from tests.integration.fixtures import ClusterHandle, OperatorProcess, Partner, diff, namespace, settle, wait_for

__all__ = ["namespace"]  # the scratch-namespace fixture

# What the reconcile of a tenant without custom domains reads (with the default DNS provider none),
# besides the Tenant itself (kube-apiserver 1.20 counts a GET of a custom resource as a LIST in a
# namespace: ClusterHandle.tenant_reads).
INFORMER_KINDS = {"namespaces", "resourcequotas", "limitranges", "networkpolicies", "rolebindings", "configmaps"}
CATALOGUE_KINDS = {"featuresets", "brandings"}  # listed by their informers too (kopf no longer watches them)
WRITE_KINDS = INFORMER_KINDS | {"tenants", "events"}


def _passes(operator: OperatorProcess) -> float:
    return operator.metric("tenantry_reconcile_total", kind="Tenant")


def _settled(cluster: ClusterHandle) -> None:
    """No namespace terminating (the namespace controller reads them) and the write count still."""
    wait_for(lambda: "Terminating" not in cluster.kubectl("get", "namespaces", "--no-headers").stdout,
             timeout=180, what="no namespace terminating")
    settle(lambda: cluster.apiserver_writes(WRITE_KINDS), what="the API server's write count")


def _onboarded(partner: Partner, cluster: ClusterHandle, base: str) -> list[str]:
    """Three Ready tenants, and a cluster at rest."""
    slugs = [partner.slug(f"{base}{i}") for i in range(3)]
    for slug in slugs:
        partner.apply(partner.tenant(slug))
    for slug in slugs:
        partner.wait_condition(slug)
    _settled(cluster)
    return slugs


def test_passes_over_unchanged_tenants_make_no_get(partner: Partner, cluster: ClusterHandle,
                                                    operator: OperatorProcess) -> None:
    slugs = _onboarded(partner, cluster, "cached")
    gets_before = cluster.apiserver_requests({"GET"}, INFORMER_KINDS - {"namespaces"})
    tenant_reads_before = cluster.tenant_reads()
    ours_before = operator.metric("tenantry_read_requests_total")
    passes_before = _passes(operator)
    # The resync (3 s here) gives every tenant of the session a pass: wait for two rounds of ours.
    wait_for(lambda: _passes(operator) >= passes_before + 2 * len(slugs) + 2, timeout=60,
             what="resync passes")
    # Namespaces aside: the API server's own admission reads one now and then (a live lookup when
    # its informer misses), and its metrics cannot tell whose GET it was; the operator's count can.
    gets = diff(gets_before, cluster.apiserver_requests({"GET"}, INFORMER_KINDS - {"namespaces"}))
    ours = operator.metric("tenantry_read_requests_total") - ours_before
    tenant_reads = diff(tenant_reads_before, cluster.tenant_reads())
    assert gets == {} and ours == 0 and tenant_reads == {}, \
        f"GETs during passes over unchanged tenants: {gets}, of Tenants: {tenant_reads}; the operator's: {ours}"


def test_restart_lists_each_kind_once_and_reads_no_tenant(partner: Partner, cluster: ClusterHandle,
                                                          operator: OperatorProcess) -> None:
    _onboarded(partner, cluster, "restart")
    tenants = len(cluster.kubectl("get", "tenants", "-A", "--no-headers").stdout.splitlines())
    operator.stop()
    before = cluster.apiserver_requests({"GET", "LIST"}, INFORMER_KINDS | CATALOGUE_KINDS)
    tenant_reads_before = cluster.tenant_reads()
    writes_before = cluster.apiserver_writes(WRITE_KINDS)
    operator.start()
    # Every tenant gets a pass at a start (kopf lists them); the counter restarted with the process.
    wait_for(lambda: _passes(operator) >= tenants, timeout=120, what=f"a pass over each of {tenants} tenants")
    requests = diff(before, cluster.apiserver_requests({"GET", "LIST"}, INFORMER_KINDS | CATALOGUE_KINDS))
    # As above: namespaces by the operator's own count (the API server reads some itself).
    gets = {k: v for k, v in requests.items() if k.startswith("GET ") and k != "GET namespaces/"}
    watched = INFORMER_KINDS | CATALOGUE_KINDS
    lists = {k: v for k, v in requests.items() if k.startswith("LIST ") and k.split()[1].rstrip("/") in watched}
    ours = operator.metric("tenantry_read_requests_total")
    tenant_reads = diff(tenant_reads_before, cluster.tenant_reads())
    assert gets == {} and ours == 0 and tenant_reads == {}, \
        f"GETs after a restart over unchanged tenants: {gets}, of Tenants: {tenant_reads}; the operator's: {ours}"
    assert lists and all(v == 1 for v in lists.values()), f"LIST requests per informer kind: {lists}"
    writes = diff(writes_before, cluster.apiserver_writes(WRITE_KINDS))
    assert writes == {}, f"writes after a restart over unchanged tenants: {writes}"


def test_child_deleted_while_the_operator_was_away_is_restored(partner: Partner, cluster: ClusterHandle,
                                                               operator: OperatorProcess) -> None:
    slug = partner.slug("away")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug)
    operator.stop()
    cluster.kubectl("delete", "networkpolicy", "tenantry-isolation", "-n", f"tenant-{slug}")
    operator.start()
    wait_for(lambda: cluster.kubectl("get", "networkpolicy", "tenantry-isolation", "-n", f"tenant-{slug}",
                                     check=False).returncode == 0, timeout=60, what="the NetworkPolicy restored")


def test_a_change_is_seen_by_the_watch_and_corrected_once(partner: Partner, cluster: ClusterHandle,
                                                          operator: OperatorProcess) -> None:
    operator.restart_with({"TENANTRY_RESYNC_SECONDS": "3600"})
    try:
        slug = partner.slug("watched")
        partner.apply(partner.tenant(slug))
        partner.wait_condition(slug)
        ns = f"tenant-{slug}"
        _settled(cluster)
        writes_before = cluster.apiserver_writes({"limitranges"})
        cluster.kubectl("patch", "limitrange", "tenantry-limits", "-n", ns, "--type=json",
                        "-p", '[{"op": "remove", "path": "/spec/limits/0/max"}]')
        wait_for(lambda: "max" in cluster.kubectl("get", "limitrange", "tenantry-limits", "-n", ns,
                                                  "-o", "jsonpath={.spec.limits[0]}").stdout,
                 timeout=30, what="the LimitRange corrected from its watch event")
        _settled(cluster)
        writes = diff(writes_before, cluster.apiserver_writes({"limitranges"}))
        # Ours: the test's PATCH and the operator's one PUT; its own event then changes nothing.
        assert writes == {"PATCH limitranges/": 1, "PUT limitranges/": 1}, writes
    finally:
        operator.restart_with({})


def test_an_informer_lists_in_pages_and_watches_from_the_lists_version(cluster: ClusterHandle, namespace: str) -> None:
    names = [f"paged-{i}" for i in range(5)]
    for name in names:
        cluster.kubectl("create", "configmap", name, "-n", namespace, f"--from-literal=k={name}")
    lists_before = cluster.apiserver_requests({"LIST"}, {"configmaps"})

    async def run() -> tuple[list[str], str | None, int]:
        informer = Informer(Api(KubeConfig.from_file(str(cluster.kubeconfig)).get()),
                            Scope("v1", "ConfigMap", namespace=namespace), list_page=2)
        task = asyncio.create_task(informer.run())
        try:
            await asyncio.wait_for(informer.synced.wait(), 60)
            listed = sorted(name for _, name in informer.keys() if name.startswith("paged-"))
            await asyncio.to_thread(cluster.kubectl, "create", "configmap", "after-list", "-n", namespace)
            for _ in range(600):  # the watch, not a second LIST, brings it
                if informer.get(namespace, "after-list") is not None:
                    break
                await asyncio.sleep(0.05)
            return listed, (informer.get(namespace, "paged-3") or {}).get("data", {}).get("k"), informer.lists
        finally:
            task.cancel()
            await informer._api.close()

    listed, value, lists = asyncio.run(run())
    assert listed == names and value == "paged-3"
    pages = sum(diff(lists_before, cluster.apiserver_requests({"LIST"}, {"configmaps"})).values())
    assert lists == 1 and pages >= 3, f"one list of 5 objects in pages of 2: {pages} requests"
