"""The end of a pass (domain/conclusion.conclude), without an API server.

Tested here:
- a provisioned, healthy tenant is Ready, its status patch carries Ready first and every aspect,
  and its metric facts say ready;
- a second pass over the status the first one wrote writes nothing (None), the zero-write rule;
- a tenant refused outside a partner namespace gets Ready False and no facts;
- a tenant of a partner that is not provisioned (waiting for a place under the cap) earns nothing
  in its facts, whatever price it names; once provisioned it does;
- objects another writer keeps changing make ManagedObjectsInSync False, naming them;
- a provisioned tenant's currency stays the one it was provisioned in, with a warning, and its
  facts count in that currency;
- with an SMTP relay the welcome is due once the tenant serves; without one it never is;
- a failing aspect's reason becomes Ready's, and the conclusion keeps the Ready before the pass;
- a tenant on trial is due a pass when its trial ends.
"""

from __future__ import annotations

import datetime
from typing import Any

from tenantry.domain.conclusion import Found, Mail, conclude
from tenantry.domain.contest import Contest
from tenantry.domain.status import BRANDING_READY, DNS_READY, FEATURES_READY, NAMESPACE_READY, READY, Verdict

STARTED = datetime.datetime(2026, 12, 3, 8, 0, 0, tzinfo=datetime.UTC)
NOW = STARTED + datetime.timedelta(seconds=1)
SPEC = {"company": "Acme GmbH", "contact": {"name": "Ada", "email": "ada@acme.example"},
        "plan": {"featureSet": "business", "seats": 10, "price": {"monthly": 900, "currency": "EUR"}}}


def _tenant(status: dict[str, Any] | None = None, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "acme", "namespace": "partner-p", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "generation": 2, "uid": "u-1"},
            "spec": spec or SPEC, "status": status or {}}


def _healthy(**overrides: Any) -> Found:
    aspects = [Verdict(NAMESPACE_READY, "True", "Provisioned", "namespace tenant-acme"),
               Verdict(FEATURES_READY, "True", "Resolved", "plan business"),
               Verdict(BRANDING_READY, "True", "Resolved", "default"),
               Verdict(DNS_READY, "True", "Published", "acme.platform.test")]
    fields = {"partner": "p", "state": "Active", "namespace": "tenant-acme", "url": "https://acme.platform.test",
              "commissionRate": 0.2}
    return Found(aspects=overrides.pop("aspects", aspects), fields=overrides.pop("fields", fields), **overrides)


def _conclude(body: dict[str, Any], found: Found, mail: Mail | None = None, now: datetime.datetime = NOW):
    return conclude(body, found, Contest(), mail or Mail(), 0.2, STARTED, now)


def _condition(patch: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in patch["conditions"] if c["type"] == kind)


def test_a_healthy_tenant_is_ready_with_every_aspect_in_its_status_and_ready_facts() -> None:
    decided = _conclude(_tenant(), _healthy())
    assert decided.ready.ok and decided.ready.reason == "Provisioned"
    assert decided.status_patch is not None
    assert decided.status_patch["conditions"][0]["type"] == READY
    assert {c["type"] for c in decided.status_patch["conditions"]} >= {NAMESPACE_READY, FEATURES_READY,
                                                                        BRANDING_READY, DNS_READY}
    assert _condition(decided.status_patch, READY)["lastTransitionTime"] == "2026-12-03T08:00:01Z"
    assert decided.status_patch["namespace"] == "tenant-acme"
    assert decided.facts is not None and decided.facts.ready
    assert decided.previous_ready is None


def test_a_second_pass_over_what_the_first_wrote_writes_nothing() -> None:
    first = _conclude(_tenant(), _healthy())
    assert first.status_patch is not None
    written = {k: v for k, v in first.status_patch.items() if v is not None}
    # An hour later: no transition time or checklist stamp is written again for an unchanged tenant.
    second = _conclude(_tenant(status=written), _healthy(), now=NOW + datetime.timedelta(hours=1))
    assert second.status_patch is None
    assert second.previous_ready == ("True", "Provisioned")


