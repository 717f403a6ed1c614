"""The tenants waiting for a reconcile: each at most once, a fixed number at a time.

Why not reconcile inside kopf's handlers: kopf keeps a worker, the event's body and the handler's
frames alive for every object whose handler has not returned, and at a restart over 10,000 tenants
all of them would wait for a slot at once. Here a trigger
(watch event, timer, plan change, drift) only records the tenant's key; the reconcile reads the
Tenant fresh anyway. A key that is triggered again while it waits is queued once; triggered while
it is being reconciled, it runs once more afterwards. A failed reconcile is retried with back-off.
Keys are taken in turns by group (the tenants' partner namespace): a plan change that queues a
large partner's thousands of tenants does not put every other partner's new tenant behind them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from tenantry.metrics.operator import QUEUE_ADDS, QUEUE_DEPTH, QUEUE_RETRIES, QUEUE_WAIT_SECONDS, QUEUE_WORK_SECONDS

Key = TypeVar("Key", bound=Hashable)
# Runs a callback after a delay in seconds: the event loop's call_later, or a test's own clock.
Scheduler = Callable[[float, Callable[[], None]], object]
logger = logging.getLogger("tenantry")


def _call_later(delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
    return asyncio.get_running_loop().call_later(delay, callback)


class WorkQueue(Generic[Key]):
    """Keys to work on, deduplicated, worked on by `workers` tasks; failures come back later."""

    def __init__(self, work: Callable[[Key], Awaitable[None]], workers: int,
                 first_retry: float = 5.0, max_retry: float = 300.0, schedule: Scheduler = _call_later,
                 admit: Callable[[Key], bool] = lambda key: True, name: str = "tenants",
                 group: Callable[[Key], Hashable] = lambda key: None) -> None:
        self._work, self._workers, self._schedule, self._admit, self._group = work, workers, schedule, admit, group
        self._depth, self._adds, self._retries = (QUEUE_DEPTH.labels(name), QUEUE_ADDS.labels(name),
                                                  QUEUE_RETRIES.labels(name))
        self._waited, self._worked = QUEUE_WAIT_SECONDS.labels(name), QUEUE_WORK_SECONDS.labels(name)
        self._first_retry, self._max_retry = first_retry, max_retry
        # Per group the order its keys came in, and the groups with keys waiting in the order of
        # their turns; the keys again as a set for the "already waiting?" check (a dict would do
        # both, but taking its first key slows down as deleted ones pile up in front).
        self._waiting: dict[Any, deque[Key]] = {}
        self._turns: deque[Any] = deque()
        self._queued: dict[Key, float] = {}  # -> when it was queued (monotonic)
        self._active: set[Key] = set()  # being worked on
        self._again: set[Key] = set()  # triggered while active: once more afterwards
        self._retry: dict[Key, float] = {}  # the last back-off of keys that failed
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._stopped = False  # retries still due afterwards find it so and do nothing

    def add(self, key: Key, start: bool = True) -> None:
        """Queue a key. start=False: from outside kopf's handlers (an informer's watch), where the
        workers must not be started: they inherit the context of the first add that starts them,
        which kopf.event needs; such keys wait for the first add from a kopf handler."""
        if self._stopped:
            return  # kopf was started again, with a queue of its own
        if not self._tasks and start:
            # kopf's startup handlers run without that context too: the first kopf event starts
            # them, even for a key of another replica: a replica whose shards had no tenants yet
            # must still work on those of a shard it takes over later (queued with start=False).
            self._start()
        if not self._admit(key):
            self._retry.pop(key, None)  # (a failed key whose shard moved: its back-off is the new owner's)
            return  # another replica's key
        if key in self._active:
            self._again.add(key)
        elif key not in self._queued:
            self._queued[key] = time.monotonic()
            group = self._group(key)
            if group not in self._waiting:
                self._waiting[group] = deque()
                self._turns.append(group)
            self._waiting[group].append(key)
            self._adds.inc()
            self._depth.set(len(self._queued))
            self._wakeup.set()

    def add_after(self, key: Key, seconds: float) -> None:
        """Queue a key once `seconds` have passed (waiting on another controller, not a failure)."""
        self._schedule(seconds, functools.partial(self.add, key))

    def __len__(self) -> int:
        """Keys waiting or being worked on."""
        return len(self._queued) + len(self._active)

    def _start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self._workers)]

    async def stop(self) -> None:
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def _next(self) -> Key:
        """The first key of the group whose turn it is; the group goes to the back of the turns."""
        group = self._turns.popleft()
        keys = self._waiting[group]
        key = keys.popleft()
        if keys:
            self._turns.append(group)
        else:
            del self._waiting[group]
        return key

    async def _worker(self) -> None:
        while True:
            while not self._turns:
                self._wakeup.clear()
                await self._wakeup.wait()
            key = self._next()
            started = time.monotonic()
            self._waited.observe(started - self._queued.pop(key))
            self._depth.set(len(self._queued))
            self._active.add(key)
            try:
                await self._work(key)
                self._retry.pop(key, None)
            except Exception as error:  # noqa: BLE001  (one tenant's failure never stops the others)
                delay = min(self._max_retry, self._retry.get(key, self._first_retry / 2) * 2)
                self._retry[key] = delay
                self._retries.inc()
                logger.error("%s: reconcile failed, retrying in %.0f s: %s", key, delay, error)
                self._schedule(delay, functools.partial(self.add, key))
            finally:
                self._worked.observe(time.monotonic() - started)
                self._active.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self.add(key)
