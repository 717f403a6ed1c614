"""What the portal's pages say about a partner's customers, computed from plain facts (pure, no I/O).

The server gathers the present from the Kubernetes API (Tenants, their status and usage) and the
past from Prometheus (30 days of revenue and users); everything shown is decided here, so that
each figure and signal is tested without a cluster.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tenantry.domain.spreadsheet import cell
from tenantry.domain.usage import LEVEL_CURRENCY, level_amount, partner_level

# Signals: what a partner should look at, by customer (key -> words on the page).
SIGNALS = {
    "licences": "licences above 90 %",
    "seats-soon": "seat limit within 90 days",
    "inactive": "inactive for 7 days",
    "low-adoption": "low adoption",
    "upsell": "heavy use of",
    "churn": "falling revenue",
}
LICENCE_WARNING = 0.9  # active / licensed users
HEAVY_USE = 0.8  # requests / included requests of a feature
# The name of a feature's limit that counts requests per usage period, as status.usage.requests
# does (e.g. `chat: {limits: {requests: 50000}}`). A feature's other limits count objects (tables: 50,
# documents: 5000) and are never compared with requests.
REQUESTS_LIMIT = "requests"
LOW_ADOPTION = 0.5  # utilisation below this share of the partner's median
FALLING = -5.0  # MRR trend in % over 30 days at or below which revenue is falling
HIGH_MARK, LOW_MARK = 1.5, 0.5  # a feature's use against the partner's median


@dataclass(frozen=True)
class Customer:
    """One Tenant as the portal sees it: its spec and status, and what Prometheus remembers."""

    slug: str
    company: str
    state: str
    plan: str
    seats: int
    active_users: int
    mrr: float
    currency: str
    support: str
    requests: Mapping[str, int] = field(default_factory=dict)  # this period, by feature
    # Included requests per period, by enabled feature: its REQUESTS_LIMIT, where the plan (or the
    # tenant's override) sets one. Like against like with `requests`; object limits are not here.
    limits: Mapping[str, int] = field(default_factory=dict)
    features: frozenset[str] = frozenset()  # the enabled features (plan, overrides and state applied)
    ready: bool = False
    # From Prometheus (None: no history yet, or Prometheus not configured).
    mrr_30d_ago: float | None = None
    users_in_90d: float | None = None  # predicted active users in 90 days at the current trend
    max_users_7d: float | None = None  # most active users seen over the last 7 days

    @property
    def utilisation(self) -> float:
        return self.active_users / self.seats if self.seats else 0.0

    @property
    def requests_total(self) -> int:
        return sum(self.requests.values())

    @property
    def billed_mrr(self) -> float:
        """What the customer pays this month: its list price (`mrr`) while Active, else nothing, as
        the totals, the commission and `tenantry report` count it."""
        return self.mrr if self.state == "Active" else 0.0

    @property
    def mrr_trend(self) -> float | None:
        """MRR change in % over 30 days (None without history or from zero)."""
        if self.mrr_30d_ago is None or self.mrr_30d_ago <= 0:
            return None
        return (self.mrr - self.mrr_30d_ago) / self.mrr_30d_ago * 100


@dataclass(frozen=True)
class Row:
    customer: Customer
    commission: float
    signals: tuple[str, ...]  # keys of SIGNALS, with the feature for upsell ("upsell:chat")

    def signal_words(self) -> list[str]:
        words = []
        for signal in self.signals:
            key, _, feature = signal.partition(":")
            words.append(f"{SIGNALS[key]} {feature}" if feature else SIGNALS[key])
        return words


@dataclass(frozen=True)
class Money:
    """Sums per currency: EUR and USD are never added together."""

    amounts: Mapping[str, float]

    def __bool__(self) -> bool:
        return any(self.amounts.values())

    @staticmethod
    def of(pairs: Iterable[tuple[str, float]]) -> Money:
        sums: dict[str, float] = {}
        for currency, amount in pairs:
            sums[currency] = sums.get(currency, 0.0) + amount
        return Money(dict(sorted(sums.items())))

    def times(self, factor: float) -> Money:
        return Money({currency: amount * factor for currency, amount in self.amounts.items()})


@dataclass(frozen=True)
class Totals:
    customers: int
    active_users: int
    licensed_users: int
    mrr: Money
    commission: Money
    annual_projection: Money  # 12 x commission: what the partner plans with


def median_utilisation(customers: Sequence[Customer]) -> float:
    active = [c.utilisation for c in customers if c.state == "Active"]
    return statistics.median(active) if active else 0.0


def _shown(c: Customer) -> set[str]:
    """The features a customer has (enabled, or with included requests) or uses."""
    return set(c.features) | set(c.limits) | set(c.requests)


def feature_medians(customers: Sequence[Customer]) -> dict[str, float]:
    """The partner's median requests per feature, over its Active customers that have the feature
    or use it (one that has it and does not use it counts as 0)."""
    by_feature: dict[str, list[int]] = {}
    for c in customers:
        if c.state != "Active":
            continue
        for feature in _shown(c):
            by_feature.setdefault(feature, []).append(c.requests.get(feature, 0))
    return {feature: float(statistics.median(values)) for feature, values in sorted(by_feature.items())}


def signals(c: Customer, partner_median_utilisation: float) -> tuple[str, ...]:
    found = []
    if c.seats and c.utilisation > LICENCE_WARNING:
        found.append("licences")
    if c.users_in_90d is not None and c.seats and c.users_in_90d >= c.seats:
        found.append("seats-soon")
    if c.max_users_7d is not None and c.max_users_7d == 0:
        found.append("inactive")
    if c.state == "Active" and partner_median_utilisation > 0 and \
            c.utilisation < LOW_ADOPTION * partner_median_utilisation:
        found.append("low-adoption")
    # Heavy use: requests against included requests only. A feature without them is compared with
    # the partner's median on the customer page (high and low marks), which is no upsell signal.
    for feature, limit in sorted(c.limits.items()):
        if limit > 0 and c.requests.get(feature, 0) >= HEAVY_USE * limit:
            found.append(f"upsell:{feature}")
    trend = c.mrr_trend
    if trend is not None and trend <= FALLING:
        found.append("churn")
    return tuple(found)


def rows(customers: Sequence[Customer], commission_rate: float) -> list[Row]:
    """One row per customer, by company name."""
    median = median_utilisation(customers)
    return [Row(c, c.billed_mrr * commission_rate, signals(c, median))
            for c in sorted(customers, key=lambda c: (c.company.casefold(), c.slug))]


def totals(customers: Sequence[Customer], commission_rate: float) -> Totals:
    """Revenue counts Active customers only (a Suspended one does not pay)."""
    mrr = Money.of((c.currency, c.mrr) for c in customers if c.state == "Active")
    commission = mrr.times(commission_rate)
    return Totals(customers=len(customers), active_users=sum(c.active_users for c in customers),
                  licensed_users=sum(c.seats for c in customers), mrr=mrr, commission=commission,
                  annual_projection=commission.times(12))


@dataclass(frozen=True)
class Revenue:
    mrr: Money
    commission: Money
    commission_rate: float
    growth: Mapping[str, float | None]  # % against 30 days ago, per currency (None: no history)
    annual_projection: Money  # 12 x commission
    quarterly_target: float | None  # the partner's target MRR (None: none set)
    target_progress: Mapping[str, float]  # MRR / target, per currency
    level: str
    next_level: str | None
    level_progress: float  # 0..1 towards the next level


def revenue(customers: Sequence[Customer], commission_rate: float, mrr_30d_ago: Mapping[str, float],
            quarterly_target: float | None, levels: tuple[tuple[str, float], ...],
            level_currency: str = LEVEL_CURRENCY) -> Revenue:
    """`mrr_30d_ago`: the partner's MRR of Active customers 30 days ago, per currency (Prometheus)."""
    current = totals(customers, commission_rate)
    growth: dict[str, float | None] = {}
    for currency, amount in current.mrr.amounts.items():
        before = mrr_30d_ago.get(currency)
        growth[currency] = (amount - before) / before * 100 if before else None
    # The level goes by the partner's revenue in the level currency alone (see level_amount).
    level, progress = partner_level(level_amount(current.mrr.amounts, level_currency), levels)
    ordered = sorted(levels, key=lambda item: item[1])
    names = [name for name, _ in ordered]
    following = names[names.index(level) + 1] if names.index(level) + 1 < len(names) else None
    target_progress = ({currency: amount / quarterly_target for currency, amount in current.mrr.amounts.items()}
                       if quarterly_target else {})
    return Revenue(mrr=current.mrr, commission=current.commission, commission_rate=commission_rate,
                   growth=growth, annual_projection=current.annual_projection, quarterly_target=quarterly_target,
                   target_progress=target_progress, level=level, next_level=following, level_progress=progress)


