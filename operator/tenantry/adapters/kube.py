"""A small dict-in, dict-out Kubernetes client (adapters/http), with conflict handling in one place.

Every write goes through `create`, `replace`, `apply`, `delete` or a patch, so the write requests the
operator makes are easy to see, count and test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from lightkube.generic_resource import create_namespaced_resource

from tenantry.adapters.http import BEFORE_SEND, Api, ApiFailure, collection_path, object_path
from tenantry.adapters.informer import Cache, slim
from tenantry.api.common import GROUP, VERSION
from tenantry.domain.children import Manifest, ObjectRef, ref
from tenantry.domain.naming import FIELD_MANAGER, PREFIX
from tenantry.metrics.operator import READS

# Kinds lightkube does not ship, registered so that their URLs are known (the CLI and tests use
# them as lightkube resources too): ours, and external-dns's and cert-manager's when installed.
Tenant = create_namespaced_resource(GROUP, VERSION, "Tenant", "tenants")
Branding = create_namespaced_resource(GROUP, VERSION, "Branding", "brandings")
FeatureSet = create_namespaced_resource(GROUP, VERSION, "FeatureSet", "featuresets")
Deal = create_namespaced_resource(GROUP, VERSION, "Deal", "deals")
DNSEndpoint = create_namespaced_resource("externaldns.k8s.io", "v1alpha1", "DNSEndpoint", "dnsendpoints")
Certificate = create_namespaced_resource("cert-manager.io", "v1", "Certificate", "certificates")
_MANAGER = {"fieldManager": FIELD_MANAGER}
MERGE_PATCH = "application/merge-patch+json"


class AlreadyExists(Exception):
    """A create found the name taken (HTTP 409)."""


class KubeError(Exception):
    """A request the API server refused; `reason` is one CamelCase word for a condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Conflict(KubeError):
    """Our copy of an object was behind: it changed or went since it was read (a PUT got 409 or 404,
    a merge patch naming the version 409), or it exists though memory did not know it. Memory holds
    it as it is now (Kube.stale, Kube.refresh): running the pass again is all a caller does."""

    def __init__(self, message: str) -> None:
        super().__init__("Conflict", message)


class Unavailable(KubeError):
    """The API server could not take the request now (429 Too Many Requests, or a 5xx: an etcd
    leader change, a rollout, priority and fairness): not a verdict on the tenant. The pass is
    run again with back-off, and the status keeps what it said."""


# (501 Not Implemented is an answer, not a moment's trouble.)
_UNAVAILABLE = frozenset({429, 500, 502, 503, 504})


def _refusal(error: ApiFailure, what: str) -> KubeError:
    kind = Unavailable if error.code in _UNAVAILABLE else KubeError
    return kind(error.reason or "ApiError", f"{what}: {error.code} {error.message}")


def _path(target: ObjectRef, subresource: str = "") -> str:
    return object_path(target.api_version, target.kind, target.namespace, target.name, subresource)


