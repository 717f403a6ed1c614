"""handlers.periodic.spread and every: the periodic passes and checks, on an injected clock (no wall time).

Tested here:
- nothing is queued before one period has passed (the start gives every tenant a pass)
- each period queues every key once, in slices spread over the period (not one burst)
- keys are read at each period's start: a new tenant joins the next round, a gone one leaves it
- `every`: an action once per period, the first after one period, and a round that fails
  does not end the next ones
"""

from __future__ import annotations

import asyncio

from tenantry.handlers.periodic import every, spread


class Clock:
    """asyncio.sleep's stand-in: records the time asleep, and stops the loop after `limit` naps."""

    def __init__(self, limit: int) -> None:
        self.now, self.naps, self.limit = 0.0, 0, limit

    async def sleep(self, seconds: float) -> None:
        self.naps += 1
        if self.naps > self.limit:
            raise asyncio.CancelledError
        self.now += seconds


def _run(period: float, keys, naps: int) -> tuple[Clock, list[tuple[float, str]]]:
    clock, queued = Clock(naps), []

    async def main() -> None:
        try:
            await spread(period, keys, lambda key: queued.append((clock.now, key)), sleep=clock.sleep)
        except asyncio.CancelledError:
            pass
    asyncio.run(main())
    return clock, queued


def test_every_key_once_per_period_in_slices_after_the_first_period() -> None:
    keys = [f"t{i}" for i in range(10)]
    clock, queued = _run(5.0, lambda: keys, naps=10)  # two periods of five one-second ticks
    assert clock.now == 10.0
    first = [key for at, key in queued if at <= 5.0]
    assert sorted(first) == sorted(keys) and len(first) == 10
    assert min(at for at, _ in queued) == 1.0  # the first slice one tick in, not at the start
    # Spread: each of the five ticks of a period queues two of the ten.
    assert [sum(1 for at, _ in queued if at == t) for t in (1.0, 2.0, 3.0, 4.0, 5.0)] == [2] * 5
    assert sorted(key for at, key in queued if at > 5.0) == sorted(keys)


def test_keys_are_read_again_each_period() -> None:
    rounds = iter([["a", "b"], ["b", "c"], []])
    _, queued = _run(2.0, lambda: next(rounds), naps=4)
    assert sorted(k for at, k in queued if at <= 2.0) == ["a", "b"]
    assert sorted(k for at, k in queued if at > 2.0) == ["b", "c"]


def test_every_runs_once_per_period_and_outlives_a_failed_round() -> None:
    clock, rounds = Clock(3), []

    async def action() -> None:
        rounds.append(clock.now)
        if len(rounds) == 1:
            raise RuntimeError("the API server is away")

    async def main() -> None:
        try:
            await every(4.0, action, "a check", sleep=clock.sleep)
        except asyncio.CancelledError:
            pass
    asyncio.run(main())
    assert rounds == [4.0, 8.0, 12.0]
