"""The CLI behaves like kubectl, and fails like a good command-line tool.

Tested here (real files, a real bash, a real refused TCP connection; no cluster):
- kubectl's kubeconfig precedence: --kubeconfig, else KUBECONFIG as a ':'-separated list merged as
  kubectl merges it (first name wins, first current-context wins, missing files skipped, relative
  paths read from each file's own folder), else ~/.kube/config; --context picks another context
- every failure is one line on stderr with its own exit code, never a traceback: no kubeconfig (4),
  an unknown context (4), a cluster that refuses the connection (5), an internal error (70); a
  reader that left (`| head`) ends it quietly (141), not as an unreachable cluster
- `--help` names every exit code docs/cli.md lists, with the same number
- --version, -o/--output with --format kept as its other name, shell completion that bash accepts
- where a partner's own credentials belong (report and status look there when they may not list
  namespaces): the context's namespace, then a ServiceAccount token's own (its `sub` claim)
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tenantry import __version__
from tenantry.cli import kubeconfig, main
from tenantry.cli.kubeconfig import ConfigProblem, load


def _config(path: Path, *, context: str, server: str, current: str | None = None, namespace: str = "default",
            ca: str | None = None) -> Path:
    cluster = {"server": server, **({"certificate-authority": ca} if ca else {"insecure-skip-tls-verify": True})}
    body = {"apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": context, "cluster": cluster}],
            "users": [{"name": context, "user": {"token": f"token-{context}"}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}]}
    if current:
        body["current-context"] = current
    path.write_text(yaml.safe_dump(body))
    return path


def test_kubeconfig_flag_wins_over_kubeconfig_variable(tmp_path: Path) -> None:
    flag = _config(tmp_path / "flag", context="a", server="https://a.example:6443", current="a")
    env = _config(tmp_path / "env", context="b", server="https://b.example:6443", current="b")
    assert load(flag, None, {"KUBECONFIG": str(env)}).cluster.server == "https://a.example:6443"
    assert load(None, None, {"KUBECONFIG": str(env)}).cluster.server == "https://b.example:6443"


def test_a_kubeconfig_list_is_merged_as_kubectl_merges_it(tmp_path: Path) -> None:
    first = _config(tmp_path / "first", context="partner", server="https://first.example", namespace="partner-a")
    (tmp_path / "certs").mkdir()
    second = _config(tmp_path / "certs" / "second", context="platform", server="https://second.example",
                     current="platform", ca="ca.crt")
    third = _config(tmp_path / "third", context="partner", server="https://ignored.example", current="partner")
    listed = f"{first}:{tmp_path / 'missing'}:{second}:{third}"
    chosen = load(None, None, {"KUBECONFIG": listed})
    assert chosen.context_name == "platform"  # the first file that sets current-context
    assert chosen.cluster.certificate_auth == str((tmp_path / "certs" / "ca.crt").resolve())  # from its own folder
    partner = load(None, "partner", {"KUBECONFIG": listed})
    assert partner.cluster.server == "https://first.example" and partner.namespace == "partner-a"  # first wins


def test_the_default_file_and_the_failures_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubeconfig, "IN_CLUSTER", tmp_path / "no-service-account")
    with pytest.raises(ConfigProblem, match="no kubeconfig: give --kubeconfig FILE, set KUBECONFIG"):
        load(None, None, {"HOME": str(tmp_path)})
    (tmp_path / ".kube").mkdir()
    _config(tmp_path / ".kube" / "config", context="home", server="https://home.example", current="home")
    assert load(None, None, {"HOME": str(tmp_path)}).cluster.server == "https://home.example"
    with pytest.raises(ConfigProblem, match="context 'prod' is not in .*: use one of home"):
        load(None, "prod", {"HOME": str(tmp_path)})
    with pytest.raises(ConfigProblem, match="no such file"):
        load(tmp_path / "nope", None, {})
    (tmp_path / "broken").write_text("clusters: [")
    with pytest.raises(ConfigProblem, match="not valid YAML"):
        load(tmp_path / "broken", None, {})


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_each_failure_is_one_line_with_its_own_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubeconfig, "IN_CLUSTER", tmp_path / "no-service-account")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    code, _, err = _run(capsys, "status", "mustermann")
    assert (code, err.count("\n")) == (main.NO_KUBECONFIG, 1) and "Traceback" not in err
    assert err.startswith("tenantry status: no kubeconfig")
    # A server that refuses the connection (nothing listens on port 1).
    down = _config(tmp_path / "down", context="down", server="https://127.0.0.1:1", current="down")
    code, _, err = _run(capsys, "report", "--kubeconfig", str(down), "-o", "json")
    assert (code, err.count("\n")) == (main.CLUSTER_UNREACHABLE, 1)
    assert err.startswith("tenantry report: cannot reach https://127.0.0.1:1")
    code, _, err = _run(capsys, "status", "x", "--kubeconfig", str(down), "--context", "elsewhere")
    assert code == main.NO_KUBECONFIG and "use one of down" in err
    monkeypatch.setattr(main.views, "status", lambda args: 1 / 0)  # a bug, as the command would meet it
    code, _, err = _run(capsys, "status", "x")
    assert (code, err.count("\n")) == (main.INTERNAL_ERROR, 1) and "ZeroDivisionError" in err


def test_help_names_every_exit_code_the_docs_list(capsys: pytest.CaptureFixture) -> None:
    table = (Path(__file__).parents[2] / "docs" / "cli.md").read_text().split("| exit code | meaning |")[1]
    documented = re.findall(r"^\| (\d+) \|", table.split("\n\n")[0], re.MULTILINE)
    with pytest.raises(SystemExit):
        main.main(["--help"])
    listed = re.findall(r"(?<![=\w])(\d+) [a-z(]", capsys.readouterr().out.split("exit codes:")[1])
    assert len(documented) >= 10 and listed == documented


def test_version_and_output_options(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as done:
        main.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"tenantry {__version__}"
    (tmp_path / "tenants" / "acme").mkdir(parents=True)
    (tmp_path / "tenants" / "acme" / "t.yaml").write_text(
        "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t, namespace: partner-acme}\nspec: {}\n")
    for flag in ("-o", "--output", "--format"):
        code, out, _ = _run(capsys, "validate", str(tmp_path), flag, "json")
        assert code == main.FINDINGS and isinstance(yaml.safe_load(out), list), flag


def test_shell_completion_is_accepted_by_bash_and_knows_the_commands(capsys: pytest.CaptureFixture) -> None:
    code, script, _ = _run(capsys, "completion", "bash")
    assert code == 0
    for word in ("validate", "plan", "report", "status", "new", "--kubeconfig", "--context", "--output"):
        assert word in script, word
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    # Loaded into a real bash: completing "tenantry st" offers status.
    probe = script + '\nCOMP_WORDS=(tenantry st); COMP_CWORD=1; _tenantry; echo "${COMPREPLY[@]}"\n'
    assert subprocess.run(["bash", "-c", probe], text=True, capture_output=True).stdout.split() == ["status"]
    code, zsh, _ = _run(capsys, "completion", "zsh")
    assert code == 0 and zsh.startswith("#compdef tenantry")


@pytest.mark.parametrize("rate", ["1.5", "-0.1", "twenty"])
def test_a_commission_rate_outside_0_to_1_is_refused_with_an_example(rate: str,
                                                                     capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        main.main(["report", "--commission-rate", rate])
    assert stopped.value.code == 2
    assert f"{rate!r} is not a share between 0 and 1, e.g. 0.2" in capsys.readouterr().err


def test_report_totals_money_per_currency_and_uses_the_operators_rate() -> None:
    from tenantry.cli.views import render, row
    tenants = [{"metadata": {"name": n, "namespace": "partner-acme"},
                "spec": {"plan": {"featureSet": "business", "seats": 5, "price": {"monthly": m, "currency": c}}},
                "status": {"commissionRate": 0.3, "namespace": f"tenant-{n}",
                           **({"currency": "EUR"} if n == "fixed" else {})}}
               for n, m, c in (("a", 1000, "EUR"), ("b", 700, "USD"), ("fixed", 100, "USD"))]
    rows = [row(t) for t in tenants]
    assert [r["commission"] for r in rows] == [300, 210, 30]
    assert rows[2]["currency"] == "EUR"  # fixed at provisioning: a later spec change does not count
    assert "MRR 1100.00 EUR + 700.00 USD, commission 330.00 EUR + 210.00 USD" in render(rows, "table")
    assert [row(t, 0.1)["commission"] for t in tenants] == [100, 70, 10]


def test_report_bills_only_tenants_the_operator_provisioned() -> None:
    """As the operator's metrics and the portal count: a Tenant refused (beyond the partner's cap, a
    slug another partner holds) has no namespace and bills nothing, whatever price it names (a
    partner inflated its report with refused Tenants of 10,000,000 a month)."""
    from tenantry.cli.views import render, row
    refused = {"metadata": {"name": "over-cap", "namespace": "partner-acme"},
               "spec": {"plan": {"featureSet": "b", "seats": 1, "price": {"monthly": 10_000_000, "currency": "EUR"}}},
               "status": {"commissionRate": 0.25, "conditions": [{"type": "Ready", "status": "False",
                                                                   "reason": "PartnerTenantLimit"}]}}
    served = {**refused, "metadata": {"name": "served", "namespace": "partner-acme"},
              "status": {**refused["status"], "namespace": "tenant-served"}}
    rows = [row(refused), row(served)]
    assert [(r["mrr"], r["commission"]) for r in rows] == [(0.0, 0.0), (10_000_000, 2_500_000)]
    assert "MRR 10000000.00 EUR" in render(rows, "table")


def test_report_says_unknown_for_a_tenant_without_a_recorded_rate_and_csv_cells_are_text() -> None:
    """No guessed 0.20 for a tenant the operator has not reconciled since the upgrade; a partner's
    company name that is a spreadsheet formula opens as text."""
    import csv
    import io

    from tenantry.cli.views import render, row
    recorded = {"metadata": {"name": "a", "namespace": "partner-acme"},
                "spec": {"company": "=HYPERLINK(\"https://evil.example\",\"Pay\")",
                         "plan": {"featureSet": "b", "seats": 1, "price": {"monthly": 100, "currency": "EUR"}}},
                "status": {"commissionRate": 0.5, "namespace": "tenant-a"}}
    unrecorded = {"metadata": {"name": "b", "namespace": "partner-acme"},
                  "spec": {"plan": {"featureSet": "b", "seats": 1, "price": {"monthly": 300, "currency": "EUR"}}},
                  "status": {"namespace": "tenant-b"}}
    rows = [row(recorded), row(unrecorded)]
    assert rows[1]["commission"] is None
    table = render(rows, "table")
    assert "commission 50.00 EUR (not counting 1 without a recorded commission rate)" in table
    assert "None" not in table
    company = next(csv.DictReader(io.StringIO(render(rows, "csv"))))["company"]
    assert company.startswith("'=HYPERLINK")


def test_a_partners_company_name_reaches_the_terminal_and_markdown_as_text() -> None:
    """A partner writes the company: escape sequences (a clipboard write, a cleared screen) and
    Markdown (a link in the platform's report) come out as text."""
    from tenantry.cli.views import render, row
    hostile = {"metadata": {"name": "a", "namespace": "partner-acme"},
               "spec": {"company": "Evil\x1b]52;c;ZXZpbA==\x07[Pay here](https://evil.example) <b>|x",
                        "plan": {"featureSet": "b", "seats": 1, "price": {"monthly": 1, "currency": "EUR"}}},
               "status": {"commissionRate": 0.2}}
    table = render([row(hostile)], "table")
    assert "\x1b" not in table and "\x07" not in table and "Evil\\x1b]52" in table
    markdown = render([row(hostile)], "markdown")
    assert "\\[Pay here\\](https://evil.example) \\<b\\>\\|x" in markdown and "\x1b" not in markdown


def test_a_currency_must_be_an_iso_4217_code_in_use() -> None:
    from pydantic import ValidationError

    from tenantry.api.tenant import Price, TenantStatus
    assert Price.model_validate({"monthly": 1, "currency": "CHF"}).currency == "CHF"
    for code in ("ABC", "eur", "XXX"):
        with pytest.raises(ValidationError, match="not an ISO 4217 currency code in use, e.g. EUR"):
            Price.model_validate({"monthly": 1, "currency": code})
    with pytest.raises(ValidationError):
        TenantStatus.model_validate({"currency": "<b>"})
    # The API server checks the same list (the webhook may be down): the CRD's schema is an enum.
    from tenantry.api.crd import all_crds
    tenants = all_crds()["tenantry.dev_tenants.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    price = tenants["properties"]["spec"]["properties"]["plan"]["properties"]["price"]["properties"]
    assert "EUR" in price["currency"]["enum"] and "ABC" not in price["currency"]["enum"]
    assert tenants["properties"]["status"]["properties"]["currency"]["enum"] == price["currency"]["enum"]


def _jwt(claims: dict) -> str:
    import base64
    import json

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_a_service_account_token_names_its_namespace() -> None:
    bound = _jwt({"sub": "system:serviceaccount:acme-kunden:tenantry-gitops",
                  "kubernetes.io": {"namespace": "acme-kunden", "serviceaccount": {"name": "tenantry-gitops"}}})
    assert kubeconfig.token_namespace(bound) == "acme-kunden"
    legacy = _jwt({"sub": "system:serviceaccount:partner-b:gitops", "kubernetes.io/serviceaccount/namespace": "x"})
    assert kubeconfig.token_namespace(legacy) == "partner-b"  # sub is what the API server authenticates
    for token in (_jwt({"sub": "alice@example.com"}), _jwt({"sub": "system:serviceaccount:Evil/ns:x"}),
                  _jwt({"sub": "system:serviceaccount:a:b:c"}), "not-a-jwt", "a.%%%.c", None, _jwt([1])):  # type: ignore[arg-type]
        assert kubeconfig.token_namespace(token) is None, token


def test_own_namespaces_context_first_then_the_tokens(tmp_path: Path) -> None:
    token = _jwt({"sub": "system:serviceaccount:acme-kunden:tenantry-gitops"})

    def config(namespace: str | None, user: dict) -> Path:
        context = {"cluster": "c", "user": "u", **({"namespace": namespace} if namespace else {})}
        body = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
                "clusters": [{"name": "c", "cluster": {"server": "https://c.example:6443"}}],
                "users": [{"name": "u", "user": user}], "contexts": [{"name": "c", "context": context}]}
        path = tmp_path / f"config-{namespace}-{len(user)}"
        path.write_text(yaml.safe_dump(body))
        return path
    assert kubeconfig.own_namespaces(load(config(None, {"token": token}), None)) == ["acme-kunden"]
    assert kubeconfig.own_namespaces(load(config("team-a", {"token": token}), None)) == ["team-a", "acme-kunden"]
    assert kubeconfig.own_namespaces(load(config("acme-kunden", {"token": token}), None)) == ["acme-kunden"]
    (tmp_path / "token").write_text(token + "\n")
    assert kubeconfig.own_namespaces(load(config(None, {"tokenFile": "token"}), None)) == ["acme-kunden"]
    assert kubeconfig.own_namespaces(load(config(None, {"username": "a", "password": "b"}), None)) == []


@pytest.mark.parametrize("command", [["validate", "-o", "json", "examples/tenants"], ["completion", "bash"]])
def test_a_reader_that_left_ends_it_quietly(command: list[str]) -> None:
    """`tenantry validate -o json repo | head -1`: the pipe closes before the command writes, or
    before the buffer is flushed at the end (output buffered, as without PYTHONUNBUFFERED)."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    process = subprocess.Popen([str(root / ".venv" / "bin" / "tenantry"), *command], cwd=root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the first line
    code = process.wait(timeout=120)
    err = process.stderr.read().decode()
    assert code == main.PIPE_CLOSED, err
    assert "cannot reach" not in err and "Traceback" not in err and "Exception ignored" not in err
