"""`tenantry validate`, run as the installed command, against a table of broken files.

Each row is one broken file in a copy of the example repository; the command runs once over
the whole repository (JSON output) and every row's exact field, line and message must be found.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tenants"
COMMAND = str(Path(sys.executable).parent / "tenantry")


def tenant(name: str = "broken", **spec_lines: str) -> str:
    spec = {"company": "Test GmbH", "contact": "{name: Test, email: test@example.de}",
            "plan": "{featureSet: business, seats: 5}", **spec_lines}
    body = "".join(f"  {k}: {v}\n" for k, v in spec.items() if v is not None)
    return (f"apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {name}\n"
            f"  namespace: partner-acme-it\nspec:\n{body}")


# (file under tenants/acme-it/, content, field, line, words in the message)
BROKEN = [
    ("seats.yaml", tenant("seats", plan="{featureSet: business, seats: 0}"), "spec.plan.seats", 9, "minimum of 1"),
    ("state.yaml", tenant("state", state="Paused"), "spec.state", 10, "is not one of"),
    ("email.yaml", tenant("email", contact="{name: X, email: not-an-email}"), "spec.contact.email", 8,
     "is not an e-mail address"),
    ("company.yaml", tenant("company", company=None), "spec", 7, "'company' is a required property"),
    ("slug.yaml", tenant("Bad_Slug"), "metadata.name", 4, "is not a DNS label"),
    ("price.yaml", tenant("price", plan="{featureSet: business, seats: 5, price: {monthly: -1}}"),
     "spec.plan.price.monthly", 9, "minimum of 0"),
    ("wildcard.yaml", tenant("wildcard", domains="['*.example.de']"), "spec.domains[0]", 10, "is not a DNS name"),
    ("feature.yaml", tenant("feature", features="{tabels: {enabled: true}}"), "spec.features", 10, "tabels"),
    ("plan.yaml", tenant("plan", plan="{featureSet: platinum, seats: 5}"), "spec.plan.featureSet", 9,
     "no FeatureSet 'platinum'"),
    ("brand.yaml", tenant("brand", branding="neon"), "spec.branding", 10, "no Branding 'neon'"),
    ("twin.yaml", tenant("mustermann"), "metadata.name", 4, "also used in"),
    ("domain.yaml", tenant("domain", domains="[ki.mustermann.de]"), "spec.domains[0]", 10, "also used in"),
    ("foreign.yaml", tenant("foreign").replace("partner-acme-it", "partner-sued-cloud"), "metadata.namespace", 5,
     "may only hold partner acme-it's objects"),
    ("bomb.yaml", "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n", "(file)", 1, "aliases"),
    ("broken.yaml", "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata: {name: x\n", "(file)", 4,
     "not valid YAML"),
    ("list.yaml", "- a\n- b\n", "(document)", 1, "must be a mapping"),
    ("deep.yaml", "a: " + "[" * 40 + "]" * 40 + "\n", "(file)", 1, "nesting deeper"),
    ("svg.yaml", "apiVersion: tenantry.dev/v1alpha1\nkind: Branding\nmetadata:\n  name: evil\n"
     "  namespace: partner-acme-it\nspec:\n  colours: {primary: '#000000'}\n"
     "  logo: {svg: '<svg xmlns=\"http://www.w3.org/2000/svg\"><script>x()</script></svg>'}\n",
     "spec.logo.svg", 8, "<script>"),
    ("resources.yaml", "apiVersion: tenantry.dev/v1alpha1\nkind: FeatureSet\nmetadata:\n  name: huge\n"
     "  namespace: partner-acme-it\nspec:\n  extends: business\n  resources:\n    base: {cpu: '64'}\n",
     "spec.resources", 9, "only the platform may set the resources of a plan"),
    ("reserved.yaml", tenant("reserved").replace("  namespace: partner-acme-it\n",
                                                 "  namespace: partner-acme-it\n  labels: {tenantry.dev/partner: x}\n"),
     'metadata.labels.tenantry.dev/partner', 6, "reserved for tenantry"),
]


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    repo = tmp_path_factory.mktemp("table") / "repo"
    shutil.copytree(EXAMPLES, repo)
    for name, content, *_ in BROKEN:
        (repo / "tenants" / "acme-it" / name).write_text(content)
    result = subprocess.run([COMMAND, "validate", "--format", "json", str(repo)], capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(("name", "content", "field", "line", "words"), BROKEN, ids=[row[0] for row in BROKEN])
def test_each_broken_file_gets_its_exact_finding(findings: list[dict], name: str, content: str, field: str,
                                                 line: int, words: str) -> None:
    mine = [f for f in findings if f["file"].endswith(f"tenants/acme-it/{name}")]
    assert any(f["field"] == field and f["line"] == line and words in f["message"] for f in mine), mine


def test_only_the_broken_files_have_findings(findings: list[dict]) -> None:
    broken = {f"tenants/acme-it/{row[0]}" for row in BROKEN}
    for f in findings:
        # The example tenant whose slug and domain the twins copy is told about the clash too.
        duplicate = f["file"].endswith("tenants/acme-it/mustermann.yaml") and "also used in" in f["message"]
        assert duplicate or any(f["file"].endswith(b) for b in broken), f


def test_installed_command_exit_codes(tmp_path: Path) -> None:
    assert subprocess.run([COMMAND, "validate", str(EXAMPLES)], capture_output=True).returncode == 0
    assert subprocess.run([COMMAND, "validate", str(tmp_path / "missing")], capture_output=True).returncode == 2
    github = subprocess.run([COMMAND, "validate", "--format", "github", str(EXAMPLES)], capture_output=True, text=True)
    assert github.returncode == 0 and github.stdout == ""
