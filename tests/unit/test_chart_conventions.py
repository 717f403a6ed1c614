"""The chart by the conventions of cert-manager, external-dns and kube-prometheus-stack, rendered by
the real Helm engine.

Tested here:
- every documented values combination renders and lints; `global` is accepted with any keys (a
  parent chart's), unknown keys elsewhere are still refused, also in the new values
- operator.platformDomain is required, with a message saying what to set
- labels: every object carries name, instance, component, part-of, version, managed-by and
  helm.sh/chart, plus commonLabels, which never replace one of them; selectors hold only name and
  instance (and the ServiceMonitor component), and stay what they were
- nameOverride and fullnameOverride name the objects and labels; the operator's selector follows
- the image: <repository>:<tag or appVersion>, <repository>@<digest> with a digest; global's and
  the chart's imagePullSecrets on every pod
- serviceAccount: created with annotations, or an existing one named; the bindings and the
  operator's own user name follow it
- security contexts from values on the operator, portal and test pods; OpenShift's nulls leave
  the user, group and fsGroup out and keep the rest
- PodDisruptionBudget: maxUnavailable 1 by default, minAvailable or a percentage when set, both
  refused, policy/v1beta1 for Kubernetes before 1.21
- topologySpreadConstraints (the operator's selector where none is given), extraVolumes and
  extraVolumeMounts (the chart's own names and paths refused), podLabels
- the `helm test` pod: a hook, the chart's security contexts, no token, the operator's image
- NOTES.txt: what was installed, readiness, next steps; a warning only for the placeholder image;
  one leader and standbys, or with shards how the pods share them and where to see who holds which
- Chart.yaml: kubeVersion, home, sources, maintainers; the two charts' versions agree
- the chart README's values table lists every value of values.yaml, and only those
"""

from __future__ import annotations

import re

import helm_python as helm
import pytest
import yaml

from tests.unit.chart import (
    CHART,
    COMBINATIONS,
    DEMO_DOMAIN,
    FULL_VALUES,
    OPENSHIFT,
    PARTNERS_CHART,
    container,
    env,
    find,
    hooks,
    notes,
    render,
)

NS = "tenantry-system"
STANDARD = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
            "app.kubernetes.io/part-of", "app.kubernetes.io/version", "app.kubernetes.io/managed-by",
            "helm.sh/chart")
SELECTOR = {"app.kubernetes.io/name": "tenantry", "app.kubernetes.io/instance": "tenantry"}


def _pods(objects: list[dict]) -> dict[str, dict]:
    """Pod specs by the name of what holds them (Deployments, and the test Pod)."""
    specs = {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in objects if o["kind"] == "Deployment"}
    specs.update({o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "Pod"})
    return specs


# --- every combination ---------------------------------------------------------------------------

@pytest.mark.parametrize("combination", sorted(COMBINATIONS))
def test_every_documented_combination_renders_and_lints(combination: str) -> None:
    values = COMBINATIONS[combination]
    assert render(values)
    lint = helm.lint(str(CHART), {"operator": {"platformDomain": DEMO_DOMAIN}, **values}, namespace=NS)
    assert lint["errors"] == [] and [m for m in lint["messages"] if m["severity"] > 1] == []


