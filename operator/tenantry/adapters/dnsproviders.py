"""Where a tenant's platform records (`<slug>.<platform domain>`) are published: one protocol,
one implementation per TENANTRY_DNS_PROVIDER, chosen once at start-up by make_dns_provider.

A provider does the I/O only: it brings the published records to what it is given and reports
what it found (names held by someone else, or that DNS is not ours to manage). What that means
for the tenant's DNSReady condition is decided by the caller (handlers.dnsflow).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tenantry.adapters.dns import Rfc2136Zone
from tenantry.adapters.kube import Kube
from tenantry.domain import dns
from tenantry.domain.children import ObjectRef, TenantInput, owned_meta
from tenantry.domain.config import DNS_PROVIDERS, DnsSettings


class ObjectWriter(Protocol):
    """What a provider uses of the reconcile's writer (handlers.writer.Writer)."""

    kube: Kube
    count: int  # write requests made in this pass

    async def apply_if_needed(self, manifest: dict[str, Any], live: Mapping[str, Any] | None) -> None: ...

    async def delete_if_ours(self, target: ObjectRef, live: Mapping[str, Any] | None, owner: str) -> bool: ...


@dataclass(frozen=True)
class PlatformName:
    """One tenant's name under the platform domain, and the marks that make its records ours."""

    host: str  # <slug>.<platform domain>
    namespace: str  # the tenant namespace
    owner: str  # naming.owner_key of the tenant
    owner_id: str  # TENANTRY_DNS_OWNER_ID: this operator among others writing the same zone


@dataclass(frozen=True)
class Publication:
    """What a provider did with a tenant's records."""

    managed: bool = True  # False: the platform's DNS is not tenantry's to manage
    conflicts: tuple[str, ...] = ()  # names with records that are not ours: left alone
    handed_to: str = ""  # who publishes the records, when not tenantry itself


class DnsProvider(Protocol):
    """Publishes and removes one tenant's platform records; raises adapters.dns.DnsError when the
    DNS server fails (the caller backs off), KubeError when the API server does."""

    async def publish(self, writer: ObjectWriter, tenant: TenantInput, name: PlatformName,
                      records: Sequence[dns.Record]) -> Publication:
        """Make `records` (empty: none, the tenant is cancelled) what is published at `name`."""
        ...

    async def remove(self, writer: ObjectWriter, name: PlatformName) -> None:
        """The tenant is deleted: what we published for it goes, anyone else's records stay."""
        ...


class NoDns:
    """TENANTRY_DNS_PROVIDER=none: the platform's DNS is managed elsewhere."""

    async def publish(self, writer: ObjectWriter, tenant: TenantInput, name: PlatformName,
                      records: Sequence[dns.Record]) -> Publication:
        return Publication(managed=False)

    async def remove(self, writer: ObjectWriter, name: PlatformName) -> None:
        return None


class ExternalDns:
    """TENANTRY_DNS_PROVIDER=externaldns: a DNSEndpoint in the tenant namespace, which external-dns
    publishes (with our owner marks beside the records, as the zone provider writes them)."""

    @staticmethod
    def _endpoint(name: PlatformName) -> ObjectRef:
        return ObjectRef("externaldns.k8s.io/v1alpha1", "DNSEndpoint", dns.DNS_ENDPOINT, name.namespace)

    async def publish(self, writer: ObjectWriter, tenant: TenantInput, name: PlatformName,
                      records: Sequence[dns.Record]) -> Publication:
        target = self._endpoint(name)
        live = await writer.kube.get(target)
        if records:
            endpoint = dns.dns_endpoint_manifest(lambda n, ns: owned_meta(n, ns, tenant), name.namespace,
                                                 dns.with_owner_marks(records, name.owner_id, name.owner))
            await writer.apply_if_needed(endpoint, live)
        else:
            await writer.delete_if_ours(target, live, name.owner)
        return Publication(handed_to=f"external-dns (DNSEndpoint {dns.DNS_ENDPOINT})")

    async def remove(self, writer: ObjectWriter, name: PlatformName) -> None:
        # The DNSEndpoint lives in the tenant namespace, which a Retain policy keeps: remove it.
        target = self._endpoint(name)
        await writer.delete_if_ours(target, await writer.kube.get(target), name.owner)


class Rfc2136:
    """TENANTRY_DNS_PROVIDER=rfc2136: the zone itself, read by signed queries and changed by one
    signed dynamic update per tenant; a name someone else holds is never touched."""

    def __init__(self, zone: Rfc2136Zone) -> None:
        self.zone = zone

    async def publish(self, writer: ObjectWriter, tenant: TenantInput, name: PlatformName,
                      records: Sequence[dns.Record]) -> Publication:
        return Publication(conflicts=await self._converge(writer, name, records))

    async def remove(self, writer: ObjectWriter, name: PlatformName) -> None:
        await self._converge(writer, name, ())

    async def _converge(self, writer: ObjectWriter, name: PlatformName,
                        records: Sequence[dns.Record]) -> tuple[str, ...]:
        live = await self.zone.read([name.host, dns.OWNER_PREFIX + name.host])
        plan = dns.plan_changes(list(records), live, name.owner_id, name.owner, previously_ours=[name.host])
        if plan.upserts or plan.deletes:
            writer.kube.fence()  # a replica that lost the tenant's shard while reading must not write
            writer.count += 1
            await self.zone.change(plan.upserts, plan.deletes)
        return tuple(plan.conflicts)


def _rfc2136(settings: DnsSettings) -> DnsProvider:
    zone = settings.rfc2136
    if zone is None:
        raise ValueError("TENANTRY_DNS_PROVIDER=rfc2136 without its server settings (DnsSettings.rfc2136)")
    host, port = zone.server
    return Rfc2136(Rfc2136Zone(host, port, zone.zone, zone.tsig_name, zone.tsig_secret, zone.tsig_algorithm))


PROVIDERS: Mapping[str, Callable[[DnsSettings], DnsProvider]] = {
    "none": lambda _: NoDns(),
    "externaldns": lambda _: ExternalDns(),
    "rfc2136": _rfc2136,
}


def make_dns_provider(settings: DnsSettings) -> DnsProvider:
    """The provider the settings name, built once at start-up."""
    make = PROVIDERS.get(settings.provider)
    if make is None:
        raise ValueError(f"TENANTRY_DNS_PROVIDER={settings.provider!r}: use {', '.join(DNS_PROVIDERS)}")
    return make(settings)
