"""The partner portal's figures and signals, decided without a cluster (tenantry.portal.model and
friends).

Tested here:
- one row per customer, sorted by company; commission only on Active customers, at the partner's rate
- each signal fires at its threshold and not below it: licences above 90 %, seats full within 90
  days, inactive for 7 days, low adoption against the partner's median, heavy use of a feature,
  falling revenue
- totals and revenue keep currencies apart; annual projection is 12 x commission; growth in %;
  quarterly target progress is MRR / target; the level and the progress to the next one
- a feature's use against its limit and the partner's median, with high and low marks
- requests are compared with included requests only (a feature's `requests` limit, from the plan or
  the tenant's override), never with an object limit such as `tables: 50`: without one there is no
  limit bar and no upsell signal, only the partner's median; features enabled but unused count as 0
- the usage CSV: one line per feature, a cell that a spreadsheet would run is made text
- PromQL label values are escaped, every history query is fixed to the partner
- colours reach SVG attributes only as #RRGGBB; logos only as checked data: URLs or plain https
- the portal's settings refuse bad values naming the variable
- the onboarding form: valid input gives the YAML; each bad field gets its own error; a slug or
  custom domain one of the partner's customers already has is refused next to its field, and so is a
  Branding that would replace one of the partner's (or become its default)
"""

from __future__ import annotations

import csv
import datetime
import io

import pytest
import yaml

from tenantry.cli import views
from tenantry.domain.spreadsheet import cell
from tenantry.portal import model
from tenantry.portal.charts import FALLBACK_PRIMARY, bar, colour, logo_source
from tenantry.portal.gather import History, history_queries, label_value
from tenantry.portal.gather import customer as gathered
from tenantry.portal.onboard import Existing, check, existing
from tenantry.portal.settings import PortalSettings


def customer(**overrides: object) -> model.Customer:
    values: dict[str, object] = {"slug": "acme", "company": "Acme", "state": "Active", "plan": "business",
                                 "seats": 100, "active_users": 50, "mrr": 1000.0, "currency": "EUR", "support": ""}
    values.update(overrides)
    return model.Customer(**values)  # type: ignore[arg-type]


def test_rows_one_per_customer_by_company_with_commission_on_active_only() -> None:
    rows = model.rows([customer(slug="b", company="beta"),
                       customer(slug="a", company="Alpha", state="Suspended")], 0.25)
    assert [r.customer.slug for r in rows] == ["a", "b"]
    assert [r.commission for r in rows] == [0.0, 250.0]


@pytest.mark.parametrize(("overrides", "signal", "expected"), [
    ({"active_users": 91}, "licences", True), ({"active_users": 90}, "licences", False),
    ({"users_in_90d": 100.0}, "seats-soon", True), ({"users_in_90d": 99.4}, "seats-soon", False),
    ({"users_in_90d": None}, "seats-soon", False),
    ({"max_users_7d": 0.0}, "inactive", True), ({"max_users_7d": 1.0}, "inactive", False),
    ({"max_users_7d": None}, "inactive", False),
    ({"limits": {"chat": 1000}, "requests": {"chat": 800}}, "upsell:chat", True),
    ({"limits": {"chat": 1000}, "requests": {"chat": 799}}, "upsell:chat", False),
    ({"mrr_30d_ago": 1100.0}, "churn", True), ({"mrr_30d_ago": 1040.0}, "churn", False),
    ({"mrr_30d_ago": None}, "churn", False), ({"mrr_30d_ago": 0.0}, "churn", False),
])
def test_each_signal_at_its_threshold(overrides: dict, signal: str, expected: bool) -> None:
    assert (signal in model.signals(customer(**overrides), 0.0)) is expected


