"""The admission webhooks, served by the real operator over TLS and called by the real API server.

The validating and mutating webhook configurations are the ones the chart renders (rules, paths, failure policy),
pointed at the operator process on 127.0.0.1 instead of the in-cluster Service. Partners act
with their ServiceAccount tokens; the platform admin is the cluster's system:masters user.

Tested here:
- slug taken by another partner's tenant: refused, without naming the holder
- custom domain claimed by another partner's tenant, or one nobody can own (a public suffix, a
  name under the platform domain): refused, naming the field
- the model's own rules the schema cannot express (unknown feature, unsafe SVG): refused with the
  field path, in the same words as `tenantry validate`
- immutable field (currency of a provisioned tenant), reserved labels, platform-only field (a
  partner plan's resources): refused for a partner, allowed for the platform admin
- a Tenant outside a partner namespace: refused; an `extends` cycle: refused
- a partner removing the operator's finalizer: refused
- the mutating webhook: a partner's Tenant is stored with the operator's finalizer (also in a
  server-side dry run, and with a generated name), so no one writes the Tenant for it; a partner
  cannot create a Tenant with another tenantry.dev/ finalizer; a create is judged as stored, not
  as sent (a deletionTimestamp in a create does not pass it as "being deleted"; a generated
  punycode name is refused)
- a missing plan: accepted with a warning kubectl prints
- the hostile corpus (tests/hostile.py: huge strings, confusable slugs and domains, wrong types,
  unsafe SVG, ...) sent as a partner: each refused by the API server or the webhook, naming the
  field or problem; the operator serves on afterwards
- the operator's own writes (kopf's tenantry.dev/ annotations, finalizers) are never refused
- webhook unreachable with failurePolicy Ignore (the chart's default): the operator's reconcile
  still refuses the conflicting slug (defence in depth) and deletes complete; with Fail, creates
  are refused while nobody answers; what was stored unchecked can still be labelled and deleted
  once the webhook is back, only spec changes must pass
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
import yaml

from tenantry.devtools import localwebhook
from tests.hostile import CORPUS, PARTNER_NAMESPACE, Hostile
from tests.integration.fixtures import (
    PLATFORM_NAMESPACE,
    ChartPartner,
    ClusterHandle,
    OperatorProcess,
    Partner,
    wait_for,
)
from tests.integration.net import free_port

pytestmark = pytest.mark.integration


def _configuration(url: str, ca: bytes, failure_policy: str | None = None,
                   name: str = "tenantry-integration-test") -> dict:
    """The chart's validating and mutating webhook configurations (a v1 List), sent to `url`."""
    return localwebhook.configuration(url, ca, PLATFORM_NAMESPACE, name, failure_policy)


@pytest.fixture(scope="module")
def webhook(cluster: ClusterHandle, operator: OperatorProcess, chart_partners: tuple[ChartPartner, ChartPartner],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    folder = tmp_path_factory.mktemp("webhook-tls")
    ca = localwebhook.serving_certificate(folder)
    port = free_port()
    operator.restart_with({"TENANTRY_WEBHOOK_PORT": str(port), "TENANTRY_WEBHOOK_ADDRESS": "127.0.0.1",
                           "TENANTRY_WEBHOOK_CERT_DIR": str(folder)})
    config = _configuration(f"https://127.0.0.1:{port}", ca)
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(config))
    alpha, _ = chart_partners
    probe = alpha.tenant("probe-webhook", features={"no-such-feature": {"enabled": True}})
    # Until the API server has picked the configuration up, the probe is refused by the schema's
    # silence only (i.e. accepted): wait for the webhook's own words.
    wait_for(lambda: "admission webhook" in alpha.kubectl("apply", "--dry-run=server", "-f", "-",
                                                          input=yaml.safe_dump(probe)).stderr,
             timeout=60, what="the webhook to answer")
    yield {"config": config, "ca": ca, "port": port}
    cluster.kubectl("delete", localwebhook.KINDS, "tenantry-integration-test", "--ignore-not-found")
    operator.restart_with({})


