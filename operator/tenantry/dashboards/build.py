"""The four dashboards: partner overview, revenue, adoption, operator health.

Every panel query uses the variables `$partner` and `$tenant` (regexes, "All" is `.*`) and the
metrics of tenantry.metrics; the e2e test sends each one to a real Prometheus.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import BigValueTextMode
from grafana_foundation_sdk.models.dashboard import DataSourceRef, DataTransformerConfig, DynamicConfigValue, GridPos

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
SEL = 'partner=~"$partner", tenant=~"$tenant"'  # every tenant-level query is narrowed by both
PSEL = 'partner=~"$partner"'
# Money is summed per currency, never across: every money query keeps to the chosen `$currency`.
CUR = 'currency="$currency"'
MONEY = "none"  # the amount; the panel's title names the currency
# The partner portal's URL in the committed JSON. The chart puts dashboards.portalUrl in its place
# (templates/dashboards-configmap.yaml); whoever uses the JSON without the chart sets it there.
PORTAL_PLACEHOLDER = "https://portal.platform.example"


def _query(expr: str, legend: str = "", instant: bool = False, ref: str = "A", table_format: bool = False
           ) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).ref_id(ref).legend_format(legend or "__auto")
    if instant:
        query = query.instant()
    if table_format:
        query = query.format("table")
    return query


def _stat(title: str, expr: str, unit: str, x: int, y: int, w: int = 4) -> stat.Panel:
    return (stat.Panel().title(title).datasource(DATASOURCE).unit(unit)
            .grid_pos(GridPos(x=x, y=y, w=w, h=4)).with_target(_query(expr, instant=True)))


def _series(title: str, queries: list[tuple[str, str]], unit: str, x: int, y: int, w: int = 12) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).datasource(DATASOURCE).unit(unit).grid_pos(GridPos(x=x, y=y, w=w, h=8))
    for index, (expr, legend) in enumerate(queries):
        panel = panel.with_target(_query(expr, legend, ref=chr(ord("A") + index)))
    return panel


def _base(uid: str, title: str, description: str) -> dashboard.Dashboard:
    partner = (dashboard.QueryVariable("partner").label("Partner").datasource(DATASOURCE)
               .query("label_values(tenantry_tenant_info, partner)").multi(True).include_all(True).all_value(".*"))
    tenant = (dashboard.QueryVariable("tenant").label("Customer").datasource(DATASOURCE)
              .query('label_values(tenantry_tenant_info{partner=~"$partner"}, tenant)')
              .multi(True).include_all(True).all_value(".*"))
    return (dashboard.Dashboard(title).uid(uid).description(description).tags(["tenantry"])
            .refresh("1m").time("now-30d", "now")
            .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
            .with_variable(partner).with_variable(tenant))


def _with_currency(board: dashboard.Dashboard) -> dashboard.Dashboard:
    """A dashboard that shows money: one currency at a time (amounts in EUR and USD are not added)."""
    return board.with_variable(dashboard.QueryVariable("currency").label("Currency").datasource(DATASOURCE)
                               .query('label_values(tenantry_partner_mrr{partner=~"$partner"}, currency)')
                               .multi(False).include_all(False))


def _by_tenant(expr: str) -> str:
    """One value per customer, labelled by tenant and partner only: the table's merge joins on them."""
    return f"sum by (tenant, partner) ({expr})"


