"""Shards of partners (domain/shards): the ring and the balancing decisions, without a cluster.

Tested here:
- a partner's shard is stable (the same in another process: sha256, fixed expected values) and
  always one of the N shards; one shard takes everything
- the ring spreads partners evenly enough, and changing N from 6 to 7 moves about 1/7 of them,
  never between two old shards (consistent hashing), where a plain modulo would move most
- the fair share is ceil(N / live replicas); `moves` never takes a shard that is not takeable or
  already held, never goes above the fair share, releases highest numbers first (shard 0, with
  the cluster-wide jobs, last), and never both takes and releases in one round
- replicas that each apply `moves` in turn end up holding every shard exactly once, each about
  the fair share, from any start (property test)
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from tenantry.domain.shards import CLUSTER_WIDE, Ring, fair_share, moves

PARTNERS = [f"partner-{i:04d}" for i in range(3000)]


def test_a_partners_shard_is_fixed_by_its_name() -> None:
    ring = Ring(6)
    # Values computed once: a different hash (e.g. Python's salted hash()) would change them.
    assert [ring.shard_of(p) for p in ("partner-acme-it", "nordlicht", "partner-0001")] == \
        [Ring(6).shard_of(p) for p in ("partner-acme-it", "nordlicht", "partner-0001")] == [0, 2, 5]
    assert {ring.shard_of(p) for p in PARTNERS} == set(range(6))
    assert {Ring(1).shard_of(p) for p in PARTNERS} == {0}


def test_partners_spread_evenly_enough() -> None:
    counts = Counter(Ring(6).shard_of(p) for p in PARTNERS)
    assert min(counts.values()) > 0.6 * len(PARTNERS) / 6 and max(counts.values()) < 1.4 * len(PARTNERS) / 6


def test_one_more_shard_moves_few_partners_and_only_to_it() -> None:
    six, seven = Ring(6), Ring(7)
    moved = [p for p in PARTNERS if six.shard_of(p) != seven.shard_of(p)]
    assert all(seven.shard_of(p) == 6 for p in moved)
    assert 0.5 / 7 < len(moved) / len(PARTNERS) < 1.5 / 7
    modulo_moved = sum(1 for p in PARTNERS if hash(p) % 6 != hash(p) % 7)
    assert len(moved) < modulo_moved / 3


def test_fair_share() -> None:
    assert [fair_share(6, n) for n in (0, 1, 2, 3, 4, 6, 7)] == [6, 6, 3, 2, 2, 1, 1]


def test_extras_are_released_highest_first() -> None:
    assert moves(6, 3, mine=[0, 1, 2, 3, 4, 5], takeable=[]).release == (5, 4, 3, 2)
    assert moves(6, 2, mine=[0, 5, 3, 1], takeable=[2]).release == (5,)


def test_free_shards_are_taken_lowest_first_up_to_the_share() -> None:
    assert moves(6, 3, mine=[4], takeable=[5, 1, 3, 4]).take == (1,)
    assert moves(6, 1, mine=[], takeable=[2, 0]).take == (0, 2)
    assert moves(6, 3, mine=[1, 2], takeable=[0, 3]) == moves(6, 3, [1, 2], []) == moves(6, 3, [1, 2], [1])


@given(st.integers(1, 40), st.integers(1, 12), st.sets(st.integers(0, 39)), st.sets(st.integers(0, 39)))
def test_moves_keep_to_the_rules(shards: int, live: int, mine: set[int], takeable: set[int]) -> None:
    mine, takeable = {s for s in mine if s < shards}, {s for s in takeable if s < shards}
    plan = moves(shards, live, mine, takeable)
    assert not (plan.take and plan.release)
    assert set(plan.take) <= takeable - mine and set(plan.release) <= mine
    share = fair_share(shards, live)
    if plan.take:
        assert len(mine) + len(plan.take) <= share
    if plan.release:
        assert len(mine) - len(plan.release) == share
    if CLUSTER_WIDE in plan.release:
        assert set(plan.release) == mine


@given(st.integers(1, 24), st.integers(1, 8), st.lists(st.integers(0, 7), max_size=24), st.randoms())
def test_replicas_settle_on_every_shard_once_and_fairly(shards: int, replicas: int, start: list[int],
                                                        order: object) -> None:
    # owner[s]: the replica holding shard s (None: free), from any start, e.g. one replica holding all.
    owner: list[int | None] = [start[s] % replicas if s < len(start) else None for s in range(shards)]
    for _ in range(4 * shards + 4):  # rounds: every replica once per round, in a random order
        turns = list(range(replicas))
        order.shuffle(turns)  # type: ignore[attr-defined]
        for replica in turns:
            mine = [s for s in range(shards) if owner[s] == replica]
            plan = moves(shards, replicas, mine, [s for s in range(shards) if owner[s] is None])
            for s in plan.release:
                owner[s] = None
            for s in plan.take:
                owner[s] = replica
    assert None not in owner
    held = Counter(owner)
    assert max(held.values()) <= fair_share(shards, replicas)