def _denied(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode != 0, f"expected the webhook to refuse, got: {result.stdout}"
    assert "tenantry.dev\" denied the request" in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    return result.stderr


def test_slug_of_another_partner_is_refused_without_naming_it(
        webhook: dict, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, bravo = chart_partners
    slug = alpha.slug("wh-slug")
    assert alpha.apply_as_partner(alpha.tenant(slug)).returncode == 0
    alpha.wait_condition(slug, "True", "Provisioned")
    message = _denied(bravo.apply_as_partner(bravo.tenant(slug)),
                      f"metadata.name: tenant name {slug!r} is not available on this platform",
                      "choose another metadata.name")
    assert alpha.namespace not in message and "alpha" not in message
    assert bravo.get(slug) is None  # nothing was stored


def test_domain_of_another_partner_is_refused(webhook: dict, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, bravo = chart_partners
    first, second = alpha.slug("wh-dom-a"), bravo.slug("wh-dom-b")
    domain = f"portal.{first}.de"
    assert alpha.apply_as_partner(alpha.tenant(first, domains=[domain])).returncode == 0
    wait_for(lambda: any(d.get("records") for d in ((alpha.get(first) or {}).get("status") or {}).get("domains", [])),
             what="the domain claim")
    _denied(bravo.apply_as_partner(bravo.tenant(second, domains=["ok.example.de", domain])),
            f"spec.domains[1]: custom domain {domain!r} is not available on this platform")
    # The tenant that holds it may still change everything else.
    changed = alpha.tenant(first, domains=[domain], plan={"featureSet": "starter", "seats": 5})
    assert alpha.apply_as_partner(changed).returncode == 0


def test_domain_nobody_can_own_is_refused(webhook: dict, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    result = alpha.apply_as_partner(alpha.tenant(alpha.slug("wh-psl"), domains=["shop.platform.test", "co.uk"]))
    _denied(result, "spec.domains[0]: shop.platform.test is under the platform domain platform.test",
            "spec.domains[1]: co.uk is a public suffix")


def test_unknown_feature_is_refused_with_the_field(webhook: dict,
                                                  chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    result = alpha.apply_as_partner(alpha.tenant(alpha.slug("wh-model"), features={"teleport": {"enabled": True}}))
    _denied(result, "spec.features: unknown feature(s) teleport; known features:")


def test_unsafe_svg_branding_is_refused(webhook: dict, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    branding = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Branding",
                "metadata": {"name": "evil", "namespace": alpha.namespace},
                "spec": {"colours": {"primary": "#003366", "secondary": "#FFCC00"}, "logo": {"svg": svg}}}
    _denied(alpha.apply_as_partner(branding), "spec.logo", "script")


def test_currency_of_a_provisioned_tenant_is_immutable_for_partners(
        webhook: dict, cluster: ClusterHandle, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    slug = alpha.slug("wh-currency")
    priced = {"featureSet": "business", "seats": 10, "price": {"monthly": 500, "currency": "EUR"}}
    assert alpha.apply_as_partner(alpha.tenant(slug, plan=priced)).returncode == 0
    alpha.wait_condition(slug, "True", "Provisioned")
    in_dollars = {**priced, "price": {"monthly": 500, "currency": "USD"}}
    _denied(alpha.apply_as_partner(alpha.tenant(slug, plan=in_dollars)),
            "spec.plan.price.currency: the currency of a provisioned tenant cannot change (EUR -> USD)")
    # Raising the price is an ordinary change.
    assert alpha.apply_as_partner(alpha.tenant(slug, plan={**priced, "price": {"monthly": 600}})).returncode == 0
    # The platform admin can fix things.
    fixed = cluster.kubectl("patch", "tenant", slug, "-n", alpha.namespace, "--type=merge",
                            "-p", '{"spec":{"plan":{"price":{"currency":"USD"}}}}', check=False)
    assert fixed.returncode == 0, fixed.stderr


def test_reserved_labels_are_refused_for_partners(webhook: dict, cluster: ClusterHandle,
                                                  chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    slug = alpha.slug("wh-label")
    tenant = alpha.tenant(slug)
    tenant["metadata"]["labels"] = {"tenantry.dev/partner": "someone-else"}
    _denied(alpha.apply_as_partner(tenant), "metadata.labels", "tenantry.dev/partner", "reserved for tenantry")
    tenant["metadata"]["labels"] = {"team": "nord"}  # ordinary labels are the partner's own
    assert alpha.apply_as_partner(tenant).returncode == 0
    admin = cluster.kubectl("label", "tenant", slug, "-n", alpha.namespace, "tenantry.dev/reviewed=yes", check=False)
    assert admin.returncode == 0, admin.stderr


def test_plan_resources_are_platform_only(webhook: dict, cluster: ClusterHandle,
                                          chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    plan = {"apiVersion": "tenantry.dev/v1alpha1", "kind": "FeatureSet",
            "metadata": {"name": "huge", "namespace": alpha.namespace},
            "spec": {"extends": "business", "resources": {"base": {"cpu": "64", "memory": "512Gi"}}}}
    _denied(alpha.apply_as_partner(plan), "spec.resources: only the platform may set the resources of a plan")
    without = {**plan, "spec": {"extends": "business", "features": {"meetings": {"enabled": True}}}}
    assert alpha.apply_as_partner(without).returncode == 0
    assert cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(plan), check=False).returncode == 0
    # Later partner edits that leave the platform's resources alone are fine.
    kept = {**plan, "spec": {**plan["spec"], "displayName": "Huge"}}
    assert alpha.apply_as_partner(kept).returncode == 0


def test_extends_cycle_is_refused(webhook: dict, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners

    def plan(name: str, parent: str) -> dict:
        return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "FeatureSet",
                "metadata": {"name": name, "namespace": alpha.namespace}, "spec": {"extends": parent}}
    assert alpha.apply_as_partner(plan("loop-a", "business")).returncode == 0
    assert alpha.apply_as_partner(plan("loop-b", "loop-a")).returncode == 0
    _denied(alpha.apply_as_partner(plan("loop-a", "loop-b")), "spec.extends", "cycle")


def test_partner_cannot_remove_the_operators_finalizer(webhook: dict,
                                                       chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    slug = alpha.slug("wh-finalizer")
    assert alpha.apply_as_partner(alpha.tenant(slug)).returncode == 0
    alpha.wait_condition(slug, "True", "Provisioned")
    _denied(alpha.kubectl("patch", "tenant", slug, "-n", alpha.namespace, "--type=merge",
                          "-p", '{"metadata":{"finalizers":null}}'),
            "metadata.finalizers: finalizer 'tenantry.dev/finalizer' is the operator's")


def _finalizer_holders(tenant: dict) -> list[str]:
    """The managers whose managed fields hold the Tenant's finalizers (who wrote them in a later request)."""
    return [entry["manager"] for entry in tenant["metadata"].get("managedFields") or []
            if "f:finalizers" in json.dumps(entry.get("fieldsV1"))]


def test_a_tenant_is_stored_with_the_finalizer_and_nobody_patches_it_in(
        webhook: dict, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    slug = alpha.slug("wh-born")
    manifest = yaml.safe_dump(alpha.tenant(slug))
    dry = alpha.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=manifest)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["metadata"]["finalizers"] == ["tenantry.dev/finalizer"]
    created = alpha.kubectl("create", "-o", "json", "-f", "-", input=manifest)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["metadata"]["finalizers"] == ["tenantry.dev/finalizer"]
    alpha.wait_condition(slug, "True", "Provisioned")
    # Set inside the create itself, the finalizer is no manager's field; had kopf or the operator
    # written the Tenant to add it, their managed fields would hold it (only the status is theirs).
    stored = alpha.get(slug) or {}
    assert _finalizer_holders(stored) == [], stored["metadata"]["managedFields"]
    assert stored["metadata"]["finalizers"] == ["tenantry.dev/finalizer"]


@pytest.mark.parametrize("finalizers", [["tenantry.dev/keep-forever"],
                                        ["example.com/mine", "tenantry.dev/finalizer", "tenantry.dev/x"]])
def test_a_partner_cannot_create_a_tenant_with_another_tenantry_finalizer(
        webhook: dict, chart_partners: tuple[ChartPartner, ChartPartner], finalizers: list[str]) -> None:
    alpha, _ = chart_partners
    tenant = alpha.tenant(alpha.slug("wh-forged"))
    tenant["metadata"]["finalizers"] = finalizers
    message = _denied(alpha.kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(tenant)),
                      "metadata.finalizers: finalizer 'tenantry.dev/", "is the operator's")
    assert "'tenantry.dev/finalizer'" not in message  # the one the create is given is no forgery


def test_a_create_is_judged_as_stored_not_as_sent(webhook: dict,
                                                  chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    # Mutating admission sees what the client sent; the create is judged after the API server has
    # normalised it. A deletionTimestamp in a create (cleared by the API server) must not make the
    # webhook take it for an object being deleted, and a generated name is judged as generated.
    alpha, _ = chart_partners
    doomed = alpha.tenant(alpha.slug("wh-doomed"), features={"teleport": {"enabled": True}})
    doomed["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    _denied(alpha.kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(doomed)),
            "spec.features: unknown feature(s) teleport")
    generated = alpha.tenant("unused")
    del generated["metadata"]["name"]
    generated["metadata"]["generateName"] = "xn--"
    _denied(alpha.kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(generated)),
            "is not available on this platform")
    generated["metadata"]["generateName"] = alpha.slug("wh-gen") + "-"
    created = alpha.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=yaml.safe_dump(generated))
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["metadata"]["finalizers"] == ["tenantry.dev/finalizer"]


def test_tenant_outside_a_partner_namespace_is_refused(webhook: dict, cluster: ClusterHandle,
                                                       chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    result = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(alpha.tenant("stray", namespace="default")),
                             check=False)
    _denied(result, "metadata.namespace: namespace 'default' is not a partner namespace")


def test_missing_plan_is_a_warning_not_a_refusal(webhook: dict,
                                                 chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    slug = alpha.slug("wh-warn")
    result = alpha.apply_as_partner(alpha.tenant(slug, plan={"featureSet": "coming-soon", "seats": 3}))
    assert result.returncode == 0, result.stderr
    assert "Warning: spec.plan.featureSet: no FeatureSet 'coming-soon'" in result.stderr
    alpha.wait_condition(slug, "False", "FeatureSetNotFound", kind="FeaturesReady")


def test_without_the_webhook_the_reconcile_still_refuses_a_taken_slug(
        webhook: dict, cluster: ClusterHandle, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, bravo = chart_partners
    slug = alpha.slug("wh-down")
    assert alpha.apply_as_partner(alpha.tenant(slug)).returncode == 0
    alpha.wait_condition(slug, "True", "Provisioned")
    dead = _configuration(f"https://127.0.0.1:{free_port()}", webhook["ca"], failure_policy="Ignore")
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(dead))
    try:
        wait_for(lambda: bravo.apply_as_partner(bravo.tenant(slug)).returncode == 0, timeout=60,
                 what="the API server to skip the unreachable webhook")
        cond = bravo.wait_condition(slug, "False", "SlugConflict")
        assert alpha.namespace not in cond["message"]
        assert (alpha.get(slug) or {})["status"]["namespace"] == f"tenant-{slug}"  # the holder is untouched
        # Stored while nobody checked: a tenant the webhook would refuse (an unknown feature).
        unchecked = bravo.slug("wh-unchecked")
        assert bravo.apply_as_partner(bravo.tenant(unchecked, features={"teleport": {}})).returncode == 0
        # No mutating webhook answered: kopf PATCHed the finalizer in, and its managed fields say so.
        wait_for(lambda: _finalizer_holders(bravo.get(unchecked) or {"metadata": {}}) != [], timeout=60,
                 what="kopf to add the finalizer")
        # Ignore lets the operator's finalizer update through: the delete completes.
        Partner.delete(bravo, slug)
        assert bravo.get(slug) is None
        # failurePolicy Fail with nobody answering: creates are refused (fail closed).
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump({**dead, "items": [
            {**config, "webhooks": [{**hook, "failurePolicy": "Fail"} for hook in config["webhooks"]]}
            for config in dead["items"]]}))
        wait_for(lambda: "failed calling webhook" in bravo.apply_as_partner(
            bravo.tenant(bravo.slug("wh-blocked"))).stderr, timeout=60, what="creates refused while unreachable")
    finally:
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(webhook["config"]))
    # Back in service: updates that leave the spec alone, and deletion, still work on what was
    # stored unchecked; only a spec change must now pass the rules.
    wait_for(lambda: "denied the request" in bravo.kubectl("patch", "tenant", unchecked, "-n", bravo.namespace,
                                                           "--type=merge", "-p", '{"spec":{"industry":"x"}}').stderr,
             timeout=60, what="the webhook back in service")
    labelled = bravo.kubectl("label", "tenant", unchecked, "-n", bravo.namespace, "team=nord")
    assert labelled.returncode == 0, labelled.stderr
    Partner.delete(bravo, unchecked)
    assert bravo.get(unchecked) is None


SENT = [h for h in CORPUS if h.api_words is not None]


@pytest.mark.parametrize("hostile", SENT, ids=[h.id for h in SENT])
def test_hostile_document_is_refused_naming_the_problem(webhook: dict, hostile: Hostile,
                                                       chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    text = hostile.text.replace(PARTNER_NAMESPACE, alpha.namespace)
    # create, not apply: apply would copy a 1 MB field into an annotation and fail on that instead.
    result = alpha.kubectl("create", "--dry-run=server", "-f", "-", input=text)
    assert result.returncode != 0, f"{hostile.id} accepted"
    assert all(word in result.stderr for word in hostile.api_words), result.stderr[:2000]


def test_the_operator_serves_on_after_the_hostile_corpus(webhook: dict, operator: OperatorProcess,
                                                        chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    assert operator.process is not None and operator.process.poll() is None
    slug = alpha.slug("wh-after-corpus")
    assert alpha.apply_as_partner(alpha.tenant(slug)).returncode == 0
    alpha.wait_condition(slug, "True", "Provisioned")


def test_the_operator_is_never_refused_by_its_own_webhook(webhook: dict, operator: OperatorProcess) -> None:
    # The operator's own writes (kopf's tenantry.dev/ bookkeeping annotations, the finalizer) go
    # through the webhook too; after every test above, none may have been refused.
    refused = [line for line in operator.log_path.read_text().splitlines() if "denied the request" in line]
    assert refused == []
