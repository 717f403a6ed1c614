"""The shipped alert and recording rules, checked and unit-tested by the real promtool.

tests/rules/tenantry-rules.test.yaml feeds input series for every alert, each with tenants that
must fire and tenants that must not (promtool compares the whole list of firing alerts).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "charts" / "tenantry" / "rules" / "tenantry-rules.yaml"
PROMTOOL = shutil.which("promtool")
ALERTS = {"TenantSeatsNearlyExhausted", "TenantSeatLimitForecast", "TenantMissesPopularFeature",
          "TenantRevenueFalling", "TenantLowAdoption", "TenantInactive", "TenantNotReady",
          "TenantryReconcileErrors", "TenantDNSConflict", "TenantTrialEndsSoon", "TenantryOperatorAbsent",
          "TenantryWorkQueueBacklog", "TenantryAdmissionFailing", "TenantryDNSSyncFailing"}
RUNBOOKS = "https://github.com/tenantry/tenantry/blob/main/docs/runbooks/"


@pytest.fixture(scope="module")
def promtool() -> str:
    assert PROMTOOL, "promtool is missing: `make deps` installs Debian's prometheus package"
    return PROMTOOL


def test_rules_are_valid(promtool: str) -> None:
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_stays_quiet_where_it_should(promtool: str) -> None:
    result = subprocess.run([promtool, "test", "rules", "tenantry-rules.test.yaml"], cwd=REPO / "tests" / "rules",
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_test() -> None:
    tests = (REPO / "tests" / "rules" / "tenantry-rules.test.yaml").read_text()
    shipped = {line.split(":", 1)[1].strip() for line in RULES.read_text().splitlines()
               if line.strip().startswith("- alert:")}
    assert shipped == ALERTS
    for alert in ALERTS:
        assert f"alertname: {alert}" in tests, f"{alert} has no promtool test"


def test_every_alert_routes_waits_and_has_a_runbook() -> None:
    """Business alerts never page: an audience label that Alertmanager routes by, a `for:` so that
    one bad scrape does not fire, and a runbook that exists in docs/runbooks/."""
    import yaml

    for group in yaml.safe_load(RULES.read_text())["groups"]:
        audience = "operations" if group["name"] == "tenantry.operations" else "business"
        for rule in (r for r in group["rules"] if "alert" in r):
            assert rule["labels"]["audience"] == audience, rule["alert"]
            assert rule.get("for"), f"{rule['alert']} fires on a single evaluation"
            url = rule["annotations"]["runbook_url"]
            assert url == f"{RUNBOOKS}{rule['alert']}.md", url
            page = REPO / "docs" / "runbooks" / f"{rule['alert']}.md"
            assert page.is_file() and "## Diagnose" in page.read_text(), page
    assert "absent(tenantry_build_info)" in RULES.read_text()  # nothing scraped at all is an alert too
