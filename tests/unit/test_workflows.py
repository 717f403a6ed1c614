"""The example tenants repository's GitHub workflows and CODEOWNERS keep GitHub's hardening.

Tested here (each a property an attacker with a pull request would need gone):
- no workflow runs on `pull_request_target` (base-repository secrets with the author's code)
- every workflow's token is `contents: read` and no job widens it
- every action is pinned to a full commit SHA; every checkout has `persist-credentials: false`
- a workflow a pull request triggers uses no secrets and runs no `tenantry plan`
- a workflow that uses secrets runs only on pushes to main, each such job in a GitHub environment,
  and `tenantry plan` runs only with --namespace and never with --allow-platform-credentials
- CODEOWNERS: the last matching rule gives .github/, CODEOWNERS, platform/, partners/ and any new
  top-level path to the platform team, and each partner folder to that partner
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tenants"
WORKFLOWS = sorted((EXAMPLES / ".github" / "workflows").glob("*.y*ml"))
PLATFORM = "@example-org/platform-team"


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    on = workflow["on"]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return on


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_there_are_workflows() -> None:
    assert {p.name for p in WORKFLOWS} >= {"tenants.yaml", "plan.yaml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_token_actions_and_checkout_are_locked_down(path: Path) -> None:
    workflow = load(path)
    assert "pull_request_target" not in triggers(workflow)
    assert "workflow_run" not in triggers(workflow) or "secrets." not in path.read_text()
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        assert job.get("permissions", {"contents": "read"}) in ({"contents": "read"}, {}), name
    for step in steps(workflow):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False, step


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_pull_requests_get_no_secrets_and_secrets_stay_on_main(path: Path) -> None:
    workflow, text = load(path), path.read_text()
    on = triggers(workflow)
    uses_secrets = "secrets." in text or "secrets[" in text
    runs = " ".join(step.get("run", "") for step in steps(workflow))
    if "pull_request" in on:
        assert not uses_secrets and "tenantry plan" not in runs
    if uses_secrets:
        assert set(on) == {"push"} and on["push"] == {"branches": ["main"]}, on
        for name, job in workflow["jobs"].items():
            assert job.get("environment"), f"job {name} uses secrets outside a protected environment"
    for command in re.findall(r"tenantry plan[^\n|]*", runs):
        assert "--namespace" in command and "--allow-platform-credentials" not in command, command


def owner(rules: list[tuple[str, list[str]]], path: str) -> list[str]:
    """Who CODEOWNERS says owns a path: the last matching rule (the patterns this file uses)."""
    found: list[str] = []
    for pattern, owners in rules:
        if pattern == "*" or (pattern.endswith("/") and ("/" + path).startswith(pattern)) or pattern == "/" + path:
            found = owners
    return found


def test_codeowners_gives_the_platform_its_folders() -> None:
    rules = [(line.split()[0], line.split()[1:]) for line in (EXAMPLES / "CODEOWNERS").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    for path in (".github/workflows/tenants.yaml", ".github/workflows/new.yaml", "CODEOWNERS",
                 "platform/featuresets.yaml", "partners/new.yaml", "flux/acme-it.yaml", "anything-new/x.yaml"):
        assert owner(rules, path) == [PLATFORM], path
    for partner in (p.name for p in (EXAMPLES / "tenants").iterdir()):
        assert owner(rules, f"tenants/{partner}/x.yaml") == [f"@example-org/partner-{partner}"]
