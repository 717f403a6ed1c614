"""DNS decisions (pure): records, ownership marks, conflicts, custom-domain rules and verification states.

Tested here:
- a free name is taken with its owner mark first; an owned name is updated; an unchanged one is not
- a name with records but without our mark is a conflict and never touched
- withdrawing deletes only what carries our mark
- custom domains: platform names and public suffixes refused (real public-suffix list)
- pending -> verified -> failing (route kept during the grace period) -> withdrawn
- routes exist only for verified domains; certificates only with cert-manager
- a claim never verified expires after the TTL (by its creation time); a verified one never does;
  only never-verified claims count as pending
"""

from __future__ import annotations

import datetime

from publicsuffixlist import PublicSuffixList

from tenantry.domain import dns
from tenantry.domain.dns import DomainCheck, Record

OWNER, TENANT = "tenantry", "partner-acme/mustermann"
HOST = "mustermann.platform.test"
MARK = dns.OWNER_PREFIX + HOST


def desired(target: str = "ingress.platform.test") -> list[Record]:
    return dns.platform_records("mustermann", "platform.test", target, 300)


def test_platform_record_is_a_cname_or_an_a_record() -> None:
    assert desired()[0] == Record(HOST, "CNAME", ("ingress.platform.test",), 300)
    assert dns.platform_records("m", "platform.test", "203.0.113.7", 60)[0].type == "A"


def test_free_name_is_taken_mark_first() -> None:
    plan = dns.plan_changes(desired(), {}, OWNER, TENANT)
    assert [r.name for r in plan.upserts] == [MARK, HOST]
    assert plan.upserts[0].values == (dns.owner_value(OWNER, TENANT),)
    assert not plan.conflicts and not plan.deletes


def test_owned_and_unchanged_name_needs_no_write() -> None:
    live = {HOST: [desired()[0]], MARK: [Record(MARK, "TXT", (dns.owner_value(OWNER, TENANT),), 300)]}
    assert dns.plan_changes(desired(), live, OWNER, TENANT) == dns.DnsPlan()


def test_owned_name_is_updated() -> None:
    live = {HOST: [desired()[0]], MARK: [Record(MARK, "TXT", (dns.owner_value(OWNER, TENANT),), 300)]}
    plan = dns.plan_changes(desired("lb.platform.test"), live, OWNER, TENANT)
    assert [r.values for r in plan.upserts] == [("lb.platform.test",)]


def test_foreign_record_is_a_conflict_and_left_alone() -> None:
    live = {HOST: [Record(HOST, "A", ("198.51.100.1",), 300)]}
    plan = dns.plan_changes(desired(), live, OWNER, TENANT)
    assert plan.conflicts == (HOST,) and not plan.upserts and not plan.deletes
    other_owner = {HOST: [desired()[0]], MARK: [Record(MARK, "TXT", (dns.owner_value("other", TENANT),), 300)]}
    assert dns.plan_changes(desired(), other_owner, OWNER, TENANT).conflicts == (HOST,)


def test_withdrawing_deletes_only_our_records() -> None:
    ours = {HOST: [desired()[0]], MARK: [Record(MARK, "TXT", (dns.owner_value(OWNER, TENANT),), 300)]}
    plan = dns.plan_changes([], ours, OWNER, TENANT, previously_ours=[HOST])
    assert {r.name for r in plan.deletes} == {HOST, MARK}
    foreign = {HOST: [desired()[0]]}
    assert dns.plan_changes([], foreign, OWNER, TENANT, previously_ours=[HOST]).deletes == ()


PSL = PublicSuffixList()


def problem(domain: str) -> str | None:
    return dns.domain_problem(domain, "platform.test", PSL.publicsuffix(domain), PSL.is_public(domain))


def test_custom_domain_rules() -> None:
    assert problem("ki.mustermann.de") is None
    assert "platform domain" in (problem("shop.platform.test") or "")
    assert "public suffix" in (problem("co.uk") or "")
    assert "public suffix" in (problem("de") or "")


T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def state(check: DomainCheck, previous: dict | None, minutes: float, grace: float = 3600):
    return dns.next_state("ki.mustermann.de", HOST, "tok", check, previous, T0 + datetime.timedelta(minutes=minutes),
                          grace)


