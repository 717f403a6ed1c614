"""FeatureSets and Brandings on the real control plane, flags evaluated by the real OpenFeature
flagd provider from the ConfigMaps the operator wrote. The operator runs with a resync of an
hour here (watch_triggered): a change reaches the tenants through the watch on FeatureSets and
Brandings, not through the periodic pass.

Tested here:
- a plan change propagates to the tenants on it; a tenant override wins; Suspended -> all off
- Branding resolution: tenant's own, partner default, platform default; a missing Branding
- a Branding with a hostile SVG is refused on the tenants using it, which keep their last good one
- an extends cycle; an invalid FeatureSet does not touch tenants on other plans
- deleting a FeatureSet in use: tenants say why and keep their last good flags
- 200 tenants on one plan, one plan change: only tenants whose result changed are written, two
  documents each, counted by the API server once the operator is at rest
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.integration.fixtures import (
    OPERATOR_RESOURCES,
    ClusterHandle,
    OperatorProcess,
    Partner,
    at_rest,
    diff,
    wait_for,
)
from tests.unit.flagd_eval import context, flagd_client

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("watch_triggered")]


def feature_set(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "FeatureSet",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def branding(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("colours", {"primary": "#1F4E79"})
    return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Branding",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def config_map(cluster: ClusterHandle, slug: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", "configmap", name, "-n", f"tenant-{slug}", "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def flags(cluster: ClusterHandle, slug: str) -> str:
    found = config_map(cluster, slug, "tenantry-flags")
    assert found is not None, f"no flags for {slug}"
    return found["data"]["flags.json"]


def tables_limit(cluster: ClusterHandle, slug: str) -> int | None:
    found = config_map(cluster, slug, "tenantry-flags")
    if found is None:
        return None
    return json.loads(found["data"]["flags.json"])["flags"]["tables-limits"]["variants"]["plan"].get("tables")


def test_plan_change_propagates_and_overrides_win(partner: Partner, cluster: ClusterHandle) -> None:
    partner.apply(feature_set("gold", partner.namespace, features={"tables": {"limits": {"tables": 10}}}))
    plain, custom = partner.slug("plain"), partner.slug("custom")
    partner.apply(partner.tenant(plain, plan={"featureSet": "gold", "seats": 10}))
    partner.apply(partner.tenant(custom, plan={"featureSet": "gold", "seats": 10},
                                 features={"tables": {"limits": {"tables": 99}}, "hubspot": {"enabled": True}}))
    partner.wait_condition(plain)
    partner.wait_condition(custom)
    with flagd_client(flags(cluster, plain)) as client:
        assert client.get_boolean_value("tables", False, context(plain)) is True
        assert client.get_object_value("tables-limits", {}, context(plain)) == {"tables": 10}
        assert client.get_boolean_value("hubspot", True, context(plain)) is False
    partner.apply(feature_set("gold", partner.namespace, features={"tables": {"limits": {"tables": 25}}}))
    wait_for(lambda: tables_limit(cluster, plain) == 25, timeout=30, what="new plan limit in the flags")
    with flagd_client(flags(cluster, custom)) as client:
        assert client.get_object_value("tables-limits", {}, context(custom)) == {"tables": 99}
        assert client.get_boolean_value("hubspot", False, context(custom)) is True
    features = json.loads(config_map(cluster, plain, "tenantry-features")["data"]["features.json"])
    assert features["plan"] == f"{partner.namespace}/gold"
    assert features["features"]["tables"]["limits"] == {"tables": 25}
    body = partner.get(custom) or {}
    assert "hubspot" in body["status"]["features"] and body["status"]["plan"] == f"{partner.namespace}/gold"


def test_suspended_tenant_flags_are_off(partner: Partner, cluster: ClusterHandle) -> None:
    slug = partner.slug("sleepy")
    partner.apply(partner.tenant(slug, state="Suspended"))
    partner.wait_condition(slug, reason="Suspended")
    with flagd_client(flags(cluster, slug)) as client:
        for feature in ("chat", "tables"):
            assert client.get_boolean_value(feature, True, context(slug)) is False


def test_branding_resolution_partner_platform_and_own(partner: Partner, other_partner: Partner,
                                                      cluster: ClusterHandle) -> None:
    partner.apply(branding("default", partner.namespace, assistantName="Ada"))
    partner.apply(branding("vip", partner.namespace, assistantName="Vera", colours={"primary": "#000000"}))
    defaulted, own, elsewhere = partner.slug("dflt"), partner.slug("own"), other_partner.slug("plat")
    partner.apply(partner.tenant(defaulted))
    partner.apply(partner.tenant(own, branding="vip"))
    other_partner.apply(other_partner.tenant(elsewhere))
    for who, slug in ((partner, defaulted), (partner, own), (other_partner, elsewhere)):
        who.wait_condition(slug)

    def assistant(slug: str) -> str:
        data = config_map(cluster, slug, "tenantry-branding")["data"]
        return json.loads(data["branding.json"])["assistantName"]

    assert assistant(defaulted) == "Ada"
    assert assistant(own) == "Vera"
    assert assistant(elsewhere) == "Assistent"  # the platform default
    assert "--brand-primary: #000000;" in config_map(cluster, own, "tenantry-branding")["data"]["branding.css"]
    assert (partner.get(own) or {})["status"]["branding"] == f"{partner.namespace}/vip"
    # The partner changes its default once: its tenants follow, the other partner's do not.
    partner.apply(branding("default", partner.namespace, assistantName="Ada 2"))
    wait_for(lambda: assistant(defaulted) == "Ada 2", timeout=30, what="partner default propagated")
    assert assistant(elsewhere) == "Assistent"


def test_missing_branding_is_reported(partner: Partner) -> None:
    slug = partner.slug("nobrand")
    partner.apply(partner.tenant(slug, branding="does-not-exist"))
    cond = partner.wait_condition(slug, status="False", reason="BrandingNotFound", kind="BrandingReady")
    assert "does-not-exist" in cond["message"] and "spec.branding" in cond["message"]
    partner.wait_condition(slug, status="False", reason="BrandingNotFound")


def test_hostile_svg_is_refused_and_the_last_good_branding_kept(partner: Partner, cluster: ClusterHandle) -> None:
    partner.apply(branding("default", partner.namespace, assistantName="Safe",
                           logo={"svg": '<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>'}))
    slug = partner.slug("svg")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug)
    partner.apply(branding("default", partner.namespace, assistantName="Evil",
                           logo={"svg": '<svg xmlns="http://www.w3.org/2000/svg" onload="steal()"/>'}))
    cond = partner.wait_condition(slug, status="False", reason="InvalidBranding", kind="BrandingReady")
    assert "onload" in cond["message"] and "logo.svg" in cond["message"]
    data = config_map(cluster, slug, "tenantry-branding")["data"]
    assert json.loads(data["branding.json"])["assistantName"] == "Safe" and "onload" not in data["logo.svg"]


def test_low_contrast_is_a_warning_only(partner: Partner) -> None:
    partner.apply(branding("pastel", partner.namespace, colours={"primary": "#FFE4E1"}))
    slug = partner.slug("pastel")
    partner.apply(partner.tenant(slug, branding="pastel"))
    partner.wait_condition(slug)  # still Ready
    cond = partner.wait_condition(slug, status="False", reason="LowContrast", kind="BrandingContrast")
    assert "WCAG" in cond["message"]


def test_extends_cycle_and_invalid_plans_stay_local(partner: Partner, cluster: ClusterHandle) -> None:
    partner.apply(feature_set("ping", partner.namespace, extends="pong"))
    partner.apply(feature_set("pong", partner.namespace, extends="ping"))
    partner.apply(feature_set("typo", partner.namespace, features={"tabels": {}}))
    looping, typo, fine = partner.slug("loop"), partner.slug("typo"), partner.slug("fine")
    partner.apply(partner.tenant(looping, plan={"featureSet": "ping", "seats": 3}))
    partner.apply(partner.tenant(typo, plan={"featureSet": "typo", "seats": 3}))
    partner.apply(partner.tenant(fine))
    cond = partner.wait_condition(looping, status="False", reason="ExtendsCycle", kind="FeaturesReady")
    assert "ping -> pong -> ping" in cond["message"]
    cond = partner.wait_condition(typo, status="False", reason="InvalidFeatureSet", kind="FeaturesReady")
    assert "tabels" in cond["message"]
    partner.wait_condition(fine)
    # Still isolated and limited: a tenant whose plan never resolved gets the platform default quota.
    assert cluster.kubectl("get", "quota", "tenantry-quota", "-n", f"tenant-{looping}", "-o", "name").stdout


def test_deleted_plan_in_use_keeps_the_last_good_flags(partner: Partner, cluster: ClusterHandle) -> None:
    partner.apply(feature_set("silver", partner.namespace, features={"tables": {"limits": {"tables": 7}}}))
    slug = partner.slug("silver")
    partner.apply(partner.tenant(slug, plan={"featureSet": "silver", "seats": 3}))
    partner.wait_condition(slug)
    cluster.kubectl("delete", "featureset", "silver", "-n", partner.namespace)
    cond = partner.wait_condition(slug, status="False", reason="FeatureSetNotFound", kind="FeaturesReady")
    assert "keeps its last good" in cond["message"]
    assert tables_limit(cluster, slug) == 7


def test_plan_change_writes_only_tenants_whose_result_changed(partner: Partner, cluster: ClusterHandle,
                                                              operator: OperatorProcess) -> None:
    partner.apply(feature_set("bulk", partner.namespace, features={"tables": {"limits": {"tables": 5}}}))
    slugs = [partner.slug(f"bulk{i}") for i in range(200)]
    overriding = set(slugs[::2])
    docs = [partner.tenant(s, plan={"featureSet": "bulk", "seats": 5}, admins=[],
                           **({"features": {"tables": {"limits": {"tables": 50}}}} if s in overriding else {}))
            for s in slugs]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    for slug in slugs:
        partner.wait_condition(slug, timeout=180)
    # Earlier tests' namespaces being emptied by the namespace controller would add DELETEs.
    wait_for(lambda: "Terminating" not in cluster.kubectl("get", "namespaces", "--no-headers").stdout,
             timeout=180, what="no namespace terminating")
    writes_before = at_rest(cluster, operator, OPERATOR_RESOURCES)
    before = {s: config_map(cluster, s, "tenantry-flags")["metadata"]["resourceVersion"] for s in slugs}
    partner.apply(feature_set("bulk", partner.namespace, features={"tables": {"limits": {"tables": 6}}}))
    plain = [s for s in slugs if s not in overriding]
    wait_for(lambda: all(tables_limit(cluster, s) == 6 for s in plain), timeout=120, what="100 tenants updated")
    writes = diff(writes_before, at_rest(cluster, operator, OPERATOR_RESOURCES))
    after = {s: config_map(cluster, s, "tenantry-flags")["metadata"]["resourceVersion"] for s in slugs}
    assert all(after[s] == before[s] for s in overriding), "a tenant whose flags did not change was written"
    assert all(after[s] != before[s] for s in plain)
    # Exactly the flags and features documents of each tenant whose result changed.
    assert writes == {"PUT configmaps/": 2 * len(plain)}, writes
