"""The start-up sweep for what deleted Tenants left (handlers/tenant._sweep), with a FakeKube
standing in for the API server (the sweep against the real one runs in
tests/integration/test_reliability.py and attacks/test_webhook_down.py).

Tested here:
- every owner already in memory: no read at all, nothing marked
- a few owners unknown: one GET each, and a leftover's namespace marked orphaned
- many owners unknown (kopf's listing slow to reach memory): one LIST of Tenants, no GET each;
  a leftover is confirmed by one GET (a Tenant may have come after the LIST), and while Tenants
  are not served (404) the sweep stops, marking nothing and releasing nothing
- kopf's listing stalled for longer than the few seconds a handful of unknown owners wait: with
  many unknown the sweep waits on (SWEEP_PATIENT_CHECKS) and, once the listing went on, reads
  nothing (a `make bench` restart over 10,000 tenants listed every Tenant a second time)
- namespaces already marked orphaned (a cluster's retained leftovers) are neither waited for nor read
- the sweep runs again once per vanished check, so a clean-up that failed is not left until a restart
- a count of Tenants that keeps moving (a partner creating one now and then) delays the sweep by at
  most SWEEP_MAX_CHECKS seconds
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest

from tenantry.adapters.http import ApiFailure
from tenantry.adapters.informer import Informer, Scope
from tenantry.domain import naming
from tenantry.domain.config import OperatorConfig
from tenantry.handlers import tenant as handlers

PARTNER = "partner-p"


class FakeKube:
    """Stands in for adapters.kube.Kube: namespaces and Tenants as given, no Secrets (claims)."""

    def __init__(self, slugs: list[str], existing: set[str]) -> None:
        self.namespaces = [{"metadata": {"name": f"tenant-{s}", "labels": {},
                                         "annotations": {naming.OWNER_ANNOTATION: f"{PARTNER}/{s}"}}}
                           for s in slugs]
        self.existing = existing
        self.lists: list[str] = []
        self.reads: list[str] = []
        self.marked: list[str] = []
        self.api = FakeApi(self)
        self.served = True

    async def list(self, api_version: str, kind: str, namespace: str | None, labels: dict[str, str]) -> list[Any]:
        self.lists.append(kind)
        return self.namespaces if kind == "Namespace" else []

    async def read(self, target: Any, strict: bool = False) -> Any:
        self.reads.append(target.name)
        return {"metadata": {"name": target.name}} if target.name in self.existing else None

    async def patch_labels(self, target: Any, labels: dict[str, str]) -> None:
        self.marked.append(target.name)


class FakeApi:
    """Stands in for adapters.http.Api: the paged LIST of Tenants (one page), 404 while not served."""

    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube

    async def list(self, api_version: str, kind: str, namespace: str | None) -> Any:
        self.kube.lists.append(kind)
        if not self.kube.served:
            raise ApiFailure(404, "NotFound", f"{kind} of {api_version} is not served")
        yield iter([{"metadata": {"namespace": PARTNER, "name": s}} for s in sorted(self.kube.existing)]), "1"


class _Synced:
    async def wait_synced(self) -> None:
        return None


def _memo(kube: FakeKube, in_memory: list[str]) -> kopf.Memo:
    memo = kopf.Memo()
    memo.kube, memo.cache, memo.config = kube, _Synced(), OperatorConfig()
    memo.tenants = Informer(None, Scope("tenantry.dev/v1alpha1", "Tenant"))  # type: ignore[arg-type]
    for slug in in_memory:
        _kopf_lists(memo, slug)
    return memo


def _kopf_lists(memo: kopf.Memo, slug: str) -> None:
    """A Tenant of kopf's listing reaching memory (as tenant_event feeds it)."""
    memo.tenants.observe("ADDED", {"metadata": {"namespace": PARTNER, "name": slug, "resourceVersion": "1"}})


@pytest.fixture(autouse=True)
def _no_settling_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "SWEEP_SETTLED_CHECKS", 0)
    monkeypatch.setattr(handlers, "SWEEP_PATIENT_CHECKS", 0)


def test_every_owner_in_memory_costs_no_read() -> None:
    slugs = [f"t{i}" for i in range(50)]
    kube = FakeKube(slugs, set(slugs))
    asyncio.run(handlers._sweep(_memo(kube, slugs)))
    assert kube.reads == [] and "Tenant" not in kube.lists and kube.marked == []


def test_a_few_unknown_owners_are_read_once_each_and_a_leftover_is_marked() -> None:
    slugs = [f"t{i}" for i in range(10)]
    kube = FakeKube(slugs, set(slugs) - {"t3"})
    asyncio.run(handlers._sweep(_memo(kube, slugs[2:])))
    assert sorted(kube.reads) == ["t0", "t1"] and "Tenant" not in kube.lists
    assert kube.marked == []  # t3 is in memory here: kopf knows it
    kube2 = FakeKube(slugs, set(slugs) - {"t3"})
    asyncio.run(handlers._sweep(_memo(kube2, [s for s in slugs if s != "t3"])))
    assert kube2.reads == ["t3"] and kube2.marked == ["tenant-t3"]


