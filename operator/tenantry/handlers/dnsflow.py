"""DNS and custom domains of one tenant: publish its records, claim and verify its domains, route them.

I/O orchestration only; what to publish, whom a name belongs to and what a check means are
decided in tenantry.domain.dns, and a pass's custom domains in tenantry.domain.domains.
"""

from __future__ import annotations

import asyncio
import datetime
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from tenantry.adapters.dns import DnsError, Resolver
from tenantry.adapters.dnsproviders import DnsProvider, PlatformName, Publication, make_dns_provider
from tenantry.adapters.kube import AlreadyExists
from tenantry.adapters.publicsuffix import unclaimable
from tenantry.domain import dns, domains, naming, offboarding
from tenantry.domain.children import ObjectRef, TenantInput, owned_meta, ref
from tenantry.domain.config import DnsSettings, OperatorConfig
from tenantry.domain.status import DNS_READY, DOMAINS_ROUTED, Verdict
from tenantry.handlers.keylocks import KeyLocks
from tenantry.handlers.writer import Writer
from tenantry.metrics.operator import DNS_SYNCS, DOMAIN_CHECKS

TenantKey = tuple[str, str]


@dataclass
class DnsServices:
    """The DNS side of the operator: the provider of platform records, a resolver for custom domains,
    and when to check each next. Built once at start-up (make_dns_services)."""

    provider: DnsProvider
    resolver: Resolver
    recheck_seconds: float = 3600.0  # verified domains
    first_retry_seconds: float = 10.0  # pending domains: doubling up to recheck_seconds
    # Per tenant, per custom domain: (next check, the delay that led to it).
    next_check: dict[TenantKey, dict[str, tuple[float, float]]] = field(default_factory=dict)
    certificates_installed: bool | None = None
    # DNS server failures per tenant: (next attempt, delay, what to report until then).
    failures: dict[TenantKey, tuple[float, float, Verdict]] = field(default_factory=dict)
    max_backoff_seconds: float = 300.0

    def failed(self, key: TenantKey, verdict: Verdict) -> Verdict:
        previous_delay = self.failures[key][1] if key in self.failures else self.first_retry_seconds / 2
        delay = min(self.max_backoff_seconds, 2 * previous_delay)
        self.failures[key] = (time.monotonic() + delay, delay, verdict)
        return verdict

    def waiting(self, key: TenantKey) -> Verdict | None:
        """The last failure while its back-off lasts, else None (time to try again)."""
        entry = self.failures.get(key)
        return entry[2] if entry and time.monotonic() < entry[0] else None

    def due(self, key: tuple[TenantKey, str]) -> bool:
        return time.monotonic() >= self.next_check.get(key[0], {}).get(key[1], (0.0, 0.0))[0]

    def checked(self, key: tuple[TenantKey, str], verified: bool) -> None:
        domains = self.next_check.setdefault(key[0], {})
        delay = self.recheck_seconds if verified else min(
            self.recheck_seconds, max(self.first_retry_seconds, 2 * domains.get(key[1], (0, 0))[1]))
        domains[key[1]] = (time.monotonic() + delay, delay)

    def forget(self, key: TenantKey, keep: Iterable[str] = ()) -> None:
        """A tenant gone (or the domains it no longer lists): what was remembered of it goes too,
        so that tenants and domains coming and going cost no memory for good."""
        listed = set(keep)
        kept = {domain: when for domain, when in self.next_check.pop(key, {}).items() if domain in listed}
        if kept:
            self.next_check[key] = kept
        if not keep:
            self.failures.pop(key, None)


def make_dns_services(settings: DnsSettings) -> DnsServices:
    """The provider the settings choose and the resolver they name; the only place either is picked."""
    return DnsServices(make_dns_provider(settings), Resolver([settings.resolver] if settings.resolver else None),
                       recheck_seconds=settings.recheck_seconds, first_retry_seconds=settings.first_retry_seconds)


def _tenant_key(inp: TenantInput) -> str:
    return naming.owner_key(inp.partner_namespace, inp.slug)


def _platform_name(config: OperatorConfig, partner_namespace: str, slug: str, namespace: str) -> PlatformName:
    return PlatformName(dns.platform_host(slug, config.platform_domain), namespace,
                        naming.owner_key(partner_namespace, slug), config.dns_owner_id)


