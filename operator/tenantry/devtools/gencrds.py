"""Write the generated CRDs (`make crds`): plain YAML into crds/, and as Helm templates into
charts/tenantry/templates/crds/.

The chart's copies are templates, not files of a crds/ folder, because Helm installs a chart's
crds/ once and never upgrades them: as templates they follow `helm upgrade`. Each is wrapped in
`{{- if .Values.crds.install }}`, carries the chart's labels, and with crds.keep the annotation
`helm.sh/resource-policy: keep` (uninstalling the release must not delete every partner's tenants).
`--check` compares both without writing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from tenantry.api.crd import all_crds
from tenantry.devtools.cluster import REPO_ROOT

# Plain CRDs (kubectl apply -f crds/; the integration tests and the demo apply these).
TARGETS = (REPO_ROOT / "crds",)
# The same CRDs as templates of the chart.
CHART_TARGET = REPO_ROOT / "charts" / "tenantry" / "templates" / "crds"
HEADER = "# Generated from operator/tenantry/api by `make crds`. Do not edit by hand.\n"
CHART_HEADER = "{{- if .Values.crds.install }}\n" + HEADER


def _dump(data: object) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=100, allow_unicode=True)


def rendered() -> dict[str, str]:
    """File name -> YAML text of every CRD, exactly as committed in crds/."""
    return {name: HEADER + _dump(crd) for name, crd in all_crds().items()}


def chart_templates() -> dict[str, str]:
    """File name -> Helm template of every CRD, exactly as committed in the chart."""
    templates = {}
    for name, crd in all_crds().items():
        metadata = crd["metadata"]
        # The chart's labels replace the CRD's own, which must be among them (part-of: tenantry).
        if ("{{" in _dump(crd) or set(metadata) - {"name", "labels"}
                or metadata.get("labels", {}).items() - {("app.kubernetes.io/part-of", "tenantry")}):
            raise ValueError(f"{name}: its text or metadata cannot be put into a template as it is")
        templates[name] = (
            CHART_HEADER + _dump({key: crd[key] for key in ("apiVersion", "kind")})
            + "metadata:\n"
            + f"  name: {metadata['name']}\n"
            + "  labels:\n"
            + '    {{- include "tenantry.labels" (list . "crds") | nindent 4 }}\n'
            + "  {{- if .Values.crds.keep }}\n"
            + "  annotations:\n"
            + "    # Uninstalling the release must not delete every Tenant, Branding, FeatureSet and Deal.\n"
            + "    helm.sh/resource-policy: keep\n"
            + "  {{- end }}\n"
            + _dump({key: value for key, value in crd.items() if key not in ("apiVersion", "kind", "metadata")})
            + "{{- end }}\n"
        )
    return templates


def _expected() -> dict[Path, dict[str, str]]:
    return {**{target: rendered() for target in TARGETS}, CHART_TARGET: chart_templates()}


def main(argv: list[str] | None = None) -> int:
    """Write the files; with --check, only compare and exit 1 when the committed ones differ."""
    expected = _expected()
    if "--check" in (sys.argv[1:] if argv is None else argv):
        differing = [f"{t.relative_to(REPO_ROOT)}/{n}" for t, files in expected.items() for n, text in files.items()
                     if not (t / n).exists() or (t / n).read_text() != text]
        differing += [f"{t.relative_to(REPO_ROOT)}/{p.name}" for t, files in expected.items()
                      for p in t.glob("*.yaml") if p.name not in files]
        for path in differing:
            print(f"{path} differs from what the models generate: run `make crds`")
        return 1 if differing else 0
    for target, files in expected.items():
        target.mkdir(parents=True, exist_ok=True)
        for stale in set(p.name for p in target.glob("*.yaml")) - set(files):
            (target / stale).unlink()
        for name, text in files.items():
            (target / name).write_text(text)
    print(f"wrote {len(rendered())} CRDs to " + ", ".join(str(t.relative_to(REPO_ROOT)) for t in expected))
    return 0


if __name__ == "__main__":
    sys.exit(main())
