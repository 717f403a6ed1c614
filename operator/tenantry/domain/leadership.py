"""Leader election on a coordination.k8s.io Lease: when a candidate may take over (pure).

As in client-go, a lease counts as expired only when this candidate has seen the same record
(holder and renew time) unchanged for longer than the lease duration by its own monotonic
clock, so clock skew between machines cannot make two replicas active at once.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Seconds. The holder gives up (exits) when it could not renew for `renew_deadline`, which is
    shorter than `lease_duration`, so it has stopped before anyone else may take over."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(f"leader election needs 0 < retry ({self.retry_period}) < renew deadline "
                             f"({self.renew_deadline}) < lease duration ({self.lease_duration})")


@dataclass(frozen=True)
class Observation:
    """The lease record as last seen, and when (monotonic seconds) it was first seen like that."""

    holder: str
    renewed: str
    since: float


def observe(previous: Observation | None, spec: Mapping[str, Any], now: float) -> Observation:
    holder, renewed = str(spec.get("holderIdentity") or ""), str(spec.get("renewTime") or "")
    if previous is not None and (previous.holder, previous.renewed) == (holder, renewed):
        return previous
    return Observation(holder, renewed, now)


def expired(observation: Observation, lease_duration: float, now: float) -> bool:
    """Unchanged for longer than the lease lasts, by this candidate's own clock."""
    return now - observation.since > lease_duration


def may_take(observation: Observation, me: str, lease_duration: float, now: float) -> bool:
    """Free (no holder), ours already, or unchanged for longer than the lease lasts."""
    return observation.holder in ("", me) or expired(observation, lease_duration, now)


def micro_time(moment: datetime.datetime) -> str:
    """The Lease's MicroTime format."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_spec(previous: Mapping[str, Any], me: str, lease_duration: float, now: datetime.datetime) -> dict[str, Any]:
    """The spec that claims or renews the lease for `me`."""
    taking_over = previous.get("holderIdentity") != me
    return {
        "holderIdentity": me,
        "leaseDurationSeconds": max(1, round(lease_duration)),
        "acquireTime": micro_time(now) if taking_over else previous.get("acquireTime") or micro_time(now),
        "renewTime": micro_time(now),
        "leaseTransitions": int(previous.get("leaseTransitions") or 0) + (1 if taking_over and previous else 0),
    }


def released(previous: Mapping[str, Any]) -> dict[str, Any]:
    """What a holder writes on a clean shutdown, so a standby takes over at once."""
    return {**previous, "holderIdentity": None, "leaseDurationSeconds": 1}
