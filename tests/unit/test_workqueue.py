"""The reconcile queue: a key queued once however often it is triggered, run again when triggered
while running, never two workers on one key, bounded concurrency, failures retried with back-off
(the delays read from an injected clock, not measured in wall time) without stopping the other
keys, a success resets the back-off, a retry due after a stop does nothing, a kopf event for a
key of another replica still starts the workers (for the keys of shards taken over later), and a key
queued for later (add_after: waiting on another controller) runs once its time has come, not before;
groups (partners) take turns: one partner's thousands of keys queued first hold another's back by
one key, not by thousands, and each group's keys keep their own order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tenantry.handlers.workqueue import WorkQueue


async def _until(check, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.001)


async def _turns(count: int = 50) -> None:
    """Let the loop run whatever is ready, for a number of turns rather than a wall-clock time: a run
    wrongly queued would start here, on a loaded machine as on a quiet one."""
    for _ in range(count):
        await asyncio.sleep(0)


def test_a_key_triggered_many_times_while_waiting_is_worked_on_once() -> None:
    async def scenario() -> list[str]:
        done: list[str] = []

        async def work(key: str) -> None:
            done.append(key)

        queue = WorkQueue(work, workers=2)
        for _ in range(5):
            queue.add("a")
        queue.add("b")
        assert len(queue) == 2
        await _until(lambda: len(queue) == 0)
        await queue.stop()
        return done

    assert sorted(asyncio.run(scenario())) == ["a", "b"]


def test_a_key_triggered_while_being_worked_on_runs_once_more_afterwards_never_concurrently() -> None:
    async def scenario() -> tuple[int, int]:
        runs, running, most = 0, 0, 0
        release = asyncio.Event()

        async def work(key: str) -> None:
            nonlocal runs, running, most
            runs += 1
            running += 1
            most = max(most, running)
            if runs == 1:
                await release.wait()
            running -= 1

        queue = WorkQueue(work, workers=4)
        queue.add("a")
        await _until(lambda: runs == 1)
        queue.add("a")
        queue.add("a")  # both while running: one more run, not two
        release.set()
        await _until(lambda: len(queue) == 0)
        await _turns()
        await queue.stop()
        return runs, most

    assert asyncio.run(scenario()) == (2, 1)


def test_no_more_keys_at_once_than_workers() -> None:
    async def scenario() -> int:
        running, most = 0, 0

        async def work(key: int) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.002)
            running -= 1

        queue = WorkQueue(work, workers=3)
        for key in range(30):
            queue.add(key)
        await _until(lambda: len(queue) == 0)
        await queue.stop()
        return most

    assert asyncio.run(scenario()) == 3


class ManualClock:
    """A scheduler that records the delays asked for and runs a callback only when the test says so."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.due: list[Callable[[], None]] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> None:
        self.delays.append(delay)
        self.due.append(callback)

    def advance(self) -> None:
        """Time passes until every scheduled callback is due."""
        due, self.due = self.due, []
        for callback in due:
            callback()


def test_a_failing_key_is_retried_with_growing_back_off_and_the_others_go_on() -> None:
    async def scenario() -> tuple[list[float], list[str]]:
        clock = ManualClock()
        done: list[str] = []
        failures = 0

        async def work(key: str) -> None:
            nonlocal failures
            if key == "broken" and failures < 4:
                failures += 1
                raise RuntimeError("API server unreachable")
            done.append(key)

        queue = WorkQueue(work, workers=1, first_retry=5, max_retry=12, schedule=clock)
        queue.add("broken")
        queue.add("fine")
        while "broken" not in done:
            await _until(lambda: len(queue) == 0)
            assert len(clock.due) == ("broken" not in done), "one retry scheduled per failure"
            clock.advance()
        await queue.stop()
        return clock.delays, done

    delays, done = asyncio.run(scenario())
    assert done == ["fine", "broken"]  # the other key did not wait for the broken one
    assert delays == [5, 10, 12, 12]  # doubled each time, capped at max_retry


def test_a_success_resets_the_back_off() -> None:
    async def scenario() -> list[float]:
        clock = ManualClock()
        outcomes = iter([False, False, True, False])  # fail, fail, succeed, fail

        async def work(key: str) -> None:
            if not next(outcomes):
                raise RuntimeError("API server unreachable")

        queue = WorkQueue(work, workers=1, first_retry=5, schedule=clock)
        queue.add("a")
        for _ in range(2):  # the two retries
            await _until(lambda: len(queue) == 0 and len(clock.due) == 1)
            clock.advance()
        await _until(lambda: len(queue) == 0)
        queue.add("a")  # fails again, after a success
        await _until(lambda: len(queue) == 0 and len(clock.due) == 1)
        await queue.stop()
        return clock.delays

    assert asyncio.run(scenario()) == [5, 10, 5]


