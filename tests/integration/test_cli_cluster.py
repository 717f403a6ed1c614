"""`tenantry report` and `tenantry status` against the real control plane and operator.

Tested here: one partner's customers with users, revenue, commission and signals in JSON, CSV, Markdown and
table form (a mistyped partner id is an error naming the partners there); one tenant's conditions
and the records its customer must create; and both commands with each partner's own ServiceAccount
token (no cluster-wide read), for each of two partners: scoped to its namespace by --partner, -n,
the kubeconfig's namespace or the token's own, never showing the other partner's data (its
namespace by name: refused; its id: a clear error); a partner whose namespace is not partner-<id>
found by --partner with its own token; and `report --format html` as one static page with every
value escaped.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenantry.cli.main import main
from tenantry.devtools import chart
from tests.integration.fixtures import (
    PLATFORM_NAMESPACE,
    ChartPartner,
    ClusterHandle,
    OperatorProcess,
    Partner,
    wait_for,
)

pytestmark = pytest.mark.integration


def _usage(cluster: ClusterHandle, namespace: str, slug: str, active: int) -> None:
    cluster.kubectl("patch", "tenant", slug, "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"usage": {"activeUsers": active}}}))


def test_report_and_status(partner: Partner, cluster: ClusterHandle, capsys: pytest.CaptureFixture) -> None:
    full, idle, sleepy = partner.slug("full"), partner.slug("idle"), partner.slug("sleepy")
    dollar = partner.slug("dollar")
    # The platform team gives this partner its own commission rate; the operator counts it per tenant.
    cluster.kubectl("annotate", "namespace", partner.namespace, "tenantry.dev/commission-rate=0.25")
    price = {"monthly": 1000, "currency": "EUR"}
    partner.apply(partner.tenant(dollar, plan={"featureSet": "starter", "seats": 10,
                                               "price": {"monthly": 500, "currency": "USD"}}))
    partner.apply(partner.tenant(full, plan={"featureSet": "business", "seats": 10, "price": price},
                                 domains=[f"ki.{full}.de"]))
    partner.apply(partner.tenant(idle, plan={"featureSet": "starter", "seats": 10, "price": price}))
    partner.apply(partner.tenant(sleepy, state="Suspended", plan={"featureSet": "starter", "seats": 5, "price": price}))
    for slug in (full, idle, dollar):
        partner.wait_condition(slug)
    partner.wait_condition(sleepy, reason="Suspended")
    _usage(cluster, partner.namespace, full, 10)
    _usage(cluster, partner.namespace, idle, 0)
    wait_for(lambda: ((partner.get(full) or {}).get("status") or {}).get("domains"), what="domain instructions")

    partner_id = f"acme-{partner.suffix}"
    base = ["report", "--partner", partner_id, "--kubeconfig", str(cluster.kubeconfig)]
    assert main([*base, "--format", "json"]) == 0
    rows = {r["tenant"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {full, idle, sleepy, dollar}
    assert partner.get(full)["status"]["commissionRate"] == 0.25
    assert rows[full]["users"] == 10 and rows[full]["mrr"] == 1000 and rows[full]["commission"] == 250
    assert rows[dollar]["currency"] == "USD" and rows[dollar]["commission"] == 125
    assert "upsell" in rows[full]["signals"] and rows[full]["domains_pending"] == 1
    assert "churn risk" in rows[idle]["signals"]
    assert rows[sleepy]["mrr"] == 0 and rows[sleepy]["state"] == "Suspended"
    assert main([*base, "--format", "csv"]) == 0
    assert len(list(csv.DictReader(io.StringIO(capsys.readouterr().out)))) == 4
    assert main([*base, "--format", "markdown"]) == 0
    assert "4 customers" in capsys.readouterr().out
    assert main([*base]) == 0
    # Money per currency, never added: 2,000 EUR and 500 USD are not "2,500".
    assert "MRR 2000.00 EUR + 500.00 USD, commission 500.00 EUR + 125.00 USD" in capsys.readouterr().out
    assert main([*base, "--commission-rate", "0.1", "-o", "json"]) == 0  # a what-if at another rate
    assert {r["tenant"]: r["commission"] for r in json.loads(capsys.readouterr().out)}[full] == 100
    # A mistyped partner id is not a partner without customers (it printed "0 customers", exit 0).
    assert main(["report", "--partner", f"acme-{partner.suffix}x", "--kubeconfig", str(cluster.kubeconfig)]) == 6
    err = capsys.readouterr().err
    assert f"no namespace is labelled tenantry.dev/partner=acme-{partner.suffix}x" in err and partner_id in err

    wait_for(lambda: any(i["name"] == "FirstUsageReported" and i["done"]
                         for i in ((partner.get(full) or {}).get("status") or {}).get("onboarding", [])),
             what="the usage report in the go-live checklist")
    assert main(["status", full, "--kubeconfig", str(cluster.kubeconfig)]) == 0
    out = capsys.readouterr().out
    assert "Ready" in out and f"ki.{full}.de. CNAME {full}.platform.test" in out
    assert f"_tenantry-challenge.ki.{full}.de. TXT tenantry-" in out
    # The go-live checklist: what is done (with its time) and what still waits, as in the status.
    done_at = {i["name"]: i.get("at") for i in partner.get(full)["status"]["onboarding"] if i["done"]}
    assert "[x] NamespaceReady" in out and done_at["NamespaceReady"] in out
    assert f"[ ] DomainVerified:ki.{full}.de" in out and "[x] FirstUsageReported" in out
    assert main(["status", "no-such-tenant", "--kubeconfig", str(cluster.kubeconfig)]) == 1


def _with_namespace(kubeconfig: Path, namespace: str, out: Path) -> Path:
    """The partner's kubeconfig with its namespace as the context's default (as a partner would keep it)."""
    import yaml

    config = yaml.safe_load(kubeconfig.read_text())
    config["contexts"][0]["context"]["namespace"] = namespace
    out.write_text(yaml.safe_dump(config))
    return out


def test_report_and_status_with_each_partners_own_token(chart_partners: tuple[ChartPartner, ChartPartner],
                                                        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a, b = chart_partners
    hostile = '<script>alert(1)</script> & "Co"'
    mine, theirs = a.slug("mine"), b.slug("theirs")
    a.apply(a.tenant(mine, company=hostile, plan={"featureSet": "starter", "seats": 5,
                                                  "price": {"monthly": 111.11, "currency": "EUR"}}))
    b.apply(b.tenant(theirs, company="Geheim Bravo AG", plan={"featureSet": "starter", "seats": 7,
                                                               "price": {"monthly": 999.99, "currency": "EUR"}}))
    a.wait_condition(mine)
    b.wait_condition(theirs)
    # Each partner with its own token: its own customer, never the other's, however it scopes.
    for me, other, own, foreign, secrets in ((a, b, mine, theirs, ("Geheim", "999.99")),
                                             (b, a, theirs, mine, ("alert(1)", "111.11"))):
        my_id = me.namespace.removeprefix("partner-")
        in_ns = _with_namespace(me.kubeconfig, me.namespace, tmp_path / f"{my_id}.kubeconfig")
        for scope in (["--partner", my_id], ["-n", me.namespace], []):
            for kubeconfig in (me.kubeconfig, in_ns):
                assert main(["report", *scope, "--kubeconfig", str(kubeconfig), "--format", "json"]) == 0, scope
                out = capsys.readouterr().out
                assert [r["tenant"] for r in json.loads(out)] == [own], (my_id, scope)
                assert foreign not in out and not any(word in out for word in secrets), (my_id, scope)
                assert main(["status", own, *scope, "--kubeconfig", str(kubeconfig)]) == 0, scope
                out = capsys.readouterr().out
                assert "conditions:" in out and foreign not in out, (my_id, scope)
                # The other's tenant: not one this partner may see, whatever it asks for.
                assert main(["status", foreign, *scope, "--kubeconfig", str(kubeconfig)]) == 1, scope
                assert "no tenant" in capsys.readouterr().err
        # Another partner's namespace, asked for by name: refused by the API server, said plainly.
        assert main(["report", "-n", other.namespace, "--kubeconfig", str(me.kubeconfig)]) == 6
        assert "the cluster refused" in capsys.readouterr().err
        assert main(["status", foreign, "-n", other.namespace, "--kubeconfig", str(me.kubeconfig)]) == 6
        assert "the cluster refused" in capsys.readouterr().err
        # The other partner's id: not found with these credentials, said plainly (no other data).
        other_id = other.namespace.removeprefix("partner-")
        assert main(["report", "--partner", other_id, "--kubeconfig", str(me.kubeconfig)]) == 6
        err = capsys.readouterr().err
        assert f"cannot find partner {other_id!r}'s namespace" in err and f"{me.namespace} (partner {my_id})" in err
        assert foreign not in err
    a_in_ns = tmp_path / f"{a.namespace.removeprefix('partner-')}.kubeconfig"
    assert main(["report", "--kubeconfig", str(a_in_ns), "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;Co&#34;" in page and "<script>" not in page
    assert f'<tr data-tenant="{mine}">' in page and "annual commission (12 x commission)" in page


@pytest.fixture
def custom_partner(cluster: ClusterHandle, operator: OperatorProcess,
                   tmp_path: Path) -> Iterator[tuple[ChartPartner, str]]:
    """A partner whose namespace is not partner-<id> (the partners chart's partners[].namespace), with
    its own ServiceAccount token in a kubeconfig without a namespace, as `kubectl create token` gives it."""
    suffix = uuid.uuid4().hex[:6]
    partner_id, namespace = f"custom-{suffix}", f"kunden-{suffix}"
    objects = chart.render_partners([{"id": partner_id, "namespace": namespace}], name=f"custom-{suffix}",
                                    namespace=PLATFORM_NAMESPACE)
    chart.apply(cluster.kubeconfig, objects)
    kubeconfig = chart.service_account_kubeconfig(cluster.kubeconfig, namespace, "tenantry-gitops",
                                                  tmp_path / "custom.kubeconfig")
    handle = ChartPartner(cluster, namespace, suffix, kubeconfig=kubeconfig)
    yield handle, partner_id
    cluster.kubectl("delete", "tenants", "--all", "-n", namespace, "--timeout=300s")
    for obj in objects:
        if obj["kind"] == "RoleBinding" and obj["metadata"]["namespace"] == PLATFORM_NAMESPACE:
            cluster.kubectl("delete", "rolebinding", obj["metadata"]["name"], "-n", PLATFORM_NAMESPACE,
                            "--ignore-not-found")
    for name in (namespace, *(f"tenant-{slug}" for slug in handle.slugs)):
        cluster.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


def test_a_partner_namespace_not_named_after_the_partner(custom_partner: tuple[ChartPartner, str],
                                                         capsys: pytest.CaptureFixture) -> None:
    """--partner <id> with the partner's own token: it may not list namespaces to find the one
    labelled <id>, and partner-<id> is not it; the token's own namespace is (docs/cli.md)."""
    custom, custom_id = custom_partner
    slug = custom.slug("kunde")
    custom.apply(custom.tenant(slug, plan={"featureSet": "starter", "seats": 3,
                                           "price": {"monthly": 42, "currency": "EUR"}}))
    custom.wait_condition(slug)
    assert (custom.get(slug) or {})["status"]["partner"] == custom_id
    kubeconfig = str(custom.kubeconfig)
    for scope in (["--partner", custom_id], []):
        assert main(["report", *scope, "--kubeconfig", kubeconfig, "-o", "json"]) == 0, scope
        rows = json.loads(capsys.readouterr().out)
        assert [(r["tenant"], r["partner"], r["mrr"]) for r in rows] == [(slug, custom_id, 42)], scope
        assert main(["status", slug, *scope, "--kubeconfig", kubeconfig]) == 0, scope
        assert f"partner {custom_id}" in capsys.readouterr().out
    # A partner id these credentials are not for: a clear error naming where it looked.
    assert main(["report", "--partner", "someone-else", "--kubeconfig", kubeconfig]) == 6
    err = capsys.readouterr().err
    assert ("cannot find partner 'someone-else''s namespace with these credentials (tried "
            f"{custom.namespace} (partner {custom_id}), partner-someone-else (refused)): name it with -n") in err


def test_the_installed_command_runs(cluster: ClusterHandle) -> None:
    command = str(Path(sys.executable).parent / "tenantry")  # the console script the package installs
    result = subprocess.run([command, "report", "--kubeconfig", str(cluster.kubeconfig), "--format", "csv"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("partner,tenant,company")


def _repo(tmp_path, partner: Partner) -> tuple:
    from tests.integration.fixtures import PLATFORM_YAML

    repo = tmp_path / "repo"
    partner_id = f"acme-{partner.suffix}"
    (repo / "platform").mkdir(parents=True)
    (repo / "platform" / "plans.yaml").write_text(PLATFORM_YAML)
    (repo / "partners").mkdir()
    (repo / "partners" / "p.yaml").write_text(
        f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {partner.namespace}\n"
        f"  labels: {{tenantry.dev/partner: {partner_id}}}\n")
    folder = repo / "tenants" / partner_id
    folder.mkdir(parents=True)
    return repo, folder


def test_plan_created_unchanged_changed_and_invalid(partner: Partner, cluster: ClusterHandle, tmp_path,
                                                    capsys: pytest.CaptureFixture) -> None:
    import yaml

    repo, folder = _repo(tmp_path, partner)
    slug = partner.slug("planned")
    doc = partner.tenant(slug, plan={"featureSet": "business", "seats": 5}, domains=[f"ki.{slug}.de"])
    (folder / f"{slug}.yaml").write_text(yaml.safe_dump(doc))
    plan = ["plan", str(repo), "--kubeconfig", str(cluster.kubeconfig), "--platform-domain", "platform.test",
            "--allow-platform-credentials"]  # the admin kubeconfig: tests/integration/attacks/test_pull_request.py

    assert main(plan) == 3
    out = capsys.readouterr().out
    assert f"+ Tenant {partner.namespace}/{slug} (created)" in out
    assert f"-> namespace tenant-{slug}" in out and f"-> DNS name {slug}.platform.test" in out
    assert "-> quota requests.cpu=2100m" in out and f"domain to verify: ki.{slug}.de" in out
    assert partner.get(slug) is None  # a dry run stores nothing

    partner.apply(doc)
    assert main(plan) == 0
    assert f"= Tenant {partner.namespace}/{slug} (unchanged)" in capsys.readouterr().out

    doc["spec"]["plan"]["seats"] = 9
    (folder / f"{slug}.yaml").write_text(yaml.safe_dump(doc))
    assert main(plan) == 3
    assert "spec.plan.seats: 5 -> 9" in capsys.readouterr().out

    doc["spec"]["plan"]["seats"] = 0
    (folder / f"{slug}.yaml").write_text(yaml.safe_dump(doc))
    assert main(plan) == 1
    assert "spec.plan.seats" in capsys.readouterr().err

    # A running trial and a Deal beside it (as in examples/tenants: plan stopped at the Deal with
    # KeyError 'Deal', and showed the trial's quota as a suspended tenant's, pods=0).
    doc["spec"]["plan"]["seats"] = 5
    trial = partner.tenant(f"{slug}-trial", state="Trial", trial={"ends": "2099-12-31T00:00:00Z"})
    deal = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Deal",
            "metadata": {"name": f"{slug}-trial", "namespace": partner.namespace},
            "spec": {"company": "Probe GmbH", "stage": "Demo", "expected": {"monthly": 450, "currency": "EUR"},
                     "trial": f"{slug}-trial"}}
    (folder / f"{slug}.yaml").write_text(yaml.safe_dump_all([doc, trial, deal]))
    assert main(plan) == 3
    out = capsys.readouterr().out
    assert f"+ Deal {partner.namespace}/{slug}-trial (created)" in out
    trial_lines = out[out.index(f"+ Tenant {partner.namespace}/{slug}-trial"):out.index("+ Deal")]
    assert "pods=0" not in trial_lines and ", pods=20" in trial_lines, trial_lines


def test_new_tenant_is_accepted_by_the_api_server(partner: Partner, cluster: ClusterHandle, tmp_path) -> None:
    repo, folder = _repo(tmp_path, partner)
    slug = partner.slug("fresh")
    command = str(Path(sys.executable).parent / "tenantry")
    made = subprocess.run([command, "new", "tenant", "--repo", str(repo), "--partner", folder.name, "--slug", slug,
                           "--namespace", partner.namespace, "--company", "Frische Brötchen GmbH",
                           "--contact-name", "Anna", "--contact-email", "anna@broetchen.de", "--plan", "business",
                           "--seats", "12", "--price", "150", "--no-input"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    path = folder / f"{slug}.yaml"
    checked = subprocess.run([command, "validate", str(repo)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
    accepted = cluster.kubectl("apply", "--dry-run=server", "-f", str(path))
    assert "created (server dry run)" in accepted.stdout
