"""Writes of one reconcile pass: only when the live object differs, and counted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantry.adapters.kube import Kube
from tenantry.domain.children import ObjectRef, ref
from tenantry.domain.drift import covers
from tenantry.domain.naming import is_managed


class Writer:
    """The kube adapter plus a count of the write requests made through it."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.count = 0
        self.observed: dict[str, Any] = {}  # what the pass saw along the way, for metrics

    async def apply_if_needed(self, manifest: dict[str, Any], live: Mapping[str, Any] | None) -> None:
        if live is None or not covers(live, manifest):
            if live is not None and "roleRef" in manifest and live.get("roleRef") != manifest["roleRef"]:
                # roleRef is immutable: a binding to another role is replaced, not patched (this is
                # how bindings of earlier versions, to a per-namespace Role, move to the ClusterRole).
                self.count += 1
                await self.kube.delete(ref(manifest))
            self.count += 1
            await self.kube.apply(manifest)

    async def delete_if_ours(self, target: ObjectRef, live: Mapping[str, Any] | None) -> None:
        if live is not None and is_managed(live["metadata"].get("labels")):
            self.count += 1
            await self.kube.delete(target)