def test_low_adoption_is_against_the_partners_median() -> None:
    others = [customer(slug=f"o{i}", active_users=80) for i in range(3)]
    low, fine = customer(slug="low", active_users=39), customer(slug="fine", active_users=40)
    rows = {r.customer.slug: r for r in model.rows([*others, low, fine], 0.2)}
    assert "low-adoption" in rows["low"].signals and "low-adoption" not in rows["fine"].signals
    assert rows["low"].signal_words() == ["low adoption"]


def test_totals_keep_currencies_apart_and_project_twelve_times_commission() -> None:
    found = model.totals([customer(mrr=1000.0), customer(slug="u", mrr=500.0, currency="USD"),
                          customer(slug="s", mrr=9999.0, state="Suspended")], 0.2)
    assert found.mrr.amounts == {"EUR": 1000.0, "USD": 500.0}
    assert found.commission.amounts == {"EUR": 200.0, "USD": 100.0}
    assert found.annual_projection.amounts == {"EUR": 2400.0, "USD": 1200.0}
    assert (found.customers, found.active_users, found.licensed_users) == (3, 150, 300)


def test_revenue_growth_target_and_level() -> None:
    levels = (("Bronze", 0.0), ("Silver", 5000.0), ("Gold", 20000.0))
    figures = model.revenue([customer(mrr=6000.0)], 0.25, {"EUR": 4800.0}, 12000.0, levels)
    assert figures.growth == {"EUR": pytest.approx(25.0)}
    assert figures.target_progress == {"EUR": 0.5}  # MRR / target, not 3 x MRR / target
    assert figures.annual_projection.amounts == {"EUR": 18000.0}  # 12 x commission, not 12 x MRR
    assert (figures.level, figures.next_level, figures.level_progress) == ("Silver", "Gold", pytest.approx(1 / 15))
    no_history = model.revenue([customer()], 0.2, {}, None, levels)
    assert no_history.growth == {"EUR": None} and no_history.target_progress == {}
    top = model.revenue([customer(mrr=30000.0)], 0.2, {}, None, levels)
    assert (top.level, top.next_level, top.level_progress) == ("Gold", None, 1.0)


def test_feature_use_against_limit_and_median() -> None:
    everyone = [customer(slug=f"c{i}", limits={"chat": 1000}, requests={"chat": 100}) for i in range(3)]
    heavy = customer(slug="h", limits={"chat": 1000}, requests={"chat": 151})
    light = customer(slug="l", limits={"chat": 1000}, requests={"chat": 49})
    medians = model.feature_medians([*everyone, heavy, light])
    assert medians == {"chat": 100.0}
    assert model.feature_use(heavy, medians)[0].mark == "high"
    assert model.feature_use(light, medians)[0].mark == "low"
    assert model.feature_use(everyone[0], medians)[0].mark == ""
    assert model.feature_use(heavy, medians)[0].share_of_limit == pytest.approx(0.151)


PLATFORM = "tenantry-system"
PLANS = {(PLATFORM, "business"): {"features": {"chat": {"enabled": True, "limits": {"answers": 5, "requests": 1000}},
                                               "tables": {"enabled": True, "limits": {"tables": 50}},
                                               "files": {"enabled": False, "limits": {"requests": 10}}}}}


def tenant_body(usage: dict, **spec: object) -> dict:
    return {"metadata": {"name": "acme", "namespace": "partner-acme-it"},
            "spec": {"company": "Acme", "contact": {"name": "A", "email": "a@acme.example"},
                     "plan": {"featureSet": "business", "seats": 10}, **spec},
            "status": {"usage": usage}}


