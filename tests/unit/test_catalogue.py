"""The operator's in-memory catalogue: plans and brandings by name, tenants by what they use."""

from __future__ import annotations

from tenantry.handlers.catalogue import Catalogue


def test_tenants_are_indexed_by_plan_and_branding_and_reindexed_on_change() -> None:
    catalogue = Catalogue()
    catalogue.track_tenant(("p", "a"), {"plan": {"featureSet": "gold"}})
    catalogue.track_tenant(("p", "b"), {"plan": {"featureSet": "gold"}, "branding": "vip"})
    catalogue.track_tenant(("q", "c"), {"plan": {"featureSet": "silver"}})
    assert catalogue.tenants_on_plans(["gold"]) == {("p", "a"), ("p", "b")}
    assert catalogue.tenants_on_plans(["gold", "silver"]) == {("p", "a"), ("p", "b"), ("q", "c")}
    assert catalogue.tenants_with_branding("default") == {("p", "a"), ("q", "c")}
    catalogue.track_tenant(("p", "a"), {"plan": {"featureSet": "silver"}, "branding": "vip"})
    assert catalogue.tenants_on_plans(["gold"]) == {("p", "b")}
    assert catalogue.tenants_with_branding("vip") == {("p", "a"), ("p", "b")}
    catalogue.track_tenant(("p", "b"), None)
    assert catalogue.tenants_on_plans(["gold"]) == set() and catalogue.tenants_with_branding("vip") == {("p", "a")}


def test_plans_and_brandings_are_looked_up_by_namespace_and_name() -> None:
    catalogue = Catalogue()
    catalogue.put("FeatureSet", ("tenantry-system", "gold"), {"extends": "silver"})
    catalogue.put("Branding", ("p", "default"), {"colours": {"primary": "#000000"}})
    assert catalogue.feature_set()("tenantry-system", "gold") == {"extends": "silver"}
    assert catalogue.feature_set()("p", "gold") is None
    assert catalogue.branding()("p", "default") == {"colours": {"primary": "#000000"}}
    assert catalogue.plans_by_name() == {"gold": {"extends": "silver"}}
    catalogue.put("FeatureSet", ("tenantry-system", "gold"), None)
    assert catalogue.feature_set()("tenantry-system", "gold") is None
