"""Per-tenant and per-partner metrics, written when a tenant's facts change, not at scrape time.

The reconcile puts each tenant's latest facts. A tenant's own exposition lines are rendered then,
once per change (unchanged facts: nothing happens); a partner's totals are recomputed at the next
render, only for partners one of whose tenants changed. A scrape joins stored bytes. A removed
tenant's series go with it, and so does a partner with no tenants left.

Budget: at most 25 series per tenant (10 fixed, and for each of the 5 core features: enabled,
included limit, requests), plus `tenantry_dns_conflict` only while a tenant's DNS name is held by
someone else and `tenantry_tenant_trial_ends_timestamp_seconds` only while it is on trial.

Not thread-safe: the operator puts, removes and renders on its event loop only.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.utils import floatToGoString

from tenantry.api.features import CORE_FEATURES
from tenantry.domain.features import EffectiveFeature
from tenantry.domain.usage import DEFAULT_LEVELS, LEVEL_CURRENCY, TenantFacts, level_amount, partner_level

SERIES_BUDGET_PER_TENANT = 25
STATES = ("Active", "Trial", "Suspended", "Cancelled")

# (name, help), in the order they are exposed; all are gauges.
TENANT_FAMILIES = (
    ("tenantry_tenant_info", "Tenant facts as labels (value 1)."),
    ("tenantry_tenant_seats", "Licensed seats."),
    ("tenantry_tenant_active_users", "Active users this period."),
    ("tenantry_tenant_seat_utilisation_ratio", "Active users / licensed seats."),
    ("tenantry_tenant_mrr", "Monthly recurring revenue."),
    ("tenantry_tenant_ready", "1 when the tenant is Ready."),
    ("tenantry_tenant_quota_cpu_used_cores", "CPU requests in use in the tenant's namespace (cores)."),
    ("tenantry_tenant_quota_cpu_hard_cores", "The quota's limit of CPU requests (cores)."),
    ("tenantry_tenant_quota_pods_used", "Pods in the tenant's namespace."),
    ("tenantry_tenant_quota_pods_hard", "The quota's limit of pods."),
    ("tenantry_tenant_feature_enabled", "1 when the core feature is on."),
    ("tenantry_tenant_feature_limit", "The feature's first included limit by name, named by the label limit."),
    ("tenantry_tenant_requests", "Requests this period by feature."),
    ("tenantry_dns_conflict", "1 while a tenant's DNS name is held by records tenantry does not own."),
    ("tenantry_tenant_trial_ends_timestamp_seconds", "When a tenant's trial ends (only while it is on trial)."),
)
PARTNER_FAMILIES = (
    ("tenantry_partner_tenants", "Tenants by state."),
    ("tenantry_partner_mrr", "Monthly recurring revenue of active tenants, by currency."),
    ("tenantry_partner_commission", "Monthly commission of the partner, by currency (the partner's rate)."),
    ("tenantry_partner_level_info", "The partner's level (value 1)."),
    ("tenantry_partner_level_progress_ratio", "Progress towards the next partner level (0..1)."),
)
CONDITION_FAMILY = ("tenantry_resources_by_condition", "Tenants by condition and status.")

Series = tuple[str, Mapping[str, str], float]  # family name, labels, value


def _escape(value: str) -> str:
    """A label value in the text format: backslash, newline and double quote escaped."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


_HEADERS = {name: f"# HELP {name} {help_text}\n# TYPE {name} gauge\n".encode()
            for name, help_text in (*TENANT_FAMILIES, *PARTNER_FAMILIES, CONDITION_FAMILY)}


def _line(name: str, labels: Mapping[str, str], value: float) -> str:
    # Labels sorted by name, values as Go prints floats: what prometheus_client writes.
    pairs = ",".join(f'{label}="{_escape(labels[label])}"' for label in sorted(labels))
    return f"{name}{{{pairs}}} {floatToGoString(value)}\n"


