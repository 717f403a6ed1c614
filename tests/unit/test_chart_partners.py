"""The chart's partner onboarding and the full install, rendered by the real Helm engine.

Tested here:
- each partner in `partners` gets a namespace labelled tenantry.dev/partner=<id> that Helm keeps on
  uninstall, the GitOps ServiceAccount in it and a RoleBinding to the partner ClusterRole there
- the partner ClusterRole: manage tenantry objects, read (never write) status, read events; nothing else
- the platform catalogue Role in the release namespace, bound to every partner's ServiceAccount
- with every option on: exactly the expected objects; cert-manager Issuer and Certificate with the
  Service's DNS names and the CA-injection annotation instead of a generated Secret and caBundle
- a partner id or namespace listed twice, or the release namespace as a partner namespace, is refused
- the tenantry-partners chart makes each partner's namespace, ServiceAccount and RoleBinding exactly
  as the `partners` value does (but for the release labels), binds them to the tenantry release's
  roles by its fullname, and one catalogue RoleBinding per release in the platform namespace; it
  refuses repeated ids and namespaces, the platform namespace, and being installed in a partner's
  namespace; its schema refuses unknown keys; NOTES.txt names the partners and their kubeconfig
- objectCountQuota: the example partner quota in each partner namespace, only when set; the schema
  refuses kinds other than tenantry's and negative counts
"""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import pytest
import yaml

from tenantry.devtools.localwebhook import WEBHOOK_KINDS
from tests.unit.chart import FULL_VALUES, PARTNERS_CHART, find, keys, notes, render, render_partners

NS = "tenantry-system"
REPO = Path(__file__).resolve().parents[2]
PARTNERS = {"partners": [{"id": "acme-it"}, {"id": "nordlicht-digital", "namespace": "nordlicht"}]}


@pytest.fixture(scope="module")
def full() -> list[dict]:
    return render(FULL_VALUES)


def test_full_render_is_exactly_the_expected_objects(full: list[dict]) -> None:
    assert sorted(keys(full), key=str) == sorted([
        ("Namespace", "partner-acme-it", None),
        ("Namespace", "nordlicht", None),
        ("ServiceAccount", "tenantry", NS),
        ("ServiceAccount", "flux-applier", "partner-acme-it"),
        ("ServiceAccount", "flux-applier", "nordlicht"),
        ("ConfigMap", "tenantry-dashboards", "grafana"),
        ("ClusterRole", "tenantry-operator", None),
        ("ClusterRole", "tenantry-tenant-admin", None),
        ("ClusterRole", "tenantry-partner", None),
        ("ClusterRoleBinding", "tenantry-operator", None),
        ("ServiceAccount", "tenantry-portal", NS),
        ("ClusterRole", "tenantry-portal", None),
        ("ClusterRoleBinding", "tenantry-portal", None),
        ("Service", "tenantry-portal", NS),
        ("Deployment", "tenantry-portal", NS),
        ("Ingress", "tenantry-portal", NS),
        ("NetworkPolicy", "tenantry-portal", NS),
        ("Role", "tenantry-operator", NS),
        ("Role", "tenantry-platform-catalogue", NS),
        ("RoleBinding", "tenantry-operator", NS),
        ("RoleBinding", "tenantry-partners", NS),
        ("RoleBinding", "tenantry-partner", "partner-acme-it"),
        ("RoleBinding", "tenantry-partner", "nordlicht"),
        ("Service", "tenantry", NS),
        ("Deployment", "tenantry", NS),
        ("NetworkPolicy", "tenantry", NS),
        ("PodDisruptionBudget", "tenantry", NS),
        ("Issuer", "tenantry-webhook", NS),
        ("Certificate", "tenantry-webhook", NS),
        ("MutatingWebhookConfiguration", "tenantry", None),
        ("ValidatingWebhookConfiguration", "tenantry", None),
        ("ServiceMonitor", "tenantry", NS),
        ("PrometheusRule", "tenantry-business", NS),
        ("PrometheusRule", "tenantry-operations", NS),
    ], key=str)


@pytest.mark.parametrize(("partner", "namespace"), [("acme-it", "partner-acme-it"), ("nordlicht-digital", "nordlicht")])
def test_each_partner_gets_namespace_identity_and_access(partner: str, namespace: str) -> None:
    objects = render(PARTNERS)
    ns = find(objects, "Namespace", namespace)
    assert ns["metadata"]["labels"]["tenantry.dev/partner"] == partner
    assert ns["metadata"]["labels"]["app.kubernetes.io/name"] == "tenantry"
    assert ns["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    accounts = [o for o in objects if o["kind"] == "ServiceAccount" and o["metadata"]["namespace"] == namespace]
    assert [a["metadata"]["name"] for a in accounts] == ["tenantry-gitops"]
    assert accounts[0]["automountServiceAccountToken"] is False
    (binding,) = [o for o in objects if o["kind"] == "RoleBinding" and o["metadata"]["namespace"] == namespace]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "tenantry-partner"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "tenantry-gitops", "namespace": namespace}]