def test_a_refused_tenant_is_not_ready_and_has_no_facts() -> None:
    refusal = Verdict(NAMESPACE_READY, "False", "NotInPartnerNamespace", "partner-p is not a partner namespace")
    decided = _conclude(_tenant(), Found(aspects=[refusal], fields={"commissionRate": 0.2}))
    assert not decided.ready.ok and decided.ready.reason == "NotInPartnerNamespace"
    assert decided.facts is None
    assert decided.status_patch is not None and _condition(decided.status_patch, READY)["status"] == "False"


def test_a_tenant_not_provisioned_earns_nothing_whatever_its_price() -> None:
    waiting = Verdict(NAMESPACE_READY, "False", "PartnerTenantLimit", "partner 'p' already has the 2 tenants ...")
    priced = {**SPEC, "plan": {**SPEC["plan"], "price": {"monthly": 10_000_000, "currency": "EUR"}}}
    decided = _conclude(_tenant(spec=priced), Found(aspects=[waiting], fields={"partner": "p", "commissionRate": 0.2}))
    assert decided.facts is not None and decided.facts.mrr == 0.0 and decided.facts.state == "Active"
    assert _conclude(_tenant(spec=priced), _healthy()).facts.mrr == 10_000_000


def test_contested_objects_are_named_in_managed_objects_in_sync() -> None:
    found = _healthy(contested=["ResourceQuota tenantry-quota (changed by quota-bot)"])
    decided = _conclude(_tenant(), found)
    in_sync = _condition(decided.status_patch, "ManagedObjectsInSync")
    assert in_sync["status"] == "False" and in_sync["reason"] == "ContestedByOtherWriter"
    assert "ResourceQuota tenantry-quota (changed by quota-bot)" in in_sync["message"]


def test_the_currency_stays_the_one_the_tenant_was_provisioned_in() -> None:
    asks_usd = {**SPEC, "plan": {**SPEC["plan"], "price": {"monthly": 900, "currency": "USD"}}}
    decided = _conclude(_tenant(status={"currency": "EUR"}, spec=asks_usd), _healthy())
    assert decided.status_patch["currency"] == "EUR"
    assert any(c["reason"] == "CurrencyChangeIgnored" for c in decided.status_patch["conditions"])
    assert decided.facts.currency == "EUR"


def test_the_welcome_is_due_once_the_tenant_serves_and_only_with_a_relay() -> None:
    with_relay = _conclude(_tenant(), _healthy(), Mail(configured=True, domain="platform.test"))
    assert with_relay.welcome_due
    assert with_relay.status_patch["welcome"]["dueSince"], "the welcome's record is not in the status"
    without = _conclude(_tenant(), _healthy(), Mail(configured=False))
    assert not without.welcome_due
    assert _condition(without.status_patch, "WelcomeSent")["reason"] == "SmtpNotConfigured"


def test_a_failing_aspect_gives_ready_its_reason() -> None:
    found = _healthy()
    found.aspects[3] = Verdict(DNS_READY, "False", "DNSConflict", "acme.platform.test is held by another tenant")
    previous = {"conditions": [{"type": READY, "status": "True", "reason": "Provisioned", "message": "",
                                "lastTransitionTime": "2026-12-01T00:00:00Z", "observedGeneration": 2}]}
    decided = _conclude(_tenant(status=previous), found)
    assert (decided.ready.status, decided.ready.reason) == ("False", "DNSConflict")
    assert decided.previous_ready == ("True", "Provisioned")
    assert decided.facts is not None and not decided.facts.ready


def test_a_trial_tenant_is_due_a_pass_when_its_trial_ends() -> None:
    def trial(ends: str) -> dict[str, Any]:
        return {**SPEC, "state": "Trial", "trial": {"ends": ends}}
    assert _conclude(_tenant(spec=trial("2026-02-01T00:00:00Z")), _healthy()).trial_ends == \
        datetime.datetime(2026, 2, 1, tzinfo=datetime.UTC)
    # At most 90 days from the trial clock (here the Tenant's creation, 1 Jan), whatever it asks.
    assert _conclude(_tenant(spec=trial("2027-01-01T00:00:00Z")), _healthy()).trial_ends == \
        datetime.datetime(2026, 4, 1, tzinfo=datetime.UTC)
    assert _conclude(_tenant(), _healthy()).trial_ends is None
