"""The operator's in-memory catalogue: plans and brandings by name, tenants by what they use.

Tested here:
- tenants are indexed by plan and branding, and again when they change or go
- plans and brandings are looked up by namespace and name
- which tenants a FeatureSet change reaches, each partner seeing the plans as it does (its own of a
  name first, else the platform's, extends followed the same way): a platform plan's change reaches
  every partner's tenants on it and on its children; a partner's FeatureSet of the same name hides
  it from that partner's tenants only; a partner's change reaches its own tenants only
"""

from __future__ import annotations

from tenantry.handlers.catalogue import Catalogue

PLATFORM = "tenantry-system"


def test_tenants_are_indexed_by_plan_and_branding_and_reindexed_on_change() -> None:
    catalogue = Catalogue()
    catalogue.track_tenant(("p", "a"), {"plan": {"featureSet": "gold"}})
    catalogue.track_tenant(("p", "b"), {"plan": {"featureSet": "gold"}, "branding": "vip"})
    catalogue.track_tenant(("q", "c"), {"plan": {"featureSet": "silver"}})
    for plan in ("gold", "silver"):
        catalogue.put("FeatureSet", (PLATFORM, plan), {})
    assert catalogue.plan_users(PLATFORM, "gold", PLATFORM) == {("p", "a"), ("p", "b")}
    assert catalogue.plan_users(PLATFORM, "silver", PLATFORM) == {("q", "c")}
    assert catalogue.tenants_with_branding("default") == {("p", "a"), ("q", "c")}
    catalogue.track_tenant(("p", "a"), {"plan": {"featureSet": "silver"}, "branding": "vip"})
    assert catalogue.plan_users(PLATFORM, "gold", PLATFORM) == {("p", "b")}
    assert catalogue.tenants_with_branding("vip") == {("p", "a"), ("p", "b")}
    catalogue.track_tenant(("p", "b"), None)
    assert catalogue.plan_users(PLATFORM, "gold", PLATFORM) == set()
    assert catalogue.tenants_with_branding("vip") == {("p", "a")}


def test_plans_and_brandings_are_looked_up_by_namespace_and_name() -> None:
    catalogue = Catalogue()
    catalogue.put("FeatureSet", ("tenantry-system", "gold"), {"extends": "silver"})
    catalogue.put("Branding", ("p", "default"), {"colours": {"primary": "#000000"}})
    assert catalogue.feature_set()("tenantry-system", "gold") == {"extends": "silver"}
    assert catalogue.feature_set()("p", "gold") is None
    assert catalogue.branding()("p", "default") == {"colours": {"primary": "#000000"}}
    catalogue.put("FeatureSet", ("tenantry-system", "gold"), None)
    assert catalogue.feature_set()("tenantry-system", "gold") is None


def test_a_plan_change_reaches_each_partners_tenants_as_that_partner_sees_the_plans() -> None:
    catalogue = Catalogue()
    catalogue.put("FeatureSet", (PLATFORM, "business"), {})
    catalogue.put("FeatureSet", (PLATFORM, "enterprise"), {"extends": "business"})
    # Partner a's own "enterprise" (no extends) hides the platform's from a's tenants only.
    catalogue.put("FeatureSet", ("partner-a", "enterprise"), {})
    catalogue.put("FeatureSet", ("partner-a", "team"), {"extends": "business"})
    for key, plan in ((("partner-a", "a1"), "enterprise"), (("partner-a", "a2"), "team"),
                      (("partner-a", "a3"), "business"), (("partner-b", "b1"), "enterprise"),
                      (("partner-b", "b2"), "business"), (("partner-c", "c1"), "team")):
        catalogue.track_tenant(key, {"plan": {"featureSet": plan}})
    # The platform's business: b's enterprise tenant too (it extends business as b sees it), but
    # not a's (a's enterprise extends nothing); c's "team" is no plan c can see.
    assert catalogue.plan_users(PLATFORM, "business", PLATFORM) == {
        ("partner-a", "a2"), ("partner-a", "a3"), ("partner-b", "b1"), ("partner-b", "b2")}
    assert catalogue.plan_users(PLATFORM, "enterprise", PLATFORM) == {("partner-b", "b1")}
    # A partner's change: its own tenants only, whatever other partners use the name for.
    assert catalogue.plan_users("partner-a", "enterprise", PLATFORM) == {("partner-a", "a1")}
    assert catalogue.plan_users("partner-c", "team", PLATFORM) == {("partner-c", "c1")}
    # a's own enterprise gone: a's tenant on that name now sees the platform's, and business reaches it.
    catalogue.put("FeatureSet", ("partner-a", "enterprise"), None)
    assert ("partner-a", "a1") in catalogue.plan_users(PLATFORM, "business", PLATFORM)