@dataclass(frozen=True)
class FeatureUse:
    feature: str
    requests: int
    limit: int | None  # included requests per period (None: the plan sets none: no limit bar)
    median: float
    mark: str  # "high", "low" or ""

    @property
    def share_of_limit(self) -> float | None:
        return self.requests / self.limit if self.limit else None


def feature_use(c: Customer, medians: Mapping[str, float]) -> list[FeatureUse]:
    """Each feature the customer has or uses: its requests against its included requests (where
    the plan sets them) and against the partner's median."""
    found = []
    for feature in sorted(_shown(c)):
        used, median = c.requests.get(feature, 0), medians.get(feature, 0.0)
        mark = "high" if median and used > HIGH_MARK * median else "low" if median and used < LOW_MARK * median else ""
        found.append(FeatureUse(feature, used, c.limits.get(feature), median, mark))
    return found


def seat_forecast(c: Customer) -> str:
    """The predicted active users in 90 days against the licensed seats, judged as the seats-soon
    signal judges them (the prediction itself, not the rounded number shown)."""
    if c.users_in_90d is None:
        return "no trend yet (Prometheus has less than a day of this customer's users)"
    predicted = max(0, round(c.users_in_90d))
    if c.seats and c.users_in_90d >= c.seats:
        return (f"{predicted} active users in 90 days at the current trend: the {c.seats} licensed seats "
                "will be used up")
    return f"{predicted} active users in 90 days at the current trend, of {c.seats} licensed seats"


