"""Plans, overrides, lifecycle and the flagd documents, evaluated by the real OpenFeature flagd provider.

Tested here:
- resolution: partner FeatureSet before the platform's; `extends` chains merge, children win
- errors: unknown FeatureSet, extends cycle, unknown feature names, invalid FeatureSet
- tenant overrides; chat always on; Suspended -> all off; Cancelled -> no features
- the flagd document: "is tables on for tenant X and what are its limits?" answered by
  openfeature-sdk + openfeature-provider-flagd; another tenant's context gets "off"
- dependents: which FeatureSet names a change reaches
"""

from __future__ import annotations

from typing import Any

import pytest

from tenantry.api.tenant import TenantSpec
from tenantry.domain.features import (
    Plan,
    Unresolved,
    dependents,
    effective_features,
    flagd_document,
    resolve_plan,
)
from tests.unit.flagd_eval import context, flagd_client

PLATFORM = "tenantry-system"
PARTNER = "partner-acme"
SPECS: dict[tuple[str, str], dict[str, Any]] = {
    (PLATFORM, "starter"): {"features": {"chat": {}, "files": {"limits": {"documents": 500}}}},
    (PLATFORM, "business"): {"features": {"chat": {}, "files": {"limits": {"documents": 5000}},
                                          "tables": {"limits": {"tables": 50, "rows": 10000}}},
                             "resources": {"base": {"cpu": "2", "memory": "4Gi", "pods": 20}}},
    (PLATFORM, "enterprise"): {"extends": "business",
                               "features": {"tables": {"limits": {"tables": 500}}, "meetings": {}}},
    (PARTNER, "business"): {"extends": "starter", "features": {"tables": {"limits": {"tables": 20}}}},
    (PARTNER, "loop-a"): {"extends": "loop-b"},
    (PARTNER, "loop-b"): {"extends": "loop-a"},
    (PARTNER, "typo"): {"features": {"tabels": {}}},
}


def lookup(namespace: str, name: str) -> dict[str, Any] | None:
    return SPECS.get((namespace, name))


def plan(name: str, partner: str = PARTNER) -> Plan:
    resolved = resolve_plan(name, lookup, partner, PLATFORM)
    assert isinstance(resolved, Plan), resolved
    return resolved


def tenant(**overrides: Any) -> TenantSpec:
    raw = {"company": "Mustermann GmbH", "contact": {"name": "Max", "email": "max@mustermann.de"},
           "plan": {"featureSet": "business", "seats": 50}}
    raw.update(overrides)
    return TenantSpec.model_validate(raw)


def test_the_partner_plan_wins_over_the_platform_plan() -> None:
    own = plan("business")
    assert own.chain == ("partner-acme/business", "tenantry-system/starter")
    assert own.features["tables"].limits == {"tables": 20}
    assert plan("business", partner="partner-other").chain == ("tenantry-system/business",)


def test_extends_merges_limits_and_children_win() -> None:
    enterprise = plan("enterprise", partner="partner-other")
    assert enterprise.chain == ("tenantry-system/enterprise", "tenantry-system/business")
    assert enterprise.features["tables"].limits == {"tables": 500, "rows": 10000}
    assert "meetings" in enterprise.features and enterprise.features["files"].limits == {"documents": 5000}
    assert enterprise.resources is not None and enterprise.resources.base.cpu == "2"  # inherited


@pytest.mark.parametrize(("name", "reason", "words"), [
    ("platinum", "FeatureSetNotFound", ["platinum", "spec.plan.featureSet"]),
    ("loop-a", "ExtendsCycle", ["loop-a -> loop-b -> loop-a"]),
    ("typo", "InvalidFeatureSet", ["tabels", "known features", "partner-acme/typo"]),
])
def test_unresolvable_plans_explain_themselves(name: str, reason: str, words: list[str]) -> None:
    resolved = resolve_plan(name, lookup, PARTNER, PLATFORM)
    assert isinstance(resolved, Unresolved) and resolved.reason == reason
    for word in words:
        assert word in resolved.message


