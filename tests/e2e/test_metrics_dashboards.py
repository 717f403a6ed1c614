"""Usage in, metrics out, dashboards on top: the operator against the local control plane, scraped by
a real Prometheus (Debian package, loopback) that also evaluates the shipped recording rules.

Tested here:
- the usage reporter's ClusterRole may patch a Tenant's status but not its spec (real RBAC)
- a usage report reaches the metrics; a report with an unknown feature is reported (UsageValid)
  and a negative count is refused by the API server
- every panel query of every committed dashboard returns the right number: the value Python
  computes from the operator's own exposition (and a backfilled 35-day history, for growth) for
  this test's tenants; the few panels about the whole operator over time (rates, a histogram, a
  clock) keep a stated bound
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenantry.devtools.samplehistory import SampleTenant, write_blocks
from tests.e2e.prometheus import Prometheus
from tests.integration.fixtures import ClusterHandle, OperatorProcess, Partner, wait_for

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "charts" / "tenantry" / "rules" / "tenantry-rules.yaml"
DASHBOARDS = sorted((REPO / "charts" / "tenantry" / "dashboards").glob("*.json"))


def report_usage(cluster: ClusterHandle, namespace: str, slug: str, usage: dict[str, Any],
                 as_user: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    patch = json.dumps({"status": {"usage": usage}})
    extra = ["--as", as_user] if as_user else []
    return cluster.kubectl("patch", "tenant", slug, "-n", namespace, "--subresource=status", "--type=merge",
                           "-p", patch, *extra, check=check)


def test_usage_reporter_may_write_status_only(partner: Partner, cluster: ClusterHandle) -> None:
    cluster.kubectl("apply", "-f", str(REPO / "examples" / "rbac" / "usage-reporter.yaml"))
    cluster.kubectl("create", "serviceaccount", "reporter", "-n", partner.namespace)
    cluster.kubectl("create", "clusterrolebinding", f"reporter-{partner.suffix}",
                    "--clusterrole=tenantry-usage-reporter", f"--serviceaccount={partner.namespace}:reporter")
    try:
        slug = partner.slug("reported")
        partner.apply(partner.tenant(slug))
        partner.wait_condition(slug)
        reporter = f"system:serviceaccount:{partner.namespace}:reporter"
        report_usage(cluster, partner.namespace, slug, {"activeUsers": 12, "requests": {"chat": 5}}, as_user=reporter)
        spec_change = cluster.kubectl("patch", "tenant", slug, "-n", partner.namespace, "--type=merge",
                                      "-p", '{"spec":{"plan":{"seats":9999}}}', "--as", reporter, check=False)
        assert spec_change.returncode != 0 and "forbidden" in spec_change.stderr.lower()
        negative = report_usage(cluster, partner.namespace, slug, {"activeUsers": -3}, as_user=reporter, check=False)
        assert negative.returncode != 0 and "status.usage.activeUsers" in negative.stderr
        report_usage(cluster, partner.namespace, slug, {"activeUsers": 12, "requests": {"tabels": 5}})
        cond = partner.wait_condition(slug, status="False", reason="InvalidUsage", kind="UsageValid")
        assert "tabels" in cond["message"]
        body = partner.get(slug) or {}
        assert body["status"]["usage"]["activeUsers"] == 12  # the operator never touches the usage
    finally:
        cluster.kubectl("delete", "clusterrolebinding", f"reporter-{partner.suffix}", check=False)


HOUR, DAY = 3600, 86400


def _exposition(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(sample.name, sample.labels, sample.value) for family in text_string_to_metric_families(text)
            for sample in family.samples]


def _expected(exposition: list, partner: str, history: dict[str, float]) -> dict[tuple[str, str], list]:
    """What each panel's queries must return, computed here in Python from the operator's own
    exposition (and the backfilled history), not by PromQL: (dashboard, panel) -> per query, the
    label its series are told apart by (None: one number) and the values by that label."""
    def of(name: str) -> list[tuple[dict[str, str], float]]:
        return [(labels, value) for n, labels, value in exposition if n == name and labels.get("partner") == partner]

    def per_tenant(name: str) -> dict[str, float]:
        return {labels["tenant"]: value for labels, value in of(name)}

    def by(name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, value in of(name):
            out[labels[label]] = out.get(labels[label], 0.0) + value
        return out

    def in_euro(name: str) -> list[tuple[dict[str, str], float]]:
        return [(labels, value) for labels, value in of(name) if labels["currency"] == "EUR"]

    users, seats = per_tenant("tenantry_tenant_active_users"), per_tenant("tenantry_tenant_seats")
    # Money panels show the chosen currency only ($currency = EUR): the USD customer is not added in.
    mrr = {labels["tenant"]: value for labels, value in in_euro("tenantry_tenant_mrr")}
    utilisation = per_tenant("tenantry_tenant_seat_utilisation_ratio")
    partner_mrr = sum(v for _, v in in_euro("tenantry_partner_mrr"))
    commission = sum(v for _, v in in_euro("tenantry_partner_commission"))
    requests = by("tenantry_tenant_requests", "tenant")
    level = next(labels["level"] for labels, _ in of("tenantry_partner_level_info"))
    then = sum(history.values())
    one = lambda value: [(None, {(): value})]  # noqa: E731
    return {
        ("partner-overview", "Number of customers"): one(len(users)),
        ("partner-overview", "Customers"): [
            ("tenant", dict.fromkeys(users, 1.0)), ("tenant", users), ("tenant", seats), ("tenant", mrr),
            ("tenant", {t: m * commission / max(partner_mrr, 1) for t, m in mrr.items()}),
            ("tenant", {t: (m - history[t]) / history[t] for t, m in mrr.items()}),
            ("tenant", utilisation),
            ("tenant", {t: r / max(users[t], 1) for t, r in requests.items()}),
            ("tenant", per_tenant("tenantry_tenant_ready"))],
        ("partner-overview", "Active users"): one(sum(users.values())),
        ("partner-overview", "Licensed seats"): one(sum(seats.values())),
        ("partner-overview", "MRR ($currency)"): one(partner_mrr),
        ("partner-overview", "Commission / month ($currency)"): one(commission),
        ("partner-overview", "Annual commission (12 × commission, $currency)"): one(12 * commission),
        ("partner-overview", "Annual revenue (12 × MRR, $currency)"): one(12 * partner_mrr),
        ("partner-overview", "Partner level"): [("level", {level: 1.0})],
        ("partner-overview", "Tenants by state"): [("state", by("tenantry_partner_tenants", "state"))],
        ("revenue", "MRR ($currency)"): one(partner_mrr),
        ("revenue", "Growth vs 30 days ago"): one((partner_mrr - then) / then),
        ("revenue", "Quarterly target progress (MRR ÷ target)"): one(partner_mrr / 100000),
        ("revenue", "Partner level progress"): one(sum(v for _, v in of("tenantry_partner_level_progress_ratio"))),
        ("revenue", "MRR by partner ($currency)"): [("partner", {partner: partner_mrr})],
        ("revenue", "Commission by partner ($currency)"): [("partner", {partner: commission})],
        ("revenue", "MRR by customer ($currency)"): [("tenant", mrr)],
        ("adoption", "Licence utilisation"): one(sum(utilisation.values()) / len(utilisation)),
        ("adoption", "Inactive customers"): one(sum(1 for v in users.values() if v == 0)),
        ("adoption", "Features in use"): one(sum(1 for v in by("tenantry_tenant_requests", "feature").values() if v)),
        ("adoption", "Requests by feature"): [("feature", by("tenantry_tenant_requests", "feature"))],
        ("adoption", "Seat utilisation by customer"): [("tenant", utilisation)],
        ("adoption", "Customers with each feature on"): [("feature", by("tenantry_tenant_feature_enabled",
                                                                            "feature"))],
        ("operator-health", "Tenants Ready"): one(sum(per_tenant("tenantry_tenant_ready").values())),
        ("operator-health", "DNS conflicts"): one(0.0),
    }


# Panels about the whole operator over time (rates, a histogram, a clock): no number follows from
# this test's tenants alone, so each gets the bound it must keep.
BOUNDED = {
    ("operator-health", "Seconds since last resync"): lambda values: all(0 <= v < 600 for v in values),
    ("operator-health", "Reconcile errors (1h)"): lambda values: all(v >= 0 for v in values),
    ("operator-health", "Reconcile passes"): lambda values: any(v > 0 for v in values),
    ("operator-health", "Reconcile duration p95"): lambda values: any(v > 0 for v in values),
    ("operator-health", "Write requests"): lambda values: all(v >= 0 for v in values),
    # (not `v >= 0`: a quantile over an empty window is NaN, which must not pass as a number)
    ("operator-health", "Leader replicas"): lambda values: values == [1.0],  # this test's one operator
    ("operator-health", "Shards held"): lambda values: values == [0.0],  # one shard: no shard leases
    ("operator-health", "Work queue depth"): lambda values: all(v >= 0 for v in values),
    ("operator-health", "Work queue retries (1h)"): lambda values: all(v >= 0 for v in values),
    ("operator-health", "Time in the work queue p95"): lambda values: any(v >= 0 for v in values),
    ("operator-health", "Admission reviews"): lambda values: all(v >= 0 for v in values),
    ("operator-health", "DNS syncs"): lambda values: all(v >= 0 for v in values),
    ("operator-health", "Custom domain checks"): lambda values: all(v >= 0 for v in values),
}


# Operator-wide gauges: the number is the operator's own at the time of the scrape (other tests'
# tenants may still be changing it), polled until Prometheus and the exposition agree.
GAUGES = {("operator-health", "Tenants by condition"): ("tenantry_resources_by_condition", ("condition", "status"))}


def test_every_dashboard_query_returns_the_right_number(partner: Partner, cluster: ClusterHandle,
                                                        operator: OperatorProcess,
                                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    usage = {"a": {"activeUsers": 40, "requests": {"chat": 4000, "tables": 300}},
             "b": {"activeUsers": 18, "requests": {"chat": 900, "files": 20}},
             "c": {"activeUsers": 0, "requests": {}},
             "usd": {"activeUsers": 5, "requests": {"chat": 50}}}
    partner_id = f"acme-{partner.suffix}"
    slugs = {}
    for name, report in usage.items():
        slug = slugs[name] = partner.slug(name)
        price = {"monthly": 700, "currency": "USD"} if name == "usd" else {"monthly": 1000, "currency": "EUR"}
        partner.apply(partner.tenant(slug, company=f"Firma {name.upper()}",
                                     plan={"featureSet": "business", "seats": 50, "price": price}))
        partner.wait_condition(slug)
        report_usage(cluster, partner.namespace, slug, report)
    # 35 days of history (MRR grew from 800 to 1,000), so that growth has a month to compare with.
    folder = tmp_path_factory.mktemp("dashboards")
    now = time.time()
    samples = [SampleTenant(partner_id, slug, f"Firma {name.upper()}", "business", "Active", "EUR", 800.0, 1000.0,
                            10, 20) for name, slug in slugs.items() if name != "usd"]
    write_blocks(samples, folder / "data", now)
    share = (5 * DAY + HOUR) / (35 * DAY)  # where `offset 30d` lands on the line from 35 days to an hour ago
    history = {t.tenant: t.mrr_then + (t.mrr_now - t.mrr_then) * share for t in samples}
    prometheus = Prometheus(folder, operator.metrics_port)
    try:
        live = f'tenantry_tenant_active_users{{partner="{partner_id}",source!="sample-history"}}'
        wait_for(lambda: prometheus.query(f"sum({live})")["data"]["result"][:1] and
                 prometheus.query(f"sum({live})")["data"]["result"][0]["value"][1] == "63",
                 timeout=90, what="usage scraped by Prometheus")
        wait_for(lambda: prometheus.query(f'tenantry:tenant_requests_per_user:total{{partner="{partner_id}"}}')
                 ["data"]["result"], timeout=60, what="the recording rules evaluated")
        expected = _expected(_exposition(operator.metrics_text()), partner_id, history)
        checked = _check_every_panel(prometheus, partner_id, expected, operator)
    finally:
        prometheus.stop()
    assert checked == sum(len(v) for v in expected.values()) + len(BOUNDED) + len(GAUGES)
    # A deleted tenant's series disappear from the operator's /metrics.
    gone = slugs["c"]
    assert f'tenant="{gone}"' in operator.metrics_text()
    partner.delete(gone)
    wait_for(lambda: f'tenant="{gone}"' not in operator.metrics_text(), timeout=30, what="series of a deleted tenant")


def _gauge_agrees(prometheus: Prometheus, operator: OperatorProcess, concrete: str, name: str,
                  labels: tuple[str, ...]) -> bool:
    want: dict[tuple[str, ...], float] = {}
    for sample, sample_labels, value in _exposition(operator.metrics_text()):
        if sample == name:
            key = tuple(sample_labels[label] for label in labels)
            want[key] = want.get(key, 0.0) + value
    got = {tuple(r["metric"][label] for label in labels): float(r["value"][1])
           for r in prometheus.query(concrete)["data"]["result"]}
    return bool(want) and got == want


def _check_every_panel(prometheus: Prometheus, partner_id: str, expected: dict, operator: OperatorProcess) -> int:
    checked = 0
    for path in DASHBOARDS:
        board = path.name.removeprefix("tenantry-").removesuffix(".json")
        document = json.loads(path.read_text())
        for panel in document["panels"]:
            key = (board, panel.get("title", ""))
            exprs = [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
            assert key in expected or key in BOUNDED or key in GAUGES, f"no expected number for {key}"
            for index, expr in enumerate(exprs):
                concrete = (expr.replace("$partner", partner_id).replace("$tenant", ".*").replace("$target", "100000")
                            .replace("$currency", "EUR"))
                if key in GAUGES:
                    def agrees(concrete: str = concrete, key: tuple = key) -> bool:
                        return _gauge_agrees(prometheus, operator, concrete, *GAUGES[key])
                    wait_for(agrees, timeout=60, what=f"{key}: Prometheus and the operator's exposition agree")
                    checked += 1
                    continue
                if key in BOUNDED:  # a rate needs two scrapes in its window: poll until it has them
                    def bounded(concrete: str = concrete, key: tuple = key) -> list[float] | None:
                        values = [float(r["value"][1]) for r in prometheus.query(concrete)["data"]["result"]]
                        return values if values and BOUNDED[key](values) else None
                    wait_for(bounded, timeout=60, what=f"{key}: {concrete} within its bound")
                    checked += 1
                    continue
                answer = prometheus.query(concrete)
                assert answer.get("status") == "success", (key, concrete, answer)
                result = answer["data"]["result"]
                label, want = expected[key][index]
                got = {(r["metric"].get(label) if label else ()): float(r["value"][1]) for r in result}
                assert set(got) == set(want), (key, concrete, got, want)
                for name, value in want.items():
                    assert got[name] == pytest.approx(value, rel=1e-2, abs=1e-9), (key, name, concrete, got, want)
                checked += 1
    return checked
