"""The reconcile queue: a key queued once however often it is triggered, run again when triggered
while running, never two workers on one key, bounded concurrency, failures retried with back-off
without stopping the other keys."""

from __future__ import annotations

import asyncio

from tenantry.handlers.workqueue import WorkQueue


async def _until(check, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.001)


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
        await asyncio.sleep(0.01)
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


def test_a_failing_key_is_retried_with_growing_back_off_and_the_others_go_on() -> None:
    async def scenario() -> tuple[list[float], list[str]]:
        attempts: list[float] = []
        done: list[str] = []
        loop = asyncio.get_running_loop()

        async def work(key: str) -> None:
            if key == "broken" and len(attempts) < 3:
                attempts.append(loop.time())
                raise RuntimeError("API server unreachable")
            done.append(key)

        queue = WorkQueue(work, workers=1, first_retry=0.05, max_retry=0.12)
        queue.add("broken")
        queue.add("fine")
        await _until(lambda: "broken" in done)
        await queue.stop()
        return [b - a for a, b in zip(attempts, attempts[1:], strict=False)], done

    gaps, done = asyncio.run(scenario())
    assert done == ["fine", "broken"]  # the other key did not wait for the broken one
    assert 0.05 <= gaps[0] < gaps[1] and gaps[1] >= 0.1  # 0.05 s, then doubled (capped at 0.12 s)


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
        await asyncio.sleep(0.01)
        return done

    assert asyncio.run(scenario()) == ["a"]


def test_a_retry_due_after_the_queue_stopped_does_nothing() -> None:
    async def scenario() -> int:
        attempts = 0

        async def work(key: str) -> None:
            nonlocal attempts
            attempts += 1
            raise RuntimeError("API server unreachable")

        queue = WorkQueue(work, workers=1, first_retry=0.02)
        queue.add("broken")
        await _until(lambda: attempts == 1)
        await queue.stop()
        await asyncio.sleep(0.1)  # the 0.02 s retry falls due meanwhile
        return attempts

    assert asyncio.run(scenario()) == 1
