"""A small dict-in, dict-out Kubernetes client on lightkube, with conflict handling in one place.

Every write goes through `create`, `apply`, `delete` or `patch_status`, so the write requests the
operator makes are easy to see, count and test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from lightkube import AsyncClient
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from tenantry.adapters.informer import Cache
from tenantry.api.common import GROUP, VERSION
from tenantry.domain.children import Manifest, ObjectRef, ref
from tenantry.domain.naming import FIELD_MANAGER
from tenantry.metrics.operator import READS

Tenant = create_namespaced_resource(GROUP, VERSION, "Tenant", "tenants")
Branding = create_namespaced_resource(GROUP, VERSION, "Branding", "brandings")
FeatureSet = create_namespaced_resource(GROUP, VERSION, "FeatureSet", "featuresets")
# Kinds of other projects we write when they are installed: external-dns and cert-manager.
DNSEndpoint = create_namespaced_resource("externaldns.k8s.io", "v1alpha1", "DNSEndpoint", "dnsendpoints")
Certificate = create_namespaced_resource("cert-manager.io", "v1", "Certificate", "certificates")


class AlreadyExists(Exception):
    """A create found the name taken (HTTP 409)."""


class KubeError(Exception):
    """A request the API server refused; `reason` is one CamelCase word for a condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Conflict(KubeError):
    """The object changed since it was read (HTTP 409 on a write that names a resourceVersion)."""

    def __init__(self, message: str) -> None:
        super().__init__("Conflict", message)


def _resource(api_version: str, kind: str) -> Any:
    return resource_registry.load(api_version, kind)


def _refusal(error: ApiError, what: str) -> KubeError:
    status = error.status
    return KubeError(status.reason or "ApiError", f"{what}: {status.code} {status.message}")