class Kube:
    """The operator's view of the cluster: get, create, apply, delete and status patches."""

    def __init__(self, api: Api, before_write: Callable[[], None] = lambda: None) -> None:
        self.api = api
        # Called before every write: the leader check, so a replica that lost its lease (e.g. woke
        # up from a freeze) stops before it writes, not after.
        self._before_write = before_write
        # Reads of watched kinds come from memory once their informers are synced; writes update it.
        self.cache: Cache | None = None

    @classmethod
    def from_environment(cls, before_write: Callable[[], None] = lambda: None) -> Kube:
        """In-cluster credentials, else $KUBECONFIG or ~/.kube/config."""
        return cls(Api.from_environment(timeout=30), before_write)

    def fence(self) -> None:
        """The check every write makes first (leadership, the shard): for writes that do not go
        through this client, such as a DNS zone's."""
        self._before_write()

    async def close(self) -> None:
        await self.api.close()

    async def _write(self, *args: Any, **kwargs: Any) -> Any:
        """api.request for a write, checked by the fence again once its connection is ready: the
        wait for one of the pool's connections may be long on a busy replica, and the shard may
        have moved meanwhile."""
        token = BEFORE_SEND.set(self._before_write)
        try:
            return await self.api.request(*args, **kwargs)
        finally:
            BEFORE_SEND.reset(token)

    async def get(self, target: ObjectRef) -> Manifest | None:
        """The live object, or None when it does not exist."""
        informer = self.cache.knows(target.api_version, target.kind, target.namespace, target.name) if self.cache \
            else None
        if informer is not None:
            return informer.get(target.namespace, target.name)
        return await self.read(target)

    async def read(self, target: ObjectRef, strict: bool = False) -> Manifest | None:
        """The object from the API server, never from memory (a conflict: our copy was behind).
        strict: a kind that is not served raises, instead of reading as "no such object"."""
        READS.labels(target.kind).inc()
        try:
            return await self.api.request("GET", _path(target))
        except ApiFailure as error:
            if error.code == 404 and not strict:
                return None  # the kind is not installed: nothing of it exists
            raise _refusal(error, f"reading {target.kind} {target.name}") from error

    async def list(self, api_version: str, kind: str, namespace: str, labels: dict[str, str]) -> list[Manifest]:
        """Objects of a kind in one namespace that carry all these labels."""
        informer = self.cache.knows(api_version, kind, namespace, None) if self.cache else None
        if informer is not None:
            return informer.list(namespace, labels)
        try:
            return [item async for page, _ in self.api.list(api_version, kind, namespace, labels) for item in page]
        except ApiFailure as error:
            if error.code == 404:  # the kind is not installed
                return []
            raise _refusal(error, f"listing {kind} in {namespace}") from error

    async def get_many(self, targets: list[ObjectRef]) -> list[Manifest | None]:
        return list(await asyncio.gather(*(self.get(t) for t in targets)))

    async def create(self, manifest: Manifest) -> Manifest:
        """Create; raises AlreadyExists when the name is taken (the atomic way to claim a name)."""
        self._before_write()
        target = ref(manifest)
        try:
            created = await self._write("POST", collection_path(target.api_version, target.kind,
                                                                     target.namespace), manifest, _MANAGER)
        except ApiFailure as error:
            if error.code == 409:
                raise AlreadyExists(f"{target.kind} {target.name}") from error
            raise _refusal(error, f"creating {target.kind} {target.name}") from error
        return self._remember(created or {})

    def _remember(self, body: Manifest) -> Manifest:
        """A write's answer goes into the cache at once: the next pass must not see the old object."""
        informer = self.cache.informers.get((body.get("apiVersion"), body.get("kind"))) if self.cache else None
        if informer is not None:
            informer.put(body)
        return body

    async def stale(self, target: ObjectRef, message: str) -> Conflict:
        """The one place a stale copy is handled: memory takes the object as the API server has it
        now (or forgets it), and the Conflict to raise says what happened."""
        if self.cache is not None and (target.api_version, target.kind) in self.cache.informers:
            await self.refresh(target)
        return Conflict(message)

    async def refresh(self, target: ObjectRef) -> Manifest | None:
        """The object as the API server has it now, and memory with it (forgotten when gone)."""
        fresh = await self.read(target)
        if fresh is None:
            self._forget(target)
        else:
            self._remember(fresh)
        return fresh

    def _forget(self, target: ObjectRef) -> None:
        informer = self.cache.informers.get((target.api_version, target.kind)) if self.cache else None
        if informer is not None:
            informer.forget(target.namespace, target.name)

    async def apply(self, manifest: Manifest) -> None:
        """Server-side apply as field manager `tenantry`, forcing our fields back (drift)."""
        self._before_write()
        target = ref(manifest)
        try:
            applied = await self._write("PATCH", _path(target), manifest, {**_MANAGER, "force": "true"},
                                             "application/apply-patch+yaml")  # JSON is YAML
        except ApiFailure as error:
            raise _refusal(error, f"applying {target.kind} {target.name}") from error
        self._remember(applied or {})

    async def replace(self, manifest: Manifest, live: Manifest, versioned: bool = True) -> None:
        """Update (PUT) the object to `manifest`, naming the resourceVersion of `live`: a concurrent
        change raises Conflict instead of being lost (versioned=False: whatever the version). Labels,
        annotations, finalizers and owner references that others added stay while each fits in
        FOREIGN_BYTES; the rest of the object
        is ours (cheaper for the API server than an apply, and a field we stop wanting goes with the
        next write)."""
        self._before_write()
        target = ref(manifest)
        # What others wrote, as memory keeps it (within FOREIGN_BYTES each) also when `live` was
        # read whole: padding beyond that is not carried into our PUT, which it could make too large.
        seen = slim({"metadata": live.get("metadata") or {}}, others_annotations=True)["metadata"]
        # Others' annotations stay; the operator's own are exactly the ones it wants now.
        annotations = {**{k: v for k, v in (seen.get("annotations") or {}).items() if not k.startswith(PREFIX)},
                       **(manifest["metadata"].get("annotations") or {})}
        # Unversioned, the uid still makes sure it is the object we read (not one made since by others).
        precondition = {"resourceVersion": seen.get("resourceVersion")} if versioned else \
            ({"uid": seen["uid"]} if seen.get("uid") else {})
        meta = {**manifest["metadata"], **precondition,
                "labels": {**(seen.get("labels") or {}), **(manifest["metadata"].get("labels") or {})},
                **({"annotations": annotations} if annotations else {}),
                **{key: seen[key] for key in ("finalizers", "ownerReferences") if seen.get(key)}}
        try:
            replaced = await self._write("PUT", _path(target), {**manifest, "metadata": meta}, _MANAGER)
        except ApiFailure as error:
            if error.code in (404, 409):
                raise await self.stale(target, f"{target.kind} {target.name} changed meanwhile") from error
            raise _refusal(error, f"updating {target.kind} {target.name}") from error
        self._remember(replaced or {})

    async def delete(self, target: ObjectRef, grace_period: int | None = None) -> None:
        """Delete; an object that is already gone is fine. grace_period=0: a pod's containers are
        killed at once (not after the terminationGracePeriodSeconds its author chose)."""
        self._before_write()
        params = None if grace_period is None else {"gracePeriodSeconds": str(grace_period)}
        try:
            answer = await self._write("DELETE", _path(target), params=params)  # gone already: None
        except ApiFailure as error:
            raise _refusal(error, f"deleting {target.kind} {target.name}") from error
        if isinstance(answer, dict) and (answer.get("metadata") or {}).get("deletionTimestamp"):
            # Marked for deletion (a namespace emptying, finalizers): it still exists, and memory
            # says so (a terminating tenant namespace holds its place under the partner's cap).
            self._remember(answer)
        else:
            self._forget(target)

    async def patch_labels(self, target: ObjectRef, labels: dict[str, str | None]) -> None:
        """Merge-patch labels (None removes one) without taking over fields we apply."""
        self._before_write()
        try:
            labelled = await self._write("PATCH", _path(target), {"metadata": {"labels": labels}}, _MANAGER,
                                              MERGE_PATCH)
        except ApiFailure as error:
            raise _refusal(error, f"labelling {target.kind} {target.name}") from error
        self._remember(labelled or {})

    async def patch_if_unchanged(self, target: ObjectRef, patch: dict[str, Any], resource_version: str | None
                                 ) -> Manifest:
        """Merge-patch naming the resourceVersion read: a concurrent change raises Conflict instead of
        being lost (None: whatever the version)."""
        self._before_write()
        version = {} if resource_version is None else {"resourceVersion": resource_version}
        body = {**patch, "metadata": {**patch.get("metadata", {}), **version}}
        try:
            changed = await self._write("PATCH", _path(target), body, _MANAGER, MERGE_PATCH)
        except ApiFailure as error:
            if error.code == 409:
                raise await self.stale(target, f"{target.kind} {target.name} changed meanwhile") from error
            raise _refusal(error, f"patching {target.kind} {target.name}") from error
        return self._remember(changed or {})

    async def scale_to_zero(self, target: ObjectRef, resource_version: str | None) -> None:
        """0 replicas through the scale subresource, naming the version read (Conflict when it
        changed meanwhile): the operator's rights then reach a workload's replica count only, never
        its pod template (RBAC grants patch on deployments/scale and statefulsets/scale alone)."""
        self._before_write()
        version = {} if resource_version is None else {"metadata": {"resourceVersion": resource_version}}
        try:
            await self._write("PATCH", _path(target, "scale"), {"spec": {"replicas": 0}, **version}, _MANAGER,
                                   MERGE_PATCH)
        except ApiFailure as error:
            if error.code == 409:
                raise await self.stale(target, f"{target.kind} {target.name} changed meanwhile") from error
            raise _refusal(error, f"scaling {target.kind} {target.name}") from error

    async def patch_status(self, target: ObjectRef, status: dict[str, Any]) -> None:
        """Merge-patch the status subresource (lists such as conditions are replaced whole)."""
        self._before_write()
        try:
            patched = await self._write("PATCH", _path(target, "status"), {"status": status}, _MANAGER,
                                             MERGE_PATCH)
        except ApiFailure as error:
            if error.code != 404:  # deleted meanwhile: nothing left to report on
                raise _refusal(error, f"writing status of {target.kind} {target.name}") from error
            return
        self._remember(patched or {})
