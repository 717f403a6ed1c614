"""DNS for tenants: platform records, ownership marks, custom-domain claims and verification (pure).

Every record the operator publishes has a TXT record beside it at `_tenantry-owner.<name>` that
names the owner id and the tenant. The underscore makes the prefix impossible as a tenant slug,
so it can never collide with a tenant's own name. A record without our mark is never changed.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tenantry.api.tenant import CHALLENGE_PREFIX

OWNER_PREFIX = "_tenantry-owner."
HERITAGE = "heritage=tenantry"


@dataclass(frozen=True, order=True)
class Record:
    """One DNS record set: a name, a type and its values."""

    name: str  # fully qualified, no trailing dot
    type: str  # A, CNAME or TXT
    values: tuple[str, ...]
    ttl: int = 300


@dataclass(frozen=True)
class DnsPlan:
    """What to write to the zone, and the names we must not touch."""

    upserts: tuple[Record, ...] = ()
    deletes: tuple[Record, ...] = ()
    conflicts: tuple[str, ...] = ()


def platform_host(slug: str, platform_domain: str) -> str:
    return f"{slug}.{platform_domain}"


def owner_value(owner_id: str, tenant: str) -> str:
    return f"{HERITAGE},owner={owner_id},tenant={tenant}"


def platform_records(slug: str, platform_domain: str, target: str, ttl: int) -> list[Record]:
    """`<slug>.<platform domain>` pointing at the platform's entry point (A for an IP, else CNAME)."""
    try:
        ipaddress.IPv4Address(target)
        kind = "A"
    except ValueError:
        kind = "CNAME"
    return [Record(platform_host(slug, platform_domain), kind, (target.rstrip("."),), ttl)]


def with_owner_marks(records: Iterable[Record], owner_id: str, tenant: str) -> list[Record]:
    out: list[Record] = []
    for record in records:
        out.append(record)
        out.append(Record(OWNER_PREFIX + record.name, "TXT", (owner_value(owner_id, tenant),), record.ttl))
    return out


def plan_changes(desired: list[Record], live: Mapping[str, list[Record]], owner_id: str, tenant: str,
                 previously_ours: Iterable[str] = ()) -> DnsPlan:
    """Changes that bring our names to `desired`, leaving alone every name someone else holds.

    `live`: name -> record sets found there (for every desired name, its owner-mark name and the
    names we published before). A name is ours when its owner mark names this owner and tenant;
    a name that is free is taken; a name with records but not our mark is a conflict.
    """
    mark = owner_value(owner_id, tenant)
    wanted = {r.name for r in desired if not r.name.startswith(OWNER_PREFIX)}
    upserts: list[Record] = []
    deletes: list[Record] = []
    conflicts: list[str] = []

    def ours(name: str) -> bool:
        return any(mark in r.values for r in live.get(OWNER_PREFIX + name, []) if r.type == "TXT")

    for record in desired:
        if record.name.startswith(OWNER_PREFIX):
            continue
        present = live.get(record.name, [])
        if present and not ours(record.name):
            conflicts.append(record.name)
            continue
        mark_record = Record(OWNER_PREFIX + record.name, "TXT", (mark,), record.ttl)
        for wanted_record in (mark_record, record):  # the mark first: a crash leaves no unmarked record
            current = [r for r in live.get(wanted_record.name, []) if r.type == wanted_record.type]
            if [(r.values, r.ttl) for r in current] != [(tuple(sorted(wanted_record.values)), wanted_record.ttl)]:
                upserts.append(Record(wanted_record.name, wanted_record.type,
                                      tuple(sorted(wanted_record.values)), wanted_record.ttl))
            stale = [r for r in present if r.type != record.type and wanted_record is record]
            deletes.extend(stale)
    for name in sorted(set(previously_ours) - wanted):
        if ours(name):
            deletes.extend(live.get(name, []))
            deletes.extend(live.get(OWNER_PREFIX + name, []))
    return DnsPlan(tuple(upserts), tuple(deletes), tuple(conflicts))


def claim_name(domain: str) -> str:
    """The Secret that claims a custom domain: one per domain, so creating it is an atomic claim."""
    return "domain-" + hashlib.sha256(domain.encode()).hexdigest()[:20]


CLAIMED_DOMAIN_ANNOTATION = "tenantry.dev/domain"
# On a claim Secret once its domain was verified: from then on the claim no longer expires.
CLAIM_VERIFIED_ANNOTATION = "tenantry.dev/verified-at"


def claim_expired(claim: Mapping[str, Any], now: datetime.datetime, ttl_seconds: float) -> bool:
    """Whether a claim was never verified within `ttl_seconds` of its creation (the API server's clock)."""
    meta = claim.get("metadata") or {}
    if (meta.get("annotations") or {}).get(CLAIM_VERIFIED_ANNOTATION) or not meta.get("creationTimestamp"):
        return False
    return (now - _parse(meta["creationTimestamp"])).total_seconds() >= ttl_seconds


def pending_claims(claims: Iterable[Mapping[str, Any]]) -> int:
    """How many of these claim Secrets were never verified."""
    return sum(1 for c in claims if CLAIMED_DOMAIN_ANNOTATION in ((c.get("metadata") or {}).get("annotations") or {})
               and CLAIM_VERIFIED_ANNOTATION not in (c["metadata"].get("annotations") or {}))


def expired_entry(domain: str, now: datetime.datetime, ttl_seconds: float) -> dict[str, Any]:
    """The status entry of a domain whose claim expired: it stays so until the partner re-adds it."""
    return {"name": domain, "verified": False, "records": [], "expiredAt": iso(now),
            "message": f"claim expired: {domain} was not verified within {_duration(ttl_seconds)} and is released, "
                       "so another tenant may claim it; to claim it again, remove it from spec.domains, apply, "
                       "then add it back (the records to create are listed again)"}