def _grouped(series: Iterable[Series], families: Iterable[tuple[str, str]]) -> dict[str, bytes]:
    """The lines of these series, by family (every family present, maybe empty)."""
    text: dict[str, list[str]] = {name: [] for name, _ in families}
    for name, labels, value in series:
        text[name].append(_line(name, labels, value))
    return {name: "".join(lines).encode() for name, lines in text.items()}


def tenant_series(t: TenantFacts) -> Iterator[Series]:
    """A tenant's own series."""
    key = {"tenant": t.tenant, "partner": t.partner}
    yield "tenantry_tenant_info", {**key, "company": t.company, "plan": t.plan, "state": t.state, "tier": t.tier}, 1
    yield "tenantry_tenant_seats", key, t.seats
    yield "tenantry_tenant_active_users", key, t.active_users
    yield "tenantry_tenant_seat_utilisation_ratio", key, t.seat_utilisation
    yield "tenantry_tenant_mrr", {**key, "currency": t.currency}, t.mrr
    yield "tenantry_tenant_ready", key, 1 if t.ready else 0
    # One unit per family (cores, pods): a sum over a family never adds cores to pods.
    yield "tenantry_tenant_quota_cpu_used_cores", key, t.quota_used.get("cpu", 0.0)
    yield "tenantry_tenant_quota_cpu_hard_cores", key, t.quota_hard.get("cpu", 0.0)
    yield "tenantry_tenant_quota_pods_used", key, t.quota_used.get("pods", 0.0)
    yield "tenantry_tenant_quota_pods_hard", key, t.quota_hard.get("pods", 0.0)
    for feature in CORE_FEATURES:
        labels = {**key, "feature": feature}
        effective = t.features.get(feature)
        on = bool(effective and effective.enabled)
        yield "tenantry_tenant_feature_enabled", labels, 1 if on else 0
        if on and effective and effective.limits:
            # One series per feature: limit names come from FeatureSets and Tenants, a series
            # for each would let their authors grow every scrape at will.
            limit, value = min(effective.limits.items())
            yield "tenantry_tenant_feature_limit", {**labels, "limit": limit}, value
        if feature in t.requests:
            yield "tenantry_tenant_requests", labels, t.requests[feature]
    if t.dns_conflict:
        yield "tenantry_dns_conflict", key, 1
    if t.trial_ends is not None:
        yield "tenantry_tenant_trial_ends_timestamp_seconds", key, t.trial_ends


def partner_series(partner: str, tenants: Iterable[TenantFacts],
                   levels: tuple[tuple[str, float], ...], level_currency: str = LEVEL_CURRENCY) -> Iterator[Series]:
    """A partner's totals over its tenants (revenue from active tenants only), money per currency:
    EUR and USD are never added together."""
    counts = dict.fromkeys(STATES, 0)
    revenue: dict[str, float] = {}
    commission: dict[str, float] = {}
    for t in tenants:
        counts[t.state] = counts.get(t.state, 0) + 1
        if t.state == "Active":
            revenue[t.currency] = revenue.get(t.currency, 0.0) + t.mrr
            commission[t.currency] = commission.get(t.currency, 0.0) + t.mrr * t.commission_rate
    for state, n in counts.items():
        yield "tenantry_partner_tenants", {"partner": partner, "state": state}, n
    for currency in sorted(revenue):
        yield "tenantry_partner_mrr", {"partner": partner, "currency": currency}, revenue[currency]
        yield "tenantry_partner_commission", {"partner": partner, "currency": currency}, commission[currency]
    name, towards = partner_level(level_amount(revenue, level_currency), levels)
    yield "tenantry_partner_level_info", {"partner": partner, "level": name}, 1
    yield "tenantry_partner_level_progress_ratio", {"partner": partner}, towards


NAMES_HELD_SECONDS = 600.0  # the least time between two changes of a tenant's names in its labels


