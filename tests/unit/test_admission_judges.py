"""handlers/admission.Judges without an API server (its address answers nothing): what a review
costs and decides before any request.

Tested here (the same judges behind the real API server: tests/integration/test_admission.py):
- before the operator has started, a review is NotReady (a 503: the failure policy decides)
- a review posted straight to the webhook (no schema in front) with 10,000 domains is refused by
  the model's own limit before a single domain is looked up
- an API server that cannot be reached does not refuse a valid Tenant: it is admitted with a
  warning that the operator checks slug and domains when it reconciles
- the mutating webhook of a Tenant's create only adds the operator's finalizer (judging nothing,
  even before the operator has started); the validating judge admits a create carrying exactly
  that finalizer, and never patches
"""

from __future__ import annotations

import asyncio
import types
from pathlib import Path

import kopf
import pytest

from tenantry.domain.config import OperatorConfig
from tenantry.handlers.admission import Judges
from tenantry.handlers.catalogue import Catalogue
from tenantry.handlers.webhook import Denied, NotReady, Review

PARTNER = {"username": "system:serviceaccount:partner-acme:acme", "groups": ["system:serviceaccounts"]}


@pytest.fixture
def memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> kopf.Memo:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("""apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
""")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    memo = kopf.Memo()
    memo.config, memo.catalogue = OperatorConfig(), Catalogue()
    memo.kube = types.SimpleNamespace(cache=None)
    return memo


def _tenant(domains: list[str]) -> dict:
    return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": "acme", "namespace": "partner-acme"},
            "spec": {"company": "Acme GmbH", "contact": {"name": "Max", "email": "max@acme.de"},
                     "plan": {"featureSet": "business", "seats": 5}, "domains": domains}}


def _judge(memo: kopf.Memo, body: dict, path: str = "validate-tenant") -> Review:
    async def run() -> Review:
        review = Review("CREATE", body, None, PARTNER)
        await Judges(memo).by_path()[path](review)
        return review
    return asyncio.run(run())


def test_not_started_is_not_ready(memo: kopf.Memo) -> None:
    with pytest.raises(NotReady):
        _judge(memo, _tenant([]))


def test_ten_thousand_domains_are_refused_before_any_lookup(memo: kopf.Memo) -> None:
    memo.started = asyncio.Event()
    memo.started.set()
    with pytest.raises(Denied) as refused:
        _judge(memo, _tenant([f"d{i}.acme.de" for i in range(10_000)]))
    assert "spec.domains" in refused.value.message and "not checked now" not in refused.value.message


def test_an_unreachable_api_server_admits_with_a_warning(memo: kopf.Memo) -> None:
    memo.started = asyncio.Event()
    memo.started.set()
    review = _judge(memo, _tenant(["shop.acme.de"]))
    assert any("slug and domains not checked now" in w for w in review.warnings), review.warnings


def test_the_mutating_webhook_only_adds_the_finalizer(memo: kopf.Memo) -> None:
    # Not started, and a Tenant the validating judge refuses: neither is its business.
    review = _judge(memo, _tenant([f"d{i}.acme.de" for i in range(10_000)]), "mutate-tenant")
    assert review.patch == [{"op": "add", "path": "/metadata/finalizers", "value": ["tenantry.dev/finalizer"]}]
    memo.started = asyncio.Event()
    memo.started.set()
    mutated = _tenant(["shop.acme.de"])
    mutated["metadata"]["finalizers"] = ["tenantry.dev/finalizer"]
    review = _judge(memo, mutated)
    assert review.patch == [] and not any("finalizer" in w for w in review.warnings)
    mutated["metadata"]["finalizers"] = ["tenantry.dev/finalizer", "tenantry.dev/forever"]
    with pytest.raises(Denied) as refused:
        _judge(memo, mutated)
    assert "finalizer 'tenantry.dev/forever' is the operator's" in refused.value.message
    assert "tenantry.dev/finalizer'" not in refused.value.message
