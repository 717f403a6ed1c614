"""A pass over a tenant's custom domains, decided without an API server or a resolver
(domain/domains.decide per domain and domains.outcome; handlers/dnsflow gathers what each takes and
writes what it returns, one domain after the other).

Tested here:
- no domains: NoCustomDomains; all verified: Verified, each routed, each claim marked once
- an invalid domain, one claimed elsewhere (or reserved) and one over the partner's limit each get
  their entry and reason, and hold up no other domain
- a domain not due for a check keeps its entry as the status had it (no check counted)
- a resolver failure keeps what was known (a verified domain stays routed) and says so
- a claim never verified within the TTL is released and its entry says how to claim it again;
  an expired entry stays expired without a claim; a verified claim never expires
- the verdict's reason follows a fixed precedence and does not depend on the words of a domain name
  (a pending "invalid.example.com" is DomainsPending, not InvalidDomain)
- when a check is due (check_due), and the claim's token as the API server returns it
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from tenantry.domain import dns, domains
from tenantry.domain.config import OperatorConfig
from tenantry.domain.dns import DomainCheck
from tenantry.domain.domains import OVER_CAP, UNAVAILABLE, Observed
from tenantry.domain.status import Verdict

HOST = "mustermann.platform.test"
NOW = datetime.datetime(2026, 1, 8, 0, 0, tzinfo=datetime.UTC)
CONFIG = OperatorConfig(domain_claim_ttl_seconds=7 * 86400, max_pending_domains=3)
BOTH = DomainCheck(cname_ok=True, txt_ok=True)
NEITHER = DomainCheck(cname_ok=False, txt_ok=False)


def claim(domain: str, created: str = "2026-01-07T00:00:00Z", verified: bool = False) -> dict[str, Any]:
    annotations = {dns.CLAIMED_DOMAIN_ANNOTATION: domain}
    if verified:
        annotations[dns.CLAIM_VERIFIED_ANNOTATION] = "2026-01-02T00:00:00Z"
    return {"metadata": {"name": dns.claim_name(domain), "creationTimestamp": created, "annotations": annotations,
                         "resourceVersion": "7"},
            "data": {"token": base64.b64encode(b"tenantry-tok").decode()}}


@dataclass
class Pass:
    """What the decisions of one pass add up to, as dnsflow uses them."""

    entries: list[dict[str, Any]]
    verdict: Verdict
    verified: list[str]
    mark_verified: list[Mapping[str, Any]]
    release: list[Mapping[str, Any]]
    checks: list[tuple[str, str]]


def decide(observed: list[Observed], previous: list[dict[str, Any]] | None = None) -> Pass:
    before = {e["name"]: e for e in previous or []}
    decisions = [domains.decide(seen, before.get(seen.name), HOST, CONFIG, NOW) for seen in observed]
    out = domains.outcome(decisions)
    return Pass(out.entries, out.verdict, out.verified,
                [d.mark_verified for d in decisions if d.mark_verified is not None],
                [d.release for d in decisions if d.release is not None],
                [(seen.name, d.check) for seen, d in zip(observed, decisions, strict=True) if d.check is not None])


def test_no_domains() -> None:
    plan = decide([])
    assert (plan.verdict.status, plan.verdict.reason) == ("True", "NoCustomDomains")
    assert plan.entries == [] and plan.verified == [] and not plan.mark_verified and not plan.release


def test_verified_domains_are_routed_and_their_claims_marked_once() -> None:
    fresh, marked = claim("a.example.com"), claim("b.example.com", verified=True)
    plan = decide([Observed("a.example.com", claim=fresh, check=BOTH), Observed("b.example.com", claim=marked,
                                                                               check=BOTH)])
    assert (plan.verdict.status, plan.verdict.reason) == ("True", "Verified")
    assert plan.verdict.message == "2 custom domain(s) verified"
    assert plan.verified == ["a.example.com", "b.example.com"]
    assert plan.mark_verified == [fresh]  # the other claim already carries its mark
    assert plan.checks == [("a.example.com", "verified"), ("b.example.com", "verified")]
    assert plan.entries[0]["records"][1] == {"type": "TXT", "name": "_tenantry-challenge.a.example.com",
                                             "value": "tenantry-tok"}


def test_problems_of_one_domain_hold_up_no_other() -> None:
    plan = decide([Observed("co.uk", invalid="co.uk is a public suffix"),
                   Observed("taken.example.com", refused=UNAVAILABLE),
                   Observed("many.example.com", refused=OVER_CAP),
                   Observed("ok.example.com", claim=claim("ok.example.com"), check=BOTH)])
    assert plan.verified == ["ok.example.com"]
    by_name = {e["name"]: e for e in plan.entries}
    assert by_name["co.uk"]["message"] == "co.uk is a public suffix"
    assert "not available on this platform" in by_name["taken.example.com"]["message"]
    assert "already hold 3 unverified custom domain(s)" in by_name["many.example.com"]["message"]
    assert plan.verdict.status == "False" and plan.verdict.reason == "DomainConflict"
    assert plan.verdict.message == ("co.uk: invalid; taken.example.com: claimed elsewhere; many.example.com: over "
                                    "the limit of unverified domains: see status.domains for the records to create")
    assert [e["name"] for e in plan.entries] == ["co.uk", "taken.example.com", "many.example.com", "ok.example.com"]


@pytest.mark.parametrize(("observed", "reason"), [
    ([Observed("x.example.com", invalid="bad"), Observed("y.example.com", refused=OVER_CAP)], "InvalidDomain"),
    ([Observed("y.example.com", refused=OVER_CAP), Observed("p.example.com", claim=claim("p.example.com"),
                                                            check=NEITHER)], "DomainClaimLimit"),
    ([Observed("p.example.com", claim=claim("p.example.com"), check=NEITHER)], "DomainsPending"),
    # The words of a domain name do not choose the reason (they did, by substring, before).
    ([Observed("invalid.example.com", claim=claim("invalid.example.com"), check=NEITHER)], "DomainsPending"),
    ([Observed("elsewhere.example.com", claim=claim("elsewhere.example.com"), check=NEITHER)], "DomainsPending"),
    ([Observed("expired.example.com", claim=claim("expired.example.com"), check_error="timeout")], "DomainsPending"),
])
def test_the_reason_follows_a_fixed_precedence(observed: list[Observed], reason: str) -> None:
    assert decide(observed).verdict.reason == reason


def test_a_domain_not_due_keeps_its_entry() -> None:
    before = {"name": "a.example.com", "verified": True, "records": [{"type": "CNAME"}], "message": "verified"}
    plan = decide([Observed("a.example.com", claim=claim("a.example.com", verified=True))], [before])
    assert plan.entries == [before] and plan.verified == ["a.example.com"] and plan.checks == []
    assert plan.verdict.reason == "Verified"


def test_a_resolver_failure_keeps_what_was_known() -> None:
    before = {"name": "a.example.com", "verified": True, "records": [{"type": "CNAME"}], "message": "verified"}
    plan = decide([Observed("a.example.com", claim=claim("a.example.com", verified=True), check_error="SERVFAIL")],
                  [before])
    assert plan.verified == ["a.example.com"]  # the route stays while the resolver fails
    assert plan.entries[0]["message"] == "could not check: SERVFAIL"
    assert plan.checks == [("a.example.com", "error")]
    assert (plan.verdict.reason, plan.verdict.message) == (
        "DomainsPending", "a.example.com: check failed: see status.domains for the records to create")
    first = decide([Observed("n.example.com", claim=claim("n.example.com"), check_error="SERVFAIL")])
    assert first.entries[0]["records"][0] == {"type": "CNAME", "name": "n.example.com", "value": HOST}


def test_a_claim_never_verified_in_time_is_released() -> None:
    old = claim("late.example.com", created="2026-01-01T00:00:00Z")
    plan = decide([Observed("late.example.com", claim=old, check=NEITHER)])
    assert plan.release == [old] and plan.verified == []
    assert plan.entries[0]["expiredAt"] == "2026-01-08T00:00:00Z"
    assert "remove it from spec.domains" in plan.entries[0]["message"]
    assert plan.verdict.reason == "DomainClaimExpired"
    # unverifiable (the resolver failing) does not keep a claim either
    assert decide([Observed("late.example.com", claim=old, check_error="timeout")]).release == [old]
    # the next pass: the entry stays expired, and nothing was claimed again
    again = decide([Observed("late.example.com")], plan.entries)
    assert again.entries == plan.entries and again.release == [] and again.verdict.reason == "DomainClaimExpired"


def test_a_verified_claim_never_expires() -> None:
    old = claim("kept.example.com", created="2025-01-01T00:00:00Z", verified=True)
    failing = decide([Observed("kept.example.com", claim=old, check=NEITHER)],
                     [{"name": "kept.example.com", "verified": True, "verifiedAt": "2025-01-02T00:00:00Z",
                       "records": [{"type": "CNAME"}], "message": "verified"}])
    assert failing.release == [] and failing.verified == ["kept.example.com"]  # within the grace period
    assert "re-verification failing" in failing.entries[0]["message"]


def test_when_a_check_is_due() -> None:
    assert domains.check_due(None, due=False)  # never checked: the records to create are not listed yet
    assert domains.check_due({"records": []}, due=False)
    assert not domains.check_due({"records": [{"type": "CNAME"}]}, due=False)
    assert domains.check_due({"records": [{"type": "CNAME"}]}, due=True)
    assert domains.expired({"expiredAt": "2026-01-08T00:00:00Z"}) and not domains.expired({}) \
        and not domains.expired(None)
    assert domains.claim_token(claim("a.example.com")) == "tenantry-tok"
