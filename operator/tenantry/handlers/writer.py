"""Writes of one reconcile pass: only when the live object differs, and counted."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import msgspec

from tenantry.adapters.kube import AlreadyExists, Conflict, Kube, KubeError
from tenantry.domain.children import ObjectRef, ref
from tenantry.domain.contest import USER_WRITABLE_KINDS, Contest
from tenantry.domain.drift import covers, holds, other_writer
from tenantry.domain.naming import owned_by

# Written whatever their version: quota admission moves a quota's version (its status) with every
# counted create in the namespace, at a tenant admin's pace, so a versioned write could keep losing
# (a suspension's pods: 0 among them). Only the operator and the platform write a quota's spec.
UNVERSIONED_KINDS = frozenset({"ResourceQuota"})


class NotYet(Exception):
    """The pass cannot go on until another controller has caught up (its answer, a status update or
    an object finally gone, may trigger no pass): it runs again after RETRY_SECONDS, and twice as
    long after each time it could not go on, up to MAX_RETRY_SECONDS (a controller that does not
    catch up must not keep workers from other tenants)."""

    RETRY_SECONDS = 0.5
    MAX_RETRY_SECONDS = 30.0

    @classmethod
    def delay(cls, times: int) -> float:
        """The wait before the next pass, after `times` passes in a row that could not go on."""
        return min(cls.RETRY_SECONDS * 2 ** min(times, 16), cls.MAX_RETRY_SECONDS)


class Writer:
    """The kube adapter plus a count of the write requests made through it."""

    def __init__(self, kube: Kube, contest: Contest | None = None) -> None:
        self.kube = kube
        self.count = 0
        self.contest = contest
        self.contested: list[str] = []  # objects left alone this pass: another writer keeps changing them

    async def apply_if_needed(self, manifest: dict[str, Any], live: Mapping[str, Any] | None) -> None:
        """Write `manifest` when `live` (from memory) does not hold it yet: a create when absent, else
        a whole-object update naming the version read, or for UNVERSIONED_KINDS the object's uid
        (creates and updates cost the API server less than server-side apply). A Namespace is
        applied instead: others' annotations on it stay."""
        if live is not None and holds(live, manifest):
            return
        # msgspec, not json.dumps: this runs for every write, and the stdlib encoder was 2 % of the
        # operator's CPU while it onboarded.
        key, digest = self._key(manifest), hash(msgspec.json.encode(manifest, order="sorted"))
        if live is not None and not self._may_write(key, digest, live):
            return
        if manifest["kind"] == "Namespace":
            self.count += 1
            await self.kube.apply(manifest)
        else:
            await self._write(manifest, live)
        if self.contest is not None:
            self.contest.written(key, digest)

    async def _write(self, manifest: dict[str, Any], live: Mapping[str, Any] | None) -> None:
        target = ref(manifest)
        if live is not None and _immutable_changed(manifest, live):
            # roleRef is immutable: a binding to another role is replaced, not patched (this is
            # how bindings of earlier versions, to a per-namespace Role, move to the ClusterRole).
            # So is a quota's scopeSelector (the allowed PriorityClasses, set by the platform).
            if not live["metadata"].get("deletionTimestamp"):
                self.count += 1
                await self.kube.delete(target)
            live = None
        self.count += 1
        if live is None:
            try:
                await self.kube.create(manifest)
            except AlreadyExists:
                # Absent from memory (which holds only objects with our label, and may be a moment
                # behind) yet there: memory takes it now, and the pass runs again with it.
                await self._held_back(target, await self.kube.refresh(target))
                raise Conflict(f"{target.kind} {target.name} exists, unknown to memory") from None
            return
        # A Conflict here (our copy was behind) leaves memory current: the pass runs again.
        await self.kube.replace(manifest, live, versioned=manifest["kind"] not in UNVERSIONED_KINDS)

    async def _held_back(self, target: ObjectRef, held: Mapping[str, Any] | None) -> None:
        """When the name is held by an object being deleted: a ConfigMap held by someone's finalizers
        (a tenant admin's, on an immutable copy of the flags, could keep it so for ever) loses them,
        and the next pass creates ours; any other kind is some controller's clean-up, waited for."""
        # `held` as read from the API server: memory keeps at most 2 KiB of others' finalizers.
        meta = (held or {}).get("metadata") or {}
        if not meta.get("deletionTimestamp"):
            return
        if target.kind not in USER_WRITABLE_KINDS or not meta.get("finalizers"):
            raise NotYet(f"{target.kind} {target.name} is still being deleted")
        self.count += 1
        try:
            await self.kube.patch_if_unchanged(target, {"metadata": {"finalizers": None}}, meta["resourceVersion"])
        except KubeError as error:
            if error.reason != "NotFound":
                raise  # (gone meanwhile: what letting go was for)

    @staticmethod
    def _key(manifest: Mapping[str, Any]) -> tuple[str, str, str]:
        target = ref(manifest)
        # A tenant namespace is remembered with what it holds, so one forget() drops all of it.
        return target.namespace or target.name, target.kind, target.name

    def _may_write(self, key: tuple[str, str, str], digest: int, live: Mapping[str, Any]) -> bool:
        """A change by another writer is corrected a few times, then left alone for a while."""
        if self.contest is None or self.contest.may_write(key, digest, time.monotonic()):
            return True
        other = other_writer(live["metadata"].get("managedFields")) or "another writer"
        self.contested.append(f"{key[1]} {key[2]} (changed by {other})")
        return False

    async def delete_if_ours(self, target: ObjectRef, live: Mapping[str, Any] | None, owner: str) -> bool:
        """Delete when the live object is ours and this tenant's (naming.owned_by). Whether it is gone
        now (absent, or deleted here)."""
        if live is None:
            return True
        if not owned_by(live, owner):
            return False
        self.count += 1
        await self.kube.delete(target)
        return True


def _immutable_changed(manifest: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    if "roleRef" in manifest and live.get("roleRef") != manifest["roleRef"]:
        return True
    # A ConfigMap someone made immutable (tenant admins may write ours) can only be replaced.
    if live.get("immutable") is True and not manifest.get("immutable"):
        return True
    scope = (manifest.get("spec") or {}).get("scopeSelector")
    return scope is not None and not covers((live.get("spec") or {}).get("scopeSelector"), scope)