# The customer table's columns: (query ref, header, expression, unit).
CUSTOMER_COLUMNS = (
    ("A", "", f"max by (tenant, partner, company, plan, state) (tenantry_tenant_info{{{SEL}}})", ""),
    ("B", "Active users", _by_tenant(f"tenantry_tenant_active_users{{{SEL}}}"), "none"),
    ("C", "Seats", _by_tenant(f"tenantry_tenant_seats{{{SEL}}}"), "none"),
    ("D", "MRR ($currency)", _by_tenant(f"tenantry_tenant_mrr{{{SEL}, {CUR}}}"), MONEY),
    ("E", "Commission ($currency)", _by_tenant(f"tenantry_tenant_mrr{{{SEL}, {CUR}}} * on(partner, currency) "
                                               f"group_left() (tenantry_partner_commission{{{PSEL}, {CUR}}} "
                                               f"/ clamp_min(tenantry_partner_mrr{{{PSEL}, {CUR}}}, 1))"), MONEY),
    ("F", "MRR growth (30 d)", f"({_by_tenant(f'tenantry_tenant_mrr{{{SEL}, {CUR}}}')} - "
                               f"{_by_tenant(f'tenantry_tenant_mrr{{{SEL}, {CUR}}} offset 30d')}) / "
                               f"{_by_tenant(f'tenantry_tenant_mrr{{{SEL}, {CUR}}} offset 30d')}", "percentunit"),
    ("G", "Seat utilisation", _by_tenant(f"tenantry_tenant_seat_utilisation_ratio{{{SEL}}}"), "percentunit"),
    # The expression of the recording rule tenantry:tenant_requests_per_user:total, written out: the
    # rules are opt-in (prometheusRule.enabled), and without them the column was empty.
    ("H", "Requests per user", f"{_by_tenant(f'tenantry_tenant_requests{{{SEL}}}')} / on(tenant, partner) "
                               f"clamp_min({_by_tenant(f'tenantry_tenant_active_users{{{SEL}}}')}, 1)", "none"),
    ("I", "Ready", _by_tenant(f"tenantry_tenant_ready{{{SEL}}}"), "none"),
)


def _customers_table() -> table.Panel:
    """One row per customer: every query is an instant table, merged on (tenant, partner); the
    tenant links to its page in the partner portal."""
    panel = (table.Panel().title("Customers").datasource(DATASOURCE).grid_pos(GridPos(x=0, y=8, w=24, h=12))
             .description("One row per customer: plan, state, size, users, revenue and growth. "
                          "A customer's name opens its page in the partner portal.")
             .with_transformation(DataTransformerConfig(id_val="merge", options={}))
             .with_transformation(DataTransformerConfig(id_val="organize", options={
                 "excludeByName": {"Time": True, "Value #A": True},
                 "renameByName": {f"Value #{ref}": title for ref, title, _, _ in CUSTOMER_COLUMNS if title}})))
    for ref, _, expr, _ in CUSTOMER_COLUMNS:
        panel = panel.with_target(_query(expr, instant=True, ref=ref, table_format=True))
    for _, title, _, unit in CUSTOMER_COLUMNS:
        if title and unit:
            panel = panel.override_by_name(title, [DynamicConfigValue(id_val="unit", value=unit)])
    link = {"title": "Open in the partner portal", "targetBlank": True,
            "url": "${portal}/p/${__data.fields.partner}/customers/${__data.fields.tenant}"}
    return panel.override_by_name("tenant", [DynamicConfigValue(id_val="links", value=[link])])


def partner_overview() -> dashboard.Dashboard:
    # A constant, not a text box: a text box's value may come from the dashboard's URL, and a link
    # sent to the platform team must not point its customer links at someone else's site.
    portal = (dashboard.ConstantVariable("portal").label("Partner portal URL")
              .description("The partner portal's https URL: the chart's dashboards.portalUrl (without the chart, "
                           "set it in the dashboard JSON or your provisioning)")
              .value(PORTAL_PLACEHOLDER))
    return (_with_currency(_base("tenantry-partner-overview", "tenantry / Partner overview",
                                 "Every customer of a partner in one place: users, revenue, commission and where "
                                 "to act. Money is shown in one currency at a time (the Currency variable)."))
            .with_variable(portal)
            .with_panel(_stat("Number of customers", f"count(tenantry_tenant_info{{{SEL}}}) or vector(0)", "none",
                              0, 0))
            .with_panel(_stat("Active users", f"sum(tenantry_tenant_active_users{{{SEL}}})", "none", 4, 0))
            .with_panel(_stat("Licensed seats", f"sum(tenantry_tenant_seats{{{SEL}}})", "none", 8, 0))
            .with_panel(_stat("MRR ($currency)", f"sum(tenantry_partner_mrr{{{PSEL}, {CUR}}})", MONEY, 12, 0))
            .with_panel(_stat("Commission / month ($currency)", f"sum(tenantry_partner_commission{{{PSEL}, {CUR}}})",
                              MONEY, 16, 0))
            .with_panel(_stat("Annual commission (12 × commission, $currency)",
                              f"12 * sum(tenantry_partner_commission{{{PSEL}, {CUR}}})", MONEY, 20, 0))
            .with_panel(_stat("Annual revenue (12 × MRR, $currency)",
                              f"12 * sum(tenantry_partner_mrr{{{PSEL}, {CUR}}})", MONEY, 0, 4))
            .with_panel(_level_panel(4, 4))
            .with_panel(_stat_by("Tenants by state", f"sum by (state) (tenantry_partner_tenants{{{PSEL}}})",
                                 "{{state}}", 12, 4, 12))
            .with_panel(_customers_table()))


