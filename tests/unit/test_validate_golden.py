"""`tenantry validate` finds exactly what it found before it was made fast (a golden file).

Tested here:
- over a generated repository mixing good files with broken, hostile and misplaced ones (bad
  schema values, model rules, SVG, duplicate slugs and domains, missing plans and brandings,
  extends cycles, partner namespace clashes, aliases, tags, deep nesting, non-UTF-8, oversized
  files, a FIFO, symlinks inside and outside, files outside the layout, Lists, Namespaces in a
  partner's folder), every finding (file, line, field, message, hint) equals the golden file
  tests/unit/golden/validate_findings.json, captured from the code before the speed work
- the same for explicit file arguments with --repo, with a platform domain set, and for a
  repository reached through a symlink

The golden file was written by the code as it was before the speed work; regenerate it only for a
deliberate change of findings: `PYTHONPATH=operator:. python -m tests.unit.test_validate_golden`.
"""

from __future__ import annotations

import json
import os
import tempfile
from hashlib import sha256
from pathlib import Path
from typing import Any

from tenantry.cli.validate import Finding, validate
from tests.hostile import CORPUS

GOLDEN = Path(__file__).parent / "golden" / "validate_findings.json"
PARTNERS = ("acme", "nord", "sued", "west", "ost")

PLATFORM = """apiVersion: v1
kind: Namespace
metadata: {name: tenantry-system}
---
apiVersion: tenantry.dev/v1alpha1
kind: Branding
metadata: {name: default, namespace: tenantry-system}
spec:
  displayName: Plattform
  colours: {primary: "#1F4E79", secondary: "#F2A900"}
---
apiVersion: tenantry.dev/v1alpha1
kind: FeatureSet
metadata: {name: business, namespace: tenantry-system}
spec:
  features:
    chat: {enabled: true}
    tables: {enabled: true, limits: {tables: 50}}
  resources:
    base: {cpu: "2", memory: 4Gi, storage: 20Gi, pods: 20}
---
apiVersion: tenantry.dev/v1alpha1
kind: FeatureSet
metadata: {name: enterprise, namespace: tenantry-system}
spec: {extends: business, features: {meetings: {enabled: true}}}
"""


def _tenant(i: int) -> str:
    """Tenant number i: most are good, every k-th has a mistake of its own kind."""
    partner = PARTNERS[i % len(PARTNERS)]
    name = f"t{i - 1:04d}" if i % 17 == 0 else f"t{i:04d}"  # a duplicate slug
    seats = {19: "0", 37: "2.5", 41: "'many'", 43: "true", 47: "5.0"}.get(next((k for k in (19, 37, 41, 43, 47)
                                                                               if i % k == 0), 0), str(1 + i % 90))
    plan = "platinum" if i % 23 == 0 else ("enterprise" if i % 3 else "business")
    domain = f"ki.firma{i - 1}.de" if i % 29 == 0 else f"ki.firma{i}.de"
    extra = ""
    if i % 31 == 0:
        extra += "  features: {tabels: {enabled: true}}\n"
    if i % 13 == 0:
        extra += f"  branding: look{i % 4}\n"
    if i % 53 == 0:
        extra += "  state: Paused\n"
    if i % 59 == 0:
        extra += "  contact: {name: X, email: not-an-email}\n"
    else:
        extra += f"  contact: {{name: Max, email: max{i}@firma{i}.de, phone: '+49 521 {i}'}}\n"
    if i % 61 == 0:
        extra += "  reportedAt: 2024-01-02T03:04:05Z\n"
    namespace = PARTNERS[(i + 1) % len(PARTNERS)] if i % 67 == 0 else partner  # a file in the wrong folder
    return (f"apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {name}\n"
            f"  namespace: partner-{namespace}\nspec:\n  company: Firma {i} GmbH\n"
            f"  plan: {{featureSet: {plan}, seats: {seats}, price: {{monthly: {i % 7 * 100}}}}}\n"
            f"  domains: [{domain}]\n  admins: [max{i}@firma{i}.de]\n{extra}")