async def platform_records(writer: Writer, services: DnsServices, inp: TenantInput, config: OperatorConfig,
                           namespace: str) -> Verdict:
    """`<slug>.<platform domain>`: published while the tenant exists and is not cancelled."""
    name = _platform_name(config, inp.partner_namespace, inp.slug, namespace)
    records = [] if inp.spec.state == "Cancelled" else dns.platform_records(
        inp.slug, config.platform_domain, config.entry_point, config.dns_ttl)
    key: TenantKey = (inp.partner_namespace, inp.slug)
    backing_off = services.waiting(key)
    if backing_off is not None:
        return backing_off  # the server failed a moment ago: no request until the back-off ends
    try:
        published = await services.provider.publish(writer, inp, name, records)
    except DnsError as error:
        DNS_SYNCS.labels("error").inc()
        return services.failed(key, Verdict(DNS_READY, "False", error.reason, f"{error}; retrying with back-off"))
    services.failures.pop(key, None)
    verdict = dns_verdict(published, name.host, config.entry_point, withdrawn=not records)
    DNS_SYNCS.labels(_SYNC_RESULTS.get(verdict.reason, "published")).inc()
    return verdict


_SYNC_RESULTS = {"NotManaged": "not-managed", "DNSConflict": "conflict", "Withdrawn": "withdrawn"}


def dns_verdict(published: Publication, host: str, entry_point: str, withdrawn: bool) -> Verdict:
    """DNSReady after a provider published (or withdrew, for a cancelled tenant) the records at `host`."""
    if not published.managed:
        return Verdict(DNS_READY, "True", "NotManaged", "DNS is not managed by tenantry (TENANTRY_DNS_PROVIDER)")
    if published.conflicts:
        return Verdict(DNS_READY, "False", "DNSConflict",
                       f"{', '.join(published.conflicts)} already has records that tenantry does not own (no "
                       f"{dns.OWNER_PREFIX}<name> TXT mark); they are left alone: remove them or choose "
                       "another tenant name")
    if withdrawn:
        return Verdict(DNS_READY, "True", "Withdrawn", f"{host} withdrawn (tenant cancelled)")
    where = f"handed to {published.handed_to}" if published.handed_to else f"-> {entry_point}"
    return Verdict(DNS_READY, "True", "Published", f"{host} {where}")


async def remove_records(writer: Writer, services: DnsServices, config: OperatorConfig, partner_namespace: str,
                         slug: str) -> None:
    """On deletion, whatever the policy: our records go, anyone else's stay.

    "Ours" is this tenant's owner key, not just our label: a tenant that lost a slug race shares
    the namespace name `<prefix><slug>` with the holder, whose DNSEndpoint and records stay.
    """
    await services.provider.remove(writer, _platform_name(config, partner_namespace, slug,
                                                          naming.tenant_namespace(config.namespace_prefix, slug)))


def _claim_ref(config: OperatorConfig, domain: str) -> ObjectRef:
    return ObjectRef("v1", "Secret", dns.claim_name(domain), config.platform_namespace)


def _held_claim_ref(config: OperatorConfig, claim: Mapping[str, Any]) -> ObjectRef:
    return ObjectRef("v1", "Secret", claim["metadata"]["name"], config.platform_namespace)


# The count of a partner's pending claims and the creation of one more happen under its lock, so
# concurrent reconciles of one partner's tenants cannot exceed the cap (one leader writes claims).
_partner_locks: KeyLocks[str] = KeyLocks()


async def _claim(writer: Writer, config: OperatorConfig, inp: TenantInput, domain: str,
                 live: Mapping[str, Any] | None) -> Mapping[str, Any] | str:
    """Our live claim Secret of a domain (`live`: as read already), made now if there is none, or
    why we have none (UNAVAILABLE, OVER_CAP)."""
    if config.domain_reserved(domain):
        return domains.UNAVAILABLE
    target = _claim_ref(config, domain)
    if live is None:
        async with _partner_locks.hold(inp.partner):
            claims = await writer.kube.list("v1", "Secret", config.platform_namespace,
                                            {naming.PARTNER_LABEL: inp.partner, naming.MANAGED_BY: naming.OPERATOR})
            if dns.pending_claims(claims) >= config.max_pending_domains:
                return domains.OVER_CAP
            meta = owned_meta(target.name, config.platform_namespace, inp)
            meta["annotations"][dns.CLAIMED_DOMAIN_ANNOTATION] = domain
            secret = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
                      "stringData": {"token": "tenantry-" + secrets.token_urlsafe(24)}}
            try:
                # Create, not apply: of two tenants claiming one domain at once, exactly one wins.
                writer.count += 1
                await writer.kube.create(secret)
            except AlreadyExists:
                pass
        live = await writer.kube.get(target)
    if not _ours(live, inp):
        return domains.UNAVAILABLE
    return live  # type: ignore[return-value]