def test_many_unknown_owners_are_answered_by_one_list() -> None:
    slugs = [f"t{i}" for i in range(handlers.SWEEP_READS * 5)]
    kube = FakeKube(slugs, set(slugs) - {"t7"})
    asyncio.run(handlers._sweep(_memo(kube, [])))
    assert kube.reads == ["t7"] and kube.lists.count("Tenant") == 1
    assert kube.marked == ["tenant-t7"]


def test_while_tenants_are_not_served_the_sweep_marks_nothing() -> None:
    slugs = [f"t{i}" for i in range(handlers.SWEEP_READS * 5)]
    kube = FakeKube(slugs, set(slugs))
    kube.served = False
    with pytest.raises(ApiFailure):
        asyncio.run(handlers._sweep(_memo(kube, [])))
    assert kube.marked == []


def test_many_unknown_owners_wait_out_a_stalled_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "SWEEP_SETTLED_CHECKS", 3)
    monkeypatch.setattr(handlers, "SWEEP_PATIENT_CHECKS", 30)
    slugs = [f"t{i}" for i in range(handlers.SWEEP_READS * 5)]
    kube = FakeKube(slugs, set(slugs))
    memo = _memo(kube, slugs[:10])
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        # kopf's listing stands still for 10 checks (past SWEEP_SETTLED_CHECKS), then reaches memory.
        pauses.append(seconds)
        if len(pauses) == 10:
            for slug in slugs[10:]:
                _kopf_lists(memo, slug)

    asyncio.run(handlers._sweep(memo, pause))
    assert len(pauses) == 10, "the sweep should stop waiting as soon as every owner is known"
    assert "Tenant" not in kube.lists and kube.reads == [] and kube.marked == []


def test_a_few_unknown_owners_wait_only_a_few_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "SWEEP_SETTLED_CHECKS", 3)
    monkeypatch.setattr(handlers, "SWEEP_PATIENT_CHECKS", 30)
    slugs = [f"t{i}" for i in range(10)]
    kube = FakeKube(slugs, set(slugs) - {"t3"})
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    asyncio.run(handlers._sweep(_memo(kube, [s for s in slugs if s != "t3"]), pause))
    # The first check sees no count yet; three more unchanged, then the one GET.
    assert len(pauses) == 4 and kube.reads == ["t3"] and kube.marked == ["tenant-t3"]


def test_namespaces_already_marked_orphaned_are_not_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "SWEEP_SETTLED_CHECKS", 3)
    monkeypatch.setattr(handlers, "SWEEP_PATIENT_CHECKS", 30)
    slugs = [f"t{i}" for i in range(handlers.SWEEP_READS * 5)]
    kube = FakeKube(slugs, set())
    for namespace in kube.namespaces:
        namespace["metadata"]["labels"][naming.ORPHANED_LABEL] = "true"
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    asyncio.run(handlers._sweep(_memo(kube, []), pause))
    assert pauses == [] and "Tenant" not in kube.lists and kube.reads == [] and kube.marked == []


def test_a_moving_count_delays_the_sweep_only_so_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "SWEEP_SETTLED_CHECKS", 3)
    monkeypatch.setattr(handlers, "SWEEP_PATIENT_CHECKS", 30)
    slugs = [f"t{i}" for i in range(handlers.SWEEP_READS * 5)]
    kube = FakeKube(slugs, set(slugs) - {"t7"})
    memo = _memo(kube, [])
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        # A Tenant that none of the namespaces names comes every check: the count never settles.
        pauses.append(seconds)
        _kopf_lists(memo, f"other{len(pauses)}")

    asyncio.run(handlers._sweep(memo, pause))
    assert len(pauses) == handlers.SWEEP_MAX_CHECKS
    assert kube.lists.count("Tenant") == 1 and kube.marked == ["tenant-t7"]


def test_the_sweep_runs_again_each_vanished_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean-up that failed (logged and given up) is not left until the operator starts again:
    the sweep is one of the periodic jobs, once per TENANTRY_VANISHED_CHECK_SECONDS."""
    from tenantry.domain.settings import ProcessSettings
    from tenantry.handlers import periodic, runtime

    swept: list[str] = []

    async def every(period: float, action: Any, what: str, **_: Any) -> None:
        if "sweeping" in what:
            swept.append(f"{period}")
            await action()

    async def spread(*args: Any, **kwargs: Any) -> None:
        pass

    async def sweep(memo: Any) -> None:
        swept.append("swept")
    monkeypatch.setattr(periodic, "every", every)
    monkeypatch.setattr(periodic, "spread", spread)
    monkeypatch.setattr(handlers, "sweep_leftovers", sweep)
    memo = kopf.Memo()
    memo.settings, memo.tenants = kopf.Memo(), Informer(None, Scope("tenantry.dev/v1alpha1", "Tenant"))
    memo.settings.process = ProcessSettings(vanished_check_seconds=42.0)

    async def run() -> None:
        await asyncio.gather(*runtime._periodic(memo))  # type: ignore[arg-type]
    asyncio.run(run())
    assert swept == ["42.0", "swept"]
