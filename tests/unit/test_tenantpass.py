"""The decisions of a reconcile pass (domain/tenantpass.py), without an API server.

Tested here:
- admission: a Tenant outside a partner namespace, with an invalid spec, or over its partner's
  cap is refused with a reason on Namespace and the same reason Unknown on the other aspects
- plan and branding resolution: verdicts, the quota warnings, a missing plan keeps the last good
- what to write: only objects that differ from what lives, the namespace first, quotas in a wave
  after the rest
- the work in a tenant's namespace (namespace_work): nothing over an unchanged namespace; what to
  ensure only created; only this tenant's objects removed; the orphaned mark dropped; workloads
  stopped when not Active (scaled when Cancelled); a terminating namespace left alone; with
  deletionPolicy Delete the namespace goes
- the billing currency stays the one fixed at provisioning, with a warning only when asked otherwise
- the status patch: None when the live status says it all (no write), stale owned fields removed,
  lastTransitionTime kept while a condition does not change
"""

from __future__ import annotations

from typing import Any

import pytest

from tenantry.api.featureset import Feature, ResourceAmounts, Resources
from tenantry.api.tenant import TenantSpec
from tenantry.domain import naming, tenantpass
from tenantry.domain.caps import PARTNER_TENANT_LIMIT
from tenantry.domain.children import DesiredState, ObjectRef, TenantInput, desired_state, ref
from tenantry.domain.config import OperatorConfig
from tenantry.domain.contest import Contest
from tenantry.domain.features import Plan
from tenantry.domain.status import NAMESPACE_READY, READY, Verdict, ready_verdict
from tenantry.domain.tenantpass import Refusal

CONFIG = OperatorConfig(platform_namespace="tenantry-system")
SPEC = {"company": "Acme GmbH", "contact": {"name": "Ada", "email": "ada@acme.example"},
        "plan": {"featureSet": "business", "seats": 10, "price": {"monthly": 900, "currency": "EUR"}}}
PLANS = {("tenantry-system", "business"): {"features": {"chat": {"enabled": True}},
                                           "resources": {"base": {"cpu": "2", "memory": "4Gi"}}}}
BRANDINGS = {("tenantry-system", "default"): {"colours": {"primary": "#1F4E79", "secondary": "#F2A900"}}}


def _tenant(name: str = "acme", spec: Any = None, created: str = "2026-01-01T00:00:00Z",
            status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "partner-p", "creationTimestamp": created, "generation": 3},
            "spec": SPEC if spec is None else spec, "status": status or {}}


def test_a_tenant_outside_a_partner_namespace_is_refused() -> None:
    refusal = tenantpass.admit(_tenant(), None, {}, CONFIG)
    assert isinstance(refusal, Refusal)
    assert [(v.type, v.status, v.reason) for v in refusal.verdicts] == [
        (NAMESPACE_READY, "False", "NotInPartnerNamespace"), ("FeaturesReady", "Unknown", "NotInPartnerNamespace"),
        ("BrandingReady", "Unknown", "NotInPartnerNamespace"), ("DNSReady", "Unknown", "NotInPartnerNamespace")]
    assert "move the Tenant there" in refusal.verdicts[0].message
    assert refusal.fields == {}


def test_an_invalid_spec_is_refused_naming_the_field() -> None:
    refusal = tenantpass.admit(_tenant(spec={"company": "Acme", "plan": {"featureSet": "business", "seats": -1}}),
                               "p", {}, CONFIG)
    assert isinstance(refusal, Refusal) and refusal.verdicts[0].reason == "InvalidSpec"
    assert "spec.plan.seats" in refusal.verdicts[0].message and refusal.fields == {"partner": "p"}


def test_the_partner_cap_refuses_the_newest_unprovisioned_tenant() -> None:
    config = OperatorConfig(max_tenants_per_partner=2)
    others = {"old1": ("2025-01-01T00:00:00Z", True), "old2": ("2025-02-01T00:00:00Z", True)}
    refusal = tenantpass.admit(_tenant(), "p", others, config)
    assert isinstance(refusal, Refusal) and refusal.verdicts[0].reason == PARTNER_TENANT_LIMIT
    # Already provisioned (its status says so): never evicted by the cap.
    assert not isinstance(tenantpass.admit(_tenant(status={"namespace": "tenant-acme"}), "p", others, config),
                          Refusal)
    assert not isinstance(tenantpass.admit(_tenant(), "p", {"old1": others["old1"]}, config), Refusal)


