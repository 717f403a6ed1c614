"""Usage and revenue facts of a tenant, for metrics and reports (pure).

Usage arrives in `status.usage`, written by the platform's usage reporter; it is validated here
(the API server already refuses negative counts) so that an unknown feature is reported instead
of becoming an unbounded metric label.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tenantry.api.common import CURRENCIES
from tenantry.api.features import CORE_FEATURES, KNOWN_FEATURES
from tenantry.domain import quantity
from tenantry.domain.features import EffectiveFeature
from tenantry.domain.lifecycle import effective_state, trial_end_of

DEFAULT_COMMISSION_RATE = 0.20
# On a partner namespace, set by the platform team: the partner's own rate, e.g. "0.25".
COMMISSION_ANNOTATION = "tenantry.dev/commission-rate"
DEFAULT_LEVELS = (("Bronze", 0.0), ("Silver", 5_000.0), ("Gold", 20_000.0), ("Platinum", 50_000.0))


@dataclass(frozen=True)
class TenantFacts:
    """Everything the metrics say about one tenant."""

    tenant: str
    partner: str
    company: str
    plan: str
    state: str  # the state in effect (lifecycle.effective_state): an ended trial is Suspended
    seats: int
    mrr: float
    currency: str
    ready: bool
    active_users: int = 0
    requests: Mapping[str, int] = field(default_factory=dict)
    features: Mapping[str, EffectiveFeature] = field(default_factory=dict)
    quota_used: Mapping[str, float] = field(default_factory=dict)
    quota_hard: Mapping[str, float] = field(default_factory=dict)
    conditions: Mapping[str, str] = field(default_factory=dict)  # type -> True/False/Unknown
    dns_conflict: bool = False
    trial_ends: float | None = None  # seconds since the epoch, for a tenant on trial
    commission_rate: float = DEFAULT_COMMISSION_RATE  # the partner's share of the MRR

    @property
    def tier(self) -> str:
        """A bounded size class for dashboards: small, medium or large by licensed seats."""
        return "small" if self.seats < 50 else "medium" if self.seats < 500 else "large"

    @property
    def seat_utilisation(self) -> float:
        return self.active_users / self.seats if self.seats else 0.0


def usage_problems(usage: Mapping[str, Any] | None) -> list[str]:
    """What is wrong with a usage report (unknown features, impossible counts); empty when fine."""
    if not usage:
        return []
    problems = []
    unknown = sorted(set(usage.get("requests") or {}) - KNOWN_FEATURES)
    if unknown:
        problems.append(f"status.usage.requests has unknown feature(s) {', '.join(unknown)}; they are ignored")
    if not isinstance(usage.get("activeUsers", 0), int) or usage.get("activeUsers", 0) < 0:
        problems.append("status.usage.activeUsers must be a whole number of at least 0")
    return problems


def quota_numbers(quota: Mapping[str, Any] | None) -> tuple[dict[str, float], dict[str, float]]:
    """(used, hard) of CPU requests (cores) and pods from a live ResourceQuota's status."""
    status = (quota or {}).get("status") or {}
    pick = {"cpu": "requests.cpu", "pods": "pods"}

    def numbers(values: Mapping[str, str]) -> dict[str, float]:
        return {name: float(quantity.parse(values[key])) for name, key in pick.items() if key in values}
    return numbers(status.get("used") or {}), numbers(status.get("hard") or {})


