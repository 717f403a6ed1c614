"""The CLI's handling of files and folders a pull-request author controls.

Tested here:
- `tenantry validate` (the installed command, under a timeout so a hang fails instead of blocking):
  a symlink to /dev/zero, a FIFO, a symlink to a file outside the repository and a symlinked
  folder each get a "(file)" finding and the run ends; a symlink inside the repository is read;
  a file one byte over the limit is refused without being read whole
- `load` itself refuses a symlink (O_NOFOLLOW), /dev/zero and a FIFO (fstat: not a regular file)
  (each run as a process with a timeout and a 1 GiB memory cap: the old code read /dev/zero forever)
- layout: files at any depth under tenants/<partner>/ are that partner's (a deep file in another
  partner's namespace is caught); files outside platform/, partners/, tenants/<partner>/, flux/,
  argocd/ are findings naming the path and the folders; tenantry objects under partners/ or flux/,
  and platform/ objects outside the platform namespace, are findings
- Namespaces: one under tenants/ is refused and does not move a partner; a second namespace for a
  partner, a namespace given to two partners, and the platform namespace as a partner's are refused;
  List documents (whose items kubectl would apply unchecked) are refused
- `tenantry new tenant`: ../ and absolute slugs and partners, unicode look-alikes, a trailing
  newline, over-long names and a partner folder symlinked out of the repository write nothing
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tenantry.cli.main import main
from tenantry.cli.sources import MAX_FILE_BYTES
from tenantry.cli.validate import validate
from tests.unit.test_cli_validate import write

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tenants"
COMMAND = str(Path(sys.executable).parent / "tenantry")
ACME = "tenants/acme-it"
TENANT = """apiVersion: tenantry.dev/v1alpha1
kind: Tenant
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  company: Test GmbH
  contact: {{name: Test, email: test@example.de}}
  plan: {{featureSet: business, seats: 5}}
"""
NAMESPACE = ("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
             "  labels: {{tenantry.dev/partner: {partner}}}\n")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the example tenants repository."""
    return Path(shutil.copytree(EXAMPLES, tmp_path / "repo"))


def _limits() -> None:
    # Reading /dev/zero to the end (what the old code did) eats memory at GB/s: cap it at 1 GiB.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def bounded(command: list[str], seconds: int = 60) -> subprocess.CompletedProcess:
    """Run a command under a timeout and a memory cap, so a hang or an endless read fails the test."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=seconds, preexec_fn=_limits)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command[:3]} did not finish within {seconds} s")


def run_validate(repo: Path) -> list[dict]:
    """The installed command: exit 0 or 1 with JSON findings, within a minute and 1 GiB."""
    result = bounded([COMMAND, "validate", "--format", "json", str(repo)])
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else []


def of(findings: list[dict], relative: str) -> list[dict]:
    return [f for f in findings if f["file"].endswith(relative)]


def test_special_files_are_refused_and_the_run_ends(repo: Path, tmp_path: Path) -> None:
    os.symlink("/dev/zero", repo / ACME / "zero.yaml")
    os.mkfifo(repo / ACME / "pipe.yaml")
    outside = write(tmp_path, "outside/stolen.yaml", TENANT.format(name="stolen", namespace="partner-acme-it"))
    os.symlink(outside, repo / ACME / "stolen.yaml")
    os.symlink(tmp_path / "outside", repo / ACME / "elsewhere")
    write(repo, ACME + "/big.yaml", "#" * (MAX_FILE_BYTES + 1))
    write(repo, ACME + "/real/inside.yaml", TENANT.format(name="inside", namespace="partner-acme-it"))
    os.symlink("real/inside.yaml", repo / ACME / "linked.yaml")
    findings = run_validate(repo)
    for name, words in (("zero.yaml", "outside the repository"), ("pipe.yaml", "not a regular file"),
                        ("stolen.yaml", "outside the repository"), ("elsewhere", "symlink to a folder"),
                        ("big.yaml", f"larger than {MAX_FILE_BYTES} bytes")):
        mine = of(findings, f"{ACME}/{name}")
        assert any(f["field"] == "(file)" and words in f["message"] for f in mine), (name, mine)
    # A link inside the repository is read: its content is judged, under the link's own name.
    assert [f["field"] for f in of(findings, f"{ACME}/linked.yaml")] == ["metadata.name"]  # same slug twice
    assert "stolen" not in json.dumps([f for f in findings if "stolen.yaml" not in f["file"]])


LOAD = """import sys
from pathlib import Path
from tenantry.cli.sources import SourceError, load
try:
    load(Path(sys.argv[1]))
except SourceError as error:
    print(error)
