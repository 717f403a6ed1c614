"""A tenant's custom domains, decided from what one pass observed (pure).

For each listed domain in turn, handlers/dnsflow gathers (its claim, created then read back; the
resolver's answer when a check is due), `decide` turns that and its previous status entry into its
entry, its claim's writes and the check to schedule, and dnsflow makes those writes before the next
domain; `outcome` then gives the status entries and the DomainsVerified verdict.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
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
class Decision:
    """One domain's outcome in a pass, and the writes it needs (made before the next domain's claim:
    a claim marked verified or released frees a place under the partner's limit for the next)."""

    entry: dict[str, Any]  # its status.domains entry
    problem: tuple[str, str] | None = None  # (reason, what to say)
    mark_verified: Mapping[str, Any] | None = None  # a claim that no longer expires
    release: Mapping[str, Any] | None = None  # a claim never verified in time
    check: str | None = None  # verified, pending or error: the result of a check made in this pass


@dataclass(frozen=True)
class Outcome:
    """The custom domains of a tenant after a pass."""

    entries: list[dict[str, Any]]  # status.domains, in spec order
    verdict: Verdict
    verified: list[str]  # the domains to route


def expired(previous: Mapping[str, Any] | None) -> bool:
    """A released claim stays released (not claimed again) until the partner re-adds the domain."""
    return bool(previous and previous.get("expiredAt"))


def check_due(previous: Mapping[str, Any] | None, due: bool) -> bool:
    """A domain is checked when its time has come, or when the status lists no records for it yet."""
    return due or not (previous and previous.get("records"))


def claim_token(claim: Mapping[str, Any]) -> str:
    """The TXT challenge the customer publishes, from the claim Secret as the API server returns it."""
    return base64.b64decode(claim["data"]["token"]).decode()


def decide(seen: Observed, old: Mapping[str, Any] | None, host: str, config: OperatorConfig,
           now: datetime.datetime) -> Decision:
    """One domain's entry and claim writes, from what was observed and its previous entry `old`.

    A verified domain's claim is marked (it no longer expires); a claim never verified within the
    claim TTL is released, checked or not (holding a domain needs proof of control).
    """
    domain = seen.name
    if seen.invalid:
        return Decision({"name": domain, "verified": False, "records": [], "message": seen.invalid},
                        ("InvalidDomain", f"{domain}: invalid"))
    if expired(old):
        return Decision(dict(old or {}), ("DomainClaimExpired", f"{domain}: claim expired"))
    if seen.refused == OVER_CAP:
        return Decision(dns.over_cap_entry(domain, config.max_pending_domains),
                        ("DomainClaimLimit", f"{domain}: over the limit of unverified domains"))
    claim = seen.claim
    if claim is None:
        return Decision({"name": domain, "verified": False, "records": [],
                         "message": f"{admission.unavailable_domain_message(domain)}: "
                                    f"{admission.UNAVAILABLE_DOMAIN_HINT}"},
                        ("DomainConflict", f"{domain}: claimed elsewhere"))
    checked = _checked(seen, claim, old, host, config, now)
    if checked.entry.get("verified"):
        marked = dns.CLAIM_VERIFIED_ANNOTATION in (claim["metadata"].get("annotations") or {})
        return checked if marked else replace(checked, mark_verified=claim)
    if dns.claim_expired(claim, now, config.domain_claim_ttl_seconds):
        return replace(checked, entry=dns.expired_entry(domain, now, config.domain_claim_ttl_seconds),
                       problem=("DomainClaimExpired", f"{domain}: claim expired"), release=claim)
    return checked


def _checked(seen: Observed, claim: Mapping[str, Any], old: Mapping[str, Any] | None, host: str,
             config: OperatorConfig, now: datetime.datetime) -> Decision:
    """The entry of a domain we hold a claim on: from the check made now, else as the status had it."""
    domain = seen.name
    if seen.check_error is not None:
        kept = dict(old) if old else {"name": domain, "verified": False,
                                      "records": list(dns.instructions(domain, host, claim_token(claim)))}
        kept["message"] = f"could not check: {seen.check_error}"
        return Decision(kept, ("DomainsPending", f"{domain}: check failed"), check="error")
    if seen.check is None:
        entry, check = dict(old or {}), None  # not due for a check yet: keep what we know
    else:
        state = dns.next_state(domain, host, claim_token(claim), seen.check, old, now, config.domain_grace_seconds)
        entry, check = state.as_status(), "verified" if state.verified else "pending"
    return Decision(entry, None if entry.get("verified") else ("DomainsPending", f"{domain}: pending"), check=check)


def outcome(decisions: Sequence[Decision]) -> Outcome:
    """The status entries, the DomainsVerified verdict and the domains to route."""
    entries = [d.entry for d in decisions]
    verified = [e["name"] for e in entries if e.get("verified")]
    problems = [d.problem for d in decisions if d.problem is not None]
    if not decisions:
        verdict = Verdict(DOMAINS_VERIFIED, "True", "NoCustomDomains", "the tenant has no custom domains")
    elif problems:
        reason = min((why for why, _ in problems), key=_PRECEDENCE.index)
        verdict = Verdict(DOMAINS_VERIFIED, "False", reason,
                          "; ".join(what for _, what in problems) + ": see status.domains for the records to create")
    else:
        verdict = Verdict(DOMAINS_VERIFIED, "True", "Verified", f"{len(verified)} custom domain(s) verified")
    return Outcome(entries, verdict, verified)
