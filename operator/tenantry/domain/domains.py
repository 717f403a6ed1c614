"""A tenant's custom domains, decided from what one pass observed (pure).

handlers/dnsflow gathers (the domain's claim, created then read back; the resolver's answer when a
check is due), `decide` turns that and the previous status into the status entries, the claim
writes, the checks to schedule and the DomainsVerified verdict, and dnsflow carries them out.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenantry.domain import admission, dns
from tenantry.domain.config import OperatorConfig
from tenantry.domain.status import DOMAINS_VERIFIED, Verdict

UNAVAILABLE = "unavailable"  # another tenant's claim, or a reserved domain (the same answer for both)
OVER_CAP = "over-cap"  # the partner holds the platform's maximum of unverified claims

# The verdict's reason when several domains have problems: the first of these that any has.
_PRECEDENCE = ("DomainConflict", "InvalidDomain", "DomainClaimLimit", "DomainClaimExpired", "DomainsPending")


@dataclass(frozen=True)
class Observed:
    """What a pass found for one listed custom domain; a field left empty was not looked at."""

    name: str
    invalid: str | None = None  # why it can never be claimed (a public suffix, a platform name)
    refused: str | None = None  # UNAVAILABLE or OVER_CAP: no claim of ours
    claim: Mapping[str, Any] | None = None  # our claim Secret, as read back
    check: dns.DomainCheck | None = None  # the resolver's answer, when a check was due
    check_error: str | None = None  # the resolver failed


@dataclass(frozen=True)
class DomainsPlan:
    """The outcome of a pass over the custom domains, and the writes it needs."""

    entries: list[dict[str, Any]]  # status.domains, in spec order
    verdict: Verdict
    verified: list[str]  # the domains to route
    mark_verified: list[Mapping[str, Any]] = field(default_factory=list)  # claims that no longer expire
    release: list[Mapping[str, Any]] = field(default_factory=list)  # claims never verified in time
    checks: list[tuple[str, str]] = field(default_factory=list)  # (domain, verified|pending|error)


def expired(previous: Mapping[str, Any] | None) -> bool:
    """A released claim stays released (not claimed again) until the partner re-adds the domain."""
    return bool(previous and previous.get("expiredAt"))


def check_due(previous: Mapping[str, Any] | None, due: bool) -> bool:
    """A domain is checked when its time has come, or when the status lists no records for it yet."""
    return due or not (previous and previous.get("records"))


def claim_token(claim: Mapping[str, Any]) -> str:
    """The TXT challenge the customer publishes, from the claim Secret as the API server returns it."""
    return base64.b64decode(claim["data"]["token"]).decode()


def decide(observed: Sequence[Observed], previous: Sequence[Mapping[str, Any]], host: str,
           config: OperatorConfig, now: datetime.datetime) -> DomainsPlan:
    """Status entries, claim writes and verdict for the domains observed (spec order).

    A verified domain's claim is marked (it no longer expires); a claim never verified within the
    claim TTL is released, checked or not (holding a domain needs proof of control).
    """
    before = {e.get("name"): e for e in previous}
    entries: list[dict[str, Any]] = []
    problems: list[tuple[str, str]] = []  # (reason, what to say)
    mark_verified: list[Mapping[str, Any]] = []
    release: list[Mapping[str, Any]] = []
    checks: list[tuple[str, str]] = []
    for seen in observed:
        domain, old = seen.name, before.get(seen.name)
        if seen.invalid:
            entries.append({"name": domain, "verified": False, "records": [], "message": seen.invalid})
            problems.append(("InvalidDomain", f"{domain}: invalid"))
            continue
        if expired(old):
            entries.append(dict(old or {}))
            problems.append(("DomainClaimExpired", f"{domain}: claim expired"))
            continue
        if seen.refused == OVER_CAP:
            entries.append(dns.over_cap_entry(domain, config.max_pending_domains))
            problems.append(("DomainClaimLimit", f"{domain}: over the limit of unverified domains"))
            continue
        if seen.claim is None:
            entries.append({"name": domain, "verified": False, "records": [],
                            "message": f"{admission.unavailable_domain_message(domain)}: "
                                       f"{admission.UNAVAILABLE_DOMAIN_HINT}"})
            problems.append(("DomainConflict", f"{domain}: claimed elsewhere"))
            continue
        entry, problem = _checked_entry(seen, seen.claim, old, host, config, now, checks)
        if entry.get("verified"):
            if dns.CLAIM_VERIFIED_ANNOTATION not in (seen.claim["metadata"].get("annotations") or {}):
                mark_verified.append(seen.claim)
        elif dns.claim_expired(seen.claim, now, config.domain_claim_ttl_seconds):
            release.append(seen.claim)
            entry = dns.expired_entry(domain, now, config.domain_claim_ttl_seconds)
            problem = ("DomainClaimExpired", f"{domain}: claim expired")
        entries.append(entry)
        if problem is not None:
            problems.append(problem)
    verified = [e["name"] for e in entries if e.get("verified")]
    return DomainsPlan(entries, _verdict(observed, problems, len(verified)), verified, mark_verified, release, checks)


def _checked_entry(seen: Observed, claim: Mapping[str, Any], old: Mapping[str, Any] | None, host: str,
                   config: OperatorConfig, now: datetime.datetime, checks: list[tuple[str, str]]
                   ) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """The entry of a domain we hold a claim on: from the check made now, else as the status had it."""
    domain = seen.name
    if seen.check_error is not None:
        checks.append((domain, "error"))
        kept = dict(old) if old else {"name": domain, "verified": False,
                                      "records": list(dns.instructions(domain, host, claim_token(claim)))}
        kept["message"] = f"could not check: {seen.check_error}"
        return kept, ("DomainsPending", f"{domain}: check failed")
    if seen.check is None:
        entry = dict(old or {})  # not due for a check yet: keep what we know
    else:
        state = dns.next_state(domain, host, claim_token(claim), seen.check, old, now, config.domain_grace_seconds)
        checks.append((domain, "verified" if state.verified else "pending"))
        entry = state.as_status()
    return entry, None if entry.get("verified") else ("DomainsPending", f"{domain}: pending")


def _verdict(observed: Sequence[Observed], problems: list[tuple[str, str]], verified: int) -> Verdict:
    if not observed:
        return Verdict(DOMAINS_VERIFIED, "True", "NoCustomDomains", "the tenant has no custom domains")
    if problems:
        reason = min((why for why, _ in problems), key=_PRECEDENCE.index)
        return Verdict(DOMAINS_VERIFIED, "False", reason,
                       "; ".join(what for _, what in problems) + ": see status.domains for the records to create")
    return Verdict(DOMAINS_VERIFIED, "True", "Verified", f"{verified} custom domain(s) verified")