def _stat_by(title: str, expr: str, legend: str, x: int, y: int, w: int) -> stat.Panel:
    """A stat with one value per series, named by `legend`."""
    return (stat.Panel().title(title).datasource(DATASOURCE).unit("none")
            .grid_pos(GridPos(x=x, y=y, w=w, h=4)).with_target(_query(expr, legend, instant=True)))


def _level_panel(x: int, y: int) -> stat.Panel:
    """The partner level's name (the series' `level` label), not its value."""
    return (stat.Panel().title("Partner level").datasource(DATASOURCE).grid_pos(GridPos(x=x, y=y, w=8, h=4))
            .text_mode(BigValueTextMode.NAME)
            .with_target(_query(f"max by (partner, level) (tenantry_partner_level_info{{{PSEL}}})", "{{level}}",
                                instant=True)))


def revenue() -> dashboard.Dashboard:
    target = dashboard.TextBoxVariable("target").label("Quarterly MRR target").default_value("100000")
    mrr = f"sum(tenantry_partner_mrr{{{PSEL}, {CUR}}})"
    return (_with_currency(_base("tenantry-revenue", "tenantry / Revenue",
                                 "MRR and commission over time, growth and target, in one currency at a time."))
            .with_variable(target)
            .with_panel(_stat("MRR ($currency)", mrr, MONEY, 0, 0, 6))
            .with_panel(_stat("Growth vs 30 days ago", f"({mrr} - {mrr.replace('})', '} offset 30d)')}) / "
                              f"{mrr.replace('})', '} offset 30d)')}", "percentunit", 6, 0, 6))
            .with_panel(_stat("Quarterly target progress (MRR ÷ target)", f"{mrr} / $target",
                              "percentunit", 12, 0, 6))
            .with_panel(_stat("Partner level progress", f"avg(tenantry_partner_level_progress_ratio{{{PSEL}}})",
                              "percentunit", 18, 0, 6))
            .with_panel(_series("MRR by partner ($currency)",
                                [(f"sum by (partner) (tenantry_partner_mrr{{{PSEL}, {CUR}}})", "{{partner}}")],
                                MONEY, 0, 4))
            .with_panel(_series("Commission by partner ($currency)",
                                [(f"sum by (partner) (tenantry_partner_commission{{{PSEL}, {CUR}}})", "{{partner}}")],
                                MONEY, 12, 4))
            .with_panel(_series("MRR by customer ($currency)",
                                [(f"sum by (tenant) (tenantry_tenant_mrr{{{SEL}, {CUR}}})", "{{tenant}}")],
                                MONEY, 0, 12, 24)))


def adoption() -> dashboard.Dashboard:
    return (_base("tenantry-adoption", "tenantry / Adoption", "Feature usage, licence utilisation, inactive tenants.")
            .with_panel(_stat("Licence utilisation", f"avg(tenantry_tenant_seat_utilisation_ratio{{{SEL}}})",
                              "percentunit", 0, 0, 8))
            .with_panel(_stat("Inactive customers",
                              f"count(tenantry_tenant_active_users{{{SEL}}} == 0) or vector(0)", "none", 8, 0, 8))
            .with_panel(_stat("Features in use",
                              f"count(count by (feature) (tenantry_tenant_requests{{{SEL}}} > 0)) or vector(0)",
                              "none", 16, 0, 8))
            .with_panel(_series("Requests by feature",
                                [(f"sum by (feature) (tenantry_tenant_requests{{{SEL}}})", "{{feature}}")],
                                "none", 0, 4))
            .with_panel(_series("Seat utilisation by customer",
                                [(f"tenantry_tenant_seat_utilisation_ratio{{{SEL}}}", "{{tenant}}")],
                                "percentunit", 12, 4))
            .with_panel(_series("Customers with each feature on",
                                [(f"sum by (feature) (tenantry_tenant_feature_enabled{{{SEL}}})", "{{feature}}")],
                                "none", 0, 12, 24)))