class Kube:
    """The operator's view of the cluster: get, create, apply, delete and status patches."""

    def __init__(self, client: AsyncClient, before_write: Callable[[], None] = lambda: None) -> None:
        self._client = client
        # Called before every write: the leader check, so a replica that lost its lease (e.g. woke
        # up from a freeze) stops before it writes, not after.
        self._before_write = before_write
        # Reads of watched kinds come from memory once their informers are synced; writes update it.
        self.cache: Cache | None = None

    @classmethod
    def from_environment(cls, before_write: Callable[[], None] = lambda: None) -> Kube:
        """In-cluster credentials, else $KUBECONFIG or ~/.kube/config."""
        return cls(AsyncClient(config=KubeConfig.from_env(), field_manager=FIELD_MANAGER, timeout=30), before_write)

    def fence(self) -> None:
        """The check every write makes first (leadership, the shard): for writes that do not go
        through this client, such as a DNS zone's."""
        self._before_write()

    @property
    def client(self) -> AsyncClient:
        return self._client

    async def close(self) -> None:
        await self._client.close()

    async def get(self, target: ObjectRef) -> Manifest | None:
        """The live object, or None when it does not exist."""
        informer = self.cache.knows(target.api_version, target.kind, target.namespace, target.name) if self.cache \
            else None
        if informer is not None:
            return informer.get(target.namespace, target.name)
        return await self.read(target)

    async def read(self, target: ObjectRef) -> Manifest | None:
        """The object from the API server, never from memory (a conflict: our copy was behind)."""
        READS.labels(target.kind).inc()
        try:
            obj = await self._client.get(_resource(target.api_version, target.kind), target.name,
                                         namespace=target.namespace)
        except ApiError as error:
            if error.status.code == 404:
                return None
            raise _refusal(error, f"reading {target.kind} {target.name}") from error
        return obj.to_dict()

    async def list(self, api_version: str, kind: str, namespace: str, labels: dict[str, str]) -> list[Manifest]:
        """Objects of a kind in one namespace that carry all these labels."""
        informer = self.cache.knows(api_version, kind, namespace, None) if self.cache else None
        if informer is not None:
            return informer.list(namespace, labels)
        try:
            return [obj.to_dict() async for obj in self._client.list(_resource(api_version, kind),
                                                                      namespace=namespace, labels=labels)]
        except ApiError as error:
            if error.status.code == 404:  # the kind is not installed
                return []
            raise _refusal(error, f"listing {kind} in {namespace}") from error

    async def list_all(self, api_version: str, kind: str) -> list[Manifest]:
        """Every object of a kind in every namespace."""
        try:
            return [obj.to_dict() async for obj in self._client.list(_resource(api_version, kind), namespace="*")]
        except ApiError as error:
            raise _refusal(error, f"listing {kind}") from error

    async def get_many(self, targets: list[ObjectRef]) -> list[Manifest | None]:
        return list(await asyncio.gather(*(self.get(t) for t in targets)))

    async def create(self, manifest: Manifest) -> Manifest:
        """Create; raises AlreadyExists when the name is taken (the atomic way to claim a name)."""
        self._before_write()
        target = ref(manifest)
        body = _resource(target.api_version, target.kind).from_dict(manifest)
        try:
            created = await self._client.create(body, namespace=target.namespace)
        except ApiError as error:
            if error.status.code == 409:
                raise AlreadyExists(f"{target.kind} {target.name}") from error
            raise _refusal(error, f"creating {target.kind} {target.name}") from error
        return self._remember(created.to_dict())

    def _remember(self, body: Manifest) -> Manifest:
        """A write's answer goes into the cache at once: the next pass must not see the old object."""
        informer = self.cache.informers.get((body.get("apiVersion"), body.get("kind"))) if self.cache else None
        if informer is not None:
            informer.put(body)
        return body

    def _forget(self, target: ObjectRef) -> None:
        informer = self.cache.informers.get((target.api_version, target.kind)) if self.cache else None
        if informer is not None:
            informer.forget(target.namespace, target.name)

    async def apply(self, manifest: Manifest) -> None:
        """Server-side apply as field manager `tenantry`, forcing our fields back (drift)."""
        self._before_write()
        target = ref(manifest)
        try:
            applied = await self._client.patch(_resource(target.api_version, target.kind), target.name, manifest,
                                               namespace=target.namespace, patch_type=PatchType.APPLY,
                                               field_manager=FIELD_MANAGER, force=True)
        except ApiError as error:
            raise _refusal(error, f"applying {target.kind} {target.name}") from error
        self._remember(applied.to_dict())

    async def delete(self, target: ObjectRef, grace_period: int | None = None) -> None:
        """Delete; an object that is already gone is fine. grace_period=0: a pod's containers are
        killed at once (not after the terminationGracePeriodSeconds its author chose)."""
        self._before_write()
        try:
            await self._client.delete(_resource(target.api_version, target.kind), target.name,
                                      namespace=target.namespace, grace_period=grace_period)
        except ApiError as error:
            if error.status.code != 404:
                raise _refusal(error, f"deleting {target.kind} {target.name}") from error
        # Deleted, or marked for deletion (finalizers): its watch event tells which; gone for us.
        self._forget(target)

    async def patch_labels(self, target: ObjectRef, labels: dict[str, str | None]) -> None:
        """Merge-patch labels (None removes one) without taking over fields we apply."""
        self._before_write()
        try:
            labelled = await self._client.patch(_resource(target.api_version, target.kind), target.name,
                                                {"metadata": {"labels": labels}}, namespace=target.namespace,
                                                patch_type=PatchType.MERGE, field_manager=FIELD_MANAGER)
        except ApiError as error:
            raise _refusal(error, f"labelling {target.kind} {target.name}") from error
        self._remember(labelled.to_dict())

    async def add_finalizer(self, target: ObjectRef, current: list[str], resource_version: str,
                            finalizer: str) -> None:
        await self.patch_if_unchanged(target, {"metadata": {"finalizers": [*current, finalizer]}}, resource_version)

    async def patch_if_unchanged(self, target: ObjectRef, patch: dict[str, Any], resource_version: str) -> Manifest:
        """Merge-patch naming the resourceVersion read: a concurrent change raises Conflict instead of being lost."""
        self._before_write()
        body = {**patch, "metadata": {**patch.get("metadata", {}), "resourceVersion": resource_version}}
        try:
            changed = await self._client.patch(_resource(target.api_version, target.kind), target.name, body,
                                               namespace=target.namespace, patch_type=PatchType.MERGE,
                                               field_manager=FIELD_MANAGER)
        except ApiError as error:
            if error.status.code == 409:
                raise Conflict(f"{target.kind} {target.name} changed meanwhile") from error
            raise _refusal(error, f"patching {target.kind} {target.name}") from error
        return self._remember(changed.to_dict())

    async def patch_status(self, target: ObjectRef, status: dict[str, Any]) -> None:
        """Merge-patch the status subresource (lists such as conditions are replaced whole)."""
        self._before_write()
        resource = _resource(target.api_version, target.kind)
        try:
            patched = await self._client.patch(resource.Status, target.name, {"status": status},
                                               namespace=target.namespace, patch_type=PatchType.MERGE)
        except ApiError as error:
            if error.status.code != 404:  # deleted meanwhile: nothing left to report on
                raise _refusal(error, f"writing status of {target.kind} {target.name}") from error
            return
        self._remember(patched.to_dict())
