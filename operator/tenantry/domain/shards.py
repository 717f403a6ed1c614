"""Shards: partners spread over operator replicas (pure).

A partner (the namespace its Tenants live in) belongs to one of N shards by consistent hashing:
sha256 of the namespace onto a ring on which every shard has VNODES points. The ring depends on
N alone, never on how many replicas run, so a rollout or a dead replica moves no partner between
shards; changing N moves about 1/N of them. All of a partner's tenants are in one shard, so each
replica's per-partner metrics (totals, levels) are complete.

Which replica works on a shard is decided with one Lease per shard (handlers/leadership.py);
this module says how many a replica should hold and which to take or give up.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

VNODES = 64  # points per shard: enough for an even spread at a few shards, cheap to build
CLUSTER_WIDE = 0  # the shard whose owner also runs what must run once in the cluster


def _point(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class Ring:
    """Partner namespace -> shard, stable across processes and versions (sha256, not hash())."""

    def __init__(self, shards: int) -> None:
        if shards < 1:
            raise ValueError("at least one shard")
        self.shards = shards
        points = sorted((_point(f"tenantry-shard-{shard}#{vnode}"), shard)
                        for shard in range(shards) for vnode in range(VNODES))
        self._points = [point for point, _ in points]
        self._owners = [shard for _, shard in points]

    def shard_of(self, partner_namespace: str) -> int:
        """The shard of the first point at or after the namespace's point, going round the ring."""
        index = bisect.bisect_left(self._points, _point(partner_namespace))
        return self._owners[index % len(self._owners)]


def fair_share(shards: int, live_replicas: int) -> int:
    """How many shards one replica aims to hold: ceil(N / live replicas), so none is left over."""
    return math.ceil(shards / max(1, live_replicas))


@dataclass(frozen=True)
class Moves:
    """What one replica does in one round: shards to claim, and shards to give up cleanly."""

    take: tuple[int, ...] = ()
    release: tuple[int, ...] = ()


def moves(shards: int, live_replicas: int, mine: Iterable[int], takeable: Iterable[int]) -> Moves:
    """Claim free or expired shards up to the fair share (lowest numbers first), or give up the
    ones above it (highest numbers first, so the cluster-wide shard 0 moves last)."""
    held = sorted(set(mine))
    share = fair_share(shards, live_replicas)
    if len(held) > share:
        return Moves(release=tuple(sorted(held, reverse=True)[:len(held) - share]))
    candidates = sorted(set(takeable) - set(held))
    return Moves(take=tuple(candidates[:share - len(held)]))