@dataclass(frozen=True)
class _Names:
    """What of a tenant's facts becomes label values a partner chooses (see TenantExposition._named)."""

    company: str
    plan: str
    features: Mapping[str, EffectiveFeature]
    labels: tuple[object, ...]

    @classmethod
    def of(cls, facts: TenantFacts) -> _Names:
        limits = tuple(sorted((name, min(feature.limits)) for name, feature in facts.features.items()
                              if feature.enabled and feature.limits))
        return cls(facts.company, facts.plan, facts.features, (facts.company, facts.plan, limits))


class TenantExposition:
    """The tenant and partner families in the Prometheus text format, kept current by put/remove.

    Tenants are kept in blocks of BLOCK, in the order they were first put; each block's lines are
    joined per family once after a change of one of its tenants. `chunks()` is the exposition as
    a list of byte strings, each the same object while its content is unchanged, so that a
    consumer can cache work per chunk (the server deflates only the chunks that are new).
    """

    BLOCK = 128

    def __init__(self, levels: tuple[tuple[str, float], ...] = DEFAULT_LEVELS,
                 level_currency: str = LEVEL_CURRENCY, clock: Callable[[], float] = time.monotonic) -> None:
        self.levels, self.level_currency, self._clock = levels, level_currency, clock
        self.clear()

    def clear(self) -> None:
        """Forget every tenant (their series vanish)."""
        self._facts: dict[Hashable, TenantFacts] = {}
        self._lines: dict[Hashable, tuple[bytes, ...]] = {}  # a tenant's lines, one entry per TENANT_FAMILIES
        self._block_of: dict[Hashable, int] = {}
        self._blocks: dict[int, dict[Hashable, None]] = {}  # in the order of exposition
        self._block_text: dict[int, tuple[bytes, ...]] = {}  # a block's lines, one entry per TENANT_FAMILIES
        self._stale_blocks: set[int] = set()
        self._next_block = 0
        self._partners: dict[str, dict[Hashable, TenantFacts]] = {}
        self._partner_text: dict[str, dict[str, bytes]] = {}  # partner -> family -> lines
        self._stale_partners: set[str] = set()
        self._conditions: Counter[tuple[str, str]] = Counter()
        self._chunks: list[bytes] | None = None
        # Per tenant: when its names last changed in its series, and those names (see _named);
        # kept a while after a tenant goes, so that deleting and applying it again is no way round.
        self._names: dict[Hashable, tuple[float, _Names]] = {}
        self._gone_names: deque[tuple[float, Hashable]] = deque()  # (since, key) of tenants removed

    def __len__(self) -> int:
        return len(self._facts)

    def put(self, key: Hashable, facts: TenantFacts) -> None:
        """The tenant's latest facts; its lines are rendered again only if they changed."""
        old = self._facts.get(key)
        facts = self._named(key, facts)
        if old == facts:
            return
        if old is None:
            self._place(key)
        else:
            self._count_conditions(old, -1)
            if old.partner != facts.partner:
                self._leave_partner(key, old.partner)
        self._facts[key] = facts
        text = _grouped(tenant_series(facts), TENANT_FAMILIES)
        self._lines[key] = tuple(text[name] for name, _ in TENANT_FAMILIES)
        self._stale_blocks.add(self._block_of[key])
        self._partners.setdefault(facts.partner, {})[key] = facts
        self._stale_partners.add(facts.partner)
        self._count_conditions(facts, 1)
        self._chunks = None

    def _named(self, key: Hashable, facts: TenantFacts) -> TenantFacts:
        """The company, the plan and the limits' names are label values a partner writes as it
        likes, and each new value is a new series that Prometheus holds for hours: renamed in a
        loop, one partner's tenants would fill Prometheus' memory for everyone. A tenant's names
        change in its series at most once per NAMES_HELD_SECONDS (the first change at once); until
        then the names shown before stay (with their features' limits; every other number is
        current all the same)."""
        now = self._clock()
        self._forget_gone_names(now)
        names = _Names.of(facts)
        since, shown = self._names.get(key, (float("-inf"), None))
        if shown is None or shown.labels == names.labels:
            self._names[key] = (since, names)
            return facts
        if now - since < NAMES_HELD_SECONDS:
            return dataclasses.replace(facts, company=shown.company, plan=shown.plan, features=shown.features)
        self._names[key] = (now, names)
        return facts

    def _forget_gone_names(self, now: float) -> None:
        while self._gone_names and now - self._gone_names[0][0] >= NAMES_HELD_SECONDS:
            _, key = self._gone_names.popleft()
            if key not in self._facts and key in self._names and now - self._names[key][0] >= NAMES_HELD_SECONDS:
                del self._names[key]

    def remove(self, key: Hashable) -> None:
        """A deleted tenant: its series go (and its partner's, if it was the last one)."""
        old = self._facts.pop(key, None)
        if old is None:
            return
        since = self._names.get(key, (float("-inf"), None))[0]
        if since == float("-inf"):
            self._names.pop(key, None)  # never renamed: nothing is held
        else:
            self._gone_names.append((since, key))
        del self._lines[key]
        block = self._block_of.pop(key)
        del self._blocks[block][key]
        if self._blocks[block]:
            self._stale_blocks.add(block)
        else:
            del self._blocks[block]
            self._block_text.pop(block, None)
            self._stale_blocks.discard(block)
        self._leave_partner(key, old.partner)
        self._count_conditions(old, -1)
        self._chunks = None

    def _place(self, key: Hashable) -> None:
        """A new tenant joins the last block, or starts one: the exposition keeps the order of puts."""
        last = self._next_block - 1
        if not 0 < len(self._blocks.get(last, ())) < self.BLOCK:  # none yet, emptied, or full
            last, self._next_block = self._next_block, self._next_block + 1
            self._blocks[last] = {}
        self._blocks[last][key] = None
        self._block_of[key] = last

    def _leave_partner(self, key: Hashable, partner: str) -> None:
        tenants = self._partners[partner]
        del tenants[key]
        if not tenants:
            del self._partners[partner]
        self._stale_partners.add(partner)

    def _count_conditions(self, facts: TenantFacts, sign: int) -> None:
        for pair in facts.conditions.items():
            self._conditions[pair] += sign
            if not self._conditions[pair]:
                del self._conditions[pair]  # a condition no tenant has is not exposed

    def render(self) -> bytes:
        """Every family in the text format."""
        return b"".join(self.chunks())

    def chunks(self) -> list[bytes]:
        """The exposition in pieces (the same list while nothing changes; no empty pieces)."""
        if self._chunks is None:
            self._update_blocks()
            self._update_partners()
            self._chunks = [chunk for chunk in self._families() if chunk]
        return self._chunks

    def _update_blocks(self) -> None:
        for block in self._stale_blocks:
            lines = [self._lines[key] for key in self._blocks[block]]
            self._block_text[block] = tuple(b"".join(tenant[i] for tenant in lines)
                                            for i in range(len(TENANT_FAMILIES)))
        self._stale_blocks.clear()

    def _update_partners(self) -> None:
        for partner in self._stale_partners:
            tenants = self._partners.get(partner)
            if tenants is None:
                self._partner_text.pop(partner, None)
            else:
                series = partner_series(partner, tenants.values(), self.levels, self.level_currency)
                self._partner_text[partner] = _grouped(series, PARTNER_FAMILIES)
        self._stale_partners.clear()

    def _families(self) -> Iterator[bytes]:
        for i, (name, _) in enumerate(TENANT_FAMILIES):
            yield _HEADERS[name]
            yield from (self._block_text[block][i] for block in self._blocks)
        partners = sorted(self._partner_text)
        for name, _ in PARTNER_FAMILIES:
            yield _HEADERS[name]
            yield b"".join(self._partner_text[partner][name] for partner in partners)
        yield _HEADERS[CONDITION_FAMILY[0]]
        yield "".join(_line(CONDITION_FAMILY[0], {"kind": "Tenant", "condition": condition, "status": status}, n)
                      for (condition, status), n in sorted(self._conditions.items())).encode()