def test_partner_cluster_role_is_bound_only_inside_partner_namespaces() -> None:
    objects = render(PARTNERS)
    role = find(objects, "ClusterRole", "tenantry-partner")
    assert role["rules"] == [
        {"apiGroups": ["tenantry.dev"], "resources": ["tenants", "brandings", "featuresets", "deals"],
         "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        {"apiGroups": ["tenantry.dev"], "resources": ["tenants/status"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
    ]
    bindings = [o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")
                and o["roleRef"]["name"] == "tenantry-partner"]
    assert {(b["kind"], b["metadata"]["namespace"]) for b in bindings} == {("RoleBinding", "partner-acme-it"),
                                                                          ("RoleBinding", "nordlicht")}


def test_partners_read_the_platform_catalogue() -> None:
    objects = render(PARTNERS)
    role = find(objects, "Role", "tenantry-platform-catalogue")
    assert role["metadata"]["namespace"] == NS
    assert role["rules"] == [{"apiGroups": ["tenantry.dev"], "resources": ["featuresets", "brandings"],
                              "verbs": ["get", "list", "watch"]}]
    binding = find(objects, "RoleBinding", "tenantry-partners")
    assert binding["metadata"]["namespace"] == NS
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "tenantry-platform-catalogue"}
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "tenantry-gitops", "namespace": "partner-acme-it"},
        {"kind": "ServiceAccount", "name": "tenantry-gitops", "namespace": "nordlicht"},
    ]


def test_no_partners_no_partner_objects() -> None:
    objects = render()
    assert not [o for o in objects if o["kind"] == "Namespace"]
    assert not [o for o in objects if o["metadata"]["name"] == "tenantry-partners"]


