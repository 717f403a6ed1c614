"""The test oracle for tenantry.metrics.tenants: tenant metrics computed from scratch.

This is the scrape-time collector tenantry shipped before the exposition was kept incrementally:
every family rebuilt from {tenant key: TenantFacts} with prometheus_client's own GaugeMetricFamily
and written by its generate_latest. tests/unit/test_metrics.py checks that TenantExposition, after
any sequence of puts and removes, exposes exactly what this computes from the facts left.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tenantry.api.features import CORE_FEATURES
from tenantry.domain.usage import DEFAULT_LEVELS, TenantFacts, partner_level

STATES = ("Active", "Trial", "Suspended", "Cancelled")  # its own copy: an oracle shares nothing with the tested code


class ReferenceCollector(Collector):
    """A prometheus_client collector over {tenant key: TenantFacts}."""

    def __init__(self, facts: Mapping[object, TenantFacts],
                 levels: tuple[tuple[str, float], ...] = DEFAULT_LEVELS) -> None:
        self.facts, self.levels = facts, levels

    def collect(self) -> Iterator[Metric]:
        tenants = list(self.facts.values())
        yield from self._per_tenant(tenants)
        yield from self._per_partner(tenants)
        yield self._by_condition(tenants)

    @staticmethod
    def _by_condition(tenants: list[TenantFacts]) -> Metric:
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for t in tenants:
            for condition, status in t.conditions.items():
                counts[(condition, status)] += 1
        family = GaugeMetricFamily("tenantry_resources_by_condition", "Tenants by condition and status.",
                                   labels=["kind", "condition", "status"])
        for (condition, status), n in sorted(counts.items()):
            family.add_metric(["Tenant", condition, status], n)
        return family

    def _per_tenant(self, tenants: list[TenantFacts]) -> Iterator[Metric]:
        labels = ["tenant", "partner"]
        info = GaugeMetricFamily("tenantry_tenant_info", "Tenant facts as labels (value 1).",
                                 labels=[*labels, "company", "plan", "state", "tier"])
        gauges = {
            "seats": GaugeMetricFamily("tenantry_tenant_seats", "Licensed seats.", labels=labels),
            "active": GaugeMetricFamily("tenantry_tenant_active_users", "Active users this period.", labels=labels),
            "utilisation": GaugeMetricFamily("tenantry_tenant_seat_utilisation_ratio",
                                             "Active users / licensed seats.", labels=labels),
            "mrr": GaugeMetricFamily("tenantry_tenant_mrr", "Monthly recurring revenue.",
                                     labels=[*labels, "currency"]),
            "ready": GaugeMetricFamily("tenantry_tenant_ready", "1 when the tenant is Ready.", labels=labels),
        }
        quota = {
            ("used", "cpu"): GaugeMetricFamily("tenantry_tenant_quota_cpu_used_cores",
                                               "CPU requests in use in the tenant's namespace (cores).", labels=labels),
            ("hard", "cpu"): GaugeMetricFamily("tenantry_tenant_quota_cpu_hard_cores",
                                               "The quota's limit of CPU requests (cores).", labels=labels),
            ("used", "pods"): GaugeMetricFamily("tenantry_tenant_quota_pods_used", "Pods in the tenant's namespace.",
                                                labels=labels),
            ("hard", "pods"): GaugeMetricFamily("tenantry_tenant_quota_pods_hard", "The quota's limit of pods.",
                                                labels=labels),
        }
        enabled = GaugeMetricFamily("tenantry_tenant_feature_enabled", "1 when the core feature is on.",
                                    labels=[*labels, "feature"])
        limit = GaugeMetricFamily("tenantry_tenant_feature_limit",
                                  "The feature's first included limit by name, named by the label limit.",
                                  labels=[*labels, "feature", "limit"])
        requests = GaugeMetricFamily("tenantry_tenant_requests", "Requests this period by feature.",
                                     labels=[*labels, "feature"])
        conflict = GaugeMetricFamily("tenantry_dns_conflict",
                                     "1 while a tenant's DNS name is held by records tenantry does not own.",
                                     labels=labels)
        trial = GaugeMetricFamily("tenantry_tenant_trial_ends_timestamp_seconds",
                                  "When a tenant's trial ends (only while it is on trial).", labels=labels)
        for t in tenants:
            key = [t.tenant, t.partner]
            info.add_metric([*key, t.company, t.plan, t.state, t.tier], 1)
            gauges["seats"].add_metric(key, t.seats)
            gauges["active"].add_metric(key, t.active_users)
            gauges["utilisation"].add_metric(key, t.seat_utilisation)
            gauges["mrr"].add_metric([*key, t.currency], t.mrr)
            gauges["ready"].add_metric(key, 1 if t.ready else 0)
            for (which, resource), family in quota.items():
                family.add_metric(key, (t.quota_used if which == "used" else t.quota_hard).get(resource, 0.0))
            for feature in CORE_FEATURES:
                effective = t.features.get(feature)
                enabled.add_metric([*key, feature], 1 if effective and effective.enabled else 0)
                if effective and effective.enabled and effective.limits:
                    name = sorted(effective.limits)[0]
                    limit.add_metric([*key, feature, name], effective.limits[name])
                if feature in t.requests:
                    requests.add_metric([*key, feature], t.requests[feature])
            if t.dns_conflict:
                conflict.add_metric(key, 1)
            if t.trial_ends is not None:
                trial.add_metric(key, t.trial_ends)
        yield from (info, *gauges.values(), *quota.values(), enabled, limit, requests, conflict, trial)

    def _per_partner(self, tenants: list[TenantFacts]) -> Iterator[Metric]:
        by_state = GaugeMetricFamily("tenantry_partner_tenants", "Tenants by state.", labels=["partner", "state"])
        mrr = GaugeMetricFamily("tenantry_partner_mrr", "Monthly recurring revenue of active tenants, by currency.",
                                labels=["partner", "currency"])
        commission = GaugeMetricFamily("tenantry_partner_commission",
                                       "Monthly commission of the partner, by currency (the partner's rate).",
                                       labels=["partner", "currency"])
        level = GaugeMetricFamily("tenantry_partner_level_info", "The partner's level (value 1).",
                                  labels=["partner", "level"])
        progress = GaugeMetricFamily("tenantry_partner_level_progress_ratio",
                                     "Progress towards the next partner level (0..1).", labels=["partner"])
        counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATES, 0))
        revenue: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        earned: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for t in tenants:
            counts[t.partner][t.state] = counts[t.partner].get(t.state, 0) + 1
            if t.state == "Active":
                revenue[t.partner][t.currency] += t.mrr
                earned[t.partner][t.currency] += t.mrr * t.commission_rate
        for partner in sorted(counts):
            for state, n in counts[partner].items():
                by_state.add_metric([partner, state], n)
            for currency in sorted(revenue[partner]):
                mrr.add_metric([partner, currency], revenue[partner][currency])
                commission.add_metric([partner, currency], earned[partner][currency])
            # The level goes by the amount in the level currency (EUR) alone.
            name, towards = partner_level(revenue[partner].get("EUR", 0.0), self.levels)
            level.add_metric([partner, name], 1)
            progress.add_metric([partner], towards)
        yield from (by_state, mrr, commission, level, progress)
