"""Upgrading a release of the tenantry chart, with the commands of charts/tenantry/README.md, rendered
by the real Helm engine as `helm upgrade` would merge the values.

Tested here:
- the README never upgrades with `--reuse-values`: Helm then keeps the defaults of the chart the
  release was installed with in place of the new chart's, so a release of 0.1.0 is refused (every
  value added since is missing, the renamed replicaCount is still there), as emulated here
- `--reset-then-reuse-values` (this chart's defaults, then the values set on the release) renders
  the values a user of 0.1.0 typically set, once the renamed keys are renamed; with the old names
  it is refused naming them
- the README's upgrade blocks, run as written by bash with a stand-in `helm` that answers `helm get
  values` with a release's stored values and records `helm upgrade`: each upgrade renders, the
  values come from `helm get values` without --all (the values set, not the old defaults), and the
  0.1.0 block renames replicaCount and portal.replicaCount
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.unit.chart import CHART, merge, render

README = CHART / "README.md"
# charts/tenantry/values.yaml of 0.1.0: what --reuse-values keeps as the defaults of such a release.
OLD_DEFAULTS = yaml.safe_load((Path(__file__).parent / "chart_values_0.1.0.yaml").read_text())
NS = "tenantry-system"

# Values a platform team typically set on a 0.1.0 release (`helm get values` prints these, and
# these only: the values set, not the chart's defaults).
SET_ON_0_1_0: dict[str, dict[str, Any]] = {
    "domain-and-image": {"operator": {"platformDomain": "saas.example.com"},
                         "image": {"repository": "ghcr.io/acme/tenantry-operator"}},
    "replica-counts": {"operator": {"platformDomain": "saas.example.com"},
                       "image": {"repository": "ghcr.io/acme/tenantry-operator", "tag": "0.1.0"},
                       "replicaCount": 3, "shards": 6,
                       "portal": {"replicaCount": 2, "prometheusUrl": "http://prometheus.monitoring:9090"}},
    "partners-dns-monitoring": {
        "operator": {"platformDomain": "saas.example.com", "commissionRate": 0.25,
                     "dns": {"provider": "rfc2136", "target": "203.0.113.10",
                             "rfc2136": {"server": "ns1.example.com", "tsigName": "tenantry",
                                         "tsigSecretRef": {"name": "tenantry-tsig", "key": "secret"}}}},
        "image": {"repository": "ghcr.io/acme/tenantry-operator"},
        "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"cpu": 1, "memory": "1Gi"}},
        "partners": [{"id": "acme-it", "commissionRate": 0.3}, {"id": "nordlicht", "quarterlyTarget": 15000}],
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
        "prometheusRule": {"enabled": True},
        "extraEnv": [{"name": "TENANTRY_VERBOSE", "value": "1"}],
    },
}
# The 0.1.0 names of values this chart renamed, by their new names.
RENAMED = {"replicaCount": "replicas"}


def renamed(values: dict[str, Any]) -> dict[str, Any]:
    """The values with 0.1.0's names of renamed values changed to today's, at every level."""
    return {RENAMED.get(key, key): renamed(value) if isinstance(value, dict) else value
            for key, value in values.items()}


# --- how Helm merges on upgrade ------------------------------------------------------------------

def upgrade_helm_commands(markdown: str) -> list[str]:
    """Every `helm upgrade` of the tenantry chart in the README's code blocks (continuations joined)."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)
    lines = [line.strip() for block in blocks for line in re.sub(r"\s*\\\n\s*", " ", block).splitlines()]
    return [line for line in lines if line.startswith("helm upgrade ") and "charts/tenantry " in f"{line} "]


def test_the_readme_never_upgrades_with_reuse_values() -> None:
    commands = upgrade_helm_commands(README.read_text())
    assert commands, "the README documents how to upgrade"
    reusing = [command for command in commands if "--reuse-values" in shlex.split(command)]
    assert reusing == [], "--reuse-values keeps the old chart's defaults: use --reset-then-reuse-values or -f"


def test_upgrade_commands_are_found_across_continued_lines() -> None:
    assert upgrade_helm_commands("```sh\nhelm upgrade x charts/tenantry --reuse-values \\\n  --set a=1\n```\n") == [
        "helm upgrade x charts/tenantry --reuse-values --set a=1"]


@pytest.mark.parametrize("user", sorted(SET_ON_0_1_0))
def test_reuse_values_from_0_1_0_is_refused(user: str, tmp_path: Path) -> None:
    # `helm upgrade --reuse-values`: the release's old chart defaults (0.1.0's values.yaml) with its
    # set values over them become the new chart's values; the new chart's defaults are not read.
    reused = tmp_path / "tenantry"
    shutil.copytree(CHART, reused)
    (reused / "values.yaml").write_text(yaml.safe_dump(merge(OLD_DEFAULTS, SET_ON_0_1_0[user])))
    with pytest.raises(helm.HelmError) as refused:
        render({}, chart=reused, platform_domain=None)
    message = str(refused.value)
    assert "missing properties 'replicas', 'serviceAccount', 'podSecurityContext'" in message
    assert "additional properties 'replicaCount' not allowed" in message


