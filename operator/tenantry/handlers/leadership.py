"""Who may act: one leader (LeaderElector), or one owner per shard (ShardElector), on Leases.

Both claim and renew coordination.k8s.io Leases with optimistic writes: every write names the
resourceVersion it read, so two candidates can never both win. A candidate takes a lease only
when it is free or has not been renewed for its whole duration by the candidate's own clock (see
domain/leadership). The holder renews every retry period; if it cannot for the renew deadline
(shorter than the duration) it stops acting at once, before anyone else may take over.

With one shard (TENANTRY_SHARDS=1, the default) there is one leader: the others wait, and a
leader that loses its lease exits (LeaderElector). With N > 1 shards every replica runs and
works on the partners of the shards it holds (ShardElector):

- Partners map onto shards by a consistent hash of their namespace (domain/shards.Ring).
- Shard i is the Lease `<lease name>-shard-<i>`. Before each reconcile and before each write
  (Kube's before_write hook) a replica checks that it still holds the shard of the work at hand
  (`acting`, a context variable carries the shard into the writes); a lost shard raises
  ShardLost, which ends that work, never the process: the replica's other shards carry on.
- Balance: each replica aims at ceil(N / live replicas) shards, taking free or expired ones and
  releasing extras cleanly (stop, let running work finish, then write the lease free, so the
  new owner need not wait for it to expire: a rollout moves shards within a retry period).
  Live replicas are counted from one membership Lease per replica (`<lease name>-member-<hash>`),
  not from the shards' holders: a new replica holds no shard yet, and counted only by holders it
  would never be seen, so nobody would release anything to it. A membership lease not renewed for
  its duration is a dead replica's: the others stop counting it and delete it.
- Cluster-wide jobs (the sweep of what deleted tenants left) run at the owner of shard 0
  (domain/shards.CLUSTER_WIDE). Each replica serves the metrics of the tenants of its shards, so
  Prometheus scrapes every replica (all partners' totals are complete: a partner is one shard).
  The admission webhook is stateless and answers on every replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from tenantry.adapters.kube import AlreadyExists, Conflict, Kube, KubeError
from tenantry.domain import leadership
from tenantry.domain.children import ObjectRef
from tenantry.domain.shards import CLUSTER_WIDE, Ring, fair_share, moves

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
    """Before a tenant is touched and before each write: still the leader (memo.leading), or still
    the owner of the shard of the work at hand (memo.shards)? Both are set by the entry point."""
    leading = getattr(memo, "leading", None)
    if leading is not None and not leading():
        stop_acting("a reconcile started after the last renewal was too long ago")
    shards = getattr(memo, "shards", None)
    if shards is not None:
        shards.ensure_acting()


def owns(memo: Any, partner_namespace: str | None) -> bool:
    """Whether this replica works on this partner's tenants (None: the cluster-wide jobs); always
    without shards (the leader election decides whether this process runs at all)."""
    shards = getattr(memo, "shards", None)
    return shards is None or shards.holds(shards.shard_of(partner_namespace))


def acting(memo: Any, tenant: tuple[str, str] | None) -> contextlib.AbstractContextManager[None]:
    """Around all work (and writes) for a tenant (namespace, name), or a cluster-wide job (None)."""
    shards = getattr(memo, "shards", None)
    if shards is None:
        return contextlib.nullcontext()
    if tenant is None:
        return shards.acting(CLUSTER_WIDE, "the cluster-wide jobs")
    return shards.acting(shards.shard_of(tenant[0]), f"tenant {tenant[0]}/{tenant[1]}")


class ShardLost(Exception):
    """This replica does not hold (or no longer holds) the shard of the work at hand."""


LEASE_API = "coordination.k8s.io/v1"
LEASE_GROUP_LABEL = "tenantry.dev/lease-group"
LEASE_ROLE_LABEL = "tenantry.dev/lease-role"
SHARDS_ANNOTATION = "tenantry.dev/shards"  # on a member lease: that replica's number of shards


def _layout(lease: Mapping[str, Any]) -> str | None:
    """The number of shards a member lease's replica works with (None: a replica from before it was
    written, taken for another layout: it may count differently)."""
    return (lease["metadata"].get("annotations") or {}).get(SHARDS_ANNOTATION)
# The shard whose work this task is doing: set by ShardElector.acting, read before each write.
_ACTING: ContextVar[int | None] = ContextVar("tenantry_acting_shard", default=None)


class ShardElector:
    """The shards this replica holds: claimed, renewed and released on Leases (see the module)."""

    def __init__(self, kube: Kube, namespace: str, group: str, identity: str, timing: leadership.Timing,
                 shards: int, on_change: Callable[[int, bool], None] = lambda shard, held: None) -> None:
        self.kube, self.namespace, self.group, self.identity, self.timing = kube, namespace, group, identity, timing
        self.ring = Ring(shards)
        self.on_change = on_change
        self.member = ObjectRef(LEASE_API, "Lease",
                                f"{group}-member-{hashlib.sha256(identity.encode()).hexdigest()[:12]}", namespace)
        self._renewed_at = [float("-inf")] * shards  # monotonic time of our last write of each shard
        self._active = [0] * shards  # work under way per shard (see acting)
        self._seen: dict[str, leadership.Observation] = {}
        self._notified: set[int] = set()
        self._share = shards  # the fair share in the last round (for the log)
        self._waiting_for: list[str] = []  # replicas of another number of shards, last round (for the log)

    @property
    def shards(self) -> int:
        return self.ring.shards

    def shard_name(self, shard: int) -> str:
        return f"{self.group}-shard-{shard}"

    def shard_of(self, partner_namespace: str | None) -> int:
        return CLUSTER_WIDE if partner_namespace is None else self.ring.shard_of(partner_namespace)

    def holds(self, shard: int) -> bool:
        """Renewed recently enough to act on (no one else may take it before the lease duration)."""
        return time.monotonic() - self._renewed_at[shard] < self.timing.renew_deadline

    def held(self) -> list[int]:
        return [shard for shard in range(self.shards) if self.holds(shard)]

    @contextlib.contextmanager
    def acting(self, shard: int, subject: str) -> Iterator[None]:
        """Work on a shard: refused unless held; its writes are checked against it (ensure_acting),
        and a release waits until it is over. The debug lines bracket every write of the work."""
        if not self.holds(shard):
            raise ShardLost(f"shard {shard} is not held by {self.identity}")
        token = _ACTING.set(shard)
        self._active[shard] += 1
        logger.debug("shard %d: acting on %s", shard, subject)
        try:
            yield
        finally:
            self._active[shard] -= 1
            _ACTING.reset(token)
            logger.debug("shard %d: done with %s", shard, subject)

    def ensure_acting(self) -> None:
        """Kube's before_write: a write outside any shard's work, or for a shard lost meanwhile, is refused."""
        shard = _ACTING.get()
        if shard is None:
            raise ShardLost("a write outside the work of any shard")
        if not self.holds(shard):
            raise ShardLost(f"shard {shard} was lost by {self.identity}")

    async def run(self) -> None:
        """Renew, take and give up shards every retry period, until cancelled."""
        logger.info("working on shards of %d as %s", self.shards, self.identity)
        while True:
            try:
                await self._round()
            except Exception as error:  # noqa: BLE001  (the API server away: the deadlines decide)
                logger.warning("a round of the shard leases failed: %s", error)
            self._notify()
            await asyncio.sleep(self.timing.retry_period)

    async def release_all(self) -> None:
        """On a clean shutdown: stop, let running work end, hand every shard over at once."""
        for shard in range(self.shards):
            self._renewed_at[shard] = float("-inf")
        self._notify()
        for shard in range(self.shards):
            live = await self.kube.get(self._shard_ref(shard))
            if live is not None and (live.get("spec") or {}).get("holderIdentity") == self.identity:
                await self._release(shard, live)
        with contextlib.suppress(KubeError):
            await self.kube.delete(self.member)

    def _shard_ref(self, shard: int) -> ObjectRef:
        return ObjectRef(LEASE_API, "Lease", self.shard_name(shard), self.namespace)

    async def _round(self) -> None:
        started = time.monotonic()
        listed = await self.kube.list(LEASE_API, "Lease", self.namespace, {LEASE_GROUP_LABEL: self.group})
        leases = {lease["metadata"]["name"]: lease for lease in listed}
        self._seen = {name: leadership.observe(self._seen.get(name), lease.get("spec") or {}, started)
                      for name, lease in leases.items()}
        live = {name: lease for name, lease in leases.items()
                if lease["metadata"].get("labels", {}).get(LEASE_ROLE_LABEL) == "member"
                and not leadership.expired(self._seen[name], self.timing.lease_duration, started)}
        layout = str(self.shards)
        members = {self._seen[name].holder for name, lease in live.items() if _layout(lease) == layout}
        # Replicas with another number of shards (a rollout that changes it): shard i is another
        # set of partners to them. Until the last of them is gone this replica takes no shard, and
        # neither side counts the other in its fair share (nor gives shards up for it).
        others = sorted(self._seen[name].holder for name, lease in live.items() if _layout(lease) != layout)
        if others and others != self._waiting_for:
            logger.info("taking no shard while replicas with another number of shards run: %s", ", ".join(others))
        self._waiting_for = others
        observed = [self._seen.get(self.shard_name(shard)) for shard in range(self.shards)]
        mine = [shard for shard, seen in enumerate(observed) if seen is not None and seen.holder == self.identity]
        for shard in set(range(self.shards)) - set(mine):
            self._renewed_at[shard] = float("-inf")  # someone else's now (ours expired in their eyes)
        takeable = [] if others else [
            shard for shard, seen in enumerate(observed)
            if seen is None or leadership.may_take(seen, self.identity, self.timing.lease_duration, started)]
        plan = moves(self.shards, len(members | {self.identity}), mine, takeable)
        claims = [shard for shard in [*mine, *plan.take] if shard not in plan.release]
        # One wave of writes: a slow round (a busy event loop) must not eat into the renew deadline twice.
        _, *renewed = await asyncio.gather(
            self._claim(self.member, leases.get(self.member.name), "member"),
            *(self._claim(self._shard_ref(shard), leases.get(self.shard_name(shard)), "shard") for shard in claims))
        for shard, ok in zip(claims, renewed, strict=True):
            if ok:
                self._renewed_at[shard] = started
        self._share = fair_share(self.shards, len(members | {self.identity}))
        for shard in plan.release:
            await self._release(shard, leases[self.shard_name(shard)])
        await self._forget_dead_members(leases, started)

    async def _claim(self, target: ObjectRef, live: Mapping[str, Any] | None, role: str) -> bool:
        """Create, take over or renew one lease for us; False if someone else wrote first. A member
        lease names this replica's number of shards (see _round)."""
        spec = leadership.lease_spec((live or {}).get("spec") or {}, self.identity, self.timing.lease_duration, _now())
        layout = {SHARDS_ANNOTATION: str(self.shards)} if role == "member" else {}
        try:
            if live is None:
                await self.kube.create({"apiVersion": LEASE_API, "kind": "Lease", "spec": spec, "metadata": {
                    "name": target.name, "namespace": target.namespace, "annotations": layout,
                    "labels": {LEASE_GROUP_LABEL: self.group, LEASE_ROLE_LABEL: role}}})
            else:
                change = {"spec": spec, **({"metadata": {"annotations": layout}} if layout and _layout(live) !=
                                           layout[SHARDS_ANNOTATION] else {})}
                await self.kube.patch_if_unchanged(target, change, live["metadata"]["resourceVersion"])
        except (AlreadyExists, Conflict):
            return False
        except KubeError as error:
            logger.warning("claiming the lease %s failed: %s", target.name, error)
            return False
        return True

    async def _release(self, shard: int, live: Mapping[str, Any]) -> None:
        """Stop acting on the shard, wait (a retry period at most) for its running work to end, then
        write the lease free. Work still running then: the lease is left to expire instead."""
        self._renewed_at[shard] = float("-inf")
        self._notify()
        waited = 0.0
        while self._active[shard] and waited < self.timing.retry_period:
            await asyncio.sleep(0.05)
            waited += 0.05
        if self._active[shard]:
            logger.warning("shard %d: work still running, leaving its lease to expire", shard)
            return
        try:
            await self.kube.patch_if_unchanged(self._shard_ref(shard), {"spec": leadership.released(live["spec"])},
                                               live["metadata"]["resourceVersion"])
        except KubeError as error:
            logger.warning("shard %d: releasing its lease failed (it will expire): %s", shard, error)
            return
        logger.info("shard %d: released by %s (fair share now %d)", shard, self.identity, self._share)

    async def _forget_dead_members(self, leases: Mapping[str, Any], started: float) -> None:
        for name, lease in leases.items():
            seen = self._seen[name]
            if lease["metadata"].get("labels", {}).get(LEASE_ROLE_LABEL) == "member" and \
                    seen.holder != self.identity and leadership.expired(seen, self.timing.lease_duration, started):
                logger.info("replica %s stopped renewing its membership: forgetting it", seen.holder)
                with contextlib.suppress(KubeError):
                    await self.kube.delete(ObjectRef(LEASE_API, "Lease", name, self.namespace))

    def _notify(self) -> None:
        """Tell the handlers which shards came and went since the last time."""
        now = set(self.held())
        for shard, held in [*((s, False) for s in sorted(self._notified - now)),
                            *((s, True) for s in sorted(now - self._notified))]:
            logger.info("shard %d: %s %s (fair share %d of %d)", shard,
                        "held by" if held else "no longer held by", self.identity, self._share, self.shards)
            try:
                self.on_change(shard, held)
            except Exception:  # noqa: BLE001  (a handler's bug must not stop the renewals)
                logger.exception("shard %d: reacting to its change failed", shard)
        self._notified = now


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