def test_resolution_gives_the_verdicts_and_features_once() -> None:
    spec = tenantpass.admit(_tenant(), "p", {}, CONFIG)
    assert not isinstance(spec, Refusal)
    resolved = tenantpass.resolve(spec, "partner-p", lambda ns, n: PLANS.get((ns, n)),
                                  lambda ns, n: BRANDINGS.get((ns, n)), CONFIG)
    assert [(v.type, v.status, v.reason) for v in resolved.verdicts] == [
        ("FeaturesReady", "True", "PlanResolved"), ("BrandingReady", "True", "BrandingResolved")]
    assert resolved.features is not None and resolved.features["chat"].enabled
    assert {v.type for v in resolved.warnings} >= {"PlanResourcesAccepted", "QuotaWithinCeiling"}


def test_a_missing_plan_keeps_the_last_good_one() -> None:
    spec = tenantpass.admit(_tenant(), "p", {}, CONFIG)
    assert not isinstance(spec, Refusal)
    resolved = tenantpass.resolve(spec, "partner-p", lambda ns, n: None, lambda ns, n: BRANDINGS.get((ns, n)), CONFIG)
    assert resolved.plan is None and resolved.features is None
    assert resolved.verdicts[0].status == "False" and "keeps its last good quota" in resolved.verdicts[0].message


def _object(kind: str, name: str, data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "tenant-acme"},
            "data": {"k": data}}


def test_only_what_differs_is_written_and_quotas_last() -> None:
    quota, limits, flags = _object("ResourceQuota", "q", "1"), _object("LimitRange", "l", "1"), \
        _object("ConfigMap", "f", "1")
    same_limits = {**limits, "metadata": {**limits["metadata"], "resourceVersion": "7"}}
    waves = tenantpass.to_write([quota, limits, flags], [None, same_limits, _object("ConfigMap", "f", "0")])
    assert [[m["metadata"]["name"] for m, _ in wave] for wave in waves] == [["f"], ["q"]]
    assert tenantpass.to_write([quota, limits], [quota, limits]) == []


def test_the_namespace_is_written_before_the_rest() -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-acme"}}
    waves = tenantpass.to_write([_object("ConfigMap", "f", "1"), namespace], [None, None])
    assert [[m["kind"] for m, _ in wave] for wave in waves] == [["Namespace"], ["ConfigMap"]]


RESOURCES = Resources(base=ResourceAmounts(cpu="2", memory="4Gi", storage="10Gi", pods=20))
OWNER = naming.owner_key("partner-p", "acme")


def _desired(state: str = "Active", policy: str = "Retain", resolved: bool = True,
             admins: tuple[str, ...] = ("ada@acme.example",)) -> DesiredState:
    spec = TenantSpec.model_validate({**SPEC, "state": state, "deletionPolicy": policy, "admins": list(admins)})
    plan = Plan(("tenantry-system/business",), {"chat": Feature()}, RESOURCES) if resolved else None
    return desired_state(TenantInput("acme", "partner-p", "p", spec, plan, None), CONFIG)


def _as_live(manifest: dict[str, Any], **meta: Any) -> dict[str, Any]:
    """The object as the API server returns it: with its own metadata added."""
    return {**manifest, "metadata": {**manifest["metadata"], "resourceVersion": "7", "uid": "u", **meta}}


def _all_live(desired: DesiredState) -> dict[ObjectRef, dict[str, Any]]:
    return {ref(m): _as_live(m) for m in (*desired.apply[1:], *desired.ensure)}


def _written(work: tenantpass.NamespaceWork) -> list[list[str]]:
    return [[f"{m['kind']} {m['metadata']['name']}" for m, _ in wave] for wave in work.waves]


def test_a_new_namespace_gets_its_children_and_quotas_last() -> None:
    desired = _desired()
    work = tenantpass.namespace_work(desired, _as_live(desired.namespace), {}, OWNER, "Active")
    assert work.verdict.reason == "Provisioned" and work.verdict.ok
    first, quotas = _written(work)
    assert {w.split()[0] for w in first} == {"LimitRange", "NetworkPolicy", "ConfigMap", "RoleBinding"}
    assert {w.split()[0] for w in quotas} == {"ResourceQuota"} and len(quotas) == 2
    assert (work.deletes, work.unorphan, work.stop_workloads, work.delete_namespace, work.quota) == \
        ((), False, False, False, None)


def test_an_unchanged_namespace_needs_no_write() -> None:
    desired = _desired()
    lives = _all_live(desired)
    work = tenantpass.namespace_work(desired, _as_live(desired.namespace), lives, OWNER, "Active")
    assert work.waves == () and work.deletes == ()
    assert work.quota is lives[ObjectRef("v1", "ResourceQuota", naming.QUOTA, "tenant-acme")]


