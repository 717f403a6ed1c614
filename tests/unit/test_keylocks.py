"""KeyLocks: one holder per key at a time, others free; an entry lives only while it is in use,
and is never split (a task arriving while another waits for the same key queues behind it)."""

from __future__ import annotations

import asyncio

from tenantry.handlers.keylocks import KeyLocks


async def _holder(locks: KeyLocks[str], key: str, log: list[str], name: str, release: asyncio.Event) -> None:
    async with locks.hold(key):
        log.append(f"{name} in")
        await release.wait()
        log.append(f"{name} out")


async def _until(condition, tries: int = 1000) -> None:  # type: ignore[no-untyped-def]
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


def test_one_holder_per_key_and_other_keys_are_free() -> None:
    async def scenario() -> list[str]:
        locks: KeyLocks[str] = KeyLocks()
        log: list[str] = []
        first, second, other = asyncio.Event(), asyncio.Event(), asyncio.Event()
        tasks = [asyncio.create_task(_holder(locks, "a", log, "first", first)),
                 asyncio.create_task(_holder(locks, "a", log, "second", second)),
                 asyncio.create_task(_holder(locks, "b", log, "other", other))]
        await _until(lambda: "other in" in log and "first in" in log)
        assert "second in" not in log
        first.set()
        await _until(lambda: "second in" in log)
        second.set()
        other.set()
        await asyncio.gather(*tasks)
        assert len(locks) == 0  # nothing kept for keys nobody uses
        return log

    log = asyncio.run(scenario())
    assert log.index("first out") < log.index("second in")


def test_a_late_arrival_queues_behind_a_waiter_once_the_first_holder_leaves() -> None:
    """The split a popped lock made: the first holder leaves while the second waits; a third
    arriving then must wait for the second, not take a fresh lock of its own."""
    async def scenario() -> list[str]:
        locks: KeyLocks[str] = KeyLocks()
        log: list[str] = []
        first, second, third = asyncio.Event(), asyncio.Event(), asyncio.Event()
        a = asyncio.create_task(_holder(locks, "k", log, "first", first))
        await _until(lambda: "first in" in log)
        b = asyncio.create_task(_holder(locks, "k", log, "second", second))
        await _until(lambda: len(locks) == 1 and locks._entries["k"].users == 2)
        first.set()
        await a
        c = asyncio.create_task(_holder(locks, "k", log, "third", third))
        await _until(lambda: "second in" in log and locks._entries["k"].users == 2)
        for _ in range(50):
            await asyncio.sleep(0)
        assert "third in" not in log, log
        second.set()
        await _until(lambda: "third in" in log)
        third.set()
        await asyncio.gather(b, c)
        return log

    asyncio.run(scenario())


def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    async def scenario() -> None:
        locks: KeyLocks[str] = KeyLocks()
        log: list[str] = []
        release = asyncio.Event()
        holder = asyncio.create_task(_holder(locks, "k", log, "holder", release))
        await _until(lambda: "holder in" in log)
        waiter = asyncio.create_task(_holder(locks, "k", log, "waiter", asyncio.Event()))
        await _until(lambda: locks._entries["k"].users == 2)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        assert locks._entries["k"].users == 1
        release.set()
        await holder
        assert len(locks) == 0

    asyncio.run(scenario())
