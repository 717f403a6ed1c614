"""`tenantry validate`: offline findings with file, line and field; exit codes; output formats.

Tested here:
- the example tenants repository is clean (exit 0)
- schema errors (what the API server would refuse) name the field and its line, with a hint; a
  value that does not match a pattern people type is told in words (an e-mail address, a DNS name),
  not as the regular expression; control characters and bidirectional overrides in a company or a
  contact's name (they reach terminals through kubectl's columns) are findings
- model rules: unknown features, hostile SVG
- across files: duplicate slugs and domains, missing FeatureSet and Branding, a file in another
  partner's folder, extends cycles, a reserved tenant name (the webhook's and the operator's words)
- Deals: a trial naming a missing Tenant, or one that is not in state Trial; a stage that is not
  one of the four; a close date that is not YYYY-MM-DD, or a day the calendar lacks (the CRD's
  format date refuses it too) - each with its file, line, field and hint
- hostile files: YAML aliases (bombs), broken YAML, deep nesting, not a mapping - none crashes
- formats text, json, github; exit codes 0/1/2
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tenantry.cli.main import main
from tenantry.cli.validate import SHOWN_PLACES, Finding, validate

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "tenants"

TENANT = """apiVersion: tenantry.dev/v1alpha1
kind: Tenant
metadata:
  name: {name}
  namespace: partner-acme-it
spec:
  company: Test GmbH
  contact: {{name: Test, email: test@example.de}}
  plan: {{featureSet: {plan}, seats: {seats}}}
  domains: [{domain}]
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "repo")
    return tmp_path / "repo"


def write(repo: Path, relative: str, text: str) -> Path:
    path = repo / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def findings_for(repo: Path, relative: str) -> list:
    return [f for f in validate([repo]) if f.file.endswith(relative)]


def test_examples_are_clean(capsys: pytest.CaptureFixture) -> None:
    assert main(["validate", str(EXAMPLES)]) == 0


def test_schema_errors_name_field_and_line(repo: Path) -> None:
    write(repo, "tenants/acme-it/bad.yaml", TENANT.format(name="bad", plan="business", seats=0, domain="a.bad.de"))
    found = findings_for(repo, "tenants/acme-it/bad.yaml")
    seats = [f for f in found if f.field == "spec.plan.seats"]
    assert seats and seats[0].line == 9 and "minimum of 1" in seats[0].message
    assert "licensed users" in seats[0].hint  # the field's own description says what it is


def test_patterns_are_told_in_words_and_shown_text_has_no_control_characters(repo: Path) -> None:
    text = (TENANT.format(name="words", plan="business", seats=5, domain="Bad_Domain")
            .replace("company: Test GmbH", 'company: "Evil\\e[2J\\u202eCorp"')
            .replace("email: test@example.de", "email: bad"))
    write(repo, "tenants/acme-it/words.yaml", text)
    found = {f.field: f.message for f in findings_for(repo, "words.yaml")}
    assert found["spec.contact.email"] == '"bad" is not an e-mail address: write it as name@example.com'
    assert found["spec.domains[0]"].startswith('"Bad_Domain" is not a DNS name')
    assert found["spec.company"] == ('"Evil\\u001b[2J\\u202eCorp" contains a control character (a line break, '
                                     "tab or escape sequence) or a bidirectional override: write it as plain text "
                                     "on one line")
    assert not any("^[" in message for message in found.values())
    # The same words from the model (the webhook's and the reconcile's), and letters of any script pass.
    from tenantry.domain.lifecycle import parse_tenant_spec
    spec = {"company": "Müller & Söhne (日本) ☕", "contact": {"name": "Łukasz O'Brien", "email": "bad"},
            "plan": {"featureSet": "business", "seats": 5}}
    assert parse_tenant_spec(spec) == 'spec.contact.email: "bad" is not an e-mail address: write it as name@example.com'