def test_requests_are_compared_with_included_requests_only() -> None:
    no_history = History({}, {}, False)
    # 45 requests of tables against `tables: 50` (a number of tables) is no heavy use; chat's
    # included requests are its `requests` limit, not the first limit by name (answers: 5).
    c = gathered(tenant_body({"activeUsers": 1, "requests": {"chat": 700, "tables": 45}}), PLANS, PLATFORM,
                 no_history)
    assert c.limits == {"chat": 1000} and c.features == frozenset({"chat", "tables"})
    assert [s for s in model.signals(c, 0.0) if s.startswith("upsell")] == []
    uses = {u.feature: u for u in model.feature_use(c, {"chat": 700.0, "tables": 45.0})}
    assert (uses["chat"].limit, uses["chat"].share_of_limit) == (1000, pytest.approx(0.7))
    assert (uses["tables"].limit, uses["tables"].share_of_limit) == (None, None)  # no limit bar
    assert "files" not in uses  # off in the plan, not used
    heavy = gathered(tenant_body({"requests": {"chat": 800}}), PLANS, PLATFORM, no_history)
    assert "upsell:chat" in model.signals(heavy, 0.0)
    # The tenant's override of the included requests wins over the plan's.
    more = gathered(tenant_body({"requests": {"chat": 800}}, features={"chat": {"limits": {"requests": 5000}}}),
                    PLANS, PLATFORM, no_history)
    assert more.limits == {"chat": 5000} and "upsell:chat" not in model.signals(more, 0.0)
    # Suspended: every feature off, nothing included.
    off = gathered(tenant_body({"requests": {"chat": 800}}, state="Suspended"), PLANS, PLATFORM, no_history)
    assert (off.limits, off.features) == ({}, frozenset())


def test_the_median_counts_customers_that_have_a_feature_and_do_not_use_it() -> None:
    users = [customer(slug=f"u{i}", features=frozenset({"tables"}), requests={"tables": 100}) for i in range(2)]
    idle = [customer(slug=f"i{i}", features=frozenset({"tables"})) for i in range(3)]
    assert model.feature_medians([*users, *idle]) == {"tables": 0.0}
    assert [(u.feature, u.requests, u.limit) for u in model.feature_use(idle[0], {})] == [("tables", 0, None)]


def test_usage_csv_one_line_per_feature_and_formulas_made_text() -> None:
    text = model.usage_csv(customer(company="=HYPERLINK(\"https://evil\")", limits={"chat": 10},
                                    requests={"chat": 7, "tables": 2}), "acme-it", "2026-11-30T00:00:00Z")
    table = list(csv.DictReader(io.StringIO(text)))
    assert [(r["feature"], r["requests"], r["included_requests"]) for r in table] == [("chat", "7", "10"),
                                                                                    ("tables", "2", "")]
    assert all(r["company"].startswith("'=") for r in table)
    # A spreadsheet that splits at ";" (German Excel) must not find a formula in the second cell.
    semicolon = model.usage_csv(customer(company="Acme;=cmd|' /C calc'!A0\r\n=2"), "p", "")
    assert "Acme;'=cmd" in semicolon and "A0 =2" in semicolon  # one line: no cell starts at that =
    # Nor after a quote: split at ";", `"=1+1"` is a quoted cell holding a formula.
    quoted = model.usage_csv(customer(company='Acme;"=1+1"'), "p", "")
    assert all(r["company"] == 'Acme;"\'=1+1"' for r in csv.DictReader(io.StringIO(quoted)))


@pytest.mark.timeout(10)
def test_a_long_run_of_tabs_is_judged_in_one_pass() -> None:
    """64 Ki tabs took about 20 s (each tab searched the rest of the run again); still each cell
    after a tab that starts a formula is made text."""
    assert cell("\t" * 65536 + "x") == "\t" * 65536 + "x" and cell("\t" * 65536 + "=1") == "\t" * 65536 + "'=1"
    assert cell("a\t \u00a0\"=1+1") == "a\t \u00a0\"'=1+1" and cell("a; \t@x") == "a; \t'@x"


def test_prometheus_queries_fix_the_partner_escaped() -> None:
    assert label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    queries = history_queries('x"} or vector(1) or {"')
    for expr in queries.values():
        assert 'partner="x\\"} or vector(1) or {\\""' in expr
        assert expr.count("partner=") == expr.count("tenantry_tenant_")
    # The operator's own series only: every selector carries the platform's matchers too.
    for expr in history_queries("acme", 'namespace="tenantry-system"').values():
        assert expr.count('partner="acme",namespace="tenantry-system"') == expr.count("tenantry_tenant_")


