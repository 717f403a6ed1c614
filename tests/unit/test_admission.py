"""Admission decisions and leader-election timing, without a cluster.

Tested here:
- the model's rules as problems with a YAML field path (quoted odd keys) and the validate wording
- an invalid dictionary key (a limit name) is said under its dictionary, quoted and cut; a field or
  key literally named "[key]" is not taken for one; a document with thousands of problems gets
  ERRORS_SHOWN of them and a count, and thousands of unknown features a short message
- reserved tenantry.dev/ labels and annotations: added, changed or removed is refused, untouched is fine
- the currency is immutable only once a tenant is provisioned
- a plan's resources are platform-only in partner namespaces, and only when this request changes them
- who may override: the platform groups and the operator's own account, nobody else
- the operator's finalizer is reserved (removing it would skip the clean-up)
- a taken and a reserved slug (or domain) get the same words, naming neither holder nor reason
- leader election: a lease is taken only when free, ours, or unchanged for its whole duration by
  our own clock; the lease spec counts transitions; timings must nest
"""

from __future__ import annotations

import datetime

import pytest

from tenantry.domain import admission, leadership, lifecycle

TENANT = {"company": "Mustermann GmbH", "contact": {"name": "Max", "email": "max@mustermann.de"},
          "plan": {"featureSet": "business", "seats": 5}}


def test_spec_problems_name_the_field_like_validate() -> None:
    problems = admission.spec_problems("Tenant", {**TENANT, "features": {"teleport": {}}, "plan": {"seats": 0}})
    text = [str(p) for p in problems]
    assert any(t.startswith("spec.features: unknown feature(s) teleport") for t in text), text
    assert any(t.startswith("spec.plan.featureSet: Field required") for t in text), text
    assert any(t.startswith("spec.plan.seats: Input should be greater than or equal to 1") for t in text), text
    assert admission.spec_problems("Tenant", TENANT) == []


def test_odd_keys_are_quoted_in_the_field_path() -> None:
    problem = admission.Problem(("metadata", "labels", "tenantry.dev/partner"), "reserved")
    assert problem.field == 'metadata.labels["tenantry.dev/partner"]'



def test_an_invalid_key_is_said_under_its_dictionary() -> None:
    limits = {'x"}\nevil': 1, "B" * 500: 2, "ok": 3}
    text = [str(p) for p in admission.spec_problems("Tenant", {**TENANT, "features": {"tables": {"limits": limits}}})]
    assert text == ['spec.features.tables.limits: the key "x\\"}\\nevil": String should match pattern '
                    "'^[a-z][a-zA-Z0-9-]{0,62}$'",
                    f'spec.features.tables.limits: the key "{"B" * 40}...": String should have at most 63 characters']


def test_a_field_or_key_named_like_pydantics_key_marker_is_not_a_key_error() -> None:
    extra = [str(p) for p in admission.spec_problems("Tenant", {**TENANT, "[key]": 1})]
    assert extra == ['spec["[key]"]: Extra inputs are not permitted']
    nested = [str(p) for p in admission.spec_problems(
        "Tenant", {**TENANT, "contact": {**TENANT["contact"], "[key]": 1}})]
    assert nested == ['spec.contact["[key]"]: Extra inputs are not permitted']


def test_thousands_of_problems_make_a_short_message() -> None:
    limits = {f"K{i}": 1 for i in range(30)}
    problems = admission.spec_problems("Tenant", {**TENANT, "features": {"tables": {"limits": limits}}})
    assert len(problems) == lifecycle.ERRORS_SHOWN + 1
    assert str(problems[-1]) == f"spec: and {30 - lifecycle.ERRORS_SHOWN} more problems"  # one per key
    wide = {f"f{i}": {"limits": {chr(65 + j): 1 for j in range(26)}} for i in range(5000)}
    text = [str(p) for p in admission.spec_problems("Tenant", {**TENANT, "features": wide})]
    assert len(text) == 1 and len(text[0]) < 400 and "and 4990 more" in text[0], text

