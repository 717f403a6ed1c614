"""A pass meets an API server that cannot take a request now (a concurrency review, 3 Dec).

Tested here, through the real pass (handlers/reconcile) and the real work queue, against a stand-in
API: a 429 or 503 on demand cannot be made with the local API server (an etcd leader change, a
rollout, priority and fairness), so this stand-in answers reads from a dict and refuses one write:
- a 429 or a 5xx on a child's write ends the pass with an error, so the work queue runs it again
  with back-off; the status is not written, so it does not say NamespaceReady=False for a moment's
  trouble (the old pass told the tenant "ServiceUnavailable", cleared its back-off and waited for
  the resync, 300 s)
- a refusal (403, quota exceeded) is still a verdict in the status, and the pass ends normally
- once a 5xx has lasted a few passes (handlers/tenant tells the pass so), it is told in the status
  as a refusal is, the namespace held and billed (a tenant admin's object grown too large to update
  would otherwise hide the tenant's state for ever)
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tenantry.adapters.dns import Resolver
from tenantry.adapters.dnsproviders import NoDns
from tenantry.adapters.http import ApiFailure
from tenantry.adapters.kube import Kube
from tenantry.domain import naming
from tenantry.domain.config import OperatorConfig
from tenantry.handlers import dnsflow
from tenantry.handlers import reconcile as passes
from tenantry.handlers.workqueue import WorkQueue

SPEC = {"company": "Acme GmbH", "contact": {"name": "Ada", "email": "ada@acme.example"},
        "plan": {"featureSet": "business", "seats": 10, "price": {"monthly": 900, "currency": "EUR"}},
        "admins": ["ada@acme.example"]}
BODY = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": "acme", "namespace": "partner-p", "creationTimestamp": "2026-01-01T00:00:00Z",
                     "generation": 1, "uid": "u-1", "finalizers": [naming.FINALIZER]},
        "spec": SPEC, "status": {}}


class StandInApi:
    """The partner namespace exists and nothing else; the first NetworkPolicy create is refused."""

    def __init__(self, code: int, reason: str) -> None:
        self.calls: list[tuple[str, str]] = []
        self.writes: list[tuple[str, str, Any]] = []
        self.code, self.reason = code, reason

    async def request(self, method: str, path: str, body: Any = None, params: Any = None,
                      content_type: Any = None) -> Any:
        self.calls.append((method, path))
        if body is not None:
            self.writes.append((method, path, body))
        if method == "GET":
            if path == "/api/v1/namespaces/partner-p":
                return {"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "partner-p", "labels": {naming.PARTNER_LABEL: "p"}}}
            return None
        if method == "POST" and "networkpolicies" in path:
            raise ApiFailure(self.code, self.reason, "refused by the stand-in")
        if body is None:
            return {}
        return {**body, "metadata": {**body.get("metadata", {}), "resourceVersion": "1", "uid": "x"}}


async def _one_pass(api: StandInApi, tell_unavailable: bool = False) -> tuple[list[passes.Outcome], list[float]]:
    services = passes.Services(Kube(api), dnsflow.DnsServices(NoDns(), Resolver()))
    plan = {"features": {}, "resources": {}}
    catalogue = passes.Lookups(lambda ns, name: plan if name == "business" else None, lambda ns, name: None)
    outcomes: list[passes.Outcome] = []
    retries: list[float] = []

    async def work(key: tuple[str, str]) -> None:
        outcomes.append(await passes.reconcile(services, OperatorConfig(), catalogue, BODY,
                                               tell_unavailable=tell_unavailable))

    queue = WorkQueue(work, 1, schedule=lambda delay, callback: retries.append(delay))
    queue.add(("partner-p", "acme"))
    for _ in range(200):  # until the pass has ended one way or the other
        if outcomes or retries:
            break
        await asyncio.sleep(0.01)
    await queue.stop()
    return outcomes, retries


@pytest.mark.parametrize(("code", "reason"), [(429, "TooManyRequests"), (500, "InternalError"),
                                              (503, "ServiceUnavailable"), (504, "Timeout")])
def test_a_moments_trouble_is_retried_with_back_off_and_the_status_is_left_alone(code: int, reason: str) -> None:
    api = StandInApi(code, reason)
    outcomes, retries = asyncio.run(_one_pass(api))
    assert outcomes == [] and retries == [5.0]
    assert not any(method == "PATCH" and path.endswith("/status") for method, path in api.calls)


def test_a_refusal_is_a_verdict_in_the_status() -> None:
    api = StandInApi(403, "Forbidden")
    outcomes, retries = asyncio.run(_one_pass(api))
    assert retries == [] and len(outcomes) == 1
    assert (outcomes[0].ready.status, outcomes[0].ready.reason) == ("False", "Forbidden")
    assert any(method == "PATCH" and path.endswith("/status") for method, path in api.calls)


def test_a_lasting_5xx_is_told_in_the_status_and_the_namespace_kept() -> None:
    api = StandInApi(500, "InternalError")
    outcomes, retries = asyncio.run(_one_pass(api, tell_unavailable=True))
    assert retries == [] and len(outcomes) == 1
    assert (outcomes[0].ready.status, outcomes[0].ready.reason) == ("False", "InternalError")
    patch = next(body for method, path, body in api.writes if method == "PATCH" and path.endswith("/status"))
    assert patch["status"]["namespace"] == "tenant-acme"


def test_the_handler_tells_the_pass_after_a_few_in_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    from tenantry.adapters.kube import Unavailable
    from tenantry.handlers import tenant
    from tests.unit.test_not_yet import _memo

    told: list[bool] = []

    async def unavailable(*args: Any, tell_unavailable: bool = False) -> None:
        told.append(tell_unavailable)
        raise Unavailable("ServiceUnavailable", "creating NetworkPolicy: 503 etcdserver: leader changed")
    monkeypatch.setattr(passes, "reconcile", unavailable)
    memo = _memo()

    async def passes_in_a_row(count: int) -> None:
        for _ in range(count):
            tenant._reconciled.pop(("partner-p", "acme"), None)
            with pytest.raises(Unavailable):
                await tenant._reconcile_held(("partner-p", "acme"), memo)
    asyncio.run(passes_in_a_row(tenant.UNAVAILABLE_TOLD_AFTER + 2))
    tenant._streaks.clear()
    assert told == [False] * tenant.UNAVAILABLE_TOLD_AFTER + [True, True]