def test_colours_and_logos_are_allow_listed() -> None:
    assert colour("#A1b2C3", FALLBACK_PRIMARY) == "#A1b2C3"
    for hostile in ('#fff" onload="x', "red", "#12345", None, "#1234567"):
        assert colour(hostile, FALLBACK_PRIMARY) == FALLBACK_PRIMARY
    assert logo_source({"url": "https://cdn.example/logo.png"}) == "https://cdn.example/logo.png"
    assert logo_source({"url": "javascript:alert(1)"}) is None
    assert logo_source({"url": 'https://x/" onerror="a'}) is None
    assert logo_source({"svg": "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"}) is None
    good = logo_source({"svg": "<svg xmlns='http://www.w3.org/2000/svg'><rect width='4' height='4'/></svg>"})
    assert good is not None and good.startswith("data:image/svg+xml;base64,")
    assert bar(150, 100).over and bar(50, 100).width == 100.0


def test_settings_name_the_variable() -> None:
    with pytest.raises(ValueError, match="TENANTRY_PORTAL_GIT_URL='http://git'"):
        PortalSettings.from_env({"TENANTRY_PORTAL_GIT_URL": "http://git"})
    with pytest.raises(ValueError, match="TENANTRY_PORTAL_TRUST_PROXY_HEADERS='maybe'"):
        PortalSettings.from_env({"TENANTRY_PORTAL_TRUST_PROXY_HEADERS": "maybe"})
    tiers = PortalSettings.from_env({"TENANTRY_PORTAL_SUPPORT_TIERS": "Gold, Silver"}).support_tiers
    assert tiers == ("Gold", "Silver")


CATALOGUE = [{"apiVersion": "tenantry.dev/v1alpha1", "kind": "FeatureSet",
              "metadata": {"name": "business", "namespace": "tenantry-system"},
              "spec": {"features": {"chat": {"enabled": True}}}},
             {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Branding",
              "metadata": {"name": "default", "namespace": "tenantry-system"},
              "spec": {"colours": {"primary": "#112233"}}}]
FORM = {"company": "Neu GmbH", "slug": "neu-kunde", "contact_name": "Eva", "contact_email": "eva@neu.de",
        "plan": "business", "seats": "50", "primary": "#112233", "assistant_name": "Ava", "domain": "ki.neu.de"}


def test_onboarding_form_gives_valid_yaml() -> None:
    outcome = check(FORM, ["tables"], "acme-it", "partner-acme-it", "tenantry-system", "platform.test", CATALOGUE)
    assert outcome.errors == {} and outcome.path == "tenants/acme-it/neu-kunde.yaml"
    tenant, branding = yaml.safe_load_all(outcome.yaml)
    assert tenant["spec"]["branding"] == branding["metadata"]["name"] == "neu-kunde"
    assert tenant["spec"]["features"] == {"tables": {"enabled": True}} and tenant["spec"]["domains"] == ["ki.neu.de"]


def test_onboarding_form_writes_text_that_kubectl_reads_as_text() -> None:
    """A phone number 0521987654 and a contact named Y were written unquoted (a number and a
    boolean to kubectl), and the form's own check refused them where no form user can add quotes."""
    outcome = check({**FORM, "phone": "0521987654", "contact_name": "Y", "company": "1e3"}, [], "acme-it",
                    "partner-acme-it", "tenantry-system", "platform.test", CATALOGUE)
    assert outcome.errors == {}
    assert '"0521987654"' in outcome.yaml and 'name: "Y"' in outcome.yaml and 'company: "1e3"' in outcome.yaml
    tenant, _ = yaml.safe_load_all(outcome.yaml)
    assert (tenant["spec"]["contact"]["phone"], tenant["spec"]["contact"]["name"]) == ("0521987654", "Y")