@pytest.mark.parametrize(("old", "new", "refused"), [
    (None, {"labels": {"team": "nord"}}, []),
    (None, {"labels": {"tenantry.dev/partner": "x"}}, ["tenantry.dev/partner"]),
    ({"labels": {"tenantry.dev/tenant": "a"}}, {"labels": {"tenantry.dev/tenant": "b"}}, ["tenantry.dev/tenant"]),
    ({"annotations": {"tenantry.dev/owner": "a"}}, {"annotations": {}}, ["tenantry.dev/owner"]),
    ({"labels": {"tenantry.dev/tenant": "a"}}, {"labels": {"tenantry.dev/tenant": "a", "x": "y"}}, []),
], ids=["ordinary", "added", "changed", "removed", "untouched"])
def test_reserved_metadata(old: dict | None, new: dict, refused: list[str]) -> None:
    problems = admission.reserved_metadata_changes(old, new)
    assert [p.location[-1] for p in problems] == refused
    assert all("reserved for tenantry" in p.message for p in problems)


def _tenant(currency: str, provisioned: bool) -> dict:
    return {"spec": {**TENANT, "plan": {**TENANT["plan"], "price": {"monthly": 10, "currency": currency}}},
            "status": {"namespace": "tenant-x"} if provisioned else {}}


def test_currency_is_immutable_once_provisioned() -> None:
    new_spec = _tenant("USD", True)["spec"]
    [problem] = admission.immutable_changes("Tenant", _tenant("EUR", True), new_spec)
    assert str(problem).startswith("spec.plan.price.currency: the currency of a provisioned tenant cannot change "
                                   "(EUR -> USD)")
    assert admission.immutable_changes("Tenant", _tenant("EUR", False), new_spec) == []
    assert admission.immutable_changes("Tenant", None, new_spec) == []
    assert admission.immutable_changes("Tenant", _tenant("USD", True), new_spec) == []


def test_plan_resources_are_platform_only_in_partner_namespaces() -> None:
    resources = {"base": {"cpu": "64"}}
    refused = admission.platform_only_changes("FeatureSet", "partner-a", "tenantry-system", None,
                                              {"resources": resources})
    assert [p.field for p in refused] == ["spec.resources"]
    assert admission.platform_only_changes("FeatureSet", "tenantry-system", "tenantry-system", None,
                                           {"resources": resources}) == []
    # Set by the platform earlier and left alone by the partner's edit: fine.
    assert admission.platform_only_changes("FeatureSet", "partner-a", "tenantry-system", {"resources": resources},
                                           {"resources": resources, "displayName": "x"}) == []
    assert admission.platform_only_changes("FeatureSet", "partner-a", "tenantry-system", None, {}) == []


def test_the_platform_groups_and_the_operator_itself_may_override() -> None:
    groups, operator = ("system:masters", "tenantry:platform-admins"), "system:serviceaccount:tenantry-system:tenantry"
    assert admission.may_override({"username": "admin", "groups": ["system:masters"]}, groups, operator)
    # The operator's kopf bookkeeping annotations are under tenantry.dev/ as well.
    assert admission.may_override({"username": operator, "groups": ["system:serviceaccounts"]}, groups, operator)
    assert not admission.may_override({"username": "system:serviceaccount:partner-a:tenantry-gitops",
                                       "groups": ["system:serviceaccounts", "system:authenticated"]}, groups, operator)
    assert not admission.may_override({}, groups, operator)


def test_the_operators_finalizer_is_reserved() -> None:
    old = {"finalizers": ["tenantry.dev/finalizer", "other/finalizer"]}
    [problem] = admission.reserved_metadata_changes(old, {"finalizers": ["other/finalizer"]})
    assert str(problem).startswith("metadata.finalizers: finalizer 'tenantry.dev/finalizer' is the operator's")
    assert admission.reserved_metadata_changes(old, {"finalizers": ["tenantry.dev/finalizer"]}) == []


def test_a_create_may_carry_only_the_finalizers_it_was_given() -> None:
    given = ("tenantry.dev/finalizer",)
    assert admission.reserved_metadata_changes(None, {"finalizers": ["tenantry.dev/finalizer"]}, given) == []
    [problem] = admission.reserved_metadata_changes(None, {"finalizers": ["tenantry.dev/finalizer", "tenantry.dev/x"]},
                                                    given)
    assert "'tenantry.dev/x'" in str(problem)
    # Only on create: an update may not add it, nor remove it.
    assert admission.reserved_metadata_changes({}, {"finalizers": ["tenantry.dev/finalizer"]}, given) != []
    assert admission.reserved_metadata_changes({"finalizers": ["tenantry.dev/finalizer"]}, {}, given) != []
    assert admission.reserved_metadata_changes(None, {"finalizers": ["tenantry.dev/finalizer"]}) != []


