"""The periodic passes: every tenant once per resync period; tenants with custom domains or
failing DNS once per DNS check period.

Why not kopf timers: kopf keeps an asyncio task per timer and per Tenant (20,000 sleeping tasks,
with their frames and locks, at 10,000 tenants), each waking on its own. Here one task per period
walks the tenants in memory and queues them in slices, spread over the period, so the passes do
not come as a burst. The first round starts one period after the start: the start itself gives
every tenant a pass (kopf's first listing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import TypeVar

Key = TypeVar("Key", bound=Hashable)
logger = logging.getLogger("tenantry")
TICK_SECONDS = 1.0  # one slice of the tenants is queued this often


async def spread(period: float, keys: Callable[[], Iterable[Key]], queue: Callable[[Key], None],
                 sleep: Callable[[float], object] = asyncio.sleep) -> None:
    """Forever: each period, every key `keys()` gives at the period's start, queued in slices."""
    steps = max(1, round(period / TICK_SECONDS))
    while True:
        due = list(keys())
        for step in range(steps):
            await sleep(period / steps)  # type: ignore[misc]
            for key in due[step::steps]:
                try:
                    queue(key)
                except Exception:  # noqa: BLE001  (one key must not end the periodic passes)
                    logger.exception("queueing %s for its periodic pass failed", key)


async def every(period: float, action: Callable[[], Awaitable[object]], what: str,
                sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
    """Forever: `action` once per period, the first one period after the start."""
    while True:
        await sleep(period)
        try:
            await action()
        except Exception as error:  # noqa: BLE001  (a failed round must not end the next ones)
            logger.warning("%s failed: %s", what, error)