def _ours(claim: Mapping[str, Any] | None, inp: TenantInput) -> bool:
    return claim is not None and claim["metadata"].get("annotations", {}).get(naming.OWNER_ANNOTATION) == \
        _tenant_key(inp)


async def _answers(services: DnsServices, domain: str) -> tuple[list[str], list[str]]:
    """What a check compares: the domain's CNAME and its challenge's TXT records, asked at once."""
    cnames, txts = await asyncio.gather(services.resolver.lookup(domain, "CNAME"),
                                        services.resolver.lookup(dns.CHALLENGE_PREFIX + domain, "TXT"),
                                        return_exceptions=True)
    for answer in (cnames, txts):
        if isinstance(answer, BaseException):
            raise answer
    return cnames, txts  # type: ignore[return-value]


async def custom_domains(writer: Writer, services: DnsServices, inp: TenantInput, config: OperatorConfig,
                         previous: list[Mapping[str, Any]]) -> domains.Outcome:
    """Claim, verify and re-verify every custom domain; release the ones no longer listed.

    Per domain in spec order: gather (its claim, the resolver's answer when a check is due), decide
    (domain.domains.decide), write its claim's changes, then schedule its next check.
    """
    host = dns.platform_host(inp.slug, config.platform_domain)
    before = {e.get("name"): e for e in previous}
    key: TenantKey = (inp.partner_namespace, inp.slug)
    wanted = [d for d in inp.spec.domains if not unclaimable(d, config.platform_domain)
              and not domains.expired(before.get(d))]
    # Each claim as it is (the one read of it a pass makes), then the due checks of the domains
    # that are ours or free to claim asked all at once: a partner's name servers that answer
    # slowly (or never) hold this pass, and one of the workers every tenant shares, for one
    # look-up's timeout, not that times the tenant's twenty domains; a domain someone else holds
    # is never looked up (one that turns out refused in the pass has its look-up cancelled).
    claims = {d: await writer.kube.get(_claim_ref(config, d)) for d in wanted if not config.domain_reserved(d)}
    answers = {d: asyncio.ensure_future(_answers(services, d)) for d, claim in claims.items()
               if (claim is None or _ours(claim, inp)) and domains.check_due(before.get(d), services.due((key, d)))}
    try:
        return await _each_domain(writer, services, inp, config, host, before, claims, answers)
    finally:
        for pending in answers.values():
            pending.cancel()  # (a domain refused before its check was needed: its answer is not)
        await asyncio.gather(*answers.values(), return_exceptions=True)


async def _each_domain(writer: Writer, services: DnsServices, inp: TenantInput, config: OperatorConfig, host: str,
                       before: Mapping[str | None, Mapping[str, Any]], claims: Mapping[str, Mapping[str, Any] | None],
                       answers: Mapping[str, Awaitable[tuple[list[str], list[str]]]]) -> domains.Outcome:
    key: TenantKey = (inp.partner_namespace, inp.slug)
    decisions = []
    for domain in inp.spec.domains:
        seen = await _observe(writer, inp, config, domain, host, before.get(domain), claims.get(domain),
                              answers.get(domain))
        now = datetime.datetime.now(datetime.UTC)
        decision = domains.decide(seen, before.get(domain), host, config, now)
        if decision.mark_verified is not None:
            writer.count += 1
            marked = {"metadata": {"annotations": {dns.CLAIM_VERIFIED_ANNOTATION: dns.iso(now)}}}
            await writer.kube.patch_if_unchanged(_held_claim_ref(config, decision.mark_verified), marked,
                                                 decision.mark_verified["metadata"]["resourceVersion"])
        if decision.release is not None:
            await writer.delete_if_ours(_held_claim_ref(config, decision.release), decision.release, _tenant_key(inp))
        if decision.check is not None:
            DOMAIN_CHECKS.labels(decision.check).inc()
            services.checked((key, domain), verified=decision.check == "verified")
        decisions.append(decision)
    if len(services.next_check.get(key, {})) > len(inp.spec.domains):
        services.forget(key, keep=inp.spec.domains)  # domains dropped from the spec
    # Claims exist only for domains the status has listed; list them only when one was dropped.
    if set(before) - set(inp.spec.domains):
        await _release_unlisted(writer, config, inp)
    return domains.outcome(decisions)