@pytest.mark.parametrize("user", sorted(SET_ON_0_1_0))
def test_reset_then_reuse_values_from_0_1_0_renders_once_renamed(user: str) -> None:
    # `helm upgrade --reset-then-reuse-values` (Helm 3.14+), or `-f` with `helm get values`: this
    # chart's defaults, then the values set on the release.
    values = renamed(SET_ON_0_1_0[user])
    objects = render(values, platform_domain=None)
    deployments = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "Deployment"}
    assert deployments["tenantry"]["replicas"] == values.get("replicas", 2)
    assert deployments["tenantry-portal"]["replicas"] == values.get("portal", {}).get("replicas", 1)
    operator = deployments["tenantry"]["template"]["spec"]["containers"][0]
    assert operator["image"].startswith("ghcr.io/acme/tenantry-operator:")
    assert {"name": "TENANTRY_PLATFORM_DOMAIN", "value": "saas.example.com"} in operator["env"]


def test_reset_then_reuse_values_keeps_0_1_0_names_and_is_refused() -> None:
    with pytest.raises(helm.HelmError) as refused:
        render(SET_ON_0_1_0["replica-counts"], platform_domain=None)
    assert "additional properties 'replicaCount' not allowed" in str(refused.value)


# --- the README's upgrade blocks, run as written -------------------------------------------------

STAND_IN_HELM = """#!/usr/bin/env bash
# helm for the README's upgrade blocks: `get values` prints the release's stored values, `upgrade`
# is recorded (one line of NUL-separated arguments each) for the test to render.
set -eu
case "$1 ${2:-}" in
  "get values") printf '%s\\0' "$@" >> "$RECORD/get"; cat "$RECORD/stored.yaml" ;;
  "upgrade "*) printf '%s\\0' "$@" >> "$RECORD/upgrade"; printf '\\n' >> "$RECORD/upgrade" ;;
  *) echo "helm $*: not expected in an upgrade block" >&2; exit 2 ;;
esac
"""


def block(marker: str) -> str:
    """The code block after `<!-- test: marker -->` in the README."""
    after = README.read_text().split(f"<!-- test: {marker} -->\n", 1)[1]
    return after.split("```", 2)[1].split("\n", 1)[1]


def run_block(marker: str, stored: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    """Run a README block with the stand-in helm; the values of each `helm upgrade` it ran, merged as
    Helm merges them over this chart's defaults (those `render` adds)."""
    record = tmp_path / "record"
    record.mkdir()
    (record / "stored.yaml").write_text(yaml.safe_dump(stored))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "helm").write_text(STAND_IN_HELM)
    (bin_dir / "helm").chmod(0o755)
    text = block(marker)
    first, rest = text.split("\n", 1)
    assert first == f"RELEASE=tenantry NAMESPACE={NS}", first
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", f"{first}\n{rest}"], cwd=tmp_path, text=True,
                            capture_output=True, timeout=60,
                            env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(record)})
    assert result.returncode == 0, result.stderr
    if (record / "get").exists():
        gets = (record / "get").read_text().split("\0")
        assert "-o" in gets and gets[gets.index("-o") + 1] == "yaml", gets
        assert not {"--all", "-a"} & set(gets), "--all prints the old chart's defaults too"
    upgrades = [line.split("\0")[:-1] for line in (record / "upgrade").read_text().splitlines() if line]
    assert upgrades, f"{marker}: no helm upgrade"
    return [upgrade_values(argv, stored, tmp_path) for argv in upgrades]


def upgrade_values(argv: list[str], stored: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """The values `helm upgrade <argv>` gives the templates, less this chart's defaults."""
    assert argv[:3] == ["upgrade", "tenantry", "charts/tenantry"], argv
    assert "--reuse-values" not in argv, "the old chart's defaults would replace this chart's"
    values = copy.deepcopy(stored) if "--reset-then-reuse-values" in argv else {}
    args = iter(argv[3:])
    for arg in args:
        if arg in ("-n", "--namespace"):
            assert next(args) == NS
        elif arg in ("-f", "--values"):
            values = merge(values, yaml.safe_load((cwd / next(args)).read_text()) or {})
        elif arg == "--set":
            values = merge(values, helm.parse_set_string(next(args)))
        else:
            assert arg == "--reset-then-reuse-values", f"not emulated here: {arg}"
    return values


@pytest.mark.parametrize("user", sorted(SET_ON_0_1_0))
def test_the_readme_upgrade_from_0_1_0_renders(user: str, tmp_path: Path) -> None:
    (values,) = run_block("upgrade-from-0.1.0", SET_ON_0_1_0[user], tmp_path)
    assert values == renamed(SET_ON_0_1_0[user])
    objects = render(values, platform_domain=None)
    operator = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "tenantry")
    assert operator["spec"]["replicas"] == values.get("replicas", 2)


@pytest.mark.parametrize("marker", ["upgrade", "upgrade-with-any-helm"])
def test_the_readme_upgrade_keeps_the_values_set_and_takes_the_new_defaults(marker: str, tmp_path: Path) -> None:
    stored = {"operator": {"platformDomain": "saas.example.com"}, "replicas": 3,
              "image": {"repository": "ghcr.io/acme/tenantry-operator"}, "portal": {"replicas": 2}}
    (values,) = run_block(marker, stored, tmp_path)
    assert values == stored
    objects = render(values, platform_domain=None)
    assert {o["metadata"]["name"]: o["spec"]["replicas"] for o in objects if o["kind"] == "Deployment"} == {
        "tenantry": 3, "tenantry-portal": 2}
