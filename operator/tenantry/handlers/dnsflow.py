"""DNS and custom domains of one tenant: publish its records, claim and verify its domains, route them.

I/O orchestration only; what to publish, whom a name belongs to and what a check means are
decided in tenantry.domain.dns.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from tenantry.adapters.dns import DnsError, Resolver
from tenantry.adapters.dnsproviders import DnsProvider, PlatformName, Publication, make_dns_provider
from tenantry.adapters.kube import AlreadyExists
from tenantry.adapters.publicsuffix import unclaimable
from tenantry.domain import admission, dns, naming, offboarding
from tenantry.domain.children import ObjectRef, TenantInput, owned_meta, ref
from tenantry.domain.config import DnsSettings, OperatorConfig
from tenantry.domain.status import DNS_READY, DOMAINS_ROUTED, DOMAINS_VERIFIED, Verdict
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
    next_check: dict[tuple[TenantKey, str], tuple[float, float]] = field(default_factory=dict)
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
        return time.monotonic() >= self.next_check.get(key, (0.0, 0.0))[0]

    def checked(self, key: tuple[TenantKey, str], verified: bool) -> None:
        delay = self.recheck_seconds if verified else min(
            self.recheck_seconds, max(self.first_retry_seconds, 2 * self.next_check.get(key, (0, 0))[1]))
        self.next_check[key] = (time.monotonic() + delay, delay)


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


UNAVAILABLE = "unavailable"  # another tenant's claim, or a reserved domain (the same answer for both)
OVER_CAP = "over-cap"  # the partner holds the platform's maximum of unverified claims
# The count of a partner's pending claims and the creation of one more happen under its lock, so
# concurrent reconciles of one partner's tenants cannot exceed the cap (one leader writes claims).
_partner_locks: dict[str, asyncio.Lock] = {}


async def _claim(writer: Writer, config: OperatorConfig, inp: TenantInput, domain: str
                 ) -> Mapping[str, Any] | str:
    """Our live claim Secret of a domain, or why we have none (UNAVAILABLE, OVER_CAP)."""
    if config.domain_reserved(domain):
        return UNAVAILABLE
    target = _claim_ref(config, domain)
    live = await writer.kube.get(target)
    if live is None:
        async with _partner_locks.setdefault(inp.partner, asyncio.Lock()):
            claims = await writer.kube.list("v1", "Secret", config.platform_namespace,
                                            {naming.PARTNER_LABEL: inp.partner, naming.MANAGED_BY: naming.OPERATOR})
            if dns.pending_claims(claims) >= config.max_pending_domains:
                return OVER_CAP
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
    if live is None or live["metadata"].get("annotations", {}).get(naming.OWNER_ANNOTATION) != _tenant_key(inp):
        return UNAVAILABLE
    return live


def _token(claim: Mapping[str, Any]) -> str:
    return base64.b64decode(claim["data"]["token"]).decode()


async def _settle_claim(writer: Writer, config: OperatorConfig, claim: Mapping[str, Any], owner: str,
                        entry: Mapping[str, Any], now: datetime.datetime) -> bool:
    """Mark a verified domain's claim (it no longer expires); release one never verified in time.

    True when the claim expired and was released. Only our own claim is deleted, and only for a
    domain never verified (so no route of ours serves it).
    """
    target = ObjectRef("v1", "Secret", claim["metadata"]["name"], config.platform_namespace)
    if entry.get("verified"):
        if dns.CLAIM_VERIFIED_ANNOTATION not in (claim["metadata"].get("annotations") or {}):
            writer.count += 1
            await writer.kube.patch_if_unchanged(
                target, {"metadata": {"annotations": {dns.CLAIM_VERIFIED_ANNOTATION: dns.iso(now)}}},
                claim["metadata"]["resourceVersion"])
        return False
    if not dns.claim_expired(claim, now, config.domain_claim_ttl_seconds):
        return False
    await writer.delete_if_ours(target, claim, owner)
    return True


async def _check(services: DnsServices, domain: str, host: str, token: str) -> dns.DomainCheck:
    cnames = await services.resolver.lookup(domain, "CNAME")
    txts = await services.resolver.lookup(dns.CHALLENGE_PREFIX + domain, "TXT")
    return dns.DomainCheck(cname_ok=host in cnames, txt_ok=token in txts)


@dataclass(frozen=True)
class DomainsOutcome:
    verdict: Verdict
    entries: list[dict[str, Any]]
    verified: list[str]


async def custom_domains(writer: Writer, services: DnsServices, inp: TenantInput, config: OperatorConfig,
                         previous: list[Mapping[str, Any]]) -> DomainsOutcome:
    """Claim, verify and re-verify every custom domain; release the ones no longer listed."""
    host = dns.platform_host(inp.slug, config.platform_domain)
    before = {e.get("name"): e for e in previous}
    entries: list[dict[str, Any]] = []
    problems: list[str] = []
    now = datetime.datetime.now(datetime.UTC)
    key: TenantKey = (inp.partner_namespace, inp.slug)
    for domain in inp.spec.domains:
        problem = unclaimable(domain, config.platform_domain)
        if problem:
            entries.append({"name": domain, "verified": False, "records": [], "message": problem})
            problems.append(f"{domain}: invalid")
            continue
        old = before.get(domain)
        if old is not None and old.get("expiredAt"):
            entries.append(dict(old))  # released: claimed again only when the partner re-adds it
            problems.append(f"{domain}: claim expired")
            continue
        claim = await _claim(writer, config, inp, domain)
        if claim == OVER_CAP:
            entries.append(dns.over_cap_entry(domain, config.max_pending_domains))
            problems.append(f"{domain}: over the limit of unverified domains")
            continue
        if isinstance(claim, str):
            entries.append({"name": domain, "verified": False, "records": [],
                            "message": f"{admission.unavailable_domain_message(domain)}: "
                                       f"{admission.UNAVAILABLE_DOMAIN_HINT}"})
            problems.append(f"{domain}: claimed elsewhere")
            continue
        token, failed = _token(claim), False
        if old is not None and old.get("records") and not services.due((key, domain)):
            entries.append(dict(old))  # not due for a check yet: keep what we know
        else:
            try:
                check = await _check(services, domain, host, token)
            except DnsError as error:
                DOMAIN_CHECKS.labels("error").inc()
                kept = dict(old) if old else {"name": domain, "verified": False,
                                              "records": list(dns.instructions(domain, host, token))}
                kept["message"] = f"could not check: {error}"
                entries.append(kept)
                services.checked((key, domain), verified=False)
                failed = True
            else:
                state = dns.next_state(domain, host, token, check, old, now, config.domain_grace_seconds)
                DOMAIN_CHECKS.labels("verified" if state.verified else "pending").inc()
                services.checked((key, domain), state.verified)
                entries.append(state.as_status())
        # A claim that cannot be checked expires too: holding a domain needs proof of control.
        if await _settle_claim(writer, config, claim, _tenant_key(inp), entries[-1], now):
            entries[-1] = dns.expired_entry(domain, now, config.domain_claim_ttl_seconds)
            problems.append(f"{domain}: claim expired")
        elif failed:
            problems.append(f"{domain}: check failed")
        elif not entries[-1]["verified"]:
            problems.append(f"{domain}: pending")
    # Claims exist only for domains the status has listed; list them only when one was dropped.
    if {e.get("name") for e in previous} - set(inp.spec.domains):
        await _release_unlisted(writer, config, inp)
    verified = [e["name"] for e in entries if e["verified"]]
    if not inp.spec.domains:
        verdict = Verdict(DOMAINS_VERIFIED, "True", "NoCustomDomains", "the tenant has no custom domains")
    elif problems:
        reason = next((why for why, words in (("DomainConflict", "elsewhere"), ("InvalidDomain", "invalid"),
                                              ("DomainClaimLimit", "over the limit"),
                                              ("DomainClaimExpired", "expired")) if any(words in p for p in problems)),
                      "DomainsPending")
        verdict = Verdict(DOMAINS_VERIFIED, "False", reason,
                          "; ".join(problems) + ": see status.domains for the records to create")
    else:
        verdict = Verdict(DOMAINS_VERIFIED, "True", "Verified", f"{len(verified)} custom domain(s) verified")
    return DomainsOutcome(verdict, entries, verified)


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
        await writer.delete_if_ours(ObjectRef("v1", "Secret", name, config.platform_namespace), by_name[name], owner)
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
