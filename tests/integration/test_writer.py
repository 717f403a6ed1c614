"""How the operator writes a child object, against the real API server (handlers/writer.Writer).

Tested here, with the writes counted by the Writer and told apart by the API server's own record
of them (managedFields: an Update, not an Apply):
- an absent child is created with one POST (not a server-side apply: cheaper for the API server)
- a changed child is updated with one PUT naming the version read; a field the operator no longer
  wants is gone afterwards (a whole-object update, not a merge), and labels others added stay
- a stale copy in memory (a resourceVersion someone else has moved on from) ends the pass with a
  Conflict after one refused PUT, with memory now holding the object as it is; the next pass
  writes once, and nothing is lost (Kube.stale, the one place a stale copy is handled)
- a child absent from memory yet present in the cluster (no label: the informers never saw it):
  the same, after one refused POST; then it is updated, not refused
- a quota is written whatever its version: quota admission moves it (the status) with every counted
  create, at a tenant admin's pace, so a versioned write could keep losing; the status stays; its
  uid is named instead, so a quota made again by someone else is a Conflict (read, then written),
  not overwritten from a copy of the old one
- a copy in memory of an object deleted since: the PUT finds nothing (404), memory forgets it, and
  the next pass creates it
- a name held by an object of another kind being deleted (some controller's clean-up): the pass
  waits (NotYet), and no finalizer is touched
- a tenant admin's immutable copy of a ConfigMap of ours, deleted but held by their finalizer (so
  it could be neither updated nor created again): its finalizers go, and the next pass creates ours
- a child that already holds everything is not written
- annotations others put on a child stay through an update made from memory (the children's
  informers keep them while they fit in 2 KiB); an annotation of the operator's that it no longer
  wants goes; a tenant admin's padding (annotations near the API server's limit, the owner
  annotation removed) cannot make the revert too large to write, from memory or read whole
"""

from __future__ import annotations

import asyncio
import copy
import json

import pytest
from lightkube.config.kubeconfig import KubeConfig

from tenantry.adapters.http import Api
from tenantry.adapters.informer import Cache, Informer, Scope, slim
from tenantry.adapters.kube import Conflict, Kube
from tenantry.handlers.writer import NotYet, Writer
from tests.integration.fixtures import ClusterHandle, wait_for

pytestmark = pytest.mark.integration


def _config_map(namespace: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "tenantry-flags", "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "tenantry"}},
            "data": data}


def _write(cluster: ClusterHandle, manifest: dict, live: dict | None) -> int:
    """apply_if_needed with a Kube of its own (no informers: `live` is what the caller says it read)."""
    async def run() -> int:
        kube = Kube(Api(KubeConfig.from_file(str(cluster.kubeconfig)).get()))
        try:
            writer = Writer(kube)
            await writer.apply_if_needed(copy.deepcopy(manifest), live)
            return writer.count
        finally:
            await kube.close()
    return asyncio.run(run())


def _live(cluster: ClusterHandle, namespace: str) -> dict:
    return json.loads(cluster.kubectl("get", "configmap", "tenantry-flags", "-n", namespace, "-o", "json",
                                      "--show-managed-fields").stdout)


def _operations(live: dict) -> set[tuple[str, str]]:
    return {(e["manager"], e["operation"]) for e in live["metadata"].get("managedFields") or []}