async def _observe(writer: Writer, inp: TenantInput, config: OperatorConfig, domain: str,
                   host: str, old: Mapping[str, Any] | None, live: Mapping[str, Any] | None,
                   answer: Awaitable[tuple[list[str], list[str]]] | None) -> domains.Observed:
    """One listed domain: why it is invalid, else our claim (`live`, made now if there was none),
    and the resolver's answer when a check is due (`answer`, asked for already)."""
    problem = unclaimable(domain, config.platform_domain)
    if problem:
        return domains.Observed(domain, invalid=problem)
    if domains.expired(old):
        return domains.Observed(domain)
    claim = await _claim(writer, config, inp, domain, live)
    if isinstance(claim, str):
        return domains.Observed(domain, refused=claim)
    if answer is None:
        return domains.Observed(domain, claim=claim)
    try:
        cnames, txts = await answer
    except DnsError as error:
        return domains.Observed(domain, claim=claim, check_error=str(error))
    check = dns.DomainCheck(cname_ok=host in cnames, txt_ok=domains.claim_token(claim) in txts)
    return domains.Observed(domain, claim=claim, check=check)


async def _release_unlisted(writer: Writer, config: OperatorConfig, inp: TenantInput) -> None:
    claims = await writer.kube.list("v1", "Secret", config.platform_namespace,
                                    {naming.TENANT_LABEL: inp.slug, naming.MANAGED_BY: naming.OPERATOR})
    unlisted = [c for c in claims if (c["metadata"].get("annotations") or {}).get(dns.CLAIMED_DOMAIN_ANNOTATION)
                not in inp.spec.domains]
    if unlisted:
        # A dropped domain is released once no Ingress routes it (see release_unlisted, after routes()).
        namespace = naming.tenant_namespace(config.namespace_prefix, inp.slug)
        await _release(writer, config, unlisted, _tenant_key(inp), await still_routed(writer, namespace))


async def release_unlisted(writer: Writer, config: OperatorConfig, inp: TenantInput) -> None:
    """After routes(): the claims of dropped domains whose route is gone now (custom_domains, which
    runs before routes(), keeps those still routed at that moment)."""
    await _release_unlisted(writer, config, inp)


async def still_routed(writer: Writer, namespace: str) -> set[str]:
    """The hosts any Ingress in the tenant namespace routes, ours or not, terminating or not."""
    return offboarding.routed_hosts(await writer.kube.list("networking.k8s.io/v1", "Ingress", namespace, {}))


async def _release(writer: Writer, config: OperatorConfig, claims: list[dict[str, Any]], owner: str,
                   routed: set[str]) -> list[str]:
    free, kept = offboarding.releasable(claims, owner, routed)
    by_name = {c["metadata"]["name"]: c for c in claims}
    for name in free:
        await writer.delete_if_ours(_held_claim_ref(config, by_name[name]), by_name[name], owner)
    return kept


async def release_orphaned(writer: Writer, config: OperatorConfig,
                           exists: Callable[[TenantKey], Awaitable[bool]]) -> list[str]:
    """Claims whose tenant no longer exists are released, once no Ingress routes their host;
    returns their domains.

    A Tenant can go without its clean-up: with the webhook down a partner may remove the
    operator's finalizer, and while the operator is down nobody notices. Run at start-up.
    """
    by_owner: dict[TenantKey, list[dict[str, Any]]] = {}
    for claim in await writer.kube.list("v1", "Secret", config.platform_namespace,
                                        {naming.MANAGED_BY: naming.OPERATOR}):
        annotations = claim["metadata"].get("annotations") or {}
        owner = naming.parse_owner_key(annotations.get(naming.OWNER_ANNOTATION, ""))
        if dns.CLAIMED_DOMAIN_ANNOTATION in annotations and owner is not None and not await exists(owner):
            by_owner.setdefault(owner, []).append(claim)
    released = []
    for (partner_namespace, slug), claims in by_owner.items():
        routed = await still_routed(writer, naming.tenant_namespace(config.namespace_prefix, slug))
        kept = await _release(writer, config, claims, naming.owner_key(partner_namespace, slug), routed)
        released += [domain for c in claims
                     if (domain := c["metadata"]["annotations"][dns.CLAIMED_DOMAIN_ANNOTATION]) not in kept]
    return released