@pytest.mark.parametrize(("metadata", "patch"), [
    ({}, [{"op": "add", "path": "/metadata/finalizers", "value": ["tenantry.dev/finalizer"]}]),
    ({"finalizers": None}, [{"op": "add", "path": "/metadata/finalizers", "value": ["tenantry.dev/finalizer"]}]),
    ({"finalizers": ["other/x"]}, [{"op": "add", "path": "/metadata/finalizers/-", "value": "tenantry.dev/finalizer"}]),
    ({"finalizers": ["tenantry.dev/finalizer"]}, []),
])
def test_a_created_tenant_gets_the_finalizer_once(metadata: dict, patch: list) -> None:
    assert admission.finalizer_patch(metadata) == patch


def test_slug_message_never_names_the_holder() -> None:
    problem = admission.slug_unavailable("mustermann")
    assert "partner" not in problem.message and problem.hint == admission.UNAVAILABLE_SLUG_HINT
    assert str(problem) == ("metadata.name: tenant name 'mustermann' is not available on this platform (tenant "
                            "names are unique across all partners and some are reserved: choose another "
                            "metadata.name)")


def test_taken_and_reserved_read_alike() -> None:
    # One function for both answers: the words cannot tell which it was, nor who holds the name.
    assert str(admission.slug_unavailable("www")).replace("www", "X") == \
        str(admission.slug_unavailable("acme")).replace("acme", "X")
    domain = str(admission.domain_unavailable(0, "ki.a.de"))
    assert domain == ("spec.domains[0]: custom domain 'ki.a.de' is not available on this platform (a domain can "
                      "belong to one tenant only, and some are reserved: list another domain or ask the platform "
                      "team)")
    assert "claimed" not in domain and "taken" not in domain


T = leadership.Timing(lease_duration=15, renew_deadline=10, retry_period=2)


def test_lease_is_taken_only_when_free_ours_or_expired_by_our_clock() -> None:
    held = {"holderIdentity": "other", "renewTime": "2026-11-26T10:00:00.000000Z"}
    seen = leadership.observe(None, held, now=100.0)
    assert not leadership.may_take(seen, "me", T.lease_duration, now=110.0)
    # The same record still unchanged after the whole duration: the holder is gone.
    assert leadership.observe(seen, held, now=116.0) is seen
    assert leadership.may_take(seen, "me", T.lease_duration, now=116.0)
    # A renewal restarts our clock, whatever the timestamps say (no trust in other machines' clocks).
    renewed = leadership.observe(seen, {**held, "renewTime": "2020-01-01T00:00:00.000000Z"}, now=116.0)
    assert not leadership.may_take(renewed, "me", T.lease_duration, now=120.0)
    assert leadership.may_take(leadership.observe(None, {}, 0.0), "me", T.lease_duration, now=0.0)
    assert leadership.may_take(leadership.observe(None, {"holderIdentity": "me"}, 0.0), "me", 15, now=0.0)


def test_lease_spec_counts_transitions_and_keeps_acquire_time_on_renewal() -> None:
    now = datetime.datetime(2026, 11, 26, 10, 0, 0, tzinfo=datetime.UTC)
    first = leadership.lease_spec({}, "a", 15, now)
    assert first["leaseTransitions"] == 0 and first["holderIdentity"] == "a"
    assert first["renewTime"] == "2026-11-26T10:00:00.000000Z"
    renewed = leadership.lease_spec(first, "a", 15, now + datetime.timedelta(seconds=2))
    assert renewed["acquireTime"] == first["acquireTime"] and renewed["leaseTransitions"] == 0
    taken = leadership.lease_spec(renewed, "b", 15, now + datetime.timedelta(seconds=30))
    assert taken["leaseTransitions"] == 1 and taken["acquireTime"] == "2026-11-26T10:00:30.000000Z"
    assert leadership.released(taken)["holderIdentity"] is None


@pytest.mark.parametrize("values", [(10, 10, 2), (15, 10, 10), (15, 10, 0)])
def test_timings_must_nest(values: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError, match="retry"):
        leadership.Timing(*values)
