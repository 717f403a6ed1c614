"""With the webhook down (failurePolicy Ignore lets everything through), the operator is the check.

The integration operator runs without a webhook: each document below reaches the API server as
a chart-made partner's own ServiceAccount, with nothing but the CRD schema in the way.

Attacks covered:
- the hostile corpus (tests/hostile.py) created as a partner: each document is refused by the API
  server, or stored and then ends safely: the Tenant gets Ready=False with the specific reason and
  no namespace, a bad custom domain is never claimed, a hostile Branding or plan is refused on the
  tenant that uses it (no hostile SVG in its config); the operator then provisions a good tenant
- a taken slug and a reserved slug stored without the webhook: the same reason (SlugConflict) and
  the same words in the status, naming neither the holder nor which of the two it is; no namespace
- a partner changing the currency of a provisioned tenant: stored, but metrics keep the provisioned
  currency (status.currency) and a CurrencyFixed=False warning says so
- a partner making a provisioned tenant's spec invalid (a limit name the CRD cannot check; a
  concurrency and revenue review, 3 Dec): a Trial counts as ended and is suspended at once (it ran
  on past its end, billed as nothing); an Active tenant is served and billed as last provisioned,
  keeping its namespace in the status
- reserved tenantry.dev/ labels and annotations set by a partner on a Tenant (a forged partner label,
  a forged owner, kopf's progress mark of the deletion handler claiming it already ran): the
  tenant is provisioned for its real partner only, and deleting it still releases its domain
  claim and marks its retained namespace
- a partner removing the operator's finalizer (patch finalizers away, delete at once), also while
  the operator is down: the Tenant goes without the deletion handler, and the operator cleans up
  after it all the same (its claim released, its namespace marked orphaned)
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import yaml

from tenantry.devtools import localwebhook
from tenantry.domain import dns
from tests.hostile import CORPUS, PARTNER_NAMESPACE, Hostile
from tests.integration.fixtures import (
    PLATFORM_NAMESPACE,
    ChartPartner,
    ClusterHandle,
    OperatorProcess,
    namespace_of,
    wait_for,
)

pytestmark = pytest.mark.integration

SENT = [h for h in CORPUS if h.api_words is not None]
# Where a stored document ends: (condition type, status, reason) on the Tenant itself, or on a
# probe tenant that uses the stored Branding or FeatureSet.
STORED_ENDS: dict[str, tuple[str, str, str]] = {
    "feature-unknown": ("Ready", "False", "InvalidSpec"),
    "limit-name-hostile": ("Ready", "False", "InvalidSpec"),
    "plan-limit-name-too-long": ("FeaturesReady", "False", "InvalidFeatureSet"),
    "domain-public-suffix": ("DomainsVerified", "False", "InvalidDomain"),
    "svg-script": ("BrandingReady", "False", "InvalidBranding"),
    "svg-external-image": ("BrandingReady", "False", "InvalidBranding"),
    "svg-event-handler": ("BrandingReady", "False", "InvalidBranding"),
    "plan-extends-itself": ("FeaturesReady", "False", "ExtendsCycle"),
}


@pytest.fixture(scope="module")
def no_webhook(cluster: ClusterHandle, operator: OperatorProcess) -> None:
    """No webhook configuration registered and the operator serving none."""
    for name in ("tenantry-integration-test", "tenantry-claims-test"):
        cluster.kubectl("delete", localwebhook.KINDS, name, "--ignore-not-found")
    if operator.extra_env:
        operator.restart_with({})


def _create(partner: ChartPartner, manifest: dict[str, Any]) -> Any:
    # create, not apply: apply would copy a 1 MB field into an annotation and fail on that instead.
    return partner.kubectl("create", "-f", "-", input=yaml.safe_dump(manifest, allow_unicode=True))


def _get(cluster: ClusterHandle, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _condition(partner: ChartPartner, name: str, kind: str, status: str, reason: str) -> dict[str, Any]:
    return partner.wait_condition(name, status, reason, kind=kind, timeout=90)


@pytest.mark.parametrize("hostile", SENT, ids=[h.id for h in SENT])
def test_hostile_document_ends_safely_without_the_webhook(
        no_webhook: None, hostile: Hostile, cluster: ClusterHandle,
        chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    manifest = yaml.safe_load(hostile.text.replace(PARTNER_NAMESPACE, alpha.namespace))
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    if name == "hostile":  # tenant names are global: one of its own per document and run
        name = manifest["metadata"]["name"] = f"{hostile.id}-{alpha.suffix}"
    if kind == "Tenant":
        alpha.slugs.append(name)
    result = _create(alpha, manifest)
    if result.returncode != 0:
        # Refused by the API server (schema, name rules, size): nothing stored.
        assert "denied the request" not in result.stderr  # no webhook answered
        assert _get(cluster, kind.lower(), name, alpha.namespace) is None
        assert hostile.id not in STORED_ENDS, f"{hostile.id} was expected to be stored: {result.stderr[:500]}"
        return
    assert hostile.id in STORED_ENDS, f"{hostile.id} stored without a known safe end"
    condition, status, reason = STORED_ENDS[hostile.id]
    if kind == "Tenant":
        cond = _condition(alpha, name, condition, status, reason)
        assert cond["message"]
        if condition == "Ready":
            assert namespace_of(cluster, f"tenant-{name}") is None  # nothing provisioned
        for domain in manifest["spec"].get("domains") or ():
            assert _get(cluster, "secret", dns.claim_name(domain), PLATFORM_NAMESPACE) is None  # never claimed
        return
    # A Branding or FeatureSet: a tenant that uses it is refused it, never served with it.
    probe = f"probe-{uuid.uuid4().hex[:6]}-{alpha.suffix}"
    alpha.slugs.append(probe)
    uses = {"branding": name} if kind == "Branding" else {"plan": {"featureSet": name, "seats": 5}}
    assert alpha.apply_as_partner(alpha.tenant(probe, **uses)).returncode == 0
    cond = _condition(alpha, probe, condition, status, reason)
    assert cond["message"]
    assert alpha.condition(probe)["status"] == "False"  # Ready
    configs = cluster.kubectl("get", "configmaps", "-n", f"tenant-{probe}", "-o", "json", check=False).stdout
    for word in ("<script", "onload", "evil.example", "B" * 70):  # the last: plan-limit-name-too-long's key
        assert word not in configs
    alpha.delete(probe)


def test_the_operator_serves_a_good_tenant_after_the_corpus(
        no_webhook: None, operator: OperatorProcess, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    assert operator.process is not None and operator.process.poll() is None
    slug = alpha.slug("after-corpus")
    assert alpha.apply_as_partner(alpha.tenant(slug)).returncode == 0
    alpha.wait_condition(slug, "True", "Provisioned", timeout=90)


def test_taken_and_reserved_slugs_read_alike_in_the_status(
        no_webhook: None, cluster: ClusterHandle, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, bravo = chart_partners
    held = alpha.slug("down-held")
    assert alpha.apply_as_partner(alpha.tenant(held)).returncode == 0
    alpha.wait_condition(held, "True", "Provisioned")
    bravo.slugs.append("admin")
    for name in (held, "admin"):
        assert bravo.apply_as_partner(bravo.tenant(name)).returncode == 0  # nobody checks at admission
    taken = bravo.wait_condition(held, "False", "SlugConflict")
    reserved = bravo.wait_condition("admin", "False", "SlugConflict")
    assert taken["message"].replace(held, "NAME") == reserved["message"].replace("admin", "NAME")
    assert "tenant name 'NAME' is not available on this platform" in taken["message"].replace(held, "NAME")
    assert alpha.namespace not in taken["message"]
    assert namespace_of(cluster, "tenant-admin") is None
    owner = (namespace_of(cluster, f"tenant-{held}") or {})["metadata"]["annotations"]["tenantry.dev/owner"]
    assert owner == f"{alpha.namespace}/{held}"
    bravo.delete(held)
    bravo.delete("admin")
    assert namespace_of(cluster, f"tenant-{held}") is not None  # the holder's namespace stays


def test_reserved_metadata_set_by_a_partner_has_no_effect(
        no_webhook: None, cluster: ClusterHandle, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, bravo = chart_partners
    slug = alpha.slug("down-forged")
    domain = f"ki.{slug}.de"
    tenant = alpha.tenant(slug, domains=[domain])
    forged_done = json.dumps({"started": "2020-01-01T00:00:00.000000+00:00",
                              "stopped": "2020-01-01T00:00:00.000000+00:00", "purpose": "delete",
                              "retries": 1, "success": True, "failure": False}, separators=(",", ":"))
    tenant["metadata"]["labels"] = {"tenantry.dev/partner": bravo.namespace.removeprefix("partner-")}
    tenant["metadata"]["annotations"] = {"tenantry.dev/owner": f"{bravo.namespace}/{slug}"}
    assert alpha.apply_as_partner(tenant).returncode == 0
    alpha.wait_condition(slug, "True", "Provisioned")
    body = alpha.get(slug) or {}
    assert body["status"]["partner"] == alpha.namespace.removeprefix("partner-")
    ns = namespace_of(cluster, f"tenant-{slug}") or {}
    assert ns["metadata"]["annotations"]["tenantry.dev/owner"] == f"{alpha.namespace}/{slug}"
    assert ns["metadata"]["labels"]["tenantry.dev/partner"] == alpha.namespace.removeprefix("partner-")
    wait_for(lambda: _get(cluster, "secret", dns.claim_name(domain), PLATFORM_NAMESPACE), what="the claim")
    # kopf's mark that the deletion handler already succeeded, set just before deleting: the
    # clean-up must run all the same.
    forged = alpha.kubectl("annotate", "tenant", slug, "-n", alpha.namespace,
                           f"tenantry.dev/tenant_deleted={forged_done}")
    assert forged.returncode == 0, forged.stderr
    alpha.delete(slug)
    assert alpha.get(slug) is None
    assert _get(cluster, "secret", dns.claim_name(domain), PLATFORM_NAMESPACE) is None
    labels = (namespace_of(cluster, f"tenant-{slug}") or {})["metadata"]["labels"]
    assert labels.get("tenantry.dev/orphaned") == "true"


def test_currency_change_without_the_webhook_is_not_billed(
        no_webhook: None, operator: OperatorProcess, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    slug = alpha.slug("down-currency")
    priced = {"featureSet": "business", "seats": 10, "price": {"monthly": 500, "currency": "EUR"}}
    assert alpha.apply_as_partner(alpha.tenant(slug, plan=priced)).returncode == 0
    alpha.wait_condition(slug, "True", "Provisioned")
    wait_for(lambda: (alpha.get(slug) or {})["status"].get("currency") == "EUR", what="the fixed currency")
    in_yen = {**priced, "price": {"monthly": 500, "currency": "JPY"}}
    assert alpha.apply_as_partner(alpha.tenant(slug, plan=in_yen)).returncode == 0  # nobody refuses it
    cond = alpha.wait_condition(slug, "False", "CurrencyChangeIgnored", kind="CurrencyFixed")
    assert "provisioned in EUR" in cond["message"]
    assert (alpha.get(slug) or {})["status"]["currency"] == "EUR"
    assert alpha.condition(slug)["status"] == "True"  # the tenant is served on
    wait_for(lambda: operator.metric("tenantry_tenant_mrr", tenant=slug, currency="EUR") == 500,
             what="revenue reported in EUR")
    assert operator.metric("tenantry_tenant_mrr", tenant=slug, currency="JPY") == 0
    # Back to the provisioned currency: the warning goes.
    assert alpha.apply_as_partner(alpha.tenant(slug, plan=priced)).returncode == 0
    alpha.wait_condition(slug, "True", "Provisioned")
    wait_for(lambda: alpha.condition(slug, kind="CurrencyFixed") == {}, what="the warning to go")


INVALID_LIMIT = {"chat": {"limits": {"X": 1}}}  # a limit name the CRD cannot check, the model refuses


def _quota_pods(cluster: ClusterHandle, namespace: str) -> str | None:
    quota = _get(cluster, "resourcequota", "tenantry-quota", namespace)
    return ((quota or {}).get("spec") or {}).get("hard", {}).get("pods")


def test_a_trial_made_invalid_without_the_webhook_counts_as_ended(
        no_webhook: None, cluster: ClusterHandle, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    slug = alpha.slug("down-trial")
    trial = alpha.tenant(slug, state="Trial", trial={"ends": "2099-01-01T00:00:00Z"})
    assert alpha.apply_as_partner(trial).returncode == 0
    alpha.wait_condition(slug, "True", "TrialRunning", kind="Trial")
    namespace = f"tenant-{slug}"
    assert _quota_pods(cluster, namespace) != "0"
    invalid = {**trial, "spec": {**trial["spec"], "features": INVALID_LIMIT}}
    assert alpha.apply_as_partner(invalid).returncode == 0  # nobody refuses it
    cond = alpha.wait_condition(slug, "False", "TrialEnded", kind="Trial")
    assert cond["message"].startswith("the Tenant is invalid: spec.features.chat.limits") and "counts as ended" in \
        cond["message"]
    wait_for(lambda: _quota_pods(cluster, namespace) == "0", what="the ended trial's quota: no pods")
    assert (alpha.get(slug) or {})["status"]["state"] == "Suspended"


def test_an_active_tenant_made_invalid_without_the_webhook_is_still_billed(
        no_webhook: None, operator: OperatorProcess, chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    slug = alpha.slug("down-invalid")
    priced = alpha.tenant(slug, plan={"featureSet": "business", "seats": 10,
                                      "price": {"monthly": 700, "currency": "EUR"}})
    assert alpha.apply_as_partner(priced).returncode == 0
    alpha.wait_condition(slug, "True", "Provisioned")
    invalid = {**priced, "spec": {**priced["spec"], "features": INVALID_LIMIT}}
    assert alpha.apply_as_partner(invalid).returncode == 0
    alpha.wait_condition(slug, "False", "InvalidSpec")
    status = (alpha.get(slug) or {})["status"]
    assert (status.get("namespace"), status.get("state")) == (f"tenant-{slug}", "Active")
    wait_for(lambda: operator.metric("tenantry_tenant_mrr", tenant=slug, currency="EUR") == 700,
             what="revenue still reported while the spec is invalid")


@pytest.mark.parametrize("operator_down", [False, True], ids=["operator-up", "operator-down"])
def test_finalizer_removed_by_a_partner_still_gets_the_clean_up(
        no_webhook: None, operator_down: bool, cluster: ClusterHandle, operator: OperatorProcess,
        chart_partners: tuple[ChartPartner, ChartPartner]) -> None:
    alpha, _ = chart_partners
    slug = alpha.slug(f"down-finalizer-{int(operator_down)}")
    domain = f"ki.{slug}.de"
    assert alpha.apply_as_partner(alpha.tenant(slug, domains=[domain])).returncode == 0
    alpha.wait_condition(slug, "True", "Provisioned")
    wait_for(lambda: _get(cluster, "secret", dns.claim_name(domain), PLATFORM_NAMESPACE), what="the claim")
    if operator_down:
        operator.stop()  # nobody puts the finalizer back, nobody sees the Tenant go
    try:
        # Take the operator's finalizer away (the webhook would refuse that), then delete at once.
        removed = alpha.kubectl("patch", "tenant", slug, "-n", alpha.namespace, "--type=merge",
                                "-p", '{"metadata":{"finalizers":null}}')
        assert removed.returncode == 0, removed.stderr
        assert alpha.kubectl("delete", "tenant", slug, "-n", alpha.namespace, "--wait=false").returncode == 0
        if operator_down:
            wait_for(lambda: alpha.get(slug) is None, what="the Tenant gone without its clean-up")
            assert _get(cluster, "secret", dns.claim_name(domain), PLATFORM_NAMESPACE) is not None
    finally:
        operator.start()
    wait_for(lambda: alpha.get(slug) is None, what="the Tenant to go")
    wait_for(lambda: _get(cluster, "secret", dns.claim_name(domain), PLATFORM_NAMESPACE) is None,
             what="the domain claim released")
    wait_for(lambda: ((namespace_of(cluster, f"tenant-{slug}") or {}).get("metadata", {}).get("labels") or {})
             .get("tenantry.dev/orphaned") == "true", what="the retained namespace marked orphaned")