def test_a_key_queued_for_later_runs_when_its_time_has_come() -> None:
    async def scenario() -> tuple[list[float], list[str]]:
        clock = ManualClock()
        done: list[str] = []

        async def work(key: str) -> None:
            done.append(key)

        queue = WorkQueue(work, workers=1, first_retry=5, schedule=clock)
        queue.add_after("a", 0.5)
        await _turns()
        assert done == [] and len(queue) == 0 and len(clock.due) == 1  # waiting on the clock only
        clock.advance()
        await _until(lambda: done == ["a"])
        await queue.stop()
        return clock.delays, done

    assert asyncio.run(scenario()) == ([0.5], ["a"])


def test_a_stopped_queue_takes_no_more_keys() -> None:
    async def scenario() -> list[str]:
        done: list[str] = []

        async def work(key: str) -> None:
            done.append(key)

        queue = WorkQueue(work, workers=1)
        queue.add("a")
        await _until(lambda: len(queue) == 0)
        await queue.stop()
        queue.add("b")
        await _turns()
        return done

    assert asyncio.run(scenario()) == ["a"]


def test_a_retry_due_after_the_queue_stopped_does_nothing() -> None:
    async def scenario() -> int:
        clock = ManualClock()
        attempts = 0

        async def work(key: str) -> None:
            nonlocal attempts
            attempts += 1
            raise RuntimeError("API server unreachable")

        queue = WorkQueue(work, workers=1, schedule=clock)
        queue.add("broken")
        await _until(lambda: attempts == 1 and len(clock.due) == 1)
        await queue.stop()
        clock.advance()  # the retry falls due after the stop
        await asyncio.sleep(0)
        return attempts

    assert asyncio.run(scenario()) == 1


def test_an_event_for_another_replicas_key_starts_the_workers_for_shards_taken_later() -> None:
    async def scenario() -> list[str]:
        done: list[str] = []
        mine: set[str] = set()

        async def work(key: str) -> None:
            done.append(key)

        queue = WorkQueue(work, workers=1, admit=lambda key: key in mine)
        queue.add("theirs")  # a kopf event: every tenant so far belongs to another replica's shards
        mine.add("taken-over")  # then a shard changes hands, and its tenants come from outside kopf
        queue.add("taken-over", start=False)
        await _until(lambda: done == ["taken-over"])
        await queue.stop()
        return done

    assert asyncio.run(scenario()) == ["taken-over"]


def test_groups_take_turns_and_keep_their_own_order() -> None:
    async def scenario() -> list[tuple[str, int]]:
        done: list[tuple[str, int]] = []

        async def work(key: tuple[str, int]) -> None:
            done.append(key)

        queue = WorkQueue(work, workers=1, group=lambda key: key[0])
        for index in range(1000):  # a plan change: every tenant of a large partner at once
            queue.add(("partner-big", index), start=False)
        queue.add(("partner-small", 0), start=False)
        queue.add(("partner-other", 0), start=False)
        queue.add(("partner-small", 1))
        await _until(lambda: len(queue) == 0)
        await queue.stop()
        return done

    done = asyncio.run(scenario())
    assert done[:6] == [("partner-big", 0), ("partner-small", 0), ("partner-other", 0), ("partner-big", 1),
                        ("partner-small", 1), ("partner-big", 2)]
    assert [index for group, index in done if group == "partner-big"] == list(range(1000))


def test_a_failed_key_of_a_shard_that_moved_away_leaves_nothing_behind() -> None:
    async def scenario() -> dict:
        ours = {"flaky": True}

        async def work(key: str) -> None:
            raise RuntimeError("the API server is away")

        clock = ManualClock()
        queue = WorkQueue(work, workers=1, schedule=clock, admit=lambda key: ours.get(key, False))
        queue.add("flaky")
        await _until(lambda: clock.due)
        ours["flaky"] = False  # its shard moved to another replica
        clock.advance()
        await _turns()
        await queue.stop()
        return queue._retry

    assert asyncio.run(scenario()) == {}
