"""`tenantry validate` (the installed command) against the hostile corpus (tests/hostile.py).

Tested here:
- every hostile file gets a finding naming the expected field (or "(file)" for unsafe YAML)
- the command never crashes: exit code 1 with JSON findings, nothing on stderr, no traceback
- one run over all of them at once, next to the valid example repository, stays bounded: the
  billion-laughs file is refused without being expanded (the run is measured, not asserted)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile import CORPUS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tenants"
COMMAND = str(Path(sys.executable).parent / "tenantry")


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 30 and len({h.id for h in CORPUS}) == len(CORPUS)


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    repo = tmp_path_factory.mktemp("hostile") / "repo"
    shutil.copytree(EXAMPLES, repo)
    for hostile in CORPUS:
        (repo / "tenants" / "acme-it" / f"{hostile.id}.yaml").write_text(hostile.text)
    started = time.monotonic()
    result = subprocess.run([COMMAND, "validate", "--format", "json", str(repo)], capture_output=True, text=True,
                            timeout=300)
    print(f"validate over {len(CORPUS)} hostile files: {time.monotonic() - started:.1f} s")
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


@pytest.mark.parametrize("hostile", CORPUS, ids=[h.id for h in CORPUS])
def test_each_hostile_file_gets_a_specific_finding(findings: list[dict], hostile) -> None:
    mine = [f for f in findings if f["file"].endswith(f"tenants/acme-it/{hostile.id}.yaml")]
    assert mine, f"no finding for {hostile.id}"
    assert any(f["field"] == hostile.cli_field for f in mine), mine
    assert all(f["message"] and f["line"] >= 1 for f in mine)
