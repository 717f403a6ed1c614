"""Write the generated CRDs into crds/ and charts/tenantry/crds/ (`make crds`)."""

from __future__ import annotations

import sys

import yaml

from tenantry.api.crd import all_crds
from tenantry.devtools.cluster import REPO_ROOT

TARGETS = (REPO_ROOT / "crds", REPO_ROOT / "charts" / "tenantry" / "crds")
HEADER = "# Generated from operator/tenantry/api by `make crds`. Do not edit by hand.\n"


def rendered() -> dict[str, str]:
    """File name -> YAML text of every CRD, exactly as committed."""
    return {
        name: HEADER + yaml.safe_dump(crd, sort_keys=False, width=100, allow_unicode=True)
        for name, crd in all_crds().items()
    }


def main(argv: list[str] | None = None) -> int:
    """Write the files; with --check, only compare and exit 1 when the committed ones differ."""
    files = rendered()
    if "--check" in (sys.argv[1:] if argv is None else argv):
        differing = [f"{t.relative_to(REPO_ROOT)}/{n}" for t in TARGETS for n, text in files.items()
                     if not (t / n).exists() or (t / n).read_text() != text]
        for path in differing:
            print(f"{path} differs from what the models generate: run `make crds`")
        return 1 if differing else 0
    for target in TARGETS:
        target.mkdir(parents=True, exist_ok=True)
        for stale in set(p.name for p in target.glob("*.yaml")) - set(files):
            (target / stale).unlink()
        for name, text in files.items():
            (target / name).write_text(text)
    print(f"wrote {len(files)} CRDs to " + ", ".join(str(t.relative_to(REPO_ROOT)) for t in TARGETS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