async def release_all(writer: Writer, config: OperatorConfig, partner_namespace: str, slug: str,
                      routed: set[str]) -> list[str]:
    """On deletion: every domain claim of the tenant is given up, except those of a domain an
    Ingress still routes (`routed`): those are returned and kept, so that no other tenant can
    claim a host that is still served from here."""
    claims = await writer.kube.list("v1", "Secret", config.platform_namespace, {naming.TENANT_LABEL: slug})
    return await _release(writer, config, claims, naming.owner_key(partner_namespace, slug), routed)


async def routes(writer: Writer, services: DnsServices, inp: TenantInput, config: OperatorConfig, namespace: str,
                 verified: list[str], previously_verified: bool) -> Verdict | None:
    """Ingress (and Certificates, with cert-manager) for verified domains only; never before.

    Routes exist only after a domain was verified, so a tenant that never had one costs no request.
    Never to an ExternalName Service or one with externalIPs (see offboarding.route_refusal):
    those routes are removed and the status says why (DomainsRouted=False, RouteRefused).
    """
    if not verified and not previously_verified:
        return None
    refusal = None
    if verified:
        service = await writer.kube.get(ObjectRef("v1", "Service", config.route_service, namespace))
        refusal = offboarding.route_refusal(service, config.route_service)
    routable = [] if refusal else verified
    await _cert_manager(writer, services, recheck=bool(routable))
    wanted = dns.route_manifests(lambda n, ns: owned_meta(n, ns, inp), namespace, routable, config.route_service,
                                 config.route_port, config.cert_issuer, bool(services.certificates_installed))
    ingress_ref = ObjectRef("networking.k8s.io/v1", "Ingress", dns.ROUTE_INGRESS, namespace)
    live_ingress = await writer.kube.get(ingress_ref)
    for manifest in wanted:
        live = live_ingress if manifest["kind"] == "Ingress" else await writer.kube.get(ref(manifest))
        await writer.apply_if_needed(manifest, live)
    await withdraw_routes(writer, services, namespace, _tenant_key(inp), {m["metadata"]["name"] for m in wanted},
                          live_ingress)
    if refusal:
        return Verdict(DOMAINS_ROUTED, "False", "RouteRefused", f"{', '.join(verified)} not routed: {refusal}")
    if not verified:
        return None
    return Verdict(DOMAINS_ROUTED, "True", "Routed",
                   f"{', '.join(verified)} routed to Service {config.route_service} port {config.route_port}")


_UNREAD = object()


async def _cert_manager(writer: Writer, services: DnsServices, recheck: bool = False) -> bool:
    """Whether cert-manager's Certificate kind is installed (read once; again when `recheck` and it was not)."""
    if services.certificates_installed is None or (recheck and not services.certificates_installed):
        crd = await writer.kube.get(ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                                              "certificates.cert-manager.io"))
        services.certificates_installed = crd is not None
    return bool(services.certificates_installed)


async def withdraw_routes(writer: Writer, services: DnsServices, namespace: str, owner: str,
                          keep: Set[str] = frozenset(), live_ingress: Any = _UNREAD) -> None:
    """Remove this tenant's Ingress and Certificates in `namespace`, except the names in `keep`."""
    ingress_ref = ObjectRef("networking.k8s.io/v1", "Ingress", dns.ROUTE_INGRESS, namespace)
    if dns.ROUTE_INGRESS not in keep:
        live = await writer.kube.get(ingress_ref) if live_ingress is _UNREAD else live_ingress
        await writer.delete_if_ours(ingress_ref, live, owner)
    if await _cert_manager(writer, services):
        for cert in await writer.kube.list("cert-manager.io/v1", "Certificate", namespace,
                                           {dns.ROUTE_LABEL: "certificate"}):
            if cert["metadata"]["name"] not in keep:
                await writer.delete_if_ours(ObjectRef("cert-manager.io/v1", "Certificate",
                                                      cert["metadata"]["name"], namespace), cert, owner)
