"""Stop a tenant from serving, keep its data (see tenantry.domain.offboarding for what and why).

Used by the Cancelled and Suspended states of the reconcile and by the finalizer (deletionPolicy
Retain). Every step reads first and writes only what is not yet stopped, so a repeated pass makes
no write request.
"""

from __future__ import annotations

import asyncio

from tenantry.domain import naming, offboarding
from tenantry.domain.children import ObjectRef
from tenantry.handlers.writer import Writer

QUOTA_EFFECT_SECONDS = 30.0  # how long a deleted Tenant's clean-up waits for the quota controller
# How long a reconcile waits for it (a moment: the quota controller usually answers within one);
# then the pass ends and runs again later (NotYet), so its worker serves other tenants meanwhile.
PASS_QUOTA_WAIT_SECONDS = 2.0


async def quota_in_effect(writer: Writer, namespace: str, wait: float = QUOTA_EFFECT_SECONDS) -> bool:
    """Whether the API server refuses new pods in the namespace yet. Its quota admission judges by
    the quota's status, which the quota controller copies from the spec a moment after our write:
    until then a pod deleted here would come straight back (a Deployment's ReplicaSet recreates
    it). Waits up to `wait` seconds, reading memory (the quota's informer sees that update; callers
    wait until the informers have listed)."""
    target = ObjectRef("v1", "ResourceQuota", naming.QUOTA, namespace)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        live = await writer.kube.get(target)
        if (((live or {}).get("status") or {}).get("hard") or {}).get("pods") == "0":
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.1)


async def stop_workloads(writer: Writer, namespace: str, scale: bool) -> None:
    """Pods deleted (the quota, pods: 0, refuses new ones); with `scale` Deployments and
    StatefulSets go to 0 replicas too, so nothing keeps trying to start them."""
    workloads = []
    if scale:
        for api_version, kind in offboarding.SCALED_KINDS:
            workloads += await writer.kube.list(api_version, kind, namespace, {})
    pods = await writer.kube.list("v1", "Pod", namespace, {})
    stop = offboarding.stop_workloads(workloads, pods, scale)
    for kind, name, resource_version in stop.scale:
        writer.count += 1
        await writer.kube.scale_to_zero(ObjectRef("apps/v1", kind, name, namespace), resource_version)
    for name in stop.delete_pods:
        writer.count += 1
        await writer.kube.delete(ObjectRef("v1", "Pod", name, namespace), grace_period=offboarding.STOP_GRACE_SECONDS)


async def block_new_pods(writer: Writer, namespace: str, owner: str) -> bool:
    """The tenant's quota at pods: 0 (the reconcile sets it for non-Active tenants; the finalizer
    here). Whether the namespace has this tenant's quota (else nothing blocks pods: none to wait for)."""
    target = ObjectRef("v1", "ResourceQuota", naming.QUOTA, namespace)
    live = await writer.kube.read(target)  # a rare path, and memory may lag: from the API server
    if live is None or not naming.owned_by(live, owner):
        return False
    if ((live.get("spec") or {}).get("hard") or {}).get("pods") != "0":
        writer.count += 1
        # Whatever its version (Writer.UNVERSIONED_KINDS says why).
        await writer.kube.patch_if_unchanged(target, {"spec": {"hard": {"pods": "0"}}}, None)
    return True


async def revoke_admins(writer: Writer, namespace: str, owner: str) -> None:
    target = ObjectRef("rbac.authorization.k8s.io/v1", "RoleBinding", naming.ADMIN_BINDING, namespace)
    await writer.delete_if_ours(target, await writer.kube.read(target), owner)  # (see block_new_pods)