def _partner_files(partner: str) -> dict[str, str]:
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>'
    evil = '<svg xmlns="http://www.w3.org/2000/svg"><rect onload="x()"/></svg>'
    looks = "".join(f"---\napiVersion: tenantry.dev/v1alpha1\nkind: Branding\nmetadata:\n  name: look{n}\n"
                    f"  namespace: partner-{partner}\nspec:\n  colours: {{primary: '#00000{n}'}}\n"
                    f"  logo: {{svg: '{evil if n == 2 else svg}'}}\n" for n in range(3))
    plans = (f"apiVersion: tenantry.dev/v1alpha1\nkind: FeatureSet\nmetadata: {{name: ping, namespace: "
             f"partner-{partner}}}\nspec: {{extends: pong}}\n---\napiVersion: tenantry.dev/v1alpha1\n"
             f"kind: FeatureSet\nmetadata: {{name: pong, namespace: partner-{partner}}}\nspec: {{extends: ping}}\n"
             f"---\napiVersion: tenantry.dev/v1alpha1\nkind: FeatureSet\nmetadata: {{name: own, namespace: "
             f"partner-{partner}}}\nspec: {{extends: business, resources: {{base: {{cpu: '64'}}}}}}\n")
    return {f"tenants/{partner}/brandings.yml": looks, f"tenants/{partner}/plans/featuresets.yaml": plans}


def build(root: Path) -> None:
    """The mixed repository: 250 tenants over five partners plus every kind of bad file."""
    files: dict[str, str | bytes] = {"platform/platform.yaml": PLATFORM}
    for partner in PARTNERS[:-1]:  # the last partner has no namespace in partners/
        files[f"partners/{partner}.yaml"] = (f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: partner-{partner}\n"
                                             f"  labels: {{tenantry.dev/partner: {partner}}}\n")
        files.update(_partner_files(partner))
    files.update(_partner_files(PARTNERS[-1]))
    files["partners/clash.yaml"] = ("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: partner-other\n"
                                    "  labels: {tenantry.dev/partner: acme}\n---\napiVersion: v1\nkind: Namespace\n"
                                    "metadata:\n  name: tenantry-system\n  labels: {tenantry.dev/partner: nord}\n"
                                    "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: partner-ost\n"
                                    "  labels: {tenantry.dev/partner: west}\n")
    for i in range(250):
        files[f"tenants/{PARTNERS[i % len(PARTNERS)]}/{i // 100}/t{i:04d}.yaml"] = _tenant(i)
    for hostile in CORPUS:
        files[f"tenants/acme/hostile/{hostile.id}.yaml"] = hostile.text
    files.update({
        "tenants/acme/multi.yaml": _tenant(1000) + "---\n" + _tenant(1001).replace("t1001", "www") + "---\n",
        "tenants/acme/empty.yaml": "",
        "tenants/acme/null.yaml": "~\n",
        "tenants/acme/list.yaml": "apiVersion: v1\nkind: List\nitems: []\n",
        "tenants/acme/items.yaml": "apiVersion: v1\nkind: ConfigMap\nitems: [1]\n",
        "tenants/acme/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: partner-acme}\n",
        "tenants/acme/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        "tenants/acme/version.yaml": "apiVersion: tenantry.dev/v2\nkind: Tenant\n",
        "tenants/acme/nonamespace.yaml": _tenant(1010).replace("  namespace: partner-acme\n", ""),
        "tenants/acme/latin1.yaml": "company: Müller\n".encode("latin-1"),
        "tenants/acme/tags.yaml": "a: !!binary aGVsbG8=\nb: !custom x\n",
        "tenants/acme/keytag.yaml": "? !!python/name:os.system\n: x\n",
        "tenants/acme/scalar-alias.yaml": "a: &x hello\nb: *x\n",
        "tenants/acme/bigint.yaml": "a: " + "9" * 5000 + "\n",
        "tenants/acme/bad-date.yaml": "a: 2024-13-45\n",  # a timestamp of no calendar: text, as in Go
        "tenants/acme/oversize.yaml": "# " + "x" * (1024 * 1024) + "\n",
        "tenants/acme/.hidden/deep.yaml": _tenant(1003),
        "tenants/acme/reserved.yaml": _tenant(1015).replace("  namespace: partner-acme\n", "  namespace: "
                                                            "partner-acme\n  labels: {tenantry.dev/partner: x}\n"),
        "platform/wrongns.yaml": _tenant(1005),
        "flux/tenant.yaml": _tenant(1006),
        "argocd/app.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: x}\n",
        "random/elsewhere.yaml": _tenant(1007),
        "toplevel.yaml": _tenant(1008),
        ".github/skipped.yaml": "not: [checked\n",
        "tenants/acme/notes.txt": "not yaml, not read\n",
    })
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    os.mkfifo(root / "tenants" / "acme" / "fifo.yaml")
    os.symlink(root / "tenants" / "acme" / "0" / "t0000.yaml", root / "tenants" / "nord" / "link.yaml")
    os.symlink(root.parent / "outside.yaml", root / "tenants" / "nord" / "escape.yaml")
    (root.parent / "outside.yaml").write_text(_tenant(1009))
    os.symlink(root / "tenants" / "sued", root / "tenants" / "west" / "folder")
    os.symlink(root / "missing.yaml", root / "tenants" / "west" / "dangling.yaml")


