"""Exactly one active replica: a coordination.k8s.io Lease, claimed and renewed with optimistic writes.

A standby waits until the lease is free or has not been renewed for its whole duration (see
domain/leadership). The holder renews every retry period; if it cannot for the renew deadline
it must stop acting at once (the caller exits the process), before anyone else may take over.
Every write names the resourceVersion it read, so two candidates can never both win.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from tenantry.adapters.kube import AlreadyExists, Conflict, Kube, KubeError
from tenantry.domain import leadership
from tenantry.domain.children import ObjectRef

logger = logging.getLogger("tenantry.leadership")


class LeadershipLost(Exception):
    """The lease could not be renewed in time, or someone else holds it now."""


class LeaderElector:
    def __init__(self, kube: Kube, namespace: str, name: str, identity: str, timing: leadership.Timing) -> None:
        self.kube, self.identity, self.timing = kube, identity, timing
        self.target = ObjectRef("coordination.k8s.io/v1", "Lease", name, namespace)
        self._observed: leadership.Observation | None = None
        self._renewed_at = float("-inf")  # monotonic time of our last successful write

    def leading(self) -> bool:
        """Whether our last renewal is recent enough to still act (checked before each reconcile)."""
        return time.monotonic() - self._renewed_at < self.timing.renew_deadline

    async def acquire(self) -> None:
        """Return once this replica holds the lease."""
        logger.info("waiting for the leader lease %s/%s as %s", self.target.namespace, self.target.name,
                    self.identity)
        while True:
            try:
                if await self._try():
                    break
            except Exception as error:  # noqa: BLE001  (the API server away: keep waiting)
                logger.warning("reading the leader lease failed: %s", error)
            await asyncio.sleep(self.timing.retry_period)
        logger.info("acquired the leader lease %s/%s as %s", self.target.namespace, self.target.name, self.identity)

    async def hold(self) -> None:
        """Renew until the lease is lost; then raise LeadershipLost (never returns normally).

        Each attempt may take only the time left before the renew deadline, so a holder that
        cannot renew gives up at the deadline, before the lease can expire for anyone else.
        """
        while True:
            await asyncio.sleep(self.timing.retry_period)
            remaining = self._renewed_at + self.timing.renew_deadline - time.monotonic()
            if remaining <= 0:
                raise LeadershipLost(f"not renewed for {self.timing.renew_deadline}s")
            try:
                # asyncio.timeout, not wait_for: no extra task, which kopf would count as its own
                # and wait for when it stops.
                async with asyncio.timeout(remaining):
                    renewed = await self._try()
            except Exception as error:  # noqa: BLE001  (API server away, timeouts: the deadline decides)
                logger.warning("renewing the leader lease failed: %s", error)
                renewed = False
            if not self.leading():
                raise LeadershipLost(f"not renewed for {self.timing.renew_deadline}s")
            if not renewed and self._observed is not None and self._observed.holder not in ("", self.identity):
                raise LeadershipLost(f"the lease is held by {self._observed.holder} now")

    async def release(self) -> None:
        """On a clean shutdown: hand the lease over at once instead of after it expires."""
        live = await self.kube.get(self.target)
        if live is not None and (live.get("spec") or {}).get("holderIdentity") == self.identity:
            try:
                await self.kube.patch_if_unchanged(self.target, {"spec": leadership.released(live["spec"])},
                                                   live["metadata"]["resourceVersion"])
            except KubeError as error:
                logger.warning("releasing the leader lease failed (it will expire): %s", error)

    async def _try(self) -> bool:
        """One attempt to create, take over or renew the lease."""
        started = time.monotonic()
        live = await self.kube.get(self.target)
        if live is None:
            return await self._create(started)
        spec: Mapping[str, Any] = live.get("spec") or {}
        self._observed = leadership.observe(self._observed, spec, started)
        if not leadership.may_take(self._observed, self.identity, self.timing.lease_duration, started):
            return False
        new_spec = leadership.lease_spec(spec, self.identity, self.timing.lease_duration, _now())
        try:
            await self.kube.patch_if_unchanged(self.target, {"spec": new_spec}, live["metadata"]["resourceVersion"])
        except Conflict:
            return False  # someone else wrote first: look again next time
        # Measured from before the read: the others' clocks started no earlier than that.
        self._renewed_at = started
        return True

    async def _create(self, started: float) -> bool:
        manifest = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.target.name, "namespace": self.target.namespace},
                    "spec": leadership.lease_spec({}, self.identity, self.timing.lease_duration, _now())}
        try:
            await self.kube.create(manifest)
        except AlreadyExists:
            return False
        self._renewed_at = started
        return True


def stop_acting(reason: str) -> None:
    """Exit at once: unfinished reconciles must not write after another replica may have taken over."""
    logger.critical("lost the leader lease (%s): exiting so that only one replica acts", reason)
    logging.shutdown()
    os._exit(75)


def ensure_leading(memo: Any) -> None:
    """Before a tenant is touched: still the leader? (memo.leading is set by the entry point.)"""
    leading = getattr(memo, "leading", None)
    if leading is not None and not leading():
        stop_acting("a reconcile started after the last renewal was too long ago")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
