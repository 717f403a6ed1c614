"""The four dashboards: partner overview, revenue, adoption, operator health.

Every panel query uses the variables `$partner` and `$tenant` (regexes, "All" is `.*`) and the
metrics of tenantry.metrics; the e2e test sends each one to a real Prometheus.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
SEL = 'partner=~"$partner", tenant=~"$tenant"'  # every tenant-level query is narrowed by both
PSEL = 'partner=~"$partner"'


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


def partner_overview() -> dashboard.Dashboard:
    customers = (table.Panel().title("Customers").datasource(DATASOURCE).grid_pos(GridPos(x=0, y=4, w=24, h=12))
                 .description("One row per customer: plan, state, size, users, revenue and signals.")
                 .with_target(_query(f"tenantry_tenant_info{{{SEL}}}", instant=True, ref="A", table_format=True))
                 .with_target(_query(f"tenantry_tenant_active_users{{{SEL}}}", instant=True, ref="B",
                                     table_format=True))
                 .with_target(_query(f"tenantry_tenant_seats{{{SEL}}}", instant=True, ref="C", table_format=True))
                 .with_target(_query(f"tenantry_tenant_mrr{{{SEL}}}", instant=True, ref="D", table_format=True))
                 .with_target(_query(f"tenantry_tenant_mrr{{{SEL}}} * on(partner) group_left() "
                                     f"(tenantry_partner_commission{{{PSEL}}}"
                                     f" / clamp_min(tenantry_partner_mrr{{{PSEL}}}, 1))",
                                     instant=True, ref="E", table_format=True))
                 .with_target(_query(f"delta(tenantry_tenant_mrr{{{SEL}}}[30d])", instant=True, ref="F",
                                     table_format=True))
                 .with_target(_query(f"tenantry_tenant_seat_utilisation_ratio{{{SEL}}}", instant=True, ref="G",
                                     table_format=True))
                 .with_target(_query(f"tenantry:tenant_requests_per_user:total{{{SEL}}}", instant=True, ref="H",
                                     table_format=True))
                 .with_target(_query(f"tenantry_tenant_ready{{{SEL}}}", instant=True, ref="I", table_format=True)))
    return (_base("tenantry-partner-overview", "tenantry / Partner overview",
                  "Every customer of a partner in one place: users, revenue, commission and where to act.")
            .with_panel(_stat("Customers", f"count(tenantry_tenant_info{{{SEL}}}) or vector(0)", "none", 0, 0))
            .with_panel(_stat("Active users", f"sum(tenantry_tenant_active_users{{{SEL}}})", "none", 4, 0))
            .with_panel(_stat("Licensed seats", f"sum(tenantry_tenant_seats{{{SEL}}})", "none", 8, 0))
            .with_panel(_stat("MRR", f"sum(tenantry_partner_mrr{{{PSEL}}})", "currencyEUR", 12, 0))
            .with_panel(_stat("Commission / month", f"sum(tenantry_partner_commission{{{PSEL}}})", "currencyEUR",
                              16, 0))
            .with_panel(_stat("Annual projection", f"12 * sum(tenantry_partner_mrr{{{PSEL}}})", "currencyEUR", 20, 0))
            .with_panel(customers))


def revenue() -> dashboard.Dashboard:
    target = dashboard.TextBoxVariable("target").label("Quarterly MRR target").default_value("100000")
    return (_base("tenantry-revenue", "tenantry / Revenue", "MRR and commission over time, growth and target.")
            .with_variable(target)
            .with_panel(_stat("MRR", f"sum(tenantry_partner_mrr{{{PSEL}}})", "currencyEUR", 0, 0, 6))
            .with_panel(_stat("Growth vs last month", f"sum(delta(tenantry_partner_mrr{{{PSEL}}}[30d]))",
                              "currencyEUR", 6, 0, 6))
            .with_panel(_stat("Quarterly target progress", f"3 * sum(tenantry_partner_mrr{{{PSEL}}}) / $target",
                              "percentunit", 12, 0, 6))
            .with_panel(_stat("Partner level progress", f"avg(tenantry_partner_level_progress_ratio{{{PSEL}}})",
                              "percentunit", 18, 0, 6))
            .with_panel(_series("MRR by partner", [(f"sum by (partner) (tenantry_partner_mrr{{{PSEL}}})",
                                                    "{{partner}}")], "currencyEUR", 0, 4))
            .with_panel(_series("Commission by partner",
                                [(f"sum by (partner) (tenantry_partner_commission{{{PSEL}}})", "{{partner}}")],
                                "currencyEUR", 12, 4))
            .with_panel(_series("MRR by customer", [(f"sum by (tenant) (tenantry_tenant_mrr{{{SEL}}})",
                                                     "{{tenant}}")], "currencyEUR", 0, 12, 24)))


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
                                                    "{{kind}}")], "ops", 12, 12)))


DASHBOARDS = {"partner-overview": partner_overview, "revenue": revenue, "adoption": adoption,
              "operator-health": operator_health}


def rendered() -> dict[str, str]:
    """File name -> dashboard JSON, exactly as committed."""
    out = {}
    for name, build in DASHBOARDS.items():
        text = JSONEncoder(sort_keys=True, indent=2).encode(build().build())
        out[f"tenantry-{name}.json"] = json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    return out


def panel_queries(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expression) of every query in a dashboard document."""
    return [(panel.get("title", ""), target["expr"]) for panel in document.get("panels", [])
            for target in panel.get("targets", []) if target.get("expr")]