def test_domain_lifecycle_pending_verified_failing_withdrawn() -> None:
    pending = state(DomainCheck(True, False), None, 0)
    assert not pending.verified and "TXT record _tenantry-challenge.ki.mustermann.de" in pending.message
    assert pending.records == ({"type": "CNAME", "name": "ki.mustermann.de", "value": HOST},
                               {"type": "TXT", "name": "_tenantry-challenge.ki.mustermann.de", "value": "tok"})
    verified = state(DomainCheck(True, True), pending.as_status(), 5)
    assert verified.verified and verified.verified_at == "2026-01-01T00:05:00Z"
    again = state(DomainCheck(True, True), verified.as_status(), 50)
    assert again.verified_at == "2026-01-01T00:05:00Z"  # unchanged: no status write
    failing = state(DomainCheck(False, True), verified.as_status(), 60)
    assert failing.verified and failing.failing_since == "2026-01-01T01:00:00Z" and "grace" in failing.message
    still = state(DomainCheck(False, True), failing.as_status(), 100)
    assert still.verified and still.failing_since == failing.failing_since
    withdrawn = state(DomainCheck(False, True), still.as_status(), 121)
    assert not withdrawn.verified and "withdrawn" in withdrawn.message and "CNAME" in withdrawn.message


def test_recovery_within_grace_clears_the_failure() -> None:
    verified = state(DomainCheck(True, True), None, 0)
    failing = state(DomainCheck(False, False), verified.as_status(), 10)
    healed = state(DomainCheck(True, True), failing.as_status(), 20)
    assert healed.verified and healed.failing_since is None and healed.verified_at == verified.verified_at


def meta(name: str, namespace: str) -> dict:
    return {"name": name, "namespace": namespace, "labels": {}, "annotations": {}}


def test_routes_only_for_verified_domains() -> None:
    assert dns.route_manifests(meta, "tenant-m", [], "frontend", 80, "le", True) == []
    objects = dns.route_manifests(meta, "tenant-m", ["ki.mustermann.de"], "frontend", 80, "le", True)
    assert [o["kind"] for o in objects] == ["Ingress", "Certificate"]
    assert objects[0]["spec"]["rules"][0]["host"] == "ki.mustermann.de"
    assert objects[1]["spec"]["issuerRef"] == {"name": "le", "kind": "ClusterIssuer"}
    without_cert_manager = dns.route_manifests(meta, "tenant-m", ["ki.mustermann.de"], "frontend", 80, "le", False)
    assert [o["kind"] for o in without_cert_manager] == ["Ingress"]


def test_claim_names_are_stable_and_distinct() -> None:
    assert dns.claim_name("a.de") == dns.claim_name("a.de") != dns.claim_name("b.de")
    assert len(dns.claim_name("x" * 200 + ".de")) <= 63


def _claim_secret(created: str, verified: bool = False) -> dict:
    annotations = {dns.CLAIMED_DOMAIN_ANNOTATION: "ki.mustermann.de"}
    if verified:
        annotations[dns.CLAIM_VERIFIED_ANNOTATION] = "2026-01-02T00:00:00Z"
    return {"metadata": {"name": "domain-x", "creationTimestamp": created, "annotations": annotations}}


def test_claims_expire_unless_verified() -> None:
    now = datetime.datetime(2026, 1, 8, 0, 0, tzinfo=datetime.UTC)
    week = 7 * 86400
    assert dns.claim_expired(_claim_secret("2026-01-01T00:00:00Z"), now, week)
    assert not dns.claim_expired(_claim_secret("2026-01-01T00:00:01Z"), now, week)
    assert not dns.claim_expired(_claim_secret("2025-01-01T00:00:00Z", verified=True), now, week)
    claims = [_claim_secret("2026-01-01T00:00:00Z"), _claim_secret("2026-01-01T00:00:00Z", verified=True),
              {"metadata": {"name": "other", "annotations": {}}}]
    assert dns.pending_claims(claims) == 1
    entry = dns.expired_entry("ki.mustermann.de", now, week)
    assert entry["expiredAt"] == "2026-01-08T00:00:00Z" and not entry["verified"]
    assert "within 7 day(s)" in entry["message"] and "remove it from spec.domains" in entry["message"]
