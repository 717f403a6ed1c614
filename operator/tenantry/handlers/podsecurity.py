"""Pod security in tenant namespaces on every Kubernetes version: the webhook, and the operator's re-check.

Tenant namespaces are labelled `pod-security.kubernetes.io/enforce: restricted`, which Pod
Security Admission honours from 1.23 on; on 1.20-1.22 nothing reads that label. So:

- The admission webhook (`judge`, served by handlers/webhook.py when a webhook port is configured)
  refuses Pods and the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets,
  ReplicationControllers, Jobs and CronJobs that break the restricted profile, in the namespaces
  the chart's namespaceSelector picks (tenantry's managed-by label and the enforce label). A
  workload with a bad template is refused, not only its pods: the tenant admin sees why at once.
- The webhook may be down (failurePolicy Ignore is the chart's default), so the operator watches
  pods and deletes each one in a tenant namespace that breaks the profile, with a Warning Event
  on the pod and on its Tenant, and the Tenant's condition PodSecurity=False naming the pod and
  the problem. The deletion has no grace period (the pod's own terminationGracePeriodSeconds
  would let it run on), but between the pod's creation and its deletion there is a window of
  about one watch event's delay in which a scheduled pod may start: failurePolicy Fail closes it.
  Workloads are not rewritten or scaled: every new pod their controller makes is deleted the
  same way, one create and one delete per replacement for as long as the workload exists (a
  ReplicaSet replaces a deleted pod at once; the Warning Events say which workload to remove).

The cost of the re-check, chosen over per-namespace watches (10,000 watch connections) and
periodic listings (every pod read every period): one cluster-wide watch of pods. Its events are
judged and dropped, no pod is cached, so memory does not grow with pods; what is kept is the
index of tenant namespaces (one short string each: about 1 MB at 10,000 tenants). CPU follows
the cluster's pod churn (each event: a dict lookup, and for a tenant's pod a check of a few
microseconds), not the number of tenants; a start lists every pod once. Writes happen only for
a violating pod. The RBAC price: cluster-wide get/list/watch/delete of pods for the operator.
On clusters with Pod Security Admission (1.23+) the labels make the API server refuse the same
pods, and this re-check finds nothing to do.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import kopf

from tenantry.adapters.kube import KubeError
from tenantry.api.common import API_VERSION
from tenantry.domain import naming, podsecurity
from tenantry.domain.children import ObjectRef
from tenantry.domain.status import POD_SECURITY
from tenantry.handlers.leadership import acting, ensure_leading, owns
from tenantry.handlers.tenant import tenant_lock

if TYPE_CHECKING:  # runtime imports this module: the type only
    from tenantry.handlers.runtime import Runtime

logger = logging.getLogger("tenantry")

# (group, version, plural, kind) of everything that runs pods; the chart's webhook entries match.
# CronJobs are batch/v1beta1 up to 1.24 and batch/v1 from 1.21: one handler per version.
WORKLOADS = (("", "v1", "pods", "Pod"),
             ("", "v1", "replicationcontrollers", "ReplicationController"),
             ("apps", "v1", "deployments", "Deployment"),
             ("apps", "v1", "statefulsets", "StatefulSet"),
             ("apps", "v1", "daemonsets", "DaemonSet"),
             ("apps", "v1", "replicasets", "ReplicaSet"),
             ("batch", "v1", "jobs", "Job"),
             ("batch", "v1", "cronjobs", "CronJob"),
             ("batch", "v1beta1", "cronjobs", "CronJob"))
REASON = "PodSecurityViolation"
CONDITION_MESSAGE_LENGTH = 2000  # every violation of a pod fits; a tenant admin's megabyte does not


def webhook_id(plural: str, version: str) -> str:
    """The handler id, which is also the webhook's URL path (see the chart's webhook.yaml)."""
    return f"validate-podsecurity-{plural}" + ("-v1beta1" if version == "v1beta1" else "")


def judge(kind: str, body: Mapping[str, Any], old: Mapping[str, Any] | None) -> str | None:
    """The refusal for a create or update, or None to admit it.

    An object being deleted, and an update that leaves the pod (template) as it was (labels,
    scaling, status, finalizers), always pass: what was stored before must stay manageable.
    """
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return None
    if not podsecurity.template_changed(kind, old, body):
        return None
    violations = podsecurity.check_object(kind, body)
    if not violations:
        return None
    meta = body.get("metadata") or {}
    return podsecurity.refusal(kind, meta.get("name") or meta.get("generateName") or "", violations)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def offender(name: str, metadata: Mapping[str, Any]) -> str:
    """What to name in the Tenant's status: the pod, or the workload whose pods keep coming back."""
    controller = next((ref for ref in metadata.get("ownerReferences") or [] if ref.get("controller")), None)
    return f"pods of {controller.get('kind')} {controller.get('name')}" if controller else f"pod {name}"


