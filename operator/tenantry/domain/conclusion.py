"""The end of a reconcile pass, decided in one pure function (no I/O, tested without an API server).

A pass gathers from memory and writes the namespace, its objects and DNS (handlers/reconcile.py),
collecting what it found in a `Found`. `conclude` turns that, the Tenant as read and the time into
everything that follows: the Ready verdict, the welcome e-mail's decision, the status to write
(None when the live one says it all), the facts for the metrics and when a pass is due next.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tenantry.api.tenant import TenantSpec
from tenantry.domain import lifecycle, status, tenantpass, welcome
from tenantry.domain.children import Manifest
from tenantry.domain.contest import Contest
from tenantry.domain.status import Verdict
from tenantry.domain.tenantpass import Resolved
from tenantry.domain.usage import TenantFacts, tenant_facts


@dataclass
class Found:
    """What the I/O part of a pass found and did: the verdicts and status fields for the decision."""

    aspects: list[Verdict]  # what makes Ready
    warnings: list[Verdict] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    resolved: Resolved | None = None
    quota: Manifest | None = None  # the live ResourceQuota, for the metrics
    trial: Verdict | None = None  # a tenant on trial: running, or ended
    trial_clock: str | None = None  # when its trial clock started (lifecycle.trial_clock)
    contested: list[str] = field(default_factory=list)  # objects left alone: another writer keeps changing them


@dataclass(frozen=True)
class Mail:
    """What the welcome e-mail's decision needs from the operator's settings."""

    configured: bool = False  # an SMTP relay is set
    resend_cooldown: float = welcome.RESEND_COOLDOWN_SECONDS
    domain: str = ""  # the platform's domain (message ids)


@dataclass(frozen=True)
class Conclusion:
    ready: Verdict
    previous_ready: tuple[str, str] | None  # (status, reason) before this pass
    status_patch: dict[str, Any] | None  # the merge patch of the status, None: nothing to write
    facts: TenantFacts | None  # None while the tenant has no partner (refused outside one)
    welcome_due: bool  # the welcome e-mail is to be sent now (handlers/welcome)
    wake_at: datetime.datetime | None  # a pass is due then (a welcome retry or resend)
    trial_ends: datetime.datetime | None  # a pass is due then too: the trial ends


def conclude(body: Mapping[str, Any], found: Found, contest: Contest, mail: Mail, commission_rate: float,
             started: datetime.datetime, now: datetime.datetime) -> Conclusion:
    """Everything a pass decides once it has written the tenant's objects. `started`: when the
    pass began (the trial's end, the metrics' state); `now`: the conditions' transition time."""
    meta, spec, old_status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
    previous = next((c for c in old_status.get("conditions", []) if c.get("type") == status.READY), None)
    fields, warnings = dict(found.fields), list(found.warnings)
    provisioned = bool(fields.get("namespace"))
    if provisioned:
        warnings.append(tenantpass.in_sync(found.contested, contest))
    spec_for_facts, currency, currency_warning = tenantpass.billing_currency(spec, old_status, provisioned)
    if currency:
        fields["currency"] = currency
    if currency_warning is not None:
        warnings.append(currency_warning)
    warnings.append(tenantpass.usage_verdict(old_status))
    state = fields.get("state") or spec.get("state", "Active")
    ready = status.ready_verdict(found.aspects, state if state in ("Active", "Suspended", "Cancelled") else "Active",
                                 found.trial)
    decision, record = welcome_decision(body, ready, fields.get("state"), mail, now)
    if record is not None:
        fields["welcome"] = record
    verdicts = [ready, *found.aspects, *warnings, decision.verdict]
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    domains = fields.get("domains", old_status.get("domains", []))
    fields["onboarding"] = welcome.checklist(verdicts, domains, decision.verdict, decision.record,
                                             old_status.get("usage"), old_status.get("onboarding", []), stamp)
    patch = tenantpass.status_update(old_status, verdicts, fields, meta.get("generation", 0), stamp)
    facts = None
    clock = found.trial_clock or meta.get("creationTimestamp")
    if fields.get("partner"):
        features = found.resolved.features if found.resolved is not None else None
        facts = tenant_facts(meta["name"], fields["partner"], spec_for_facts, old_status.get("usage"),
                             features or {}, ready.ok, found.quota, {v.type: v.status for v in verdicts},
                             dns_conflict=any(v.reason == "DNSConflict" for v in found.aspects),
                             created=clock, commission=fields.get("commissionRate", commission_rate), now=started,
                             provisioned=provisioned)
    return Conclusion(ready, (previous["status"], previous["reason"]) if previous else None, patch, facts,
                      welcome_due=decision.due, wake_at=decision.wake_at,
                      trial_ends=lifecycle.trial_end_of(spec, clock))


def welcome_decision(body: Mapping[str, Any], ready: Verdict, state: str | None, mail: Mail,
                     now: datetime.datetime) -> tuple[welcome.Decision, dict[str, Any] | None]:
    """The welcome's decision, and status.welcome to write when this pass changes it (else None:
    once due, the record is the mailer's to write)."""
    meta, old_status = body["metadata"], body.get("status") or {}
    record = old_status.get("welcome")
    if record and record.get("refused"):
        spec = lifecycle.parse_tenant_spec(body.get("spec"))
        if isinstance(spec, TenantSpec):
            record = welcome.without_unlisted_refusals(record, welcome.recipients(spec))
    previous = next((c for c in old_status.get("conditions", []) if c.get("type") == status.READY), None)
    decision = welcome.decide(record, serving_now=welcome.serving(ready, state or ""),
                              serving_before=welcome.serving(previous, old_status.get("state")),
                              state=state or "", configured=mail.configured,
                              token=welcome.resend_token(meta.get("annotations")), uid=meta.get("uid", ""),
                              domain=mail.domain, now=now, cooldown=mail.resend_cooldown)
    old = old_status.get("welcome")
    if decision.record is None or decision.record == old:
        return decision, None
    return decision, welcome.replacing(old, decision.record)