def test_a_changed_child_and_a_relabelled_namespace_are_written_again() -> None:
    desired = _desired()
    lives = _all_live(desired)
    limits = next(r for r in lives if r.kind == "LimitRange")
    lives[limits] = {**lives[limits], "spec": {"limits": []}}  # a tenant admin's edit
    stripped = _as_live({**desired.namespace, "metadata": {"name": "tenant-acme"}})
    work = tenantpass.namespace_work(desired, stripped, lives, OWNER, "Active")
    assert _written(work) == [["Namespace tenant-acme"], [f"LimitRange {limits.name}"]]


def test_what_is_ensured_is_only_created_never_updated() -> None:
    desired = _desired(resolved=False)  # an unresolved plan: a default quota only if none exists
    lives = _all_live(desired)
    quota = ref(desired.ensure[0])
    lives[quota] = {**lives[quota], "spec": {"hard": {"pods": "99"}}}  # differs: left as it is
    assert tenantpass.namespace_work(desired, _as_live(desired.namespace), lives, OWNER, "Active").waves == ()
    del lives[quota]
    assert _written(tenantpass.namespace_work(desired, _as_live(desired.namespace), lives, OWNER, "Active"))[-1] \
        == [f"ResourceQuota {naming.QUOTA}"]


@pytest.mark.parametrize(("owner", "deleted"), [(OWNER, True), ("partner-q/acme", False)])
def test_only_this_tenants_objects_are_removed(owner: str, deleted: bool) -> None:
    desired = _desired(admins=())  # no admins: the admin binding must not exist
    binding = next(r for r in desired.remove if r.kind == "RoleBinding")
    live_binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": binding.name, "namespace": binding.namespace,
                                 "labels": {naming.MANAGED_BY: naming.OPERATOR},
                                 "annotations": {naming.OWNER_ANNOTATION: owner}}}
    lives = {**_all_live(desired), binding: live_binding}
    work = tenantpass.namespace_work(desired, _as_live(desired.namespace), lives, OWNER, "Active")
    assert work.deletes == ((binding,) if deleted else ())
    assert work.waves == ()


@pytest.mark.parametrize(("state", "stop", "scale"), [("Active", False, False), ("Suspended", True, False),
                                                      ("Cancelled", True, True)])
def test_workloads_stop_unless_active(state: str, stop: bool, scale: bool) -> None:
    desired = _desired(state=state)
    work = tenantpass.namespace_work(desired, _as_live(desired.namespace), _all_live(desired), OWNER, state)
    assert (work.stop_workloads, work.scale_to_zero) == (stop, scale)


def test_an_orphaned_namespace_loses_its_mark() -> None:
    desired = _desired()
    orphaned = _as_live(desired.namespace, labels={**desired.namespace["metadata"]["labels"],
                                                   naming.ORPHANED_LABEL: "true"})
    work = tenantpass.namespace_work(desired, orphaned, _all_live(desired), OWNER, "Active")
    assert work.unorphan and work.verdict.reason == "Provisioned" and work.waves == ()
    # Taken back with its children gone (someone deleted them meanwhile): the mark and the children.
    work = tenantpass.namespace_work(desired, orphaned, {}, OWNER, "Active")
    assert work.unorphan and len(work.waves) == 2


@pytest.mark.parametrize("state", ["Active", "Suspended"])
def test_a_terminating_namespace_is_left_alone(state: str) -> None:
    desired = _desired(state=state)
    labels = {**desired.namespace["metadata"]["labels"], naming.ORPHANED_LABEL: "true"}
    going = _as_live(desired.namespace, deletionTimestamp="2026-12-03T00:00:00Z", labels=labels)
    work = tenantpass.namespace_work(desired, going, _all_live(desired), OWNER, state)
    assert (work.verdict.reason, work.verdict.ok, work.waves, work.deletes, work.unorphan, work.stop_workloads,
            work.quota) == ("NamespaceTerminating", False, (), (), False, False, None)


@pytest.mark.parametrize(("live", "deleted"), [("there", True), ("gone", False), ("going", False)])
def test_deletion_policy_delete_deletes_the_namespace_once_and_writes_nothing_else(live: str, deleted: bool) -> None:
    desired = _desired(state="Cancelled", policy="Delete")
    namespace = {"there": _as_live(desired.namespace), "gone": None,
                 "going": _as_live(desired.namespace, deletionTimestamp="2026-12-03T00:00:00Z")}[live]
    children = _all_live(_desired(state="Cancelled"))  # what the namespace still holds
    work = tenantpass.namespace_work(desired, namespace, children, OWNER, "Cancelled")
    # Its pods get the bounded grace (not the one their author chose) while it is there, going or not.
    assert (work.verdict.reason, work.delete_namespace, work.waves, work.deletes, work.stop_workloads,
            work.quota_first, work.quota) == ("Offboarded", deleted, (), (), namespace is not None, False, None)


