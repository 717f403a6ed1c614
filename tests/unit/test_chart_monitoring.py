"""The chart's monitoring parts, rendered by the real Helm engine (helm-python-sdk, Helm v4 as a library).

Tested here:
- `helm lint` finds no errors
- with default values no monitoring part is rendered (no prometheus-operator CRDs needed)
- enabled: two PrometheusRules (business, operations; each its own toggle) carry exactly the
  groups of the promtool-tested rules file, with the runbook base URL of the values; the ConfigMap every
  committed dashboard with Grafana's sidecar label, the ServiceMonitor the metrics port
- the dashboards' portal links: dashboards.portalUrl takes the place of the placeholder (trailing
  slash dropped), is required with dashboards.enabled, and must be a plain https URL
- the ServiceMonitor selects the chart's Service, and that Service has the port it scrapes
- values.schema.json refuses a wrong value with a message naming it
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from tenantry.dashboards.build import PORTAL_PLACEHOLDER
from tests.unit import chart
from tests.unit.chart import CHART

PORTAL = "https://portal.saas.example.com"
ALL_ON = {"prometheusRule": {"enabled": True}, "dashboards": {"enabled": True, "portalUrl": PORTAL},
          "metrics": {"serviceMonitor": {"enabled": True}}}
MONITORING = {"PrometheusRule", "ServiceMonitor", "ConfigMap"}


def render(values: dict | None = None) -> dict[str, dict]:
    """The monitoring objects (and the Service) by kind."""
    objects = chart.render(values, name="rel")
    return {o["kind"]: o for o in objects if o["kind"] in MONITORING | {"Service"}}


def test_lint_has_no_errors() -> None:
    result = helm.lint(str(CHART))
    assert result["errors"] == []
    assert all(m["severity"] <= 1 for m in result["messages"]), result["messages"]


def test_defaults_render_no_optional_monitoring() -> None:
    assert set(render()) == {"Service"}


def _rules(values: dict) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in chart.render(values, name="rel") if o["kind"] == "PrometheusRule"}


def test_prometheus_rules_are_the_tested_rules_file_split_by_audience() -> None:
    rules = _rules(ALL_ON)
    assert set(rules) == {"rel-tenantry-business", "rel-tenantry-operations"}
    shipped = yaml.safe_load((CHART / "rules" / "tenantry-rules.yaml").read_text())
    together = rules["rel-tenantry-business"]["spec"]["groups"] + rules["rel-tenantry-operations"]["spec"]["groups"]
    assert sorted(together, key=lambda g: g["name"]) == sorted(shipped["groups"], key=lambda g: g["name"])
    for audience in ("business", "operations"):
        rule = rules[f"rel-tenantry-{audience}"]
        assert rule["metadata"]["namespace"] == "tenantry-system"
        assert rule["metadata"]["labels"]["tenantry.dev/audience"] == audience
        alerts = [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
        assert alerts and {a["labels"]["audience"] for a in alerts} == {audience}


def test_each_audience_has_its_own_toggle_and_the_runbooks_their_base_url() -> None:
    only_ops = _rules({"prometheusRule": {"enabled": True, "business": {"enabled": False},
                                          "runbookBaseUrl": "https://wiki.example.com/tenantry/"}})
    assert set(only_ops) == {"rel-tenantry-operations"}
    urls = {r["annotations"]["runbook_url"] for g in only_ops["rel-tenantry-operations"]["spec"]["groups"]
            for r in g["rules"] if "alert" in r}
    assert urls and all(u.startswith("https://wiki.example.com/tenantry/Tenant") for u in urls), urls


def test_dashboards_config_map_has_every_dashboard_and_the_sidecar_label() -> None:
    config_map = render(ALL_ON)["ConfigMap"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    committed = {p.name: p.read_text() for p in (CHART / "dashboards").glob("*.json")}
    assert set(config_map["data"]) == set(committed)
    for name, text in committed.items():
        assert config_map["data"][name].strip() == text.replace(PORTAL_PLACEHOLDER, PORTAL).strip()


def _portal_variable(config_map: dict) -> dict:
    document = json.loads(config_map["data"]["tenantry-partner-overview.json"])
    return next(v for v in document["templating"]["list"] if v["name"] == "portal")


@pytest.mark.parametrize("url", [PORTAL, "https://saas.example.com:8443/portal/", "https://10.0.0.7/"])
def test_dashboards_link_to_the_portal_url_of_the_values(url: str) -> None:
    config_map = render({"dashboards": {"enabled": True, "portalUrl": url}})["ConfigMap"]
    variable = _portal_variable(config_map)
    assert variable["query"] == url.rstrip("/") and variable["type"] == "constant" and variable["skipUrlSync"]
    text = "".join(config_map["data"].values())
    assert PORTAL_PLACEHOLDER not in text and text.count(url.rstrip("/")) == 1  # only the variable: links use it


def test_dashboards_need_the_portal_url() -> None:
    for dashboards in ({"enabled": True}, {"enabled": True, "portalUrl": ""}):
        with pytest.raises(helm.HelmError) as refused:
            render({"dashboards": dashboards})
        assert "dashboards.portalUrl is required" in str(refused.value)
        assert "--set dashboards.portalUrl=https://" in str(refused.value)
    assert "ConfigMap" not in render({"dashboards": {"enabled": False}})  # off: no URL needed


@pytest.mark.parametrize("url", ["http://portal.example.com", "https://portal.example.com/?x=1",
                                 'https://portal.example.com/"}],"x":"', "https://user@portal.example.com",
                                 "https://portal.example.com/${__data.fields.tenant}", "portal.example.com",
                                 "https://portal example.com", "javascript:alert(1)"])
def test_the_portal_url_is_a_plain_https_url(url: str) -> None:
    with pytest.raises(helm.HelmError) as refused:
        render({"dashboards": {"enabled": True, "portalUrl": url}})
    assert "portalUrl" in str(refused.value)


def test_service_monitor_scrapes_the_metrics_port() -> None:
    monitor = render({**ALL_ON, "metrics": {"serviceMonitor": {"enabled": True, "interval": "15s"}}})["ServiceMonitor"]
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]


def test_service_monitor_selects_the_service_and_its_port() -> None:
    objects = render(ALL_ON)
    selector = objects["ServiceMonitor"]["spec"]["selector"]["matchLabels"]
    service = objects["Service"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert service["metadata"]["namespace"] == objects["ServiceMonitor"]["metadata"]["namespace"]
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in objects["ServiceMonitor"]["spec"]["endpoints"]} <= ports


@pytest.mark.parametrize(("values", "words"), [({"metrics": {"port": "eighty"}}, "port"),
                                               ({"dashboards": {"enabeld": True}}, "enabeld")])
def test_schema_refuses_bad_values(values: dict, words: str) -> None:
    with pytest.raises(helm.HelmError) as error:
        render(values)
    assert words in str(error.value)


@pytest.mark.parametrize("url", ['https://portal.example.com/"}],"x":"', "https://portal.example.com/?x=1",
                                 "https://user@portal.example.com", "javascript:alert(1)",
                                 "https://portal.example.com/" + "a" * 500])
def test_the_template_refuses_a_bad_portal_url_when_the_schema_is_skipped(url: str, tmp_path: Path) -> None:
    """helm --skip-schema-validation: the chart without its values.schema.json, so only the template's
    own guard stands between the value and the dashboards' JSON."""
    unchecked = tmp_path / "tenantry"
    shutil.copytree(CHART, unchecked)
    (unchecked / "values.schema.json").unlink()
    domain = {"platformDomain": "saas.example.com"}
    good = chart.manifests({"operator": domain, "dashboards": {"enabled": True,
                                                               "portalUrl": "https://portal.saas.example.com/"}},
                           chart=unchecked)
    assert "https://portal.saas.example.com" in good["tenantry/templates/dashboards-configmap.yaml"]
    with pytest.raises(helm.HelmError) as refused:
        chart.manifests({"operator": domain, "dashboards": {"enabled": True, "portalUrl": url}}, chart=unchecked)
    message = str(refused.value)
    assert "dashboards.portalUrl" in message and "is not a plain https URL" in message
    assert "e.g. --set dashboards.portalUrl=https://portal.saas.example.com" in message


def test_the_template_guard_uses_the_schemas_pattern() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    pattern = schema["properties"]["dashboards"]["properties"]["portalUrl"]["pattern"]
    assert f"regexMatch `{pattern}`" in (CHART / "templates" / "dashboards-configmap.yaml").read_text()