def operator_health() -> dashboard.Dashboard:
    return (_base("tenantry-operator", "tenantry / Operator health", "Reconcile passes, errors, conditions.")
            .with_panel(_stat("Tenants Ready", f"sum(tenantry_tenant_ready{{{SEL}}})", "none", 0, 0, 6))
            .with_panel(_stat("DNS conflicts", f"sum(tenantry_dns_conflict{{{SEL}}}) or vector(0)", "none", 6, 0, 6))
            .with_panel(_stat("Seconds since last resync",
                              "time() - max(tenantry_last_resync_timestamp_seconds)", "s", 12, 0, 6))
            .with_panel(_stat("Reconcile errors (1h)",
                              'sum(increase(tenantry_reconcile_total{result="error"}[1h])) or vector(0)', "none",
                              18, 0, 6))
            .with_panel(_series("Reconcile passes", [("sum by (kind, result) (rate(tenantry_reconcile_total[5m]))",
                                                      "{{kind}} {{result}}")], "ops", 0, 4))
            .with_panel(_series("Reconcile duration p95", [(
                "histogram_quantile(0.95, sum by (le, kind) (rate(tenantry_reconcile_duration_seconds_bucket[5m])))",
                "{{kind}}")], "s", 12, 4))
            .with_panel(_series("Tenants by condition",
                                [("sum by (condition, status) (tenantry_resources_by_condition)",
                                  "{{condition}}={{status}}")], "none", 0, 12))
            .with_panel(_series("Write requests", [("sum by (kind) (rate(tenantry_write_requests_total[5m]))",
                                                    "{{kind}}")], "ops", 12, 12))
            .with_panel(_stat("Leader replicas", "sum(tenantry_leader)", "none", 0, 20, 6))
            .with_panel(_stat("Shards held", "sum(tenantry_shards_held) or vector(0)", "none", 6, 20, 6))
            .with_panel(_stat("Work queue depth", "sum(tenantry_workqueue_depth) or vector(0)", "none", 12, 20, 6))
            .with_panel(_stat("Work queue retries (1h)", "sum(increase(tenantry_workqueue_retries_total[1h])) "
                              "or vector(0)", "none", 18, 20, 6))
            .with_panel(_series("Time in the work queue p95", [(
                "histogram_quantile(0.95, sum by (le, queue) "
                "(rate(tenantry_workqueue_queue_duration_seconds_bucket[5m])))", "{{queue}}")], "s", 0, 24))
            .with_panel(_series("Admission reviews", [(
                "sum by (webhook, result) (rate(tenantry_admission_reviews_total[5m])) or vector(0)",
                "{{webhook}} {{result}}")], "ops", 12, 24))
            .with_panel(_series("DNS syncs", [
                ("sum by (result) (rate(tenantry_dns_syncs_total[5m])) or vector(0)", "{{result}}")], "ops", 0, 32))
            .with_panel(_series("Custom domain checks", [
                ("sum by (result) (rate(tenantry_domain_checks_total[5m])) or vector(0)", "{{result}}")],
                "ops", 12, 32)))


DASHBOARDS = {"partner-overview": partner_overview, "revenue": revenue, "adoption": adoption,
              "operator-health": operator_health}


def rendered() -> dict[str, str]:
    """File name -> dashboard JSON, exactly as committed."""
    out = {}
    for name, build in DASHBOARDS.items():
        model = build().build()
        for variable in model.templating.list_val or []:
            if variable.name == "portal":
                variable.skip_url_sync = True  # (the builder has no setter) never taken from a URL
        text = JSONEncoder(sort_keys=True, indent=2).encode(model)
        out[f"tenantry-{name}.json"] = json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    return out


def panel_queries(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expression) of every query in a dashboard document."""
    return [(panel.get("title", ""), target["expr"]) for panel in document.get("panels", [])
            for target in panel.get("targets", []) if target.get("expr")]