def pod_security_condition(subject: str, namespace: str, violations: list[podsecurity.Violation], generation: int,
                           now: str) -> dict[str, Any]:
    return {"type": POD_SECURITY, "status": "False", "reason": "ViolatingPodDeleted",
            "message": (f"{subject} in namespace {namespace}: deleted for breaking the restricted pod security "
                        f"profile: {podsecurity.summary(violations)}")[:CONDITION_MESSAGE_LENGTH],
            "lastTransitionTime": now, "observedGeneration": generation}


def updated_conditions(old: list[dict[str, Any]], condition: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The Tenant's conditions with this PodSecurity condition, or None when it already says so.

    A workload's controller replaces each deleted pod at once: its pods are named after it, so a
    loop of replacements writes the Tenant (status and Event) once, not once per pod.
    """
    current = next((c for c in old if c.get("type") == POD_SECURITY), None)
    if current is not None and (current.get("status"), current.get("message")) == ("False", condition["message"]):
        return None
    return [c for c in old if c.get("type") != POD_SECURITY] + [condition]


async def _report(memo: Runtime, owner: str, subject: str, namespace: str,
                  violations: list[podsecurity.Violation]) -> None:
    """Warning Event and PodSecurity=False on the Tenant holding the namespace."""
    key = naming.parse_owner_key(owner)
    if key is None:
        return
    async with tenant_lock(key):  # the reconcile writes the conditions too: one writer at a time
        tenant = await memo.kube.get(ObjectRef(API_VERSION, "Tenant", key[1], key[0]))
        if tenant is None:
            return
        condition = pod_security_condition(subject, namespace, violations,
                                           tenant["metadata"].get("generation", 0), _now())
        conditions = updated_conditions((tenant.get("status") or {}).get("conditions") or [], condition)
        if conditions is None:
            return
        kopf.event(tenant, type="Warning", reason=REASON, message=condition["message"][:1000])
        await memo.kube.patch_status(ObjectRef(API_VERSION, "Tenant", key[1], key[0]), {"conditions": conditions})


async def _namespace_owner(namespace: str, memo: Runtime) -> list[str] | None:
    """The owner mark of a tenant namespace, or None if it is none (from the namespace informer's
    memory; a pod racing its new namespace's watch event makes this one read)."""
    target = ObjectRef("v1", "Namespace", namespace)
    live = await memo.kube.get(target) or await memo.kube.read(target)
    meta = (live or {}).get("metadata") or {}
    if not podsecurity.is_tenant_namespace(meta.get("labels")):
        return None
    return [(meta.get("annotations") or {}).get(naming.OWNER_ANNOTATION, "")]


@kopf.on.event("", "v1", "pods")
async def pod_event(event: Mapping[str, Any], body: kopf.Body, namespace: str, name: str,
                    memo: Runtime, **_: Any) -> None:
    if event.get("type") == "DELETED" or body.metadata.get("deletionTimestamp"):
        return
    if not namespace.startswith(memo.config.namespace_prefix):
        return  # not a tenant's pod: nothing is checked
    violations = podsecurity.check_object("Pod", body)
    if not violations:
        return
    owners = await _namespace_owner(namespace, memo)
    if owners is None:
        return
    # With shards: the replica holding the tenant's shard acts (no owner to be read: shard 0's).
    key = naming.parse_owner_key(owners[0])
    if not owns(memo, key[0] if key is not None else None):
        return
    with acting(memo, key):
        ensure_leading(memo)
        try:
            # At once: a grace period would let the pod run on for as long as its author asked.
            await memo.kube.delete(ObjectRef("v1", "Pod", name, namespace), grace_period=0)
        except KubeError as error:
            raise kopf.TemporaryError(f"cannot delete pod {namespace}/{name}: {error}", delay=5) from error
        message = f"deleted by tenantry: {podsecurity.refusal('Pod', name, violations)}"
        kopf.event(body, type="Warning", reason=REASON, message=message[:1000])
        logger.warning("pod %s/%s deleted: %s", namespace, name, podsecurity.summary(violations))
        for owner in owners:
            await _report(memo, owner, offender(name, body.metadata), namespace, violations)