def test_model_rules(repo: Path) -> None:
    write(repo, "tenants/acme-it/typo.yaml", TENANT.format(name="typo", plan="business", seats=5, domain="t.typo.de")
          + "  features: {tabels: {enabled: true}}\n")
    write(repo, "tenants/acme-it/evil.yaml", "apiVersion: tenantry.dev/v1alpha1\nkind: Branding\nmetadata:\n"
          "  name: evil\n  namespace: partner-acme-it\nspec:\n  colours: {primary: '#000000'}\n"
          "  logo: {svg: '<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"x()\"/>'}\n")
    typo = findings_for(repo, "typo.yaml")
    assert any(f.field == "spec.features" and "tabels" in f.message for f in typo)
    evil = findings_for(repo, "evil.yaml")
    assert any(f.field == "spec.logo.svg" and "onload" in f.message and f.line == 8 for f in evil)


def test_many_copies_of_one_slug_name_a_few_other_places_each(repo: Path) -> None:
    """A pull request of 1,500 copies of one Tenant made 1,500 findings of 1,499 places each (79 MB
    of output; 3,000 copies took 1 GB): each names at most SHOWN_PLACES and counts the rest."""
    copies = 200
    write(repo, "tenants/acme-it/dup.yaml", "---\n".join(
        TENANT.format(name="dup", plan="business", seats=5, domain=f"d{i}.dup.de") for i in range(copies)))
    twins = [f for f in findings_for(repo, "dup.yaml") if f.field == "metadata.name"]
    assert len(twins) == copies
    for finding in twins:
        assert finding.message.count("dup.yaml:") == SHOWN_PLACES
        assert finding.message.endswith(f"and {copies - 1 - SHOWN_PLACES} more place(s)")
    # Two copies: the other one, nothing more.
    write(repo, "tenants/acme-it/dup.yaml", "---\n".join(
        TENANT.format(name="dup", plan="business", seats=5, domain=f"d{i}.dup.de") for i in range(2)))
    twins = [f for f in findings_for(repo, "dup.yaml") if f.field == "metadata.name"]
    assert len(twins) == 2 and all(f.message.count("dup.yaml:") == 1 and "more" not in f.message for f in twins)


def test_cross_file_rules(repo: Path) -> None:
    write(repo, "tenants/acme-it/twin.yaml", TENANT.format(name="mustermann", plan="business", seats=5,
                                                           domain="ki.mustermann.de"))
    ghost = TENANT.format(name="ghost", plan="platinum", seats=5, domain="g.ghost.de")
    write(repo, "tenants/acme-it/ghost.yaml", ghost.replace("  domains", "  branding: neon\n  domains"))
    write(repo, "tenants/nordlicht-digital/stray.yaml", TENANT.format(name="stray", plan="business", seats=5,
                                                                      domain="s.stray.de"))
    write(repo, "tenants/acme-it/loops.yaml", "apiVersion: tenantry.dev/v1alpha1\nkind: FeatureSet\nmetadata:\n"
          "  name: ping\n  namespace: partner-acme-it\nspec: {extends: pong}\n---\n"
          "apiVersion: tenantry.dev/v1alpha1\nkind: FeatureSet\nmetadata:\n  name: pong\n"
          "  namespace: partner-acme-it\nspec: {extends: ping}\n")
    twin = findings_for(repo, "twin.yaml")
    assert any(f.field == "metadata.name" and "also used in" in f.message and "mustermann.yaml" in f.message
               for f in twin)
    assert any(f.field == "spec.domains[0]" and "ki.mustermann.de" in f.message for f in twin)
    ghost = findings_for(repo, "ghost.yaml")
    assert any(f.field == "spec.plan.featureSet" and "platinum" in f.message for f in ghost)
    assert any(f.field == "spec.branding" and "neon" in f.message for f in ghost)
    stray = findings_for(repo, "stray.yaml")
    assert any(f.field == "metadata.namespace" and "tenants/nordlicht-digital/" in f.message
               and "partner-nordlicht-digital" in f.hint for f in stray)
    write(repo, "tenants/acme-it/www.yaml", TENANT.format(name="www", plan="business", seats=5, domain="w.www-a.de"))
    [reserved] = [f for f in findings_for(repo, "www.yaml") if f.field == "metadata.name"]
    assert reserved.message == "tenant name 'www' is not available on this platform"
    assert "choose another metadata.name" in reserved.hint
    write(repo, "tenants/acme-it/puny.yaml", TENANT.format(name="xn--ww-nla", plan="business", seats=5,
                                                            domain="p.puny-a.de"))
    [lookalike] = [f for f in findings_for(repo, "puny.yaml") if f.field == "metadata.name"]
    assert lookalike.message == "tenant name 'xn--ww-nla' is not available on this platform"
    loops = findings_for(repo, "loops.yaml")
    assert any("ping -> pong -> ping" in f.message or "pong -> ping -> pong" in f.message for f in loops)