def _normal(findings: list[Finding], root: Path) -> list[dict[str, Any]]:
    """Findings with the temporary folder's name replaced, so they compare across runs."""
    def plain(text: str) -> str:
        text = text.replace(str(root.resolve()), "<repo>").replace(str(root), "<repo>")
        # Messages quoting a megabyte of a hostile value are kept as their digest.
        return text if len(text) <= 1000 else f"{len(text)} characters, sha256 {sha256(text.encode()).hexdigest()}"
    return [{"file": plain(f.file), "line": f.line, "field": f.field, "message": plain(f.message),
             "hint": plain(f.hint)} for f in findings]


def run_all(root: Path) -> dict[str, list[dict[str, Any]]]:
    repo = root / "repo"
    build(repo)
    linked = root / "linked"  # the repository reached through a symlink: every file is read from elsewhere
    os.symlink(repo, linked)
    explicit = [repo / "tenants" / "acme" / "0" / "t0000.yaml", repo / "tenants" / "acme" / "multi.yaml",
                root / "outside.yaml", repo / "tenants" / "nord" / "escape.yaml"]
    return {
        "repository": _normal(validate([repo]), root),
        "platform_domain": _normal(validate([repo / "tenants" / "nord"], platform_domain="firma1.de", repo=repo), root),
        "explicit_files": _normal(validate(explicit, repo=repo), root),
        "through_a_symlink": _normal(validate([linked / "tenants" / "nord", linked / "partners"], repo=linked), root),
    }


def test_findings_equal_the_golden_file(tmp_path: Path) -> None:
    expected = json.loads(GOLDEN.read_text())
    actual = run_all(tmp_path)
    assert actual.keys() == expected.keys()
    for run, findings in expected.items():
        assert actual[run] == findings, run


def test_golden_file_covers_every_kind_of_finding() -> None:
    """The golden file is worth comparing against: it holds findings of every stage of validate."""
    findings = json.loads(GOLDEN.read_text())["repository"]
    words = ("the field takes", "unknown field", "is not a whole number", "minimum of", "is not one of",
             "does not match", "tabels", "onload", "also used in",
             "no FeatureSet 'platinum'", "no Branding", "ping -> pong", "aliases", "not valid YAML", "nesting deeper",
             "not UTF-8", "larger than", "not a regular file", "outside the repository", "symlink to a folder",
             "outside the tenants repository's layout", "must be a mapping", "lists of objects",
             "is claimed by namespace", "may only hold partner", "has no namespace of its own", "reserved for tenantry",
             "only the platform may set", "is not available on this platform", "is not allowed in tenant files",
             "metadata.namespace is missing", "under platform/ must be in the platform namespace",
             "entries, at most", "items, at most", "characters, at most")
    missing = [w for w in words if not any(w in f["message"] for f in findings)]
    assert not missing
    assert len(findings) > 300


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        GOLDEN.parent.mkdir(exist_ok=True)
        runs = run_all(Path(folder))
        GOLDEN.write_text("{\n" + ",\n".join(f"{json.dumps(run)}: [\n" + ",\n".join(
            json.dumps(f, ensure_ascii=False) for f in findings) + "\n]" for run, findings in runs.items()) + "\n}\n")
        print(f"wrote {GOLDEN}")