def test_onboarding_form_takes_a_partner_id_of_digits() -> None:
    """The form's scratch copy of the repository was written unquoted too: a partner id Go reads as
    a number (its partners/ label) put an error on every form of that partner."""
    assert check(FORM, [], "08", "partner-08", "tenantry-system", "platform.test", CATALOGUE).errors == {}


def test_onboarding_form_puts_each_error_next_to_its_field() -> None:
    bad = {**FORM, "contact_email": "nope", "seats": "many", "primary": "red", "plan": "gold"}
    outcome = check(bad, [], "acme-it", "partner-acme-it", "tenantry-system", "platform.test", CATALOGUE)
    assert outcome.yaml == ""
    assert set(outcome.errors) == {"contact_email", "seats", "primary", "plan"}
    assert "gold" in outcome.errors["plan"][0]


CUSTOMERS = [Existing("mustermann", "Mustermann GmbH", ("ki.mustermann.de",)),
             Existing("baeckerei", "Bäckerei Schmidt", ())]


def test_onboarding_form_refuses_a_slug_or_domain_a_customer_has() -> None:
    taken = {**FORM, "slug": "mustermann", "domain": "ki.mustermann.de"}
    outcome = check(taken, [], "acme-it", "partner-acme-it", "tenantry-system", "platform.test", CATALOGUE,
                    CUSTOMERS)
    assert outcome.yaml == "" and set(outcome.errors) == {"slug", "domain"}
    assert "'mustermann' is already your customer 'Mustermann GmbH' (tenants/acme-it/mustermann.yaml)" in \
        outcome.errors["slug"][0]
    assert "'ki.mustermann.de' is already used by your customer 'Mustermann GmbH'" in outcome.errors["domain"][0]
    # Another customer's name and domain are free: the YAML is offered.
    assert check(FORM, [], "acme-it", "partner-acme-it", "tenantry-system", "platform.test", CATALOGUE,
                 CUSTOMERS).errors == {}


def test_onboarding_form_never_replaces_a_branding() -> None:
    ours = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Branding",
            "metadata": {"name": "neu-kunde", "namespace": "partner-acme-it"},
            "spec": {"colours": {"primary": "#000000"}}}
    outcome = check(FORM, [], "acme-it", "partner-acme-it", "tenantry-system", "platform.test", [*CATALOGUE, ours])
    assert outcome.yaml == "" and list(outcome.errors) == ["slug"]
    assert "already has a Branding 'neu-kunde'" in outcome.errors["slug"][0]
    # Without branding fields the form writes no Branding: nothing is replaced, the YAML is offered.
    plain = {k: v for k, v in FORM.items() if k not in ("primary", "assistant_name")}
    assert check(plain, [], "acme-it", "partner-acme-it", "tenantry-system", "platform.test",
                 [*CATALOGUE, ours]).errors == {}
    # Another partner's (or the platform's) Branding of that name is not the partner's to replace.
    elsewhere = {**ours, "metadata": {"name": "neu-kunde", "namespace": "tenantry-system"}}
    assert check(FORM, [], "acme-it", "partner-acme-it", "tenantry-system", "platform.test",
                 [*CATALOGUE, elsewhere]).errors == {}
    # A Branding named default would become the look of every customer of the partner's: no slug
    # may be "default", and that is said once.
    default = check({**FORM, "slug": "default"}, [], "acme-it", "partner-acme-it", "tenantry-system",
                    "platform.test", CATALOGUE)
    assert default.errors == {"slug": [
        "tenant name 'default' is not available on this platform (tenant names are unique across all partners "
        "and some are reserved: choose another metadata.name)"]}


