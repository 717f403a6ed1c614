"""`helm package` of every chart in charts/ (tenantry, tenantry-partners), reproducibly: the chart
archives of a release (`make release`).

The real Helm engine packages each (helm_python.package, Helm's own package action: a gzip tar with
the `tenantry/` prefix, Chart.yaml first, the chart's .helmignore applied). Helm stamps each entry
with its file's modification time, which is the checkout time in a fresh clone; so the chart is
copied to a temporary folder whose files all carry SOURCE_DATE_EPOCH (default: the last commit's
time) and packaged from there, and the same commit gives the same bytes. The archive is loaded
back with the engine before it is reported, so a chart Helm cannot read is never released.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CHARTS = Path(__file__).resolve().parents[3] / "charts"


def charts(root: Path = CHARTS) -> list[Path]:
    """The chart folders under `root` (each with a Chart.yaml), by name."""
    return sorted(path.parent for path in root.glob("*/Chart.yaml"))


def source_date_epoch(repo: Path = CHARTS) -> int:
    """SOURCE_DATE_EPOCH when set, else the time of the last commit that git knows here."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    result = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%ct"],
                            capture_output=True, text=True, check=True)
    return int(result.stdout.strip())


def package(destination: Path, chart: Path, epoch: int | None = None) -> Path:
    """Package `chart` into `destination` (created if missing); returns the archive's path."""
    import helm_python as helm  # the Helm engine is a test/dev dependency, not one of the operator

    epoch = source_date_epoch(chart) if epoch is None else epoch
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tenantry-chart-") as tmp:
        copy = Path(tmp) / chart.name
        shutil.copytree(chart, copy, symlinks=False)
        for path in [copy, *copy.rglob("*")]:
            os.utime(path, (epoch, epoch), follow_symlinks=False)
        archive = Path(helm.package(str(copy), destination=str(destination.resolve())))
    loaded = helm.Chart.load(str(archive))  # Helm reads it back: a chart it cannot load fails here
    loaded.close()
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tenantry.devtools.package_chart",
        description="Package charts as `helm package` does, with file times from SOURCE_DATE_EPOCH.")
    parser.add_argument("--out", type=Path, default=Path("dist"), help="folder of the archives (default: dist)")
    parser.add_argument("charts", type=Path, nargs="*", help="chart folders (default: every chart in charts/)")
    args = parser.parse_args(argv)
    epoch = source_date_epoch()
    for chart in args.charts or charts():
        print(package(args.out, chart, epoch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