def usage_csv(c: Customer, partner: str, period: str) -> str:
    """The customer's usage this period, one line per feature, for invoicing."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["partner", "tenant", "company", "period", "plan", "seats", "active_users", "feature",
                     "requests", "included_requests", "mrr", "currency", "billed_mrr"])
    features = sorted(_shown(c)) or [""]
    for feature in features:
        writer.writerow([cell(v) for v in (partner, c.slug, c.company, period, c.plan, c.seats, c.active_users,
                                            feature, c.requests.get(feature, 0) if feature else "",
                                            c.limits.get(feature, "") if feature else "", f"{c.mrr:.2f}",
                                            c.currency, f"{c.billed_mrr:.2f}")])
    return out.getvalue()


@dataclass(frozen=True)
class Deal:
    name: str
    company: str
    stage: str
    mrr: float
    currency: str
    expected_close: str
    trial: str


@dataclass(frozen=True)
class Stage:
    name: str
    deals: tuple[Deal, ...]
    mrr: Money
    commission: Money


@dataclass(frozen=True)
class TrialAccount:
    slug: str
    company: str
    ends: str
    days_left: float  # negative: ended
    in_effect: str  # Active while running, Suspended once ended (what the operator enforces)


def pipeline(deals: Sequence[Deal], commission_rate: float, stages: Sequence[str]) -> list[Stage]:
    """Deals by stage, in the order deals move, each stage with its expected MRR and commission."""
    out = []
    for name in stages:
        members = tuple(sorted((d for d in deals if d.stage == name), key=lambda d: (d.company.casefold(), d.name)))
        mrr = Money.of((d.currency, d.mrr) for d in members)
        out.append(Stage(name, members, mrr, mrr.times(commission_rate)))
    return out


def pipeline_totals(stages: Sequence[Stage]) -> tuple[Money, Money]:
    """Expected MRR and commission of every open deal, per currency."""
    return (Money.of((c, a) for stage in stages for c, a in stage.mrr.amounts.items()),
            Money.of((c, a) for stage in stages for c, a in stage.commission.amounts.items()))


def trial_accounts(tenants: Iterable[tuple[str, str, str, str]], now: float) -> list[TrialAccount]:
    """(slug, company, trial end as RFC 3339, its epoch seconds) of tenants on trial, soonest end first."""
    found = []
    for slug, company, ends, ends_at in tenants:
        left = (float(ends_at) - now) / 86400
        found.append(TrialAccount(slug, company, ends, left, "Active" if left > 0 else "Suspended"))
    return sorted(found, key=lambda t: (t.days_left, t.slug))
