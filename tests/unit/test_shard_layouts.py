"""Replicas with another number of shards (a rollout that changes `shards`) never work at once (a
platform engineer's review, 3 Dec): shard i is another set of partners to them, so two layouts
acting together would reconcile some partners twice.

A stand-in for the API server's Leases (the elector's rounds against real Leases and real
processes run in tests/integration/test_shards.py); the rounds are the real ShardElector's.

Tested here:
- a member lease names its replica's number of shards
- while a replica of another layout (or of a version that did not name one) runs, a replica takes
  no shard, and does not count it in its fair share
- once it is gone (its member lease deleted, its shards released, as a clean shutdown leaves
  them), the replica takes every shard of its own layout
- replicas of the same layout share the shards as before
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from typing import Any

from tenantry.adapters.kube import AlreadyExists, Conflict
from tenantry.domain.children import ObjectRef
from tenantry.domain.leadership import Timing
from tenantry.handlers.leadership import LEASE_GROUP_LABEL, LEASE_ROLE_LABEL, SHARDS_ANNOTATION, ShardElector

GROUP, NAMESPACE = "tenantry-leader", "tenantry-system"
VERSIONS = itertools.count(1)


class StandInLeases:
    """Leases in a dict: create refuses a taken name, a patch must name the current version."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}

    async def list(self, api_version: str, kind: str, namespace: str, labels: dict[str, str]) -> list[Any]:
        return [copy.deepcopy(lease) for lease in self.leases.values()]

    async def get(self, target: ObjectRef) -> dict[str, Any] | None:
        return copy.deepcopy(self.leases.get(target.name))

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        if name in self.leases:
            raise AlreadyExists(name)
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(next(VERSIONS))
        self.leases[name] = stored
        return self.leases[name]

    async def patch_if_unchanged(self, target: ObjectRef, patch: dict[str, Any], version: str) -> dict[str, Any]:
        lease = self.leases[target.name]
        if lease["metadata"]["resourceVersion"] != version:
            raise Conflict(target.name)
        lease["spec"] = {**lease.get("spec", {}), **patch.get("spec", {})}
        annotations = (patch.get("metadata") or {}).get("annotations")
        if annotations:
            lease["metadata"]["annotations"] = {**(lease["metadata"].get("annotations") or {}), **annotations}
        lease["metadata"]["resourceVersion"] = str(next(VERSIONS))
        return lease

    async def delete(self, target: ObjectRef) -> None:
        self.leases.pop(target.name, None)

    def member(self, holder: str, shards: str | None) -> None:
        """A running replica's member lease (renewed just now, as far as anyone first sees it)."""
        self.leases[f"{GROUP}-member-{holder}"] = {
            "metadata": {"name": f"{GROUP}-member-{holder}", "resourceVersion": str(next(VERSIONS)),
                         "labels": {LEASE_GROUP_LABEL: GROUP, LEASE_ROLE_LABEL: "member"},
                         "annotations": {SHARDS_ANNOTATION: shards} if shards else {}},
            "spec": {"holderIdentity": holder, "renewTime": "2026-12-03T00:00:00.000000Z"}}

    def shard(self, index: int, holder: str) -> None:
        self.leases[f"{GROUP}-shard-{index}"] = {
            "metadata": {"name": f"{GROUP}-shard-{index}", "resourceVersion": str(next(VERSIONS)),
                         "labels": {LEASE_GROUP_LABEL: GROUP, LEASE_ROLE_LABEL: "shard"}},
            "spec": {"holderIdentity": holder, "renewTime": "2026-12-03T00:00:00.000000Z"}}


def _elector(leases: StandInLeases, identity: str, shards: int) -> ShardElector:
    return ShardElector(leases, NAMESPACE, GROUP, identity, Timing(), shards)  # type: ignore[arg-type]


def _rounds(*electors: ShardElector, count: int = 3) -> None:
    async def run() -> None:
        for _ in range(count):
            for elector in electors:
                await elector._round()
    asyncio.run(run())


def test_a_replica_takes_no_shard_while_one_of_another_layout_runs() -> None:
    leases = StandInLeases()
    leases.member("old-0", "3")
    for index in range(3):
        leases.shard(index, "old-0")
    new = _elector(leases, "new-0", 4)
    _rounds(new)
    assert new.held() == []
    assert not any(f"{GROUP}-shard-3" == name for name in leases.leases)  # not even the free one
    assert leases.leases[new.member.name]["metadata"]["annotations"] == {SHARDS_ANNOTATION: "4"}
    # The old replica stops cleanly: its member lease goes, its shards are written free.
    del leases.leases[f"{GROUP}-member-old-0"]
    for index in range(3):
        leases.shard(index, "")
    _rounds(new)
    assert new.held() == [0, 1, 2, 3]


def test_a_replica_of_a_version_that_named_no_layout_counts_as_another() -> None:
    leases = StandInLeases()
    leases.member("before-upgrade", None)
    new = _elector(leases, "new-0", 2)
    _rounds(new)
    assert new.held() == []


def test_replicas_of_one_layout_share_the_shards() -> None:
    leases = StandInLeases()
    first, second = _elector(leases, "a", 4), _elector(leases, "b", 4)
    _rounds(first, second, count=6)
    assert sorted(first.held() + second.held()) == [0, 1, 2, 3] and len(first.held()) == len(second.held()) == 2