def test_missing_parent_names_the_extends() -> None:
    SPECS[(PARTNER, "orphan")] = {"extends": "nowhere"}
    try:
        resolved = resolve_plan("orphan", lookup, PARTNER, PLATFORM)
    finally:
        del SPECS[(PARTNER, "orphan")]
    assert isinstance(resolved, Unresolved) and "spec.extends of FeatureSet 'partner-acme/orphan'" in resolved.message


def test_tenant_overrides_limits_and_switches() -> None:
    spec = tenant(features={"tables": {"limits": {"tables": 100}}, "files": {"enabled": False},
                            "hubspot": {"enabled": True}, "chat": {"enabled": False}})
    features = effective_features(plan("business", partner="partner-other"), spec)
    assert features["tables"].enabled and features["tables"].limits == {"tables": 100, "rows": 10000}
    assert not features["files"].enabled
    assert features["hubspot"].enabled
    assert features["chat"].enabled  # always on while active


def test_unknown_override_is_rejected_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown feature.*tabels.*known features: chat"):
        tenant(features={"tabels": {"enabled": True}})


def test_suspended_switches_everything_off_and_cancelled_has_nothing() -> None:
    business = plan("business", partner="partner-other")
    assert not any(f.enabled for f in effective_features(business, tenant(state="Suspended")).values())
    assert effective_features(business, tenant(state="Cancelled")) == {}


def _flags(slug: str, spec: TenantSpec, plan_name: str = "business", partner: str = "partner-other") -> dict:
    resolved = plan(plan_name, partner=partner)
    return flagd_document(slug, "acme", resolved, effective_features(resolved, spec))


def test_flagd_answers_for_the_tenant() -> None:
    document = _flags("mustermann", tenant(features={"tables": {"limits": {"tables": 100}}}))
    with flagd_client(document) as client:
        assert client.get_boolean_value("tables", False, context("mustermann")) is True
        assert client.get_object_value("tables-limits", {}, context("mustermann")) == {"tables": 100, "rows": 10000}
        assert client.get_boolean_value("files", False) is True  # no context: the tenant's own file
        assert client.get_boolean_value("meetings", True, context("mustermann")) is False  # not in the plan
        assert client.get_boolean_value("hubspot", True, context("mustermann")) is False
        details = client.get_boolean_details("no-such-feature", True)
        assert details.error_code is not None  # unknown flag: the app's own default applies
        assert client.get_boolean_value("tables", True, context("someone-else")) is False  # fails closed
        assert client.get_object_value("tables-limits", {"x": 1}, context("someone-else")) == {}


def test_flagd_for_a_suspended_tenant_says_off() -> None:
    with flagd_client(_flags("weber", tenant(state="Suspended"))) as client:
        for feature in ("chat", "files", "tables"):
            assert client.get_boolean_value(feature, True, context("weber")) is False
        assert client.get_object_value("tables-limits", {"x": 1}, context("weber")) == {}


def test_flagd_for_two_plans() -> None:
    starter = _flags("schmidt", tenant(plan={"featureSet": "starter", "seats": 5}), "starter")
    enterprise = _flags("hafen", tenant(plan={"featureSet": "enterprise", "seats": 5}), "enterprise")
    with flagd_client(starter) as client:
        assert client.get_boolean_value("tables", True, context("schmidt")) is False
        assert client.get_object_value("files-limits", {}, context("schmidt")) == {"documents": 500}
    with flagd_client(enterprise) as client:
        assert client.get_boolean_value("meetings", False, context("hafen")) is True
        assert client.get_object_value("tables-limits", {}, context("hafen"))["tables"] == 500


def test_document_metadata_and_schema() -> None:
    document = _flags("mustermann", tenant())
    assert document["$schema"] == "https://flagd.dev/schema/v0/flags.json"
    assert document["metadata"] == {"tenant": "mustermann", "partner": "acme", "plan": "tenantry-system/business"}
    for flag in document["flags"].values():
        assert flag["state"] == "ENABLED" and flag["defaultVariant"] in flag["variants"]


def test_dependents_follow_extends_transitively() -> None:
    specs = {"business": {}, "enterprise": {"extends": "business"}, "gold": {"extends": "enterprise"},
             "starter": {}}
    assert dependents("business", specs) == {"business", "enterprise", "gold"}
    assert dependents("starter", specs) == {"starter"}