def test_create_then_update_with_post_and_put(cluster: ClusterHandle, namespace: str) -> None:
    wanted = _config_map(namespace, {"a": "1", "b": "2"})
    assert _write(cluster, wanted, None) == 1
    created = _live(cluster, namespace)
    assert created["data"] == {"a": "1", "b": "2"}
    assert _operations(created) == {("tenantry", "Update")}  # a create, not an apply
    # Someone labels it; the operator then stops wanting `b` and changes `a`.
    cluster.kubectl("label", "configmap", "tenantry-flags", "-n", namespace, "team=platform")
    labelled = _live(cluster, namespace)
    assert _write(cluster, _config_map(namespace, {"a": "3"}), labelled) == 1
    after = _live(cluster, namespace)
    assert after["data"] == {"a": "3"}, "a field the operator no longer wants must go"
    assert after["metadata"]["labels"]["team"] == "platform"
    assert ("tenantry", "Apply") not in _operations(after)
    assert int(after["metadata"]["resourceVersion"]) > int(labelled["metadata"]["resourceVersion"])
    # Unchanged: nothing written.
    assert _write(cluster, _config_map(namespace, {"a": "3"}), after) == 0
    assert _live(cluster, namespace)["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]


def _passes(cluster: ClusterHandle, manifest: dict, namespace: str, memory_first: dict | None) -> list[str]:
    """Passes writing `manifest` with what a ConfigMap memory holds (first `memory_first`) as the live
    object, until one ends without a Conflict: per pass, its writes and how it ended."""
    async def run() -> list[str]:
        kube = Kube(Api(KubeConfig.from_file(str(cluster.kubeconfig)).get()))
        memory = Informer(kube.api, Scope("v1", "ConfigMap"))
        kube.cache = Cache([memory])
        memory.synced.set()  # (not started: the test says what it holds) reads of ConfigMaps come from it
        if memory_first is not None:
            memory.put(memory_first)
        ended = []
        try:
            for _ in range(3):
                writer = Writer(kube)
                try:
                    await writer.apply_if_needed(copy.deepcopy(manifest), memory.get(namespace, "tenantry-flags"))
                except Conflict:
                    ended.append(f"{writer.count} conflict")
                    continue
                ended.append(f"{writer.count} done")
                return ended
            return ended
        finally:
            await kube.close()
    return asyncio.run(run())


def test_a_stale_copy_ends_the_pass_and_the_next_writes_it(cluster: ClusterHandle, namespace: str) -> None:
    assert _write(cluster, _config_map(namespace, {"a": "1"}), None) == 1
    stale = _live(cluster, namespace)
    cluster.kubectl("patch", "configmap", "tenantry-flags", "-n", namespace, "--type=merge",
                    "-p", '{"data": {"a": "edited"}}')
    # a 409, memory reads the edit; then the write
    assert _passes(cluster, _config_map(namespace, {"a": "2"}), namespace, stale) == ["1 conflict", "1 done"]
    assert _live(cluster, namespace)["data"] == {"a": "2"}


def test_a_child_memory_does_not_know_is_read_and_updated(cluster: ClusterHandle, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "tenantry-flags", "-n", namespace, "--from-literal=old=x")
    # the POST refused (409), memory reads the object; then a PUT
    assert _passes(cluster, _config_map(namespace, {"a": "1"}), namespace, None) == ["1 conflict", "1 done"]
    live = _live(cluster, namespace)
    assert live["data"] == {"a": "1"}
    assert live["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "tenantry"


def test_a_copy_of_an_object_gone_meanwhile_ends_the_pass_and_the_next_creates_it(
        cluster: ClusterHandle, namespace: str) -> None:
    assert _write(cluster, _config_map(namespace, {"a": "1"}), None) == 1
    remembered = _live(cluster, namespace)
    cluster.kubectl("delete", "configmap", "tenantry-flags", "-n", namespace)
    # the PUT finds nothing (404), memory forgets it; then a POST
    assert _passes(cluster, _config_map(namespace, {"a": "2"}), namespace, remembered) == ["1 conflict", "1 done"]
    assert _live(cluster, namespace)["data"] == {"a": "2"}


def test_an_immutable_copy_held_by_a_finalizer_is_let_go_and_replaced(cluster: ClusterHandle, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "tenantry-flags", "-n", namespace, "--from-literal=paid=on")
    # More than memory keeps of others' finalizers (2 KiB): the operator must read them whole.
    holds = [f"example.com/hold-{'x' * 50}-{i:02d}" for i in range(40)]
    cluster.kubectl("patch", "configmap", "tenantry-flags", "-n", namespace, "--type=merge",
                    "-p", json.dumps({"immutable": True, "metadata": {"finalizers": holds}}))
    cluster.kubectl("delete", "configmap", "tenantry-flags", "-n", namespace, "--wait=false")
    held = _live(cluster, namespace)
    assert held["metadata"]["deletionTimestamp"] and held["immutable"] is True
    held = slim(held, others_annotations=True)  # as the children's informers hold it
    assert not held["metadata"].get("finalizers")
    # the POST refused (its name is held), the finalizer removed; then the POST
    assert _passes(cluster, _config_map(namespace, {"a": "1"}), namespace, held) == ["2 conflict", "1 done"]
    live = _live(cluster, namespace)
    assert live["data"] == {"a": "1"} and not live.get("immutable")
    assert not live["metadata"].get("deletionTimestamp") and not live["metadata"].get("finalizers")


def test_a_quota_is_written_whatever_its_version(cluster: ClusterHandle, namespace: str) -> None:
    def quota(pods: str) -> dict:
        return {"apiVersion": "v1", "kind": "ResourceQuota",
                "metadata": {"name": "tenantry-quota", "namespace": namespace,
                             "labels": {"app.kubernetes.io/managed-by": "tenantry"}},
                "spec": {"hard": {"pods": pods, "count/configmaps": "20"}}}

    def live() -> dict:
        return json.loads(cluster.kubectl("get", "resourcequota", "tenantry-quota", "-n", namespace, "-o",
                                          "json").stdout)

    assert _write(cluster, quota("10"), None) == 1
    first = live()
    def used() -> int | None:
        counted = ((live().get("status") or {}).get("used") or {}).get("count/configmaps")
        return None if counted is None else int(counted)

    # The quota controller writes the status, and each counted create moves it again.
    before = wait_for(lambda: used() is not None, what="the quota's usage") and used()
    assert before is not None
    cluster.kubectl("create", "configmap", "counted", "-n", namespace)
    wait_for(lambda: used() == before + 1, what="the quota's usage counted")
    assert live()["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    assert _write(cluster, quota("0"), first) == 1  # from the older copy: no 409
    after = live()
    assert after["spec"]["hard"]["pods"] == "0"
    assert after["status"]["used"]["count/configmaps"] == str(before + 1)
    # Not another object of that name, made since by someone else: its uid is not the one read (a
    # Conflict: memory reads it, and the pass runs again).
    cluster.kubectl("delete", "resourcequota", "tenantry-quota", "-n", namespace)
    cluster.kubectl("create", "quota", "tenantry-quota", "-n", namespace, "--hard=pods=7")
    with pytest.raises(Conflict):
        _write(cluster, quota("5"), after)
    assert live()["spec"]["hard"] == {"pods": "7"}


def test_a_name_held_by_another_kind_being_deleted_is_waited_for(cluster: ClusterHandle, namespace: str) -> None:
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "tenantry-isolation", "namespace": namespace, "finalizers": ["example.com/hold"]},
              "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(policy))
    cluster.kubectl("delete", "networkpolicy", "tenantry-isolation", "-n", namespace, "--wait=false")
    wanted = {**policy, "metadata": {"name": "tenantry-isolation", "namespace": namespace,
                                     "labels": {"app.kubernetes.io/managed-by": "tenantry"}}}
    try:
        with pytest.raises(NotYet, match="NetworkPolicy tenantry-isolation is still being deleted"):
            _write(cluster, wanted, None)
        held = json.loads(cluster.kubectl("get", "networkpolicy", "tenantry-isolation", "-n", namespace,
                                          "-o", "json").stdout)
        assert held["metadata"]["finalizers"] == ["example.com/hold"]
    finally:
        cluster.kubectl("patch", "networkpolicy", "tenantry-isolation", "-n", namespace, "--type=merge",
                        "-p", '{"metadata": {"finalizers": null}}')


def test_others_annotations_stay_through_an_update_from_memory(cluster: ClusterHandle, namespace: str) -> None:
    wanted = _config_map(namespace, {"a": "1"})
    wanted["metadata"]["annotations"] = {"tenantry.dev/owner": "partner-p/t", "tenantry.dev/old": "x"}
    assert _write(cluster, wanted, None) == 1
    cluster.kubectl("annotate", "configmap", "tenantry-flags", "-n", namespace, "backup.example.com/keep=true",
                    "tenantry.dev/forged=by-a-tenant-admin")  # the operator's prefix is the operator's alone
    remembered = slim(_live(cluster, namespace), others_annotations=True)  # what the children's informers hold
    changed = _config_map(namespace, {"a": "2"})
    changed["metadata"]["annotations"] = {"tenantry.dev/owner": "partner-p/t"}
    assert _write(cluster, changed, remembered) == 1
    after = _live(cluster, namespace)
    assert after["data"] == {"a": "2"}
    assert after["metadata"]["annotations"] == {"backup.example.com/keep": "true", "tenantry.dev/owner": "partner-p/t"}


def test_padding_by_a_tenant_admin_cannot_block_the_revert(cluster: ClusterHandle, namespace: str) -> None:
    # A tenant admin may edit the operator's ConfigMaps: paid features on, the owner annotation off,
    # and annotations padded to just under the API server's 256 KiB limit, so that a PUT carrying
    # them and the owner annotation back would be refused. Ours carries only what fits in 2 KiB.
    wanted = _config_map(namespace, {"a": "1"})
    wanted["metadata"]["annotations"] = {"tenantry.dev/owner": "partner-p/t"}
    assert _write(cluster, wanted, None) == 1

    def padded() -> dict:
        edited = _live(cluster, namespace)
        edited["data"] = {"a": "paid"}
        edited["metadata"]["annotations"] = {"pad.example.com/x": "x" * (256 * 1024 - 40)}
        edited["metadata"].pop("managedFields", None)
        cluster.kubectl("replace", "-f", "-", input=json.dumps(edited))
        return _live(cluster, namespace)

    # From memory, and from the object read whole (as after a conflict): reverted either way.
    for from_memory in (True, False):
        live = slim(padded(), others_annotations=True) if from_memory else padded()
        assert _write(cluster, wanted, live) == 1
        after = _live(cluster, namespace)
        assert after["data"] == {"a": "1"}
        assert after["metadata"]["annotations"] == {"tenantry.dev/owner": "partner-p/t"}
