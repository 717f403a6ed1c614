"""A Tenant deleted and created again under its name, its events handled the other way round (a
concurrency review, 3 Dec).

kopf works each uid on a worker of its own, so the new Tenant's ADDED may be handled before the old
one's DELETED (`kubectl replace --force`, a GitOps tool's force-apply, with the old worker busy
waiting for another replica's clean-up). Stand-ins here for the API server and the metrics (only
the handler's own bookkeeping is under test: the informer, the partner's cap index, the queue).

Tested here:
- the old Tenant's DELETED leaves the new one in memory and in its partner's cap index (before,
  both went, and no pass nor resync ever served the new Tenant until its next event)
- the new Tenant's own DELETED still forgets it, and what was remembered of its domains' checks
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from tenantry.adapters.informer import Informer, Scope
from tenantry.domain import naming
from tenantry.domain.config import OperatorConfig
from tenantry.domain.contest import Contest
from tenantry.handlers import reconcile as passes
from tenantry.handlers import tenant as handlers
from tenantry.handlers.catalogue import Catalogue
from tenantry.handlers.dnsflow import DnsServices

KEY = ("partner-p", "acme")


def _tenant(uid: str, version: str, deleting: bool = False) -> dict[str, Any]:
    meta = {"namespace": KEY[0], "name": KEY[1], "uid": uid, "resourceVersion": version, "generation": 1,
            "finalizers": [naming.FINALIZER], **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {})}
    return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant", "metadata": meta,
            "spec": {"company": "Acme", "plan": {"featureSet": "business"}}}


NEW = _tenant("uid-2", "101")


class StandInKube:
    """The API server holds the new Tenant (so the old one's clean-up finds its name taken)."""

    async def get(self, target: Any) -> dict[str, Any]:
        return NEW


class Queue:
    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []

    def add(self, key: tuple[str, str], start: bool = True) -> None:
        self.keys.append(key)


class Exposition:
    def __init__(self) -> None:
        self.removed: list[tuple[str, str]] = []

    def remove(self, key: tuple[str, str]) -> None:
        self.removed.append(key)


def _memo() -> kopf.Memo:
    memo = kopf.Memo()
    memo.tenants = Informer(None, Scope("tenantry.dev/v1alpha1", "Tenant"))  # type: ignore[arg-type]
    memo.catalogue = Catalogue(namespace_prefix="tenant-")
    memo.config, memo.kube, memo.queue, memo.exposition = OperatorConfig(), StandInKube(), Queue(), Exposition()
    memo.services = passes.Services(StandInKube(), DnsServices(None, None), Contest())  # type: ignore[arg-type]
    memo.services.dns.checked((KEY, "ki.acme.example"), verified=True)
    return memo


def _events(memo: kopf.Memo, *events: tuple[str, dict[str, Any]]) -> None:
    async def run() -> None:
        for kind, body in events:
            await handlers.tenant_event(event={"type": kind, "object": body}, namespace=KEY[0], name=KEY[1],
                                        spec=body["spec"], memo=memo)
    asyncio.run(run())


def test_the_old_tenants_deletion_leaves_the_new_one_served() -> None:
    memo = _memo()
    _events(memo, ("ADDED", NEW), ("DELETED", _tenant("uid-1", "100", deleting=True)))
    assert memo.tenants.get(*KEY)["metadata"]["uid"] == "uid-2"
    assert list(memo.catalogue.partner_tenants(KEY[0])) == [KEY[1]]
    assert memo.queue.keys == [KEY] and memo.exposition.removed == []
    assert KEY in memo.services.dns.next_check  # the new Tenant's, kept


def test_the_new_tenants_own_deletion_forgets_it() -> None:
    memo = _memo()
    _events(memo, ("ADDED", NEW), ("DELETED", _tenant("uid-2", "102", deleting=True)))
    assert memo.tenants.get(*KEY) is None and list(memo.catalogue.partner_tenants(KEY[0])) == []
    assert memo.exposition.removed == [KEY]
    assert KEY not in memo.services.dns.next_check  # its domains' checks go with it
