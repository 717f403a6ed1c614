"""A pass that cannot go on yet (NotYet: the quota controller has not put pods: 0 in the quota's
status) gives its worker back and runs again later, each time twice as late, up to a cap (a
concurrency review, 3 Dec: each such pass held a worker for 30 s and ran again 0.5 s later, so a
few suspended tenants with kube-controller-manager away kept every worker from other partners).
Conflicts in a row likewise: a few passes at once, then a growing wait (another controller moving
an object all the time made the two spin).

Stand-ins for the queue and the pass (the handler's own bookkeeping is under test; the wait for the
quota against the real API server is in tests/integration/test_provisioning.py's offboarding).
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest

from tenantry.adapters.informer import Informer, Scope
from tenantry.domain import naming
from tenantry.domain.status import Verdict
from tenantry.handlers import offboard
from tenantry.handlers import reconcile as passes
from tenantry.handlers import tenant as handlers
from tenantry.handlers.catalogue import Catalogue
from tenantry.handlers.writer import NotYet

KEY = ("partner-p", "acme")
BODY = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"namespace": KEY[0], "name": KEY[1], "uid": "u", "resourceVersion": "1", "generation": 1,
                     "finalizers": [naming.FINALIZER]},
        "spec": {"company": "Acme", "plan": {"featureSet": "business"}}}


class Synced:
    async def wait_synced(self) -> None:
        pass


class Queue:
    def __init__(self) -> None:
        self.later: list[float] = []

    def add_after(self, key: Any, delay: float) -> None:
        self.later.append(delay)


def _memo() -> kopf.Memo:
    memo = kopf.Memo()
    memo.tenants = Informer(None, Scope("tenantry.dev/v1alpha1", "Tenant"))  # type: ignore[arg-type]
    memo.tenants.put(BODY)
    memo.catalogue = Catalogue(namespace_prefix="tenant-")
    memo.queue, memo.services, memo.config, memo.cache, memo.mailer = Queue(), None, None, Synced(), None
    return memo


def _passes_in_a_row(memo: kopf.Memo, count: int) -> None:
    async def run() -> None:
        for _ in range(count):
            handlers._reconciled.pop(KEY, None)
            await handlers._reconcile_held(KEY, memo)
    asyncio.run(run())


def test_the_wait_grows_to_a_cap_and_a_pass_that_goes_on_resets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    memo = _memo()

    async def not_yet(*args: Any, **kwargs: Any) -> None:
        raise NotYet("the quota of tenant-acme does not refuse new pods yet")
    monkeypatch.setattr(passes, "reconcile", not_yet)
    _passes_in_a_row(memo, 9)
    assert memo.queue.later == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]

    async def goes_on(*args: Any, **kwargs: Any) -> passes.Outcome:
        return passes.Outcome(Verdict("Ready", "True", "Provisioned", "served"), ("True", "Provisioned"), 0)
    monkeypatch.setattr(passes, "reconcile", goes_on)
    _passes_in_a_row(memo, 1)
    monkeypatch.setattr(passes, "reconcile", not_yet)
    _passes_in_a_row(memo, 1)
    assert memo.queue.later[-1] == 0.5  # after a pass that went on, the wait starts short again
    handlers._streaks.pop(KEY, None)


def test_a_pass_waits_for_the_quota_a_moment_only() -> None:
    assert offboard.PASS_QUOTA_WAIT_SECONDS <= 2.0 < offboard.QUOTA_EFFECT_SECONDS


def test_conflicts_in_a_row_run_again_at_once_a_few_times_then_after_a_growing_wait(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another controller moving an object all the time made the pass and it spin (a concurrency
    review, 3 Dec): every Conflict queued the tenant again at once."""
    from tenantry.adapters.kube import Conflict
    memo = _memo()
    at_once: list[Any] = []
    memo.queue.add = lambda key, start=True: at_once.append(key)  # type: ignore[method-assign]

    async def conflict(*args: Any, **kwargs: Any) -> None:
        raise Conflict("ConfigMap tenantry-flags changed since it was read")
    monkeypatch.setattr(passes, "reconcile", conflict)
    _passes_in_a_row(memo, handlers.CONFLICTS_AT_ONCE + 3)
    handlers._streaks.pop(KEY, None)
    assert len(at_once) == handlers.CONFLICTS_AT_ONCE and memo.queue.later == [0.5, 1.0, 2.0]