@pytest.mark.parametrize(("field", "typed", "expected"), [
    # The schema's finding (with its description) and the model's (without) on one e-mail address.
    ("contact_email", "eva@", ['"eva@" is not an e-mail address: write it as name@example.com '
                               "(E-mail address of the contact person.)"]),
    # The slug names the Tenant, its Branding and spec.branding: told once, at the slug.
    ("slug", "Neu_X", ['"Neu_X" is not a DNS label: lower-case letters, digits and hyphens, starting and ending '
                       "with a letter or digit (acme-shop) (The tenant's slug: unique across all partners, used for "
                       "the subdomain <slug>.<platform domain> and the namespace tenant-<slug>; at most 40 "
                       "characters.)"]),
    ("slug", "a" * 70, ["70 characters, at most 40 allowed (The tenant's slug: unique across all partners, used "
                        "for the subdomain <slug>.<platform domain> and the namespace tenant-<slug>; at most 40 "
                        "characters.)"]),
    # A price with a decimal comma is no number: told at the price (it was an error page, 500).
    ("price", "12,50", ['"12,50" is text, and the field takes a number: write 12.5 (a dot is the decimal point) '
                        "(Monthly recurring revenue in `currency`.)"]),
])
def test_onboarding_form_tells_each_error_once_at_its_field(field: str, typed: str, expected: list[str]) -> None:
    outcome = check({**FORM, field: typed}, [], "acme-it", "partner-acme-it", "tenantry-system", "platform.test",
                    CATALOGUE)
    assert outcome.yaml == "" and outcome.errors == {field: expected}


def test_existing_customers_from_tenants_as_the_api_server_holds_them() -> None:
    bodies = [{"metadata": {"name": "a", "namespace": "p"}, "spec": {"company": "A", "domains": ["a.example"]}},
              {"metadata": {"name": "b", "namespace": "p"}, "spec": {}}]
    assert existing(bodies) == [Existing("a", "A", ("a.example",)), Existing("b", "", ())]


def test_partners_are_partner_namespaces_only_and_never_claimed_twice() -> None:
    from tenantry.portal.gather import Cluster

    cluster = Cluster(None, "tenantry-system", 0.2)  # type: ignore[arg-type]  (no request is made)

    def namespace(name: str, **labels: str) -> dict:
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels,
                                                                      "resourceVersion": "1"}}
    cluster.namespaces.observe("ADDED", namespace("partner-acme", **{"tenantry.dev/partner": "acme"}))
    # A tenant namespace of acme's (sorted first) is not acme's partner namespace.
    cluster.namespaces.observe("ADDED", namespace("a-tenant", **{"tenantry.dev/partner": "acme",
                                                                 "tenantry.dev/tenant": "x",
                                                                 "app.kubernetes.io/managed-by": "tenantry"}))
    cluster.namespaces.observe("ADDED", namespace("partner-beta", **{"tenantry.dev/partner": "beta"}))
    cluster.namespaces.observe("ADDED", namespace("aaa-beta", **{"tenantry.dev/partner": "beta"}))
    assert {pid: info.namespace for pid, info in cluster.partners().items()} == {"acme": "partner-acme"}
    # Kept between pages, and worked out again once a namespace changes.
    assert cluster.partners() is cluster.partners()
    cluster.namespaces.observe("ADDED", namespace("partner-gamma", **{"tenantry.dev/partner": "gamma"}))
    assert set(cluster.partners()) == {"acme", "gamma"}