DEAL = """apiVersion: tenantry.dev/v1alpha1
kind: Deal
metadata:
  name: prospect
  namespace: partner-acme-it
spec:
  company: Prospect AG
  stage: Demo
  expected: {{monthly: 450, currency: EUR}}
  {extra}
"""


@pytest.mark.parametrize(("extra", "field", "message", "hint"), [
    ("trial: nobody", "spec.trial", "no Tenant 'nobody' in 'partner-acme-it'",
     "name the Tenant (in state Trial, in this namespace) the prospect is trying the platform with"),
    # mustermann is an Active customer of acme-it in the examples
    ("trial: mustermann", "spec.trial", "Tenant 'mustermann' is not in state Trial",
     "a won deal's Tenant is a customer: remove the Deal, or set the Tenant's state to Trial"),
    ("stage: Won", "spec.stage", "'Won' is not one of ['Discovery', 'Demo', 'Proposal', 'Negotiation']",
     "Discovery, Demo, Proposal or Negotiation."),
    ("expectedClose: '31.03.2027'", "spec.expectedClose", '"31.03.2027" is not a date as 2027-01-31',
     "When the deal is expected to close (YYYY-MM-DD)."),
    # The model's own check: the message says what to write.
    ("expectedClose: '2027-02-30'", "spec.expectedClose",
     "'2027-02-30' is not a real date (day is out of range for month); write e.g. 2027-03-31", ""),
], ids=["missing-tenant", "not-a-trial", "stage", "close-date-shape", "close-date-calendar"])
def test_deal_findings_name_file_field_and_hint(repo: Path, extra: str, field: str, message: str, hint: str) -> None:
    text = DEAL.format(extra=extra)
    if extra.startswith("stage:"):
        text = text.replace("  stage: Demo\n", "")
    path = write(repo, "tenants/acme-it/prospect.yaml", text)
    found = [f for f in validate([repo]) if f.file.endswith("prospect.yaml")]
    line = 1 + text.splitlines().index(f"  {extra}")
    assert found == [Finding(str(path), line, field, message, hint)]


@pytest.mark.parametrize(("text", "words"), [
    ("a: &x [1, 2]\nb: [*x, *x, *x]\n", "aliases"),
    ("key: [unclosed\n", "not valid YAML"),
    ("- just\n- a list\n", "must be a mapping"),
    ("a:" + " [" * 40 + "]" * 40 + "\n", "nesting deeper"),
    ("kind: Tenant\napiVersion: tenantry.dev/v9\n", "unknown tenantry kind or version"),
    ("a: " + "9" * 5000 + "\n", "is read as text by kubectl"),  # beyond any number Go reads (and int() would refuse)
])
def test_hostile_files_get_a_finding_not_a_crash(repo: Path, text: str, words: str) -> None:
    write(repo, "tenants/acme-it/hostile.yaml", text)
    found = findings_for(repo, "hostile.yaml")
    assert any(words in f.message for f in found), found


