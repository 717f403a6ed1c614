"""Usage validation, revenue facts and the per-tenant/per-partner exposition (pure, no cluster).

Tested here:
- usage reports with unknown features or impossible counts are reported, and ignored in metrics
- partner levels and progress; commission at each partner's rate; MRR only from active tenants;
  money per currency (EUR and USD never added), the level by the level currency alone (a cheap
  currency's large amounts bought Platinum)
- the series budget: a tenant with every core feature, limits and requests stays within 25
- TenantExposition, after any sequence of puts and removes (hypothesis), exposes exactly the
  families, HELP/TYPE, labels and values that the from-scratch reference collector
  (tests/unit/metrics_reference.py, prometheus_client's own writer) computes from the facts left
- hostile label values (quotes, backslashes, newlines, exposition lines in a company name) are
  escaped: parsed back they are the same strings, and inject no series
- a deleted tenant's series disappear, and so does a partner with no tenants left
- a tenant's company and plan labels change at most once per NAMES_HELD_SECONDS (renames in a loop
  would fill Prometheus with series); its numbers stay current meanwhile
- unchanged facts render nothing again (the same bytes object is served)
- a feature's limit series names its limit, one series per feature however many limits it has
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tenantry.api.features import CORE_FEATURES
from tenantry.domain.features import EffectiveFeature
from tenantry.domain.usage import (
    TenantFacts,
    parse_level_currency,
    parse_levels,
    partner_level,
    quota_numbers,
    tenant_facts,
    usage_problems,
)
from tenantry.metrics.tenants import NAMES_HELD_SECONDS, SERIES_BUDGET_PER_TENANT, STATES, TenantExposition
from tests.unit.metrics_reference import ReferenceCollector

SPEC = {"company": "Mustermann GmbH", "state": "Active",
        "plan": {"featureSet": "business", "seats": 200, "price": {"monthly": 5000, "currency": "EUR"}}}
ALL = {f: EffectiveFeature(True, {"limit": 10}) for f in ("chat", "files", "tables", "meetings", "scheduler")}
QUOTA = {"status": {"used": {"requests.cpu": "500m", "pods": "3"}, "hard": {"requests.cpu": "6", "pods": "20"}}}


def facts(tenant: str = "m", partner: str = "acme", **overrides) -> TenantFacts:
    spec = {**SPEC, **overrides}
    usage = {"activeUsers": 185, "requests": {"chat": 41000, "tables": 500, "files": 1, "meetings": 2,
                                              "scheduler": 3, "hubspot": 7}}
    return tenant_facts(tenant, partner, spec, usage, ALL, True, QUOTA, commission=0.25)


def scrape(items: Mapping[Hashable, TenantFacts]) -> str:
    exposition = TenantExposition()
    for key, value in items.items():
        exposition.put(key, value)
    return exposition.render().decode()


def reference(items: Mapping[Hashable, TenantFacts]) -> str:
    registry = CollectorRegistry()
    registry.register(ReferenceCollector(items))
    return generate_latest(registry).decode()


def parsed(text: str) -> dict[str, Any]:
    """family -> (help, type, its samples as sorted (name, labels, value)): what Prometheus reads."""
    return {family.name: (family.documentation, family.type,
                          sorted((s.name, sorted(s.labels.items()), s.value) for s in family.samples))
            for family in text_string_to_metric_families(text)}


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
    assert 'tenantry_partner_mrr{currency="EUR",partner="acme"} 5000.0' in text  # the suspended one does not count
    assert 'tenantry_partner_commission{currency="EUR",partner="acme"} 1250.0' in text
    assert 'tenantry_partner_tenants{partner="acme",state="Suspended"} 1.0' in text
    assert 'tenantry_partner_level_info{level="Silver",partner="acme"} 1.0' in text
    del items[("p", "a")]
    assert series_of(scrape(items), "a") == []


# Characters that mean something in the text format, and some that mean something elsewhere.
HOSTILE = st.text(st.sampled_from(['"', "\\", "\n", "{", "}", "=", ",", "#", " ", "a", "Ä", "😀", "\t"]), max_size=12)
FACTS = st.builds(
    TenantFacts, tenant=st.just(""), partner=st.just(""), company=HOSTILE,
    plan=st.sampled_from(["business", "start", 'x"\\y']), state=st.sampled_from([*STATES, "Paused"]),
    seats=st.integers(0, 10_000), mrr=st.floats(0, 1e9, allow_nan=False) | st.sampled_from([0.1, 0.2, 1e7]),
    currency=st.sampled_from(["EUR", "USD"]), ready=st.booleans(), active_users=st.integers(0, 20_000),
    requests=st.dictionaries(st.sampled_from(CORE_FEATURES), st.integers(0, 10**12)),
    features=st.dictionaries(st.sampled_from(CORE_FEATURES), st.builds(
        EffectiveFeature, st.booleans(), st.dictionaries(st.sampled_from(["limit", "a", "z"]) | HOSTILE,
                                                         st.integers(0, 99)))),
    quota_used=st.dictionaries(st.sampled_from(["cpu", "pods"]), st.floats(0, 1e4, allow_nan=False)),
    quota_hard=st.dictionaries(st.sampled_from(["cpu", "pods"]), st.floats(0, 1e4, allow_nan=False)),
    conditions=st.dictionaries(st.sampled_from(["Ready", "NamespaceReady", "Dns"]),
                               st.sampled_from(["True", "False", "Unknown"])),
    dns_conflict=st.booleans(), trial_ends=st.none() | st.floats(0, 4e9, allow_nan=False),
    commission_rate=st.sampled_from([0.2, 0.25, 0.1]))
KEYS = st.tuples(st.sampled_from(["acme", "beta", 'evil"\\\n']), st.sampled_from(["a", "b", "c"]))
# None: remove the tenant; else its new facts (the same facts again, now and then).
STEPS = st.lists(st.tuples(KEYS, st.none() | FACTS), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
def test_exposition_equals_the_reference_after_any_changes(steps: list) -> None:
    ticks = iter(range(0, 10**9, int(NAMES_HELD_SECONDS) + 1))  # (the names held is its own test)
    exposition, facts_now = TenantExposition(clock=lambda: float(next(ticks))), {}
    exposition.BLOCK = 2  # several blocks, filled, emptied and started again
    for (partner, tenant), value in steps:
        if value is None:
            exposition.remove((partner, tenant))
            facts_now.pop((partner, tenant), None)
        else:
            value = TenantFacts(**{**value.__dict__, "tenant": tenant, "partner": partner})
            exposition.put((partner, tenant), value)
            facts_now[(partner, tenant)] = value
        assert parsed(exposition.render().decode()) == parsed(reference(facts_now))
        assert len(exposition) == len(facts_now)


def test_a_tenants_names_change_in_its_series_at_most_once_per_hold() -> None:
    """A partner renaming its tenants (company, plan) in a loop made a new series per rename, which
    Prometheus holds for hours: 200 tenants renamed every second grew its head by 5,000 series in
    30 s. The first rename shows at once, a second within NAMES_HELD_SECONDS waits (the numbers are
    current meanwhile), and after the hold the latest name shows."""
    now = [0.0]
    exposition = TenantExposition(clock=lambda: now[0])

    def info() -> list[tuple[str, str]]:
        found = parsed(exposition.render().decode())["tenantry_tenant_info"][2]
        return [(dict(labels)["company"], dict(labels)["plan"]) for _, labels, _ in found]

    def mrr() -> float:
        return parsed(exposition.render().decode())["tenantry_tenant_mrr"][2][0][2]
    exposition.put(("p", "m"), facts(company="First GmbH"))
    exposition.put(("p", "m"), facts(company="Second GmbH"))  # a typo fixed: shown at once
    assert info() == [("Second GmbH", "business")]
    now[0] += 10
    price = {**SPEC["plan"], "featureSet": "other", "price": {"monthly": 7000, "currency": "EUR"}}
    exposition.put(("p", "m"), facts(company="Third GmbH", plan=price))
    assert info() == [("Second GmbH", "business")] and mrr() == 7000.0
    now[0] += NAMES_HELD_SECONDS
    exposition.put(("p", "m"), facts(company="Third GmbH", plan=price))
    assert info() == [("Third GmbH", "other")]


def test_limit_names_are_held_too_and_deleting_the_tenant_is_no_way_round() -> None:
    """The feature limit's label names the first limit, which a Tenant's features name as they
    like; and a Tenant deleted and applied again came back under new names at once."""
    now = [0.0]
    exposition = TenantExposition(clock=lambda: now[0])

    def labels(family: str, label: str) -> set[str]:
        found = parsed(exposition.render().decode()).get(family, (None, None, []))[2]
        return {dict(series)[label] for _, series, _ in found}

    def named(company: str, limit: str) -> TenantFacts:
        return TenantFacts(**{**facts().__dict__, "company": company,
                              "features": {**ALL, "chat": EffectiveFeature(True, {limit: 10})}})
    exposition.put(("p", "m"), named("A", "aaaa0000"))
    exposition.put(("p", "m"), named("B", "aaaa0001"))  # the first change: shown
    for second in range(1, 60):  # renamed every second, the limit too
        now[0] = second
        exposition.put(("p", "m"), named(f"C{second}", f"aaaa{second:04}"))
    assert labels("tenantry_tenant_info", "company") == {"B"}
    assert labels("tenantry_tenant_feature_limit", "limit") == {"aaaa0001", "limit"}
    for second in range(60, 120):  # deleted and applied again every second
        now[0] = second
        exposition.remove(("p", "m"))
        exposition.put(("p", "m"), named(f"D{second}", "x"))
        assert labels("tenantry_tenant_info", "company") == {"B"}
    now[0] = 2 * NAMES_HELD_SECONDS
    exposition.remove(("p", "m"))
    exposition.put(("q", "other"), facts("other"))  # (any later change lets go of what is held no longer)
    assert ("p", "m") not in exposition._names


def test_hostile_label_values_parse_back() -> None:
    company = 'Evil "Corp" \\ GmbH\n# TYPE tenantry_partner_mrr counter\ntenantry_partner_mrr{partner="acme"} 1e9'
    partner = 'p\\"}\n'
    text = scrape({(partner, "m"): facts("m", partner, company=company)})
    families = parsed(text)
    info = families["tenantry_tenant_info"][2]
    assert [dict(labels)["company"] for _, labels, _ in info] == [company]
    assert [dict(labels)["partner"] for _, labels, _ in families["tenantry_partner_mrr"][2]] == [partner]
    assert families["tenantry_partner_mrr"][1] == "gauge"
    assert parsed(text) == parsed(reference({(partner, "m"): facts("m", partner, company=company)}))


def test_deleted_tenants_and_empty_partners_vanish() -> None:
    exposition = TenantExposition()
    exposition.put(("p", "a"), facts("a", "acme"))
    exposition.put(("q", "b"), facts("b", "beta"))
    exposition.remove(("q", "b"))
    exposition.remove(("q", "never-there"))
    text = exposition.render().decode()
    assert series_of(text, "b") == [] and 'partner="beta"' not in text
    assert 'tenantry_partner_mrr{currency="EUR",partner="acme"} 5000.0' in text
    exposition.remove(("p", "a"))
    families = parsed(exposition.render().decode())
    assert all(samples == [] for _, _, samples in families.values())  # the families stay, empty
    assert len(families) == 21


def test_unchanged_facts_render_nothing_again() -> None:
    exposition = TenantExposition()
    exposition.BLOCK = 2
    for name in ("a", "b", "c"):
        exposition.put(("p", name), facts(name))
    first = exposition.chunks()
    exposition.put(("p", "c"), facts("c"))  # equal facts, a new object
    assert exposition.chunks() is first
    exposition.put(("p", "c"), facts("c", state="Suspended"))
    then = exposition.chunks()
    kept = {id(chunk) for chunk in first} & {id(chunk) for chunk in then}
    # Only the block of c (and the totals) were joined again: the block of a and b is the same bytes.
    assert all(id(chunk) in kept for chunk in first if b'tenant="a"' in chunk)
    assert not any(id(chunk) in kept for chunk in then if b'tenant="c"' in chunk)
    assert 'tenantry_partner_tenants{partner="acme",state="Suspended"} 1.0' in exposition.render().decode()


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


def test_money_is_summed_per_currency_at_each_partners_rate() -> None:
    """EUR and USD are never added; each tenant's commission uses its partner's rate; the level goes
    by the amount in the level currency (EUR by default) alone."""
    usd = tenant_facts("u", "acme", {**SPEC, "plan": {**SPEC["plan"], "price": {"monthly": 7000, "currency": "USD"}}},
                       None, ALL, True, None, commission=0.3)
    eur = tenant_facts("e", "acme", SPEC, None, ALL, True, None, commission=0.3)
    other = tenant_facts("o", "beta", SPEC, None, ALL, True, None, commission=0.1)
    text = scrape({("p", "u"): usd, ("p", "e"): eur, ("q", "o"): other})
    assert 'tenantry_partner_mrr{currency="EUR",partner="acme"} 5000.0' in text
    assert 'tenantry_partner_mrr{currency="USD",partner="acme"} 7000.0' in text
    assert 'tenantry_partner_commission{currency="USD",partner="acme"} 2100.0' in text
    assert 'tenantry_partner_commission{currency="EUR",partner="beta"} 500.0' in text
    assert not any("12000" in line for line in text.splitlines())  # never 5000 + 7000
    assert 'tenantry_partner_level_info{level="Silver",partner="acme"} 1.0' in text  # by EUR 5000 alone
    assert 'tenantry_partner_level_progress_ratio{partner="acme"} 0.0' in text


def test_a_currency_of_small_units_buys_no_level() -> None:
    """900,000 IDR (about 50 EUR) beside 4,000 EUR is Bronze, as 4,000 EUR is; by the largest amount
    it was Platinum. A platform that bills in USD sets the level currency to USD."""
    eur = tenant_facts("e", "acme", {**SPEC, "plan": {**SPEC["plan"], "price": {"monthly": 4000, "currency": "EUR"}}},
                       None, ALL, True, None, commission=0.3)
    idr = tenant_facts("i", "acme", {**SPEC, "plan": {**SPEC["plan"], "price": {"monthly": 900_000,
                                                                                 "currency": "IDR"}}},
                       None, ALL, True, None, commission=0.3)
    assert 'tenantry_partner_level_info{level="Bronze",partner="acme"} 1.0' in scrape({("p", "e"): eur,
                                                                                       ("p", "i"): idr})
    in_usd = TenantExposition(level_currency="USD")
    in_usd.put(("p", "e"), eur)
    assert 'tenantry_partner_level_info{level="Bronze",partner="acme"} 1.0' in in_usd.render().decode()
    with pytest.raises(ValueError, match="ISO 4217"):
        parse_level_currency("Euro")


def test_quota_families_have_one_unit_each() -> None:
    text = scrape({("p", "m"): facts()})
    assert 'tenantry_tenant_quota_cpu_used_cores{partner="acme",tenant="m"} 0.5' in text
    assert 'tenantry_tenant_quota_cpu_hard_cores{partner="acme",tenant="m"} 6.0' in text
    assert 'tenantry_tenant_quota_pods_used{partner="acme",tenant="m"} 3.0' in text
    assert 'tenantry_tenant_quota_pods_hard{partner="acme",tenant="m"} 20.0' in text
    assert 'resource="' not in text


def test_feature_limit_names_its_limit_and_stays_one_series() -> None:
    many = {f"limit-{i:03}": 1000 - i for i in range(200)}  # the first by name is not the smallest
    features = {**ALL, "tables": EffectiveFeature(True, {"tables": 6, "rows": 100, **many})}
    exposition = TenantExposition()
    exposition.put(("acme", "m"), tenant_facts("m", "acme", SPEC, {"activeUsers": 1}, features, True, QUOTA))
    limits = [s for family in text_string_to_metric_families(exposition.render().decode())
              if family.name == "tenantry_tenant_feature_limit" for s in family.samples]
    tables = [s for s in limits if s.labels["feature"] == "tables"]
    assert [(s.labels["limit"], s.value) for s in tables] == [("limit-000", 1000.0)]
    assert {s.labels["limit"] for s in limits if s.labels["feature"] == "chat"} == {"limit"}
