"""The boundaries the charts' values must not cross, rendered by the real Helm engine.

Tested here (both charts: tenantry's legacy `partners` value and the tenantry-partners chart):
- a partner's namespace is never `default`, a `kube-*` or `openshift-*` system namespace, the
  platform namespace, nor a name with the tenant namespace prefix (the operator's `tenant-`, kept
  equal to OperatorConfig's); with the cluster looked up (a copy of the chart whose `lookup` reads
  a stand-in cluster from the values: `helm template` finds nothing), nor a namespace labelled
  tenantry.dev/tenant or managed by the operator; each refusal names the partner, the namespace
  and why. Two partners with one id (and different namespaces) are refused.
- the documented `--set` commands (the charts' READMEs, docs/helm.md, README.md), parsed as Helm
  parses them (helm_python.parse_set_string: 0.25 is the string "0.25"), render; a commission rate
  given as a string is what the annotation and the operator read, and a wrong one is refused
- serviceAccount.name: never `default` (schema and template), never the portal's ServiceAccount
- commonLabels and podLabels: no keys under tenantry.dev/ (schema; the template too when the schema
  is skipped), so no partner label on another partner's namespace and no pod marked leader
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tenantry.domain import naming, usage
from tenantry.domain.config import OperatorConfig
from tests.unit.chart import CHART, PARTNERS_CHART, find, merge, render, render_partners

REPO = Path(__file__).resolve().parents[2]
NS = "tenantry-system"
LOOKUP = 'lookup "v1" "Namespace" "" $namespace'
DANGEROUS = [
    ("default", 'cannot use the namespace "default"'),
    ("kube-system", "a system namespace of the cluster"),
    ("kube-public", "a system namespace of the cluster"),
    ("kube-node-lease", "a system namespace of the cluster"),
    ("openshift-monitoring", "a system namespace of the cluster"),
    ("tenant-mustermann", 'it starts with "tenant-", the prefix of the tenant namespaces'),
    (NS, "platform"),
]


def legacy(partners: list[dict[str, Any]], **values: Any) -> list[dict[str, Any]]:
    """The tenantry chart with its legacy `partners` value."""
    return render({"partners": partners, **values})


def refusal(render_call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(helm.HelmError) as error:
        render_call(*args, **kwargs)
    return str(error.value)


# --- partner namespaces ----------------------------------------------------------------------------

@pytest.mark.parametrize(("namespace", "words"), DANGEROUS)
def test_the_partners_chart_refuses_dangerous_namespaces(namespace: str, words: str) -> None:
    message = refusal(render_partners, [{"id": "evil", "namespace": namespace}])
    assert words in message and 'partner "evil"' in message and namespace in message


@pytest.mark.parametrize(("namespace", "words"), DANGEROUS)
def test_the_legacy_partners_value_refuses_dangerous_namespaces(namespace: str, words: str) -> None:
    message = refusal(legacy, [{"id": "evil", "namespace": namespace}])
    assert words in message and 'partner "evil"' in message and namespace in message


def test_the_tenant_prefix_is_the_operators() -> None:
    prefix = OperatorConfig().namespace_prefix
    assert prefix == "tenant-" and naming.tenant_namespace(prefix, "mustermann") == "tenant-mustermann"
    values = yaml.safe_load((PARTNERS_CHART / "values.yaml").read_text())
    assert values["tenantry"]["tenantNamespacePrefix"] == prefix
    assert "\ntenant-\n" in (CHART / "templates" / "_helpers.tpl").read_text()  # tenantry.tenantNamespacePrefix
    # another prefix (a platform that changed its operator's) is what the partners chart then refuses
    message = refusal(render_partners, [{"id": "a", "namespace": "customer-x"}],
                      tenantry={"tenantNamespacePrefix": "customer-"})
    assert 'starts with "customer-"' in message
    assert render_partners([{"id": "a", "namespace": "tenant-x"}], tenantry={"tenantNamespacePrefix": "customer-"})


def test_ordinary_partner_namespaces_still_render() -> None:
    for namespace in ("partner-acme-it", "nordlicht", "tenants-of-acme", "kubeflow", "acme-default"):
        assert find(render_partners([{"id": "acme", "namespace": namespace}]), "Namespace", namespace)
        assert find(legacy([{"id": "acme", "namespace": namespace}]), "Namespace", namespace)


def test_one_id_twice_is_refused_whatever_the_namespaces() -> None:
    partners = [{"id": "acme", "namespace": "acme-one"}, {"id": "acme", "namespace": "acme-two"}]
    assert 'the id "acme" is listed twice' in refusal(render_partners, partners)
    assert 'the id "acme" is listed twice' in refusal(legacy, partners)


def stand_in(chart: Path, tmp_path: Path) -> Path:
    """A copy of the chart whose namespace lookup reads `standInCluster` (name -> Namespace) from
    the values, and without its schema (which refuses that key)."""
    copy = tmp_path / chart.name
    shutil.copytree(chart, copy)
    helpers = copy / "templates" / "_helpers.tpl"
    text = helpers.read_text()
    assert text.count(LOOKUP) == 1, "the chart looks its partner namespaces up in one place"
    helpers.write_text(text.replace(LOOKUP, "get ($root.Values.standInCluster | default dict) $namespace"))
    (copy / "values.schema.json").unlink()
    return copy


def namespace(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


TENANT_NS = namespace("customers-mustermann", naming.tenant_labels("mustermann", "acme"))
MANAGED_NS = namespace("adopted", {naming.MANAGED_BY: naming.OPERATOR})
PARTNER_NS = namespace("partner-acme", {naming.PARTNER_LABEL: "acme", naming.MANAGED_BY: "Helm"})


@pytest.mark.parametrize("chart", [CHART, PARTNERS_CHART], ids=["tenantry", "tenantry-partners"])
def test_a_namespace_labelled_as_a_tenants_is_refused_when_looked_up(chart: Path, tmp_path: Path) -> None:
    copy = stand_in(chart, tmp_path)
    cluster = {o["metadata"]["name"]: o for o in (TENANT_NS, MANAGED_NS, PARTNER_NS)}
    base = {"standInCluster": cluster, "operator": {"platformDomain": "platform.example"}} if chart == CHART else {
        "standInCluster": cluster}

    def run(partner_namespace: str) -> list[dict[str, Any]]:
        return render({**base, "partners": [{"id": "acme", "namespace": partner_namespace}]}, chart=copy)

    message = refusal(run, "customers-mustermann")  # no tenant- prefix: only the label gives it away
    assert 'it is the namespace of tenant "mustermann" (labelled tenantry.dev/tenant)' in message
    assert "the tenantry operator manages it (app.kubernetes.io/managed-by=tenantry)" in refusal(run, "adopted")
    assert find(run("partner-acme"), "Namespace", "partner-acme")  # the chart's own, on upgrade
    assert find(run("brand-new"), "Namespace", "brand-new")  # not there yet


# --- the documented --set commands -----------------------------------------------------------------

def documented_commands() -> list[tuple[str, list[str]]]:
    """(page, argv) of every `helm install|upgrade|template` of one of the charts in a code block."""
    pages = [REPO / "README.md", REPO / "docs" / "helm.md", CHART / "README.md", PARTNERS_CHART / "README.md"]
    found = []
    for page in pages:
        # A block marked <!-- test: name --> is run as written by a test of its own (test_chart_helm,
        # test_chart_upgrade): its commands name their release by a variable, or read a values file.
        text = re.sub(r"<!-- test: [^>]*-->\n```.*?\n```", "", page.read_text(), flags=re.DOTALL)
        for block in shell_blocks(text):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                line = line.strip()
                if re.match(r"helm (install|upgrade|template) ", line) and " charts/tenantry" in line:
                    found.append((page.relative_to(REPO).as_posix(), shlex.split(line)))
    return found


def shell_blocks(markdown: str) -> list[str]:
    """The text of each fenced code block in sh, bash or console (or no language)."""
    blocks, current, language = [], None, ""
    for line in markdown.splitlines():
        fence = re.match(r"^```(\S*)\s*$", line)
        if fence and current is None:
            current, language = [], fence.group(1)
        elif fence:
            if language in ("", "sh", "bash", "console"):
                blocks.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def as_helm_would(argv: list[str]) -> tuple[Path, str, str, dict[str, Any]]:
    """(chart, release, namespace, values) of a helm command line: --set, --set-string and
    --set-json parsed by Helm's own parsers (helm_python), in Helm's order."""
    positional, namespace, sets = [], "default", {"--set": [], "--set-string": [], "--set-json": []}
    args = iter(argv[2:])
    for arg in args:
        if arg in ("-n", "--namespace"):
            namespace = next(args)
        elif arg in sets:
            sets[arg].append(next(args))
        elif arg in ("-f", "--values", "--set-file"):
            raise AssertionError(f"{argv}: values from a file are not rendered here")
        elif not arg.startswith("-"):
            positional.append(arg)
    release, chart = positional
    values: dict[str, Any] = {}
    parsers = (("--set-json", helm.parse_set_json), ("--set", helm.parse_set_string),
               ("--set-string", helm.parse_set_string_values))
    for flag, parse in parsers:
        if sets[flag]:
            values = merge(values, parse(",".join(sets[flag])))
    return REPO / chart, release, namespace, values


def test_the_documented_commands_are_found() -> None:
    commands = documented_commands()
    pages = {page for page, _ in commands}
    assert {"charts/tenantry-partners/README.md", "charts/tenantry/README.md", "docs/helm.md", "README.md"} <= pages
    rates = [argv for _, argv in commands if any("commissionRate=0.25" in arg for arg in argv)]
    assert len(rates) == 2  # charts/tenantry-partners/README.md: the install and the move from the legacy value


@pytest.mark.parametrize(("page", "argv"), documented_commands(),
                         ids=[f"{page}:{' '.join(argv[:4])}" for page, argv in documented_commands()])
def test_every_documented_set_command_renders(page: str, argv: list[str]) -> None:
    chart, release, namespace, values = as_helm_would(argv)
    objects = render(values, release, namespace, chart=chart)
    assert objects
    for partner in values.get("partners") or []:
        ns = find(objects, "Namespace", partner.get("namespace") or f"partner-{partner['id']}")
        annotations = ns["metadata"]["annotations"]
        if "commissionRate" in partner:
            assert partner["commissionRate"] == "0.25"  # what --set makes of 0.25: a string
            assert annotations["tenantry.dev/commission-rate"] == "0.25"
            assert usage.commission_rate(annotations, 0.2) == 0.25  # and what the operator reads


@pytest.mark.parametrize("rate", ["0", "0.25", "0.3333", "1", "1.0", "1.00", 0, 0.25, 1])
def test_a_commission_rate_is_a_number_or_a_string_of_one(rate: Any) -> None:
    for objects in (render_partners([{"id": "a", "commissionRate": rate}]),
                    legacy([{"id": "a", "commissionRate": rate}])):
        annotation = find(objects, "Namespace", "partner-a")["metadata"]["annotations"]["tenantry.dev/commission-rate"]
        assert float(annotation) == float(rate)
    assert find(render({"operator": {"commissionRate": rate}}), "Deployment", "tenantry")


@pytest.mark.parametrize("rate", ["1.5", "2", "-0.1", "0.2x", "20%", ".5", "", 1.5, -0.1])
def test_a_wrong_commission_rate_is_refused(rate: Any) -> None:
    assert "/partners/0/commissionRate" in refusal(render_partners, [{"id": "a", "commissionRate": rate}])
    assert "/partners/0/commissionRate" in refusal(legacy, [{"id": "a", "commissionRate": rate}])
    assert "/operator/commissionRate" in refusal(render, {"operator": {"commissionRate": rate}})


def test_a_quarterly_target_from_set_is_taken_too() -> None:
    values = helm.parse_set_string("partners[0].id=a,partners[0].quarterlyTarget=15000.5")
    assert values["partners"][0]["quarterlyTarget"] == "15000.5"
    ns = find(render(values, chart=PARTNERS_CHART), "Namespace", "partner-a")
    assert ns["metadata"]["annotations"]["tenantry.dev/quarterly-target"] == "15000.5"
    for wrong in ("0", "-5", "lots"):
        assert "/partners/0/quarterlyTarget" in refusal(render_partners, [{"id": "a", "quarterlyTarget": wrong}])


# --- the operator's ServiceAccount ---------------------------------------------------------------

def test_the_operator_never_runs_as_the_default_account() -> None:
    for create in (True, False):
        message = refusal(render, {"serviceAccount": {"create": create, "name": "default"}})
        assert "/serviceAccount/name" in message


def test_the_default_account_is_refused_by_the_template_too(tmp_path: Path) -> None:
    copy = stand_in(CHART, tmp_path)  # without the schema: `--skip-schema-validation`
    message = refusal(render, {"serviceAccount": {"create": False, "name": "default"},
                               "operator": {"platformDomain": "platform.example"}}, chart=copy)
    assert 'serviceAccount.name: not "default"' in message


@pytest.mark.parametrize(("values", "portal"), [
    ({}, "tenantry-portal"),
    ({"fullnameOverride": "platform"}, "platform-portal"),
    ({"fullnameOverride": "p" * 63}, "p" * 56 + "-portal"),
])
def test_the_operator_never_runs_as_the_portals_account(values: dict, portal: str) -> None:
    objects = render(values)
    assert find(objects, "Deployment", portal)["spec"]["template"]["spec"]["serviceAccountName"] == portal
    for create in (True, False):
        message = refusal(render, {**values, "serviceAccount": {"create": create, "name": portal}})
        assert f'serviceAccount.name: not "{portal}", the partner portal\'s ServiceAccount' in message
    # with the portal off too: an account of that name is still the portal's, from before
    assert "the partner portal's ServiceAccount" in refusal(
        render, {**values, "portal": {"enabled": False}, "serviceAccount": {"create": False, "name": portal}})


def test_an_existing_account_of_its_own_is_still_bound() -> None:
    objects = render({"serviceAccount": {"create": False, "name": "platform-operator"}})
    binding = find(objects, "ClusterRoleBinding", "tenantry-operator")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "platform-operator", "namespace": NS}]


# --- labels under tenantry.dev/ --------------------------------------------------------------------

@pytest.mark.parametrize("values", [
    {"commonLabels": {"tenantry.dev/partner": "other"}},
    {"commonLabels": {"tenantry.dev/tenant": "mustermann"}},
    {"podLabels": {"tenantry.dev/role": "leader"}},
])
def test_the_tenantry_chart_refuses_the_operators_labels(values: dict) -> None:
    (key,) = next(iter(values.values()))
    message = refusal(render, {**values, "partners": [{"id": "acme"}]})
    assert f"invalid propertyName '{key}'" in message


def test_the_partners_chart_refuses_the_operators_labels() -> None:
    message = refusal(render_partners, [{"id": "acme"}], commonLabels={"tenantry.dev/partner": "other"})
    assert "invalid propertyName 'tenantry.dev/partner'" in message


@pytest.mark.parametrize(("chart", "values", "words"), [
    (CHART, {"commonLabels": {"tenantry.dev/partner": "other"}}, 'commonLabels: "tenantry.dev/partner"'),
    (CHART, {"podLabels": {"tenantry.dev/role": "leader"}}, 'podLabels: "tenantry.dev/role"'),
    (PARTNERS_CHART, {"commonLabels": {"tenantry.dev/partner": "other"}}, 'commonLabels: "tenantry.dev/partner"'),
], ids=["tenantry-commonLabels", "tenantry-podLabels", "partners-commonLabels"])
def test_the_templates_refuse_them_without_the_schema(chart: Path, values: dict, words: str, tmp_path: Path) -> None:
    copy = stand_in(chart, tmp_path)
    base = {"operator": {"platformDomain": "platform.example"}} if chart == CHART else {}
    message = refusal(render, {**base, **values, "partners": [{"id": "acme"}]}, chart=copy)
    assert words in message and "labels under tenantry.dev/ are the operator's" in message


def test_other_labels_still_reach_every_object() -> None:
    objects = render({"commonLabels": {"example.com/team": "platform"}, "podLabels": {"example.com/tier": "control"},
                      "partners": [{"id": "acme"}]})
    assert all(o["metadata"]["labels"]["example.com/team"] == "platform" for o in objects)
    ns = find(objects, "Namespace", "partner-acme")
    assert ns["metadata"]["labels"]["tenantry.dev/partner"] == "acme"
    pod = find(objects, "Deployment", "tenantry")["spec"]["template"]["metadata"]["labels"]
    assert pod["example.com/tier"] == "control" and "tenantry.dev/role" not in pod