def over_cap_entry(domain: str, cap: int) -> dict[str, Any]:
    return {"name": domain, "verified": False, "records": [],
            "message": f"not claimed: your tenants already hold {cap} unverified custom domain(s), the platform's "
                       f"limit for a partner; verify or remove some, and {domain} is claimed at the next check"}


def _duration(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:g} day(s)"
    return f"{seconds:g} s"


def domain_problem(domain: str, platform_domain: str, public_suffix: str | None, is_public: bool) -> str | None:
    """Why a custom domain cannot be claimed, or None. Shape and wildcards are checked by the schema."""
    if platform_domain and (domain == platform_domain or domain.endswith("." + platform_domain)):
        return (f"{domain} is under the platform domain {platform_domain}: the tenant already has "
                f"<slug>.{platform_domain}; list only the customer's own domains")
    if is_public or public_suffix is None:
        return (f"{domain} is a public suffix (like de or co.uk), which nobody can own: use a domain "
                "under it, such as ki.example.de")
    return None


@dataclass(frozen=True)
class DomainCheck:
    """What the resolver saw for one custom domain."""

    cname_ok: bool
    txt_ok: bool
    detail: str = ""


@dataclass(frozen=True)
class DomainState:
    """The status entry of one custom domain."""

    name: str
    verified: bool
    records: tuple[dict[str, str], ...]
    message: str
    verified_at: str | None = None
    failing_since: str | None = None

    def as_status(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "verified": self.verified, "records": list(self.records),
                                 "message": self.message}
        if self.verified_at:
            entry["verifiedAt"] = self.verified_at
        if self.failing_since:
            entry["failingSince"] = self.failing_since
        return entry


def instructions(domain: str, host: str, token: str) -> tuple[dict[str, str], ...]:
    """The two records the customer must create for a domain."""
    return ({"type": "CNAME", "name": domain, "value": host},
            {"type": "TXT", "name": CHALLENGE_PREFIX + domain, "value": token})


def iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def next_state(domain: str, host: str, token: str, check: DomainCheck, previous: Mapping[str, Any] | None,
               now: datetime.datetime, grace_seconds: float) -> DomainState:
    """Pending -> verified when both records are there; verified -> failing (route kept) while a
    record is missing, until the grace period ends; then withdrawn (unverified again)."""
    records = instructions(domain, host, token)
    previous = previous or {}
    if check.cname_ok and check.txt_ok:
        since = previous.get("verifiedAt") if previous.get("verified") else iso(now)
        return DomainState(domain, True, records, "verified: CNAME and TXT challenge found", verified_at=since)
    missing = [what for what, ok in (("the CNAME to " + host, check.cname_ok),
                                     (f"the TXT record {CHALLENGE_PREFIX}{domain}", check.txt_ok)) if not ok]
    why = " and ".join(missing) + " not found" + (f" ({check.detail})" if check.detail else "")
    if previous.get("verified"):
        failing_since = previous.get("failingSince") or iso(now)
        if (now - _parse(failing_since)).total_seconds() < grace_seconds:
            return DomainState(domain, True, records, f"re-verification failing: {why}; the route is withdrawn "
                               f"after the grace period unless fixed", verified_at=previous.get("verifiedAt"),
                               failing_since=failing_since)
        return DomainState(domain, False, records, f"route withdrawn: {why} for longer than the grace period; "
                           "restore the records to verify again")
    return DomainState(domain, False, records, f"pending: create the records listed here ({why})")


def _parse(iso_time: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(iso_time.replace("Z", "+00:00"))


def tls_secret(domain: str) -> str:
    return "tls-" + hashlib.sha256(domain.encode()).hexdigest()[:20]


def route_manifests(meta_for, namespace: str, domains: list[str], service: str, port: int, issuer: str,
                    certificates: bool) -> list[dict[str, Any]]:
    """The Ingress for verified custom domains and, with cert-manager, one Certificate each.

    `meta_for(name, namespace)` gives the owned metadata of a child object.
    """
    if not domains:
        return []
    backend = {"service": {"name": service, "port": {"number": port}}}
    ingress = {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": meta_for(ROUTE_INGRESS, namespace),
        "spec": {
            "rules": [{"host": d, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
                      for d in domains],
            "tls": [{"hosts": [d], "secretName": tls_secret(d)} for d in domains],
        },
    }
    objects = [ingress]
    if certificates:
        for d in domains:
            meta = meta_for(tls_secret(d), namespace)
            meta["labels"][ROUTE_LABEL] = "certificate"
            objects.append({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": meta,
                            "spec": {"secretName": tls_secret(d), "dnsNames": [d],
                                     "issuerRef": {"name": issuer, "kind": "ClusterIssuer"}}})
    return objects


def dns_endpoint_manifest(meta_for, namespace: str, records: list[Record]) -> dict[str, Any]:
    """An external-dns DNSEndpoint holding the tenant's records (external-dns publishes them)."""
    endpoints = [{"dnsName": r.name, "recordType": r.type, "targets": list(r.values), "recordTTL": r.ttl}
                 for r in records]
    return {"apiVersion": "externaldns.k8s.io/v1alpha1", "kind": "DNSEndpoint",
            "metadata": meta_for(DNS_ENDPOINT, namespace), "spec": {"endpoints": endpoints}}


ROUTE_INGRESS = "tenantry-domains"
ROUTE_LABEL = "tenantry.dev/route"
DNS_ENDPOINT = "tenantry-dns"
