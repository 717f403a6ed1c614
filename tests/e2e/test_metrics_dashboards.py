"""Usage in, metrics out, dashboards on top: the operator against the local control plane, scraped by
a real Prometheus (Debian package, loopback) that also evaluates the shipped recording rules.

Tested here:
- the usage reporter's ClusterRole may patch a Tenant's status but not its spec (real RBAC)
- a usage report reaches the metrics; a report with an unknown feature is reported (UsageValid)
  and a negative count is refused by the API server
- every panel query of every committed dashboard parses and returns data from that Prometheus
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tenantry.dashboards.build import panel_queries
from tests.e2e.prometheus import Prometheus
from tests.integration.fixtures import ClusterHandle, OperatorProcess, Partner, wait_for

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "charts" / "tenantry" / "rules" / "tenantry-rules.yaml"
DASHBOARDS = sorted((REPO / "charts" / "tenantry" / "dashboards").glob("*.json"))


@pytest.fixture(scope="module")
def prometheus(operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), operator.metrics_port)
    yield server
    server.stop()


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


def test_every_dashboard_query_returns_data(partner: Partner, cluster: ClusterHandle, prometheus: Prometheus,
                                           operator: OperatorProcess) -> None:
    usage = {"a": {"activeUsers": 40, "requests": {"chat": 4000, "tables": 300}},
             "b": {"activeUsers": 18, "requests": {"chat": 900, "files": 20}},
             "c": {"activeUsers": 0, "requests": {}}}
    for name, report in usage.items():
        slug = partner.slug(name)
        partner.apply(partner.tenant(slug, plan={"featureSet": "business", "seats": 50,
                                                 "price": {"monthly": 1000, "currency": "EUR"}}))
        partner.wait_condition(slug)
        report_usage(cluster, partner.namespace, slug, report)
    partner_id = f"acme-{partner.suffix}"
    def active_users() -> float:
        result = prometheus.query(f'sum(tenantry_tenant_active_users{{partner="{partner_id}"}})')["data"]["result"]
        return float(result[0]["value"][1]) if result else -1.0

    wait_for(lambda: active_users() == 58, timeout=60, what="usage scraped by Prometheus")
    assert DASHBOARDS, "no dashboards committed"
    checked = 0
    for path in DASHBOARDS:
        for title, expr in panel_queries(json.loads(path.read_text())):
            concrete = (expr.replace("$partner", partner_id).replace("$tenant", ".*").replace("$target", "100000"))

            def answered(concrete: str = concrete) -> dict[str, Any] | None:
                answer = prometheus.query(concrete)
                return answer if answer.get("status") == "success" and answer["data"]["result"] else None
            try:
                wait_for(answered, timeout=30, what=f"data for {path.name} / {title}")
            except AssertionError:
                raise AssertionError(f"{path.name} / {title}: {concrete} -> {prometheus.query(concrete)}") from None
            checked += 1
    assert checked >= 30
    # A deleted tenant's series disappear from the operator's /metrics.
    gone = f"c-{partner.suffix}"
    assert f'tenant="{gone}"' in operator.metrics_text()
    partner.delete(gone)
    wait_for(lambda: f'tenant="{gone}"' not in operator.metrics_text(), timeout=30, what="series of a deleted tenant")