def test_formats_and_exit_codes(repo: Path, capsys: pytest.CaptureFixture) -> None:
    write(repo, "tenants/acme-it/bad.yaml", TENANT.format(name="bad", plan="business", seats=0, domain="a.bad.de"))
    assert main(["validate", "--format", "json", str(repo)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert {"file", "line", "field", "message", "hint"} <= set(data[0])
    assert main(["validate", "--format", "github", str(repo)]) == 1
    assert "::error file=" in capsys.readouterr().out
    # A pull request's file name must not end the workflow command and start one of its own.
    write(repo, "tenants/acme-it/x\n::stop-commands::pwned\n.yaml", "- not a mapping\n")
    assert main(["validate", "--format", "github", str(repo)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("::error file=") for line in lines)
    assert any("\\x0a%3A%3Astop-commands%3A%3Apwned\\x0a.yaml" in line for line in lines)
    assert main(["validate", str(repo / "nope")]) == 2
    with pytest.raises(SystemExit) as usage:
        main(["validate", "--format", "xml", str(repo)])
    assert usage.value.code == 2


def test_one_file_or_folder_is_checked_against_its_repository(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A valid file or partner folder checked alone got "no FeatureSet" and "no Branding 'default'"
    for every Tenant: the platform's plans were never read. They are read now (platform/, partners/
    and the partner's folder), for reference only, also for a file named from outside the repository."""
    one = repo / "tenants" / "acme-it" / "mustermann.yaml"
    assert validate([one], repo=repo) == []
    assert validate([repo / "tenants" / "acme-it"], repo=repo) == []
    monkeypatch.chdir(repo.parent)  # outside the repository, no --repo: found above the file
    assert validate([one]) == []
    one.write_text(one.read_text().replace("featureSet: business", "featureSet: businesss"))
    [finding] = validate([one])
    assert finding.field == "spec.plan.featureSet" and "no FeatureSet 'businesss'" in finding.message
    # Only the files named are reported on: a broken file beside it is read, not reported.
    write(repo, "tenants/acme-it/broken.yaml", "- not a mapping\n")
    assert [f.file for f in validate([one])] == [str(one)]


def test_a_folder_inside_a_partners_folder_cannot_pose_as_the_repository(repo: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A partner's tenants/acme-it/platform/ (beside a tenants/ of its own) was taken for the root
    when a file in it was named: a Namespace there then passed. In a git checkout the root is its top."""
    (repo / ".git").mkdir()
    write(repo, "tenants/acme-it/tenants/README.md", "x\n")
    write(repo, "tenants/acme-it/platform/evil.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n"
          "  name: evil\n  labels: {tenantry.dev/partner: acme-it}\n")
    monkeypatch.chdir(repo.parent)
    findings = validate([repo / "tenants" / "acme-it" / "platform" / "evil.yaml"])
    assert any("Namespace under tenants/" in f.message or "a Namespace" in f.message for f in findings), findings
    # A file named relative to a folder inside the repository finds the same root.
    monkeypatch.chdir(repo / "tenants" / "acme-it")
    assert validate([Path("mustermann.yaml")]) == []


def test_one_file_is_checked_against_the_whole_repository(repo: Path) -> None:
    """Another partner's folder is read too: a slug it already has is a finding on the new file."""
    taken = next((repo / "tenants" / "nordlicht-digital").glob("*.yaml"))
    slug = yaml.safe_load(taken.read_text())["metadata"]["name"]
    new = repo / "tenants" / "acme-it" / "dup.yaml"
    new.write_text((repo / "tenants" / "acme-it" / "mustermann.yaml").read_text().replace(
        "name: mustermann", f"name: {slug}").replace("ki.mustermann.de", "ki.dup.de"))
    findings = validate([new], repo=repo)
    assert any(f.field == "metadata.name" and "also used in" in f.message for f in findings), findings
    assert {f.file for f in findings} == {str(new)}


def test_a_folder_that_is_no_tenants_repository_is_one_finding(tmp_path: Path) -> None:
    """`tenantry validate .` in the wrong checkout: one finding saying so, not one per file."""
    for name in ("a.yaml", "charts/x/values.yaml", "deploy/b.yaml"):
        write(tmp_path, name, "kind: ConfigMap\n")
    [finding] = validate([tmp_path], repo=tmp_path)
    assert finding.field == "(repository)" and "is this your tenants repository?" in finding.message
    assert "none of the 3 files here" in finding.message
    # A file with a problem of its own (tenantry does not read .json, Flux may) is not hidden by it.
    write(tmp_path, "tenants/acme/evil.json", "{}")
    assert any(f.file.endswith("evil.json") for f in validate([tmp_path], repo=tmp_path))
