"""The pull-request author against `tenantry plan`, on the real API server, as real identities.

Attacks covered (partner alpha writes the pull request; bravo is another partner with a customer
whose company, e-mail and price are distinctive):
- a file in bravo's folder naming bravo's tenant (with other values, so a plan would print the
  difference, i.e. bravo's values) planned with alpha's own ServiceAccount kubeconfig: alpha's
  objects are planned, bravo's is reported as not planned with why, nothing of it is printed
- the same with --namespace naming both namespaces (bravo's then unreadable: refused per object)
- a file in a subfolder of alpha's own folder naming bravo's namespace: refused by validation,
  nothing is sent
- the plan run with the admin kubeconfig (what CI used to hand pull requests): refused before
  anything is read; with --allow-platform-credentials and --namespace it still prints only alpha's
Each asserts the refusal, that none of bravo's values reach stdout or stderr, and that nothing in
the cluster changed (a plan is a dry run).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.fixtures import PLATFORM_NAMESPACE, PLATFORM_YAML, ChartPartner, ClusterHandle, wait_for

pytestmark = pytest.mark.integration
COMMAND = str(Path(sys.executable).parent / "tenantry")


@pytest.fixture(scope="module")
def setting(chart_partners: tuple[ChartPartner, ChartPartner], tmp_path_factory: pytest.TempPathFactory):
    alpha, bravo = chart_partners
    secrets = [f"Geheimkunde {bravo.suffix} AG", f"vorstand-{bravo.suffix}@geheim.example", "98765.43"]
    victim = bravo.slug("geheim")
    bravo.apply(bravo.tenant(victim, company=secrets[0], contact={"name": "Vorstand", "email": secrets[1]},
                             plan={"featureSet": "business", "seats": 7,
                                   "price": {"monthly": float(secrets[2]), "currency": "EUR"}}))
    wait_for(lambda: bravo.get(victim), what="bravo's tenant")
    repo = tmp_path_factory.mktemp("pr") / "repo"
    ids = [ns.removeprefix("partner-") for ns in (alpha.namespace, bravo.namespace)]
    files = {"platform/plans.yaml": PLATFORM_YAML}
    for partner, partner_id in zip((alpha, bravo), ids, strict=True):
        files[f"partners/{partner_id}.yaml"] = yaml.safe_dump({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": partner.namespace, "labels": {"tenantry.dev/partner": partner_id}}})
    mine = alpha.slug("neukunde")
    files[f"tenants/{ids[0]}/{mine}.yaml"] = yaml.safe_dump(alpha.tenant(mine, company="Neukunde GmbH"))
    # The hostile file: bravo's tenant, in bravo's folder, with alpha's idea of its values.
    files[f"tenants/{ids[1]}/hostile.yaml"] = yaml.safe_dump(bravo.tenant(victim, company="Anything GmbH"))
    for relative, text in files.items():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).write_text(text)
    return alpha, bravo, repo, ids, mine, victim, secrets


def plan(repo: Path, kubeconfig: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([COMMAND, "plan", str(repo), "--kubeconfig", str(kubeconfig), "--platform-namespace",
                           PLATFORM_NAMESPACE, "--platform-domain", "platform.test", *extra],
                          capture_output=True, text=True, timeout=120)


def leaked(result: subprocess.CompletedProcess, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in result.stdout or s in result.stderr]


def snapshot(alpha: ChartPartner, bravo: ChartPartner, mine: str, victim: str) -> tuple:
    body = bravo.get(victim) or {}
    # generation, not resourceVersion: the operator keeps writing the status; any spec change bumps it.
    return body.get("metadata", {}).get("generation"), body.get("spec"), alpha.get(mine)


def test_partner_credentials_plan_only_the_partners_own_objects(setting) -> None:
    alpha, bravo, repo, ids, mine, victim, secrets = setting
    before = snapshot(alpha, bravo, mine, victim)
    result = plan(repo, alpha.kubeconfig)
    assert result.returncode == 3, result.stderr  # alpha's new tenant is a change
    assert f"+ Tenant {alpha.namespace}/{mine} (created)" in result.stdout
    assert (f"- Tenant {bravo.namespace}/{victim}: not planned: namespace {bravo.namespace} is outside this plan "
            f"({alpha.namespace})") in result.stdout
    assert leaked(result, secrets) == [] and "Anything GmbH" not in result.stdout
    assert snapshot(alpha, bravo, mine, victim) == before


def test_an_unreadable_namespace_is_refused_per_object(setting) -> None:
    alpha, bravo, repo, ids, mine, victim, secrets = setting
    before = snapshot(alpha, bravo, mine, victim)
    result = plan(repo, alpha.kubeconfig, "--namespace", alpha.namespace, "--namespace", bravo.namespace)
    assert result.returncode == 1, result.stderr
    assert f"+ Tenant {alpha.namespace}/{mine} (created)" in result.stdout
    assert (f"! Tenant {bravo.namespace}/{victim}: not planned: these credentials may not read namespace "
            f"{bravo.namespace}") in result.stdout
    assert leaked(result, secrets) == []
    assert snapshot(alpha, bravo, mine, victim) == before


def test_a_file_in_the_own_folder_naming_another_partner_is_refused_before_the_cluster(setting, tmp_path) -> None:
    alpha, bravo, repo, ids, mine, victim, secrets = setting
    before = snapshot(alpha, bravo, mine, victim)
    stray = repo / "tenants" / ids[0] / "deep" / "stray.yaml"  # a subfolder: the old check looked one level deep
    stray.parent.mkdir(exist_ok=True)
    stray.write_text(yaml.safe_dump(bravo.tenant(victim, company="Anything GmbH")))
    try:
        result = plan(repo, alpha.kubeconfig)
    finally:
        stray.unlink()
    assert result.returncode == 1
    assert f"may only hold partner {ids[0]}'s objects" in result.stderr
    assert "nothing was sent to the cluster" in result.stderr and result.stdout == ""
    assert leaked(result, secrets) == []
    assert snapshot(alpha, bravo, mine, victim) == before


def test_admin_credentials_are_refused_unless_allowed(setting, cluster: ClusterHandle) -> None:
    alpha, bravo, repo, ids, mine, victim, secrets = setting
    before = snapshot(alpha, bravo, mine, victim)
    refused = plan(repo, cluster.kubeconfig)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "refused: these credentials read beyond one partner" in refused.stderr
    assert "list tenants in every namespace" in refused.stderr and "--allow-platform-credentials" in refused.stderr
    assert leaked(refused, secrets) == []
    allowed = plan(repo, cluster.kubeconfig, "--allow-platform-credentials", "--namespace", alpha.namespace)
    assert allowed.returncode == 3, allowed.stderr
    assert f"+ Tenant {alpha.namespace}/{mine} (created)" in allowed.stdout
    assert f"- Tenant {bravo.namespace}/{victim}: not planned" in allowed.stdout
    assert leaked(allowed, secrets) == []
    assert snapshot(alpha, bravo, mine, victim) == before