def test_cancelled_with_retain_removes_flags_features_and_admin_access_only_when_labelled_ours() -> None:
    desired = _desired(state="Cancelled")
    lives: dict[ObjectRef, Any] = _all_live(desired)
    meta = {"labels": {naming.MANAGED_BY: naming.OPERATOR}, "annotations": {naming.OWNER_ANNOTATION: OWNER}}
    for target in desired.remove:
        lives[target] = {"metadata": {"name": target.name, "namespace": target.namespace, **meta}}
    work = tenantpass.namespace_work(desired, _as_live(desired.namespace), lives, OWNER, "Cancelled")
    assert sorted(f"{r.kind} {r.name}" for r in work.deletes) == sorted(
        [f"ConfigMap {naming.FEATURES_CONFIG}", f"ConfigMap {naming.FLAGS_CONFIG}",
         "RoleBinding " + next(r.name for r in desired.remove if r.kind == "RoleBinding")])
    # The owner's mark without the managed-by label (a tenant admin's own object): left alone.
    unlabelled = {r: {"metadata": {"name": r.name, "annotations": meta["annotations"]}} for r in desired.remove}
    assert tenantpass.namespace_work(desired, _as_live(desired.namespace), {**lives, **unlabelled}, OWNER,
                                     "Cancelled").deletes == ()


@pytest.mark.parametrize(("asked", "fixed", "provisioned", "expected", "warned"), [
    ("EUR", None, False, None, False),  # not provisioned yet: nothing fixed
    ("USD", None, True, "USD", False),  # fixed at provisioning
    ("EUR", "EUR", True, "EUR", False),
    ("USD", "EUR", True, "EUR", True),  # a change (webhook down) is ignored, and said so
])
def test_the_billing_currency_is_fixed_at_provisioning(asked: str, fixed: str | None, provisioned: bool,
                                                       expected: str | None, warned: bool) -> None:
    spec = {**SPEC, "plan": {**SPEC["plan"], "price": {"monthly": 900, "currency": asked}}}
    as_billed, currency, warning = tenantpass.billing_currency(spec, {"currency": fixed} if fixed else {}, provisioned)
    assert currency == expected and (warning is not None) == warned
    assert as_billed["plan"]["price"]["currency"] == (expected or asked)


def test_in_sync_names_the_contested_objects() -> None:
    assert tenantpass.in_sync([], Contest()).status == "True"
    verdict = tenantpass.in_sync(["ResourceQuota tenantry-quota (changed by quota-bot)"], Contest(limit=5))
    assert verdict.status == "False" and "quota-bot" in verdict.message and "5 times" in verdict.message


def test_the_status_patch_is_none_when_nothing_changed() -> None:
    verdicts = [Verdict(NAMESPACE_READY, "True", "Provisioned", "ok")]
    ready = ready_verdict(verdicts, "Active")
    fields = {"partner": "p", "namespace": "tenant-acme", "url": "https://acme.platform.example"}
    first = tenantpass.status_update({}, [ready, *verdicts], fields, 3, "2026-12-01T00:00:00Z")
    assert first is not None and first["observedGeneration"] == 3
    assert [c["type"] for c in first["conditions"]] == [READY, NAMESPACE_READY]
    # The status as written: the same pass later writes nothing, whatever the time.
    assert tenantpass.status_update(first, [ready, *verdicts], fields, 3, "2026-12-02T00:00:00Z") is None
    # A new generation: written, with the transition time of the unchanged condition kept.
    again = tenantpass.status_update(first, [ready, *verdicts], fields, 4, "2026-12-02T00:00:00Z")
    assert again is not None and again["conditions"][0]["lastTransitionTime"] == "2026-12-01T00:00:00Z"


def test_fields_that_no_longer_apply_are_removed() -> None:
    verdicts = [Verdict(NAMESPACE_READY, "False", "SlugConflict", "taken")]
    old = {"partner": "p", "namespace": "tenant-acme", "url": "https://acme.platform.example", "plan": "business"}
    patch = tenantpass.status_update(old, verdicts, {"partner": "p"}, 1, "2026-12-01T00:00:00Z")
    assert patch is not None and patch["namespace"] is None and patch["url"] is None
    assert "plan" not in patch  # kept at its last good value (not owned per pass)
