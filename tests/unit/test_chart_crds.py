"""The CRDs as templates of the chart (templates/crds/), rendered by the real Helm engine.

Tested here:
- by default the four CRDs, each exactly the one the API models generate (crds/), with the chart's
  labels (component crds) and helm.sh/resource-policy: keep; crds.keep false drops the annotation,
  crds.install false renders none (the rest of the chart unchanged)
- the committed templates are what `make crds` writes (gencrds --check passes), each wrapped in
  `if .Values.crds.install`; the chart has no crds/ folder (Helm would install it once and never
  upgrade it)
"""

from __future__ import annotations

from tenantry.api.crd import all_crds
from tenantry.devtools import gencrds
from tests.unit.chart import CHART, crds, keys, render


def test_the_chart_installs_the_crds_of_the_models_and_keeps_them() -> None:
    rendered = {crd["metadata"]["name"]: crd for crd in crds()}
    models = {crd["metadata"]["name"]: crd for crd in all_crds().values()}
    assert rendered.keys() == models.keys() == {"tenants.tenantry.dev", "brandings.tenantry.dev",
                                                "featuresets.tenantry.dev", "deals.tenantry.dev"}
    for name, crd in rendered.items():
        assert crd["spec"] == models[name]["spec"]
        assert (crd["apiVersion"], crd["kind"]) == ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        labels = crd["metadata"]["labels"]
        assert (labels["app.kubernetes.io/component"], labels["app.kubernetes.io/part-of"]) == ("crds", "tenantry")
        assert models[name]["metadata"]["labels"].items() <= labels.items()


def test_crds_keep_and_install() -> None:
    assert all("annotations" not in crd["metadata"] for crd in crds({"crds": {"keep": False}}))
    assert crds({"crds": {"install": False}}) == []
    assert keys(render({"crds": {"install": False}})) == keys(render())


def test_the_templates_are_what_make_crds_writes() -> None:
    assert gencrds.main(["--check"]) == 0
    committed = {p.name: p.read_text() for p in (CHART / "templates" / "crds").glob("*.yaml")}
    assert committed == gencrds.chart_templates()
    for text in committed.values():
        assert text.startswith("{{- if .Values.crds.install }}\n") and text.endswith("{{- end }}\n")
    assert not (CHART / "crds").exists()