"""


def test_load_never_follows_a_symlink_and_reads_only_regular_files(tmp_path: Path) -> None:
    os.symlink("/dev/zero", tmp_path / "zero.yaml")
    os.mkfifo(tmp_path / "pipe.yaml")
    for path, words in ((tmp_path / "zero.yaml", "a symlink"), ("/dev/zero", "not a regular file"),
                        (tmp_path / "pipe.yaml", "not a regular file")):
        result = bounded([sys.executable, "-c", LOAD, str(path)], seconds=30)
        assert result.returncode == 0 and words in result.stdout, (path, result.stdout, result.stderr[-500:])


def test_files_at_any_depth_belong_to_their_partner_folder(repo: Path) -> None:
    write(repo, ACME + "/sub/deep/stray.yaml", TENANT.format(name="stray", namespace="partner-nordlicht-digital"))
    write(repo, "partners/acme/sub/x.yaml", TENANT.format(name="inpartners", namespace="partner-acme-it"))
    write(repo, "flux/extra.yaml", TENANT.format(name="influx", namespace="partner-acme-it"))
    write(repo, "platform/sneaky.yaml", TENANT.format(name="sneaky", namespace="partner-acme-it"))
    write(repo, "tenants/loose.yaml", TENANT.format(name="loose", namespace="partner-acme-it"))
    write(repo, "docs/x.yaml", TENANT.format(name="docs", namespace="partner-acme-it"))
    write(repo, "top.yaml", TENANT.format(name="top", namespace="partner-acme-it"))
    findings = run_validate(repo)
    stray = of(findings, "sub/deep/stray.yaml")
    assert any(f["field"] == "metadata.namespace" and "tenants/acme-it/" in f["message"] for f in stray), stray
    for relative in ("partners/acme/sub/x.yaml", "flux/extra.yaml"):
        assert any(f["field"] == "kind" and "holds no tenantry objects" in f["message"]
                   for f in of(findings, relative)), relative
    assert any(f["field"] == "metadata.namespace" and "platform namespace" in f["message"]
               for f in of(findings, "platform/sneaky.yaml"))
    for relative in ("tenants/loose.yaml", "docs/x.yaml", "top.yaml"):
        (finding,) = of(findings, relative)
        assert finding["field"] == "(file)" and relative in finding["message"] and "tenants/<partner-id>/" in \
            finding["hint"], finding


def test_namespaces_are_defined_only_by_the_platform(repo: Path) -> None:
    # Partner acme-it's pull request tries to make nordlicht-digital's namespace its own one...
    write(repo, ACME + "/deep/ns.yaml", NAMESPACE.format(name="partner-nordlicht-digital", partner="acme-it"))
    # ...and to give nordlicht-digital a namespace it controls, so nordlicht's files land there.
    write(repo, ACME + "/ns2.yaml", NAMESPACE.format(name="partner-acme-it", partner="nordlicht-digital"))
    write(repo, "tenants/nordlicht-digital/moved.yaml", TENANT.format(name="moved", namespace="partner-acme-it"))
    findings = run_validate(repo)
    for name in ("deep/ns.yaml", "ns2.yaml"):
        assert any(f["field"] == "kind" and "Namespaces" in f["message"] and "partners/" in f["message"]
                   for f in of(findings, f"{ACME}/{name}")), name
    assert any(f["field"] == "metadata.namespace" and "partner-nordlicht-digital" in f["hint"]
               for f in of(findings, "tenants/nordlicht-digital/moved.yaml"))


def test_partners_folder_one_namespace_per_partner(repo: Path) -> None:
    write(repo, "partners/second.yaml", NAMESPACE.format(name="acme-two", partner="acme-it"))
    write(repo, "partners/stolen.yaml", NAMESPACE.format(name="partner-sued-cloud", partner="nordlicht-digital"))
    write(repo, "platform/as-partner.yaml", NAMESPACE.format(name="tenantry-system", partner="evil"))
    write(repo, ACME + "/list.yaml", "apiVersion: v1\nkind: List\nitems:\n- " +
          TENANT.format(name="listed", namespace="partner-sued-cloud").replace("\n", "\n  "))
    findings = run_validate(repo)
    second = of(findings, "partners/second.yaml")
    assert any("partner 'acme-it' is claimed by namespace 'acme-two'" in f["message"] for f in second), second
    assert any("partner-acme-it" in f["message"] for f in of(findings, "partners/acme-it.yaml"))
    stolen = of(findings, "partners/stolen.yaml")
    assert any("'partner-sued-cloud' is defined more than once" in f["message"] for f in stolen), stolen
    assert any("platform namespace" in f["message"] for f in of(findings, "platform/as-partner.yaml"))
    assert any(f["field"] == "kind" and "List" in f["message"] for f in of(findings, ACME + "/list.yaml"))


def test_the_example_repository_stays_clean() -> None:
    assert validate([EXAMPLES]) == []


FLAGS = ["--company", "X GmbH", "--contact-name", "X", "--contact-email", "x@x.de", "--plan", "starter",
         "--seats", "5", "--no-input"]


@pytest.mark.parametrize(("partner", "slug"), [
    ("acme-it", "../../escape"), ("acme-it", "../../../tmp/escape"), ("acme-it", "/tmp/escape"),
    ("acme-it", "sub/escape"), ("../../..", "escape"), ("/tmp", "escape"), ("acme-it", "ｅｓｃａｐｅ"),
    ("acme-it", "escape\n"), ("acme-it", "escap\u0435"), ("acme-it", "e" * 64), ("acme-it", "."),
    ("acme-it", ""), ("ACME", "escape"),
])
def test_new_tenant_refuses_names_that_are_not_dns_labels(repo: Path, tmp_path: Path, partner: str, slug: str,
                                                          capsys: pytest.CaptureFixture) -> None:
    before = sorted(p for p in tmp_path.rglob("*"))
    code = main(["new", "tenant", "--repo", str(repo), "--partner", partner, "--slug", slug, *FLAGS])
    assert code == 2
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not Path("/tmp/escape.yaml").exists()
    err = capsys.readouterr().err
    assert "nothing written" in err or "missing --slug" in err, err


def test_new_tenant_refuses_a_partner_folder_linked_out_of_the_repository(repo: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", repo / "tenants" / "linked")
    assert main(["new", "tenant", "--repo", str(repo), "--partner", "linked", "--slug", "fine", *FLAGS]) == 2
    assert list((tmp_path / "outside").iterdir()) == []
    assert "outside" in capsys.readouterr().err