def test_global_is_accepted_with_any_keys_and_unknown_keys_are_still_refused() -> None:
    assert render({"global": {"imageRegistry": "registry.example", "anything": {"nested": [1, 2]}}})
    for values, words in [
        ({"globals": {}}, "globals"),
        ({"serviceAccount": {"automount": True}}, "automount"),
        ({"podSecurityContext": {"privileged": True}}, "privileged"),
        ({"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}, "add"),
        ({"podDisruptionBudget": {"minAvaliable": 1}}, "minAvaliable"),
        ({"crds": {"upgrade": True}}, "upgrade"),
        ({"tests": {"image": "busybox"}}, "image"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"nameOverride": "Tenantry"}, "/nameOverride"),
        ({"commonLabels": {"team": "a b"}}, "/commonLabels"),
        ({"extraVolumes": [{"name": "tmp", "emptyDir": {}}]}, "/extraVolumes/0/name"),
        ({"extraVolumes": [{"name": "data", "hostPath": {"path": "/"}}]}, "hostPath"),
        ({"extraVolumeMounts": [{"name": "x", "mountPath": "/tls"}]}, "/extraVolumeMounts/0/mountPath"),
        ({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone"}]}, "whenUnsatisfiable"),
        ({"podDisruptionBudget": {"maxUnavailable": "half"}}, "/podDisruptionBudget/maxUnavailable"),
    ]:
        with pytest.raises(helm.HelmError) as refused:
            render(values)
        assert words in str(refused.value), values


def test_the_platform_domain_is_required() -> None:
    for values in ({}, {"operator": {"platformDomain": ""}}):
        with pytest.raises(helm.HelmError) as refused:
            render(values, platform_domain=None)
        assert "operator.platformDomain is required" in str(refused.value)
        assert "--set operator.platformDomain=" in str(refused.value)
    assert yaml.safe_load((CHART / "values.yaml").read_text())["operator"]["platformDomain"] == ""


# --- labels and selectors ------------------------------------------------------------------------

@pytest.mark.parametrize("combination", ["defaults", "full"])
def test_every_object_has_the_standard_labels_and_common_labels(combination: str) -> None:
    values = {**COMBINATIONS[combination], "commonLabels": {"example.com/team": "platform",
                                                            "app.kubernetes.io/part-of": "something-else"}}
    objects = render(values) + hooks(values)
    components = set()
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert set(STANDARD) <= set(labels), (obj["kind"], obj["metadata"]["name"])
        assert labels["app.kubernetes.io/part-of"] == "tenantry"  # never replaced by commonLabels
        assert labels["example.com/team"] == "platform"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        components.add(labels["app.kubernetes.io/component"])
    expected = {"operator", "webhook", "portal", "rbac", "test"}
    if combination == "full":
        expected |= {"partner", "monitoring"}
    assert components == expected
    for pod in (o["spec"]["template"] for o in objects if o["kind"] == "Deployment"):
        assert pod["metadata"]["labels"]["example.com/team"] == "platform"


def test_components_name_what_each_object_is() -> None:
    objects = render(FULL_VALUES) + hooks(FULL_VALUES)
    component = {(o["kind"], o["metadata"]["name"]): o["metadata"]["labels"]["app.kubernetes.io/component"]
                 for o in objects if o["kind"] != "Namespace"}
    assert component[("Deployment", "tenantry")] == "operator"
    assert component[("PodDisruptionBudget", "tenantry")] == "operator"
    assert component[("ClusterRole", "tenantry-operator")] == "operator"
    assert component[("ValidatingWebhookConfiguration", "tenantry")] == "webhook"
    assert component[("MutatingWebhookConfiguration", "tenantry")] == "webhook"
    assert component[("Certificate", "tenantry-webhook")] == "webhook"
    assert component[("ClusterRole", "tenantry-tenant-admin")] == "rbac"
    assert component[("ClusterRole", "tenantry-partner")] == "rbac"
    assert component[("Deployment", "tenantry-portal")] == "portal"
    assert component[("ServiceMonitor", "tenantry")] == "monitoring"
    assert component[("Pod", "tenantry-test")] == "test"
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    assert {n["metadata"]["labels"]["app.kubernetes.io/component"] for n in namespaces} == {"partner"}


def test_selectors_stay_name_and_instance() -> None:
    objects = render(FULL_VALUES)
    operator = find(objects, "Deployment", "tenantry")
    assert operator["spec"]["selector"]["matchLabels"] == SELECTOR  # as before: a selector cannot change
    assert find(objects, "Service", "tenantry")["spec"]["selector"] == {**SELECTOR, "tenantry.dev/role": "leader"}
    assert find(objects, "NetworkPolicy", "tenantry")["spec"]["podSelector"]["matchLabels"] == SELECTOR
    assert find(objects, "PodDisruptionBudget", "tenantry")["spec"]["selector"]["matchLabels"] == SELECTOR
    portal = find(objects, "Deployment", "tenantry-portal")
    assert portal["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "tenantry-portal",
                                                         "app.kubernetes.io/instance": "tenantry"}
    # The ServiceMonitor picks the operator's Service, not the portal's (which has the same name label).
    monitor = find(objects, "ServiceMonitor", "tenantry")["spec"]["selector"]["matchLabels"]
    assert monitor == {**SELECTOR, "app.kubernetes.io/component": "operator"}
    services = [o for o in objects if o["kind"] == "Service"
                and monitor.items() <= o["metadata"]["labels"].items()]
    assert [s["metadata"]["name"] for s in services] == ["tenantry"]
    # podLabels and commonLabels reach the pods but never their selector labels.
    pod_labels = operator["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["example.com/tier"] == "control" and SELECTOR.items() <= pod_labels.items()
    clash = render({"podLabels": {"app.kubernetes.io/name": "other"},
                    "commonLabels": {"app.kubernetes.io/instance": "x"}})
    assert SELECTOR.items() <= find(clash, "Deployment", "tenantry")["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize(("values", "release", "fullname", "name"), [
    ({"nameOverride": "saas"}, "prod", "prod-saas", "saas"),
    ({"nameOverride": "saas"}, "saas-eu", "saas-eu", "saas"),
    ({"fullnameOverride": "platform-operator"}, "prod", "platform-operator", "tenantry"),
    ({"fullnameOverride": "platform-operator", "nameOverride": "saas"}, "prod", "platform-operator", "saas"),
    ({}, "prod", "prod-tenantry", "tenantry"),
])
def test_name_overrides(values: dict, release: str, fullname: str, name: str) -> None:
    objects = render(values, name=release)
    deployment = find(objects, "Deployment", fullname)
    assert deployment["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name,
                                                             "app.kubernetes.io/instance": release}
    find(objects, "ServiceAccount", fullname)
    find(objects, "ClusterRole", f"{fullname}-operator")
    find(objects, "ValidatingWebhookConfiguration", fullname)
    find(objects, "MutatingWebhookConfiguration", fullname)
    assert env(objects, fullname)["TENANTRY_LEASE_NAME"]["value"] == f"{fullname}-leader"
    portal = find(objects, "Deployment", f"{fullname}-portal")
    assert portal["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == f"{name}-portal"
    assert {o["metadata"]["labels"]["app.kubernetes.io/name"] for o in objects
            if o["metadata"]["labels"]["app.kubernetes.io/component"] != "portal"} == {name}


# --- image ---------------------------------------------------------------------------------------

def test_image_by_tag_or_digest() -> None:
    assert container(render())["image"] == "registry.example/tenantry/operator:0.1.0"
    assert container(render({"image": {"tag": "1.2.3"}}))["image"] == "registry.example/tenantry/operator:1.2.3"
    digest = "sha256:" + "0123456789abcdef" * 4
    objects = render({"image": {"repository": "ghcr.io/example/tenantry-operator", "tag": "1.2.3", "digest": digest}})
    pods = _pods(objects + hooks(COMBINATIONS["digest"])).values()
    images = {c["image"] for spec in pods for c in spec["containers"]}
    assert images == {f"ghcr.io/example/tenantry-operator@{digest}"}


def test_pull_secrets_of_the_parent_chart_and_the_chart_on_every_pod() -> None:
    values = {"global": {"imagePullSecrets": ["parent", {"name": "shared"}]},
              "imagePullSecrets": [{"name": "shared"}, {"name": "own"}]}
    pods = _pods(render(values) + hooks(values))
    assert set(pods) == {"tenantry", "tenantry-portal", "tenantry-test"}
    for spec in pods.values():
        assert spec["imagePullSecrets"] == [{"name": "parent"}, {"name": "shared"}, {"name": "own"}]
    assert all("imagePullSecrets" not in spec for spec in _pods(render() + hooks()).values())


# --- ServiceAccount ------------------------------------------------------------------------------

def test_service_account_created_with_annotations() -> None:
    objects = render({"serviceAccount": {"name": "ops", "annotations": {"iam.example.com/role": "tenantry"}}})
    account = find(objects, "ServiceAccount", "ops")
    assert account["metadata"]["annotations"] == {"iam.example.com/role": "tenantry"}
    assert find(objects, "Deployment", "tenantry")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"


def test_an_existing_service_account() -> None:
    objects = render(COMBINATIONS["existing-service-account"])
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"] == ["tenantry-portal"]
    assert find(objects, "Deployment", "tenantry")["spec"]["template"]["spec"]["serviceAccountName"] == \
        "platform-operator"
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        assert find(objects, kind, "tenantry-operator")["subjects"] == [
            {"kind": "ServiceAccount", "name": "platform-operator", "namespace": NS}]
    assert env(objects)["TENANTRY_OPERATOR_USERNAME"]["value"] == \
        "system:serviceaccount:tenantry-system:platform-operator"


# --- security contexts ---------------------------------------------------------------------------

RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]}}


def test_security_contexts_by_default_on_every_pod() -> None:
    for name, spec in _pods(render() + hooks()).items():
        assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                           "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}}, name
        assert [c["securityContext"] for c in spec["containers"]] == [RESTRICTED_CONTAINER], name


def test_openshift_leaves_user_group_and_fs_group_to_the_platform() -> None:
    for name, spec in _pods(render(OPENSHIFT) + hooks(OPENSHIFT)).items():
        assert spec["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}, name
        assert [c["securityContext"] for c in spec["containers"]] == [RESTRICTED_CONTAINER], name


def test_security_contexts_take_other_values() -> None:
    values = {"podSecurityContext": {"runAsUser": 1000, "fsGroupChangePolicy": "OnRootMismatch",
                                     "seLinuxOptions": {"level": "s0:c123,c456"}},
              "securityContext": {"runAsUser": 1001, "seccompProfile": {"type": "RuntimeDefault"}}}
    spec = _pods(render(values))["tenantry"]
    assert spec["securityContext"]["runAsUser"] == 1000
    assert spec["securityContext"]["seLinuxOptions"] == {"level": "s0:c123,c456"}
    assert spec["containers"][0]["securityContext"] == {**RESTRICTED_CONTAINER, "runAsUser": 1001,
                                                        "seccompProfile": {"type": "RuntimeDefault"}}


# --- PodDisruptionBudget -------------------------------------------------------------------------

@pytest.mark.parametrize(("budget", "expected"), [
    ({}, {"maxUnavailable": 1}),
    ({"minAvailable": 1}, {"minAvailable": 1}),
    ({"minAvailable": "2"}, {"minAvailable": 2}),
    ({"minAvailable": "50%"}, {"minAvailable": "50%"}),
    ({"maxUnavailable": "50%"}, {"maxUnavailable": "50%"}),
    ({"maxUnavailable": 0}, {"maxUnavailable": 0}),
])
def test_pod_disruption_budget(budget: dict, expected: dict) -> None:
    pdb = find(render({"podDisruptionBudget": budget}), "PodDisruptionBudget", "tenantry")
    assert pdb["apiVersion"] == "policy/v1"
    assert {k: v for k, v in pdb["spec"].items() if k != "selector"} == expected


def test_pod_disruption_budget_refusals_and_versions() -> None:
    with pytest.raises(helm.HelmError) as refused:
        render({"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}})
    assert "set only one of minAvailable and maxUnavailable" in str(refused.value)
    assert not [o for o in render(COMBINATIONS["pdb-off"]) if o["kind"] == "PodDisruptionBudget"]
    for version, api in (("v1.20.2", "policy/v1beta1"), ("v1.21.0", "policy/v1"), ("v1.30.1", "policy/v1")):
        assert find(render(kube_version=version), "PodDisruptionBudget", "tenantry")["apiVersion"] == api


# --- scheduling, volumes -------------------------------------------------------------------------

def test_topology_spread_constraints_count_the_operator_pods() -> None:
    own = {"matchLabels": {"team": "x"}}
    spec = _pods(render({"topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"},
        {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": own}]}))["tenantry"]
    first, second = spec["topologySpreadConstraints"]
    assert first == {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                     "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": SELECTOR}}
    assert second["labelSelector"] == own
    assert "topologySpreadConstraints" not in _pods(render())["tenantry"]


def test_extra_volumes_and_mounts() -> None:
    objects = render(FULL_VALUES)
    spec = _pods(objects)["tenantry"]
    assert spec["volumes"][-1] == {"name": "relay-ca", "configMap": {"name": "relay-ca"}}
    assert container(objects)["volumeMounts"][-1] == {"name": "relay-ca", "mountPath": "/etc/relay-ca",
                                                      "readOnly": True}
    assert [v["name"] for v in spec["volumes"][:2]] == ["tmp", "webhook-tls"]


# --- helm test -----------------------------------------------------------------------------------

def test_the_test_pod() -> None:
    (pod,) = hooks()
    assert pod["kind"] == "Pod" and pod["metadata"]["name"] == "tenantry-test"
    assert pod["metadata"]["annotations"] == {"helm.sh/hook": "test",
                                              "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded"}
    assert pod["spec"]["automountServiceAccountToken"] is False and pod["spec"]["restartPolicy"] == "Never"
    (check,) = pod["spec"]["containers"]
    variables = {v["name"]: v["value"] for v in check["env"]}
    assert variables["METRICS_URL"] == "http://tenantry.tenantry-system.svc:8080/metrics"
    assert (variables["WEBHOOK_HOST"], variables["WEBHOOK_PORT"]) == ("tenantry.tenantry-system.svc", "443")
    assert pod["spec"]["volumes"][0]["secret"]["secretName"] == "tenantry-webhook-tls"
    assert not [o for o in render() if o["kind"] == "Pod"]  # only `helm test` creates it
    (no_webhook,) = hooks({"webhook": {"enabled": False}})
    assert "WEBHOOK_HOST" not in {v["name"] for v in no_webhook["spec"]["containers"][0]["env"]}
    assert "volumes" not in no_webhook["spec"]
    assert hooks({"tests": {"enabled": False}}) == []


# --- NOTES.txt -----------------------------------------------------------------------------------

def test_notes_say_what_was_installed_how_to_check_it_and_what_next() -> None:
    text = notes()
    for words in ("is installed as release tenantry in the platform namespace tenantry-system",
                  "kubectl -n tenantry-system rollout status deployment/tenantry",
                  "helm test tenantry -n tenantry-system",
                  "kubectl wait --for condition=Established crd/tenants.tenantry.dev",
                  "helm install partner-acme-it charts/tenantry-partners -n tenantry-system",
                  "create token tenantry-gitops",
                  "WARNING: image.repository is the placeholder"):
        assert words in text, words
    own = notes({"image": {"repository": "ghcr.io/example/tenantry-operator"}, "crds": {"install": False}})
    assert "WARNING" not in own and "not installed by this release" in own and "crd/tenants" not in own


def test_notes_say_how_the_pods_share_the_work() -> None:
    # One leader with shards: 1; with more, every serving pod is labelled leader and holds a share.
    single = notes()
    assert "one active, the others standbys" in single and "# one leader, the others standby" in single
    assert "shard" not in single
    sharded = notes({"replicas": 3, "shards": 6})
    assert "one leader" not in sharded and "standby" not in sharded.split("Is it ready?", 1)[1]
    assert "6 shards shared by the 3 replicas (about 2 each" in sharded
    assert "every serving pod is labelled leader" in sharded
    assert ("kubectl -n tenantry-system get leases -l tenantry.dev/lease-group=tenantry-leader,"
            "tenantry.dev/lease-role=shard") in sharded
    assert "about 3 each" in notes({"replicas": 2, "shards": 5})  # rounded up: some hold one more


# --- Chart.yaml and README -----------------------------------------------------------------------

def test_chart_metadata() -> None:
    for path in (CHART, PARTNERS_CHART):
        meta = yaml.safe_load((path / "Chart.yaml").read_text())
        assert meta["kubeVersion"] == ">=1.20.0-0"
        assert meta["home"].startswith("https://") and meta["sources"] and meta["maintainers"]
    operator = yaml.safe_load((CHART / "Chart.yaml").read_text())
    partners = yaml.safe_load((PARTNERS_CHART / "Chart.yaml").read_text())
    assert (partners["version"], partners["appVersion"]) == (operator["version"], operator["appVersion"])


def _value_paths(values: dict, path: str = "") -> set[str]:
    """Every documented value: leaves, and maps or lists whose items are the user's own."""
    out = set()
    for key, value in values.items():
        here = f"{path}.{key}" if path else key
        if isinstance(value, dict) and value and key not in ("resources", "requests", "limits"):
            out |= _value_paths(value, here)
        else:
            out.add(here)
    return out


@pytest.mark.parametrize("chart", [CHART, PARTNERS_CHART], ids=["tenantry", "tenantry-partners"])
def test_the_readme_values_table_lists_every_value(chart: object) -> None:
    readme = (chart / "README.md").read_text().split("\n## Values\n", 1)[1]  # type: ignore[operator]
    table = set(re.findall(r"^\| `([A-Za-z][\w.\[\]]*)` \|", readme, flags=re.MULTILINE))
    values = _value_paths(yaml.safe_load((chart / "values.yaml").read_text()))  # type: ignore[operator]
    assert values - table == set(), "values missing from the README's table"
    assert table - values == set(), "the README's table names values that do not exist"