def tenant_facts(tenant: str, partner: str, spec: Mapping[str, Any], usage: Mapping[str, Any] | None,
                 features: Mapping[str, EffectiveFeature], ready: bool, quota: Mapping[str, Any] | None,
                 conditions: Mapping[str, str] | None = None, dns_conflict: bool = False,
                 created: str | None = None, commission: float = DEFAULT_COMMISSION_RATE,
                 now: datetime.datetime | None = None, provisioned: bool = True) -> TenantFacts:
    """The facts of one tenant. `now` is the time of the pass: the state label is the state in
    effect then (lifecycle.effective_state: a trial past its end counts as Suspended); without it
    (no clock here) a trial counts as running. A tenant not `provisioned` (refused, or waiting for
    a place under the partner's cap) earns nothing yet: else a partner could add any number of
    Tenants it may not have, at any price, to its revenue, commission and level."""
    plan = spec.get("plan") or {}
    price = plan.get("price") or {}
    usage = usage or {}
    requests = {k: int(v) for k, v in (usage.get("requests") or {}).items()
                if k in CORE_FEATURES and isinstance(v, int) and v >= 0}
    active = usage.get("activeUsers", 0)
    used, hard = quota_numbers(quota)
    state = effective_state(spec, now, created) if now is not None else str(spec.get("state") or "Active")
    end = trial_end_of(spec, created)
    return TenantFacts(tenant=tenant, partner=partner, company=str(spec.get("company", "")),
                       plan=str(plan.get("featureSet", "")), state=state,
                       seats=int(plan.get("seats", 0)), mrr=float(price.get("monthly", 0.0)) if provisioned else 0.0,
                       currency=str(price.get("currency", "EUR")), ready=ready,
                       active_users=active if isinstance(active, int) and active >= 0 else 0,
                       requests=requests, features=dict(features), quota_used=used, quota_hard=hard,
                       conditions=dict(conditions or {}), dns_conflict=dns_conflict,
                       trial_ends=end.timestamp() if end is not None else None,
                       commission_rate=commission)


def parse_levels(text: str) -> tuple[tuple[str, float], ...]:
    """`Bronze=0,Silver=5000,...` -> levels, with a clear error for anything else."""
    levels = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, threshold = item.partition("=")
        try:
            levels.append((name.strip(), float(threshold)))
        except ValueError:
            raise ValueError(f"partner level {item!r} is not of the form Name=<monthly revenue>") from None
        if not sep or not name.strip():
            raise ValueError(f"partner level {item!r} is not of the form Name=<monthly revenue>")
    if not levels:
        raise ValueError("no partner levels given: use e.g. Bronze=0,Silver=5000,Gold=20000,Platinum=50000")
    return tuple(levels)


def commission_rate(annotations: Mapping[str, str] | None, default: float) -> float:
    """The partner's commission rate: its namespace's annotation (a fraction from 0 to 1, set by the
    platform team), else the platform's default. A value out of range is ignored, not trusted."""
    text = (annotations or {}).get(COMMISSION_ANNOTATION)
    try:
        value = float(text) if text is not None else default
    except ValueError:
        return default
    return value if 0 <= value <= 1 else default


LEVEL_CURRENCY = "EUR"  # the currency partner levels are reckoned in, unless the platform sets another


def parse_level_currency(text: str) -> str:
    """TENANTRY_PARTNER_LEVEL_CURRENCY: an ISO 4217 code in use."""
    code = text.strip()
    if code not in CURRENCIES:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code in use, e.g. EUR, USD, GBP or CHF")
    return code


def level_amount(amounts: Mapping[str, float], currency: str = LEVEL_CURRENCY) -> float:
    """The revenue partner levels go by: the amount in the level currency alone. Amounts in other
    currencies are never added nor compared with it (the largest amount in any currency made one
    tenant priced in a currency of small units worth Platinum)."""
    return amounts.get(currency, 0.0)


def partner_level(mrr: float, levels: tuple[tuple[str, float], ...] = DEFAULT_LEVELS) -> tuple[str, float]:
    """The partner's level by monthly revenue, and progress (0..1) towards the next one."""
    ordered = sorted(levels, key=lambda level: level[1])
    current = ordered[0]
    for level in ordered:
        if mrr >= level[1]:
            current = level
    following = [level for level in ordered if level[1] > current[1]]
    if not following:
        return current[0], 1.0
    span = following[0][1] - current[1]
    return current[0], max(0.0, min(1.0, (mrr - current[1]) / span))