def test_pipeline_by_stage_and_trials_by_end() -> None:
    deals = [model.Deal("a", "Alpha", "Demo", 400.0, "EUR", "", ""),
             model.Deal("b", "beta", "Demo", 600.0, "EUR", "", ""),
             model.Deal("c", "Gamma", "Negotiation", 1000.0, "USD", "2027-01-01", "gamma-trial")]
    stages = model.pipeline(deals, 0.25, ("Discovery", "Demo", "Proposal", "Negotiation"))
    assert [(s.name, len(s.deals), dict(s.mrr.amounts), dict(s.commission.amounts)) for s in stages] == [
        ("Discovery", 0, {}, {}), ("Demo", 2, {"EUR": 1000.0}, {"EUR": 250.0}), ("Proposal", 0, {}, {}),
        ("Negotiation", 1, {"USD": 1000.0}, {"USD": 250.0})]
    assert [d.name for d in stages[1].deals] == ["a", "b"]
    total, commission = model.pipeline_totals(stages)
    assert total.amounts == {"EUR": 1000.0, "USD": 1000.0} and commission.amounts == {"EUR": 250.0, "USD": 250.0}
    accounts = model.trial_accounts([("later", "L", "x", "864000"), ("over", "O", "y", "0")], now=86400.0)
    assert [(t.slug, round(t.days_left), t.in_effect) for t in accounts] == [("over", -1, "Suspended"),
                                                                               ("later", 9, "Active")]


def test_an_ended_trial_is_shown_suspended_as_everywhere_else() -> None:
    """The portal shows the state in effect (lifecycle.effective_state), not spec.state: a trial
    whose end has passed is Suspended, one still running is Trial."""
    body = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": "probe", "namespace": "partner-acme", "creationTimestamp": "2026-10-01T00:00:00Z"},
            "spec": {"company": "Probe AG", "state": "Trial", "trial": {"ends": "2026-11-01T00:00:00Z"},
                     "plan": {"featureSet": "business", "seats": 5}}}
    none = History({}, {}, False)
    after = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    before = datetime.datetime(2026, 10, 15, tzinfo=datetime.UTC)
    assert gathered(body, {}, "tenantry-system", none, after).state == "Suspended"
    assert gathered(body, {}, "tenantry-system", none, before).state == "Trial"
    assert gathered(body, {}, "tenantry-system", none).state == "Suspended"  # default: this moment
    active = {**body, "spec": {**body["spec"], "state": "Active"}}
    assert gathered(active, {}, "tenantry-system", none, after).state == "Active"


def test_a_trial_applied_again_over_its_namespace_ends_as_the_operator_counts() -> None:
    """A Tenant applied again over its retained namespace: the portal, which cannot read
    namespaces, counts its trial from the operator's status.trialStarted, as the CLI does
    (views.state_of); an earlier-looking value the operator did not write is ignored if not a time."""
    body = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": "probe", "namespace": "partner-acme", "creationTimestamp": "2026-11-20T00:00:00Z"},
            "spec": {"company": "Probe AG", "state": "Trial", "trial": {"ends": "2099-01-01T00:00:00Z"},
                     "plan": {"featureSet": "business", "seats": 5}},
            "status": {"trialStarted": "2026-08-01T00:00:00Z"}}
    none = History({}, {}, False)
    moment = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)  # 122 days after trialStarted
    assert gathered(body, {}, "tenantry-system", none, moment).state == "Suspended"
    assert views.state_of(body, moment) == "Suspended"
    fresh = {**body, "status": {"trialStarted": "not a time"}}
    assert gathered(fresh, {}, "tenantry-system", none, moment).state == "Trial"
    assert views.state_of(fresh, moment) == "Trial"


def test_a_customer_not_provisioned_earns_nothing_yet() -> None:
    """A Tenant refused, or waiting for a place under the partner's cap, has no namespace in its
    status: its price is no revenue (else a partner's own figures grew with Tenants it may not have)."""
    body = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": "waiting", "namespace": "partner-acme"},
            "spec": {"company": "Waiting AG", "plan": {"featureSet": "business", "seats": 5,
                                                       "price": {"monthly": 9_999_999, "currency": "EUR"}}},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "PartnerTenantLimit"}]}}
    none = History({}, {}, False)
    assert gathered(body, {}, "tenantry-system", none).mrr == 0.0
    provisioned = {**body, "status": {"namespace": "tenant-waiting"}}
    assert gathered(provisioned, {}, "tenantry-system", none).mrr == 9_999_999
