"""Usage validation, revenue facts and the per-tenant/per-partner metrics (pure, no cluster).

Tested here:
- usage reports with unknown features or impossible counts are reported, and ignored in metrics
- partner levels and progress; commission at the configured rate; MRR only from active tenants
- the series budget: a tenant with every core feature, limits and requests stays within 25
- a deleted tenant's series disappear (they are computed from current facts on each scrape)
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tenantry.domain.features import EffectiveFeature
from tenantry.domain.usage import (
    TenantFacts,
    parse_levels,
    partner_level,
    quota_numbers,
    tenant_facts,
    usage_problems,
)
from tenantry.metrics.tenants import SERIES_BUDGET_PER_TENANT, TenantMetrics

SPEC = {"company": "Mustermann GmbH", "state": "Active",
        "plan": {"featureSet": "business", "seats": 200, "price": {"monthly": 5000, "currency": "EUR"}}}
ALL = {f: EffectiveFeature(True, {"limit": 10}) for f in ("chat", "files", "tables", "meetings", "scheduler")}
QUOTA = {"status": {"used": {"requests.cpu": "500m", "pods": "3"}, "hard": {"requests.cpu": "6", "pods": "20"}}}


def facts(tenant: str = "m", partner: str = "acme", **overrides) -> TenantFacts:
    spec = {**SPEC, **overrides}
    usage = {"activeUsers": 185, "requests": {"chat": 41000, "tables": 500, "files": 1, "meetings": 2,
                                              "scheduler": 3, "hubspot": 7}}
    return tenant_facts(tenant, partner, spec, usage, ALL, True, QUOTA)


def scrape(items: dict) -> str:
    registry = CollectorRegistry()
    registry.register(TenantMetrics(items, commission_rate=0.25))
    return generate_latest(registry).decode()


def series_of(text: str, tenant: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#") and f'tenant="{tenant}"' in line]


def test_usage_problems_name_the_field() -> None:
    assert usage_problems({"activeUsers": 3, "requests": {"chat": 1}}) == []
    problems = usage_problems({"activeUsers": -1, "requests": {"tabels": 5}})
    assert any("tabels" in p and "status.usage.requests" in p for p in problems)
    assert any("activeUsers" in p for p in problems)


def test_facts_keep_known_features_only() -> None:
    f = facts()
    assert set(f.requests) == {"chat", "tables", "files", "meetings", "scheduler"}  # hubspot: not a core label
    assert f.seat_utilisation == pytest.approx(185 / 200) and f.tier == "medium"
    assert quota_numbers(QUOTA) == ({"cpu": 0.5, "pods": 3.0}, {"cpu": 6.0, "pods": 20.0})


@pytest.mark.parametrize(("mrr", "level", "progress"), [(0, "Bronze", 0.0), (2500, "Bronze", 0.5),
                                                        (20000, "Gold", 0.0), (80000, "Platinum", 1.0)])
def test_partner_levels(mrr: float, level: str, progress: float) -> None:
    assert partner_level(mrr) == (level, pytest.approx(progress))


def test_series_budget_per_tenant() -> None:
    text = scrape({("p", "m"): facts()})
    series = series_of(text, "m")
    # Every core feature on, with limits and requests: the worst case is exactly the budget.
    assert len(series) == SERIES_BUDGET_PER_TENANT, len(series)
    assert ('tenantry_tenant_info{company="Mustermann GmbH",partner="acme",plan="business",state="Active",'
            'tenant="m",tier="medium"} 1.0') in text
    assert 'tenantry_tenant_requests{feature="chat",partner="acme",tenant="m"} 41000.0' in text


def test_partner_totals_and_deleted_tenants() -> None:
    items = {("p", "a"): facts("a"), ("p", "b"): facts("b", state="Suspended"), ("q", "c"): facts("c", "beta")}
    text = scrape(items)
    assert 'tenantry_partner_mrr{partner="acme"} 5000.0' in text  # the suspended one does not count
    assert 'tenantry_partner_commission{partner="acme"} 1250.0' in text
    assert 'tenantry_partner_tenants{partner="acme",state="Suspended"} 1.0' in text
    assert 'tenantry_partner_level_info{level="Silver",partner="acme"} 1.0' in text
    del items[("p", "a")]
    assert series_of(scrape(items), "a") == []


def test_partner_levels_are_configurable() -> None:
    levels = parse_levels("Start=0, Pro=1000")
    assert partner_level(1500, levels) == ("Pro", 1.0)
    assert partner_level(500, levels) == ("Start", pytest.approx(0.5))
    with pytest.raises(ValueError, match="Name=<monthly revenue>"):
        parse_levels("Gold:20000")


def test_dns_conflict_series_only_while_conflicting() -> None:
    clean, squatted = facts("clean"), facts("squatted")
    squatted = TenantFacts(**{**squatted.__dict__, "dns_conflict": True})
    text = scrape({("p", "clean"): clean, ("p", "squatted"): squatted})
    assert 'tenantry_dns_conflict{partner="acme",tenant="squatted"} 1.0' in text
    assert 'tenantry_dns_conflict{partner="acme",tenant="clean"}' not in text
    assert len(series_of(text, "squatted")) == SERIES_BUDGET_PER_TENANT + 1
