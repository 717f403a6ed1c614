"""Write the dashboards' JSON into charts/tenantry/dashboards/ (`make dashboards`)."""

from __future__ import annotations

import sys

from tenantry.dashboards.build import rendered
from tenantry.devtools.cluster import REPO_ROOT

TARGET = REPO_ROOT / "charts" / "tenantry" / "dashboards"


def main(argv: list[str] | None = None) -> int:
    """Write the files; with --check, only compare and exit 1 when the committed ones differ."""
    files = rendered()
    if "--check" in (sys.argv[1:] if argv is None else argv):
        stale = sorted(n for n, t in files.items() if not (TARGET / n).exists() or (TARGET / n).read_text() != t)
        extra = sorted({p.name for p in TARGET.glob("*.json")} - set(files))
        for name in stale + extra:
            print(f"{TARGET.relative_to(REPO_ROOT)}/{name} differs from what the code generates: run `make dashboards`")
        return 1 if stale or extra else 0
    TARGET.mkdir(parents=True, exist_ok=True)
    for stale in {p.name for p in TARGET.glob("*.json")} - set(files):
        (TARGET / stale).unlink()
    for name, text in files.items():
        (TARGET / name).write_text(text)
    print(f"wrote {len(files)} dashboards to {TARGET.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
