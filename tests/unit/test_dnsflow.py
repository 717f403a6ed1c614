"""handlers/dnsflow.custom_domains: how a tenant's custom domains are checked, without BIND or an API
server (the same flow against a real BIND and API server runs in tests/integration/test_dns.py).

Stand-ins, named as such: FakeKube keeps the claim Secrets in a dict (a create of a taken name is
refused as the API server refuses it); SlowResolver answers only once every look-up the test
expects has been asked, as a partner's name servers that answer slowly would.

Tested here:
- the due checks of all of a tenant's domains (claimed before, or in this pass) are asked at once,
  not one after the other: twenty domains behind slow name servers hold the pass (and one of the
  workers all tenants share) for one look-up's time, not twenty (with the look-ups made in turn the
  resolver never answers and the test times out)
- a domain another tenant holds is never looked up (it can never be checked: looking it up each
  pass only fed someone's slow name servers)
- a look-up still running when the pass ends early is cancelled, not left behind
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from tenantry.adapters.kube import AlreadyExists
from tenantry.api.tenant import TenantSpec
from tenantry.domain.children import ObjectRef, TenantInput
from tenantry.domain.config import OperatorConfig
from tenantry.handlers import dnsflow
from tenantry.handlers.writer import Writer

CONFIG = OperatorConfig(platform_namespace="tenantry-system", platform_domain="platform.test")
DOMAINS = [f"shop{i}.kunde.de" for i in range(20)]


class FakeKube:
    """Claim Secrets by name, as the API server would keep them (a stand-in: no API server here)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    async def get(self, target: ObjectRef) -> dict[str, Any] | None:
        return self.objects.get(target.name)

    async def list(self, api_version: str, kind: str, namespace: str, labels: dict[str, str]) -> list[Any]:
        return list(self.objects.values())

    async def create(self, manifest: dict[str, Any]) -> None:
        name = manifest["metadata"]["name"]
        if name in self.objects:
            raise AlreadyExists(name)
        data = {"token": base64.b64encode(manifest["stringData"]["token"].encode()).decode()}  # as the API server
        self.objects[name] = {**manifest, "data": data, "metadata": {**manifest["metadata"], "resourceVersion": "1"}}


class SlowResolver:
    """Answers nothing until `expected` look-ups wait at once (a stand-in for slow name servers)."""

    def __init__(self, expected: int) -> None:
        self.expected, self.asked, self.everyone = expected, 0, asyncio.Event()

    async def lookup(self, name: str, kind: str) -> list[str]:
        self.asked += 1
        if self.asked >= self.expected:
            self.everyone.set()
        await self.everyone.wait()
        return []


def _tenant(domains: list[str], slug: str = "kunde") -> TenantInput:
    spec = TenantSpec.model_validate({"company": "Kunde GmbH", "contact": {"name": "K", "email": "k@kunde.de"},
                                      "plan": {"featureSet": "business", "seats": 5}, "domains": domains})
    return TenantInput(slug=slug, partner_namespace="partner-p", partner="p", spec=spec, plan=None, branding=None)


async def _claimed(kube: FakeKube, domains: list[str], slug: str = "kunde") -> None:
    """A first pass, with a resolver that answers at once: the tenant's claims exist."""
    services = dnsflow.DnsServices(provider=None, resolver=SlowResolver(expected=0))  # type: ignore[arg-type]
    await dnsflow.custom_domains(Writer(kube), services, _tenant(domains, slug), CONFIG, [])  # type: ignore[arg-type]


@pytest.mark.parametrize("claimed_before", [False, True], ids=["claimed in this pass", "claimed before"])
def test_every_due_check_is_asked_at_once(claimed_before: bool) -> None:
    async def scenario() -> dnsflow.domains.Outcome:
        kube = FakeKube()
        if claimed_before:
            await _claimed(kube, DOMAINS)
        resolver = SlowResolver(expected=2 * len(DOMAINS))  # a CNAME and a TXT per domain
        services = dnsflow.DnsServices(provider=None, resolver=resolver)  # type: ignore[arg-type]
        writer = Writer(kube)  # type: ignore[arg-type]
        return await asyncio.wait_for(dnsflow.custom_domains(writer, services, _tenant(DOMAINS), CONFIG, []), 30)
    outcome = asyncio.run(scenario())
    assert [entry["name"] for entry in outcome.entries] == DOMAINS
    assert not any(entry.get("verified") for entry in outcome.entries)  # no records: all pending


def test_a_domain_someone_else_holds_is_never_looked_up() -> None:
    async def scenario() -> int:
        kube = FakeKube()
        await _claimed(kube, DOMAINS, slug="andere")  # another tenant's claims
        resolver = SlowResolver(expected=0)
        services = dnsflow.DnsServices(provider=None, resolver=resolver)  # type: ignore[arg-type]
        outcome = await dnsflow.custom_domains(Writer(kube), services, _tenant(DOMAINS), CONFIG, [])  # type: ignore[arg-type]
        assert outcome.verdict.status == "False"
        return resolver.asked
    assert asyncio.run(scenario()) == 0


def test_a_look_up_is_not_left_running_when_the_pass_ends_early() -> None:
    async def scenario() -> int:
        kube = FakeKube()
        await _claimed(kube, DOMAINS[:3])
        resolver = SlowResolver(expected=10**6)  # never answers
        services = dnsflow.DnsServices(provider=None, resolver=resolver)  # type: ignore[arg-type]

        async def refused(manifest: dict[str, Any]) -> None:
            for _ in range(5):  # (a request: the look-ups start meanwhile)
                await asyncio.sleep(0)
            raise RuntimeError("the API server went away")
        kube.create = refused  # type: ignore[method-assign]
        domains = ["neu.kunde.de", *DOMAINS[:3]]  # the new one's claim fails first
        with pytest.raises(RuntimeError):
            await dnsflow.custom_domains(Writer(kube), services, _tenant(domains), CONFIG, [])  # type: ignore[arg-type]
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
        return resolver.asked
    assert asyncio.run(scenario()) == 8  # the four domains' look-ups had started