def test_cert_manager_mode(full: list[dict]) -> None:
    assert find(full, "Issuer", "tenantry-webhook")["spec"] == {"selfSigned": {}}
    certificate = find(full, "Certificate", "tenantry-webhook")
    assert certificate["apiVersion"] == "cert-manager.io/v1"
    assert certificate["spec"] == {
        "secretName": "tenantry-webhook-tls",
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "dnsNames": ["tenantry", "tenantry.tenantry-system", "tenantry.tenantry-system.svc",
                     "tenantry.tenantry-system.svc.cluster.local"],
        "issuerRef": {"kind": "Issuer", "name": "tenantry-webhook"},
    }
    for kind in WEBHOOK_KINDS:
        config = find(full, kind, "tenantry")
        assert config["metadata"]["annotations"] == {
            "cert-manager.io/inject-ca-from": "tenantry-system/tenantry-webhook"}
        assert all("caBundle" not in webhook["clientConfig"] for webhook in config["webhooks"])
    assert not [o for o in full if o["kind"] == "Secret"]
    # The Deployment mounts the Secret cert-manager writes.
    volumes = find(full, "Deployment", "tenantry")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "webhook-tls", "secret": {"secretName": "tenantry-webhook-tls", "items": [
        {"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]}} in volumes


@pytest.mark.parametrize(("partners", "words"), [
    ([{"id": "acme-it"}, {"id": "acme-it", "namespace": "acme"}], 'id "acme-it" is listed twice'),
    ([{"id": "acme-it", "namespace": "shared"}, {"id": "beta", "namespace": "shared"}],
     'namespace "shared" is used by two partners'),
    ([{"id": "acme-it", "namespace": NS}], "release (platform) namespace"),
])
def test_conflicting_partners_are_refused(partners: list[dict], words: str) -> None:
    with pytest.raises(helm.HelmError) as error:
        render({"partners": partners})
    assert words in str(error.value)


# --- the tenantry-partners chart ------------------------------------------------------------------

def _without_release_labels(obj: dict) -> dict:
    metadata = {**obj["metadata"], "labels": {k: v for k, v in obj["metadata"]["labels"].items()
                                              if not k.startswith(("app.kubernetes.io/", "helm.sh/"))}}
    return {**obj, "metadata": metadata}


def test_the_partners_chart_makes_what_the_partners_value_made() -> None:
    partners = [{"id": "acme-it", "commissionRate": 0.25, "quarterlyTarget": 15000},
                {"id": "nordlicht-digital", "namespace": "nordlicht", "emailFromDomains": ["nordlicht.example"]}]
    legacy = [o for o in render({"partners": partners}) if o["metadata"].get("namespace") in ("partner-acme-it",
                                                                                             "nordlicht")
              or o["kind"] == "Namespace"]
    own = render_partners(partners, name="emea")
    assert len(legacy) == 6
    assert [_without_release_labels(o) for o in legacy] == [_without_release_labels(o) for o in own
                                                            if o["metadata"].get("namespace") != NS]
    for obj in own:
        labels = obj["metadata"]["labels"]
        assert (labels["app.kubernetes.io/name"], labels["app.kubernetes.io/instance"]) == ("tenantry-partners", "emea")
        assert (labels["app.kubernetes.io/component"], labels["app.kubernetes.io/part-of"]) == ("partner", "tenantry")
    catalogue = find(own, "RoleBinding", "tenantry-partners-emea")
    assert catalogue["metadata"]["namespace"] == NS
    assert catalogue["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                    "name": "tenantry-platform-catalogue"}
    assert catalogue["subjects"] == [
        {"kind": "ServiceAccount", "name": "tenantry-gitops", "namespace": "partner-acme-it"},
        {"kind": "ServiceAccount", "name": "tenantry-gitops", "namespace": "nordlicht"}]


def test_the_partners_chart_binds_the_named_tenantry_release() -> None:
    objects = render_partners([{"id": "acme-it"}], name="acme", namespace="releases",
                              tenantry={"fullname": "prod-tenantry", "namespace": "platform"},
                              partnerServiceAccount="flux-applier")
    binding = find(objects, "RoleBinding", "prod-tenantry-partner")
    assert binding["roleRef"]["name"] == "prod-tenantry-partner"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "flux-applier", "namespace": "partner-acme-it"}]
    catalogue = find(objects, "RoleBinding", "prod-tenantry-partners-acme")
    assert (catalogue["metadata"]["namespace"], catalogue["roleRef"]["name"]) == ("platform",
                                                                                  "prod-tenantry-platform-catalogue")
    assert render_partners([]) == []


@pytest.mark.parametrize(("partners", "namespace", "words"), [
    ([{"id": "a"}, {"id": "a", "namespace": "x"}], NS, 'id "a" is listed twice'),
    ([{"id": "a", "namespace": "s"}, {"id": "b", "namespace": "s"}], NS, 'namespace "s" is used by two partners'),
    ([{"id": "a", "namespace": NS}], NS, "cannot use the platform namespace"),
    ([{"id": "a"}], "partner-a", "install this release in the platform namespace"),
])
def test_the_partners_chart_refuses_conflicts(partners: list[dict], namespace: str, words: str) -> None:
    with pytest.raises(helm.HelmError) as error:
        render_partners(partners, namespace=namespace, tenantry={"namespace": NS})
    assert words in str(error.value)


@pytest.mark.parametrize(("values", "words"), [
    ({"partner": []}, "partner"),
    ({"tenantry": {"release": "x"}}, "release"),
    ({"tenantry": {"fullname": "Prod"}}, "/tenantry/fullname"),
    ({"partners": [{"id": "Acme"}]}, "/partners/0/id"),
    ({"partners": [{"id": "a", "admins": []}]}, "admins"),
    ({"objectCountQuota": {"secrets": 10}}, "secrets"),
    ({"objectCountQuota": {"deals": -1}}, "/objectCountQuota/deals"),
])
def test_the_partners_chart_schema_refuses_wrong_values(values: dict, words: str) -> None:
    with pytest.raises(helm.HelmError) as error:
        render(values, chart=PARTNERS_CHART)
    assert words in str(error.value)


def test_the_partners_chart_bounds_each_partner_namespace_by_the_example_quota() -> None:
    """objectCountQuota renders the quota of examples/quota/partner-objects.yaml into each partner
    namespace (the attack test A/test_partner_objects.py shows what the API server does with it)."""
    example = yaml.safe_load((REPO / "examples" / "quota" / "partner-objects.yaml").read_text())
    counts = {key.removeprefix("count/").removesuffix(".tenantry.dev"): int(value)
              for key, value in example["spec"]["hard"].items()}
    objects = render_partners(PARTNERS["partners"], objectCountQuota=counts)
    quotas = {q["metadata"]["namespace"]: q for q in objects if q["kind"] == "ResourceQuota"}
    assert set(quotas) == {"partner-acme-it", "nordlicht"}
    for namespace, quota in quotas.items():
        assert quota["metadata"]["name"] == example["metadata"]["name"]
        assert quota["spec"] == example["spec"], namespace
    assert quotas["nordlicht"]["metadata"]["labels"]["tenantry.dev/partner"] == "nordlicht-digital"
    assert not [o for o in render_partners(PARTNERS["partners"]) if o["kind"] == "ResourceQuota"]


def test_the_partners_chart_notes() -> None:
    text = notes({"partners": [{"id": "acme-it"}]}, "acme", chart=PARTNERS_CHART)
    assert "acme-it: namespace partner-acme-it, ServiceAccount tenantry-gitops" in text
    assert "kubectl -n partner-acme-it create token tenantry-gitops" in text
    assert "No partners in this release" in notes(chart=PARTNERS_CHART)
