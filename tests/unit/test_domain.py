"""Pure domain decisions: quantities, drift detection, conditions, claims, spec errors, settings.

Parsed quantities are cached only when short (a tenant admin's long text is not kept). A ConfigMap
of ours holds exactly our data: no key, binary or not, and no value that only reads the same.
Property-based tests (hypothesis) check that formatting a quantity keeps its value and that
random specs either validate or yield a message naming fields under `spec`.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tenantry.api.tenant import TenantSpec
from tenantry.domain import naming, quantity, tenantpass
from tenantry.domain.config import OperatorConfig, parse_labels
from tenantry.domain.contest import Contest
from tenantry.domain.drift import OTHERS_DATA, changed_by_others, covers, holds, other_writer
from tenantry.domain.lifecycle import Claim, claim, error_lines, parse_tenant_spec, partner_of
from tenantry.domain.status import Verdict, conditions, ready_verdict


@pytest.mark.parametrize(("text", "value"), [("500m", Fraction(1, 2)), ("2", 2), ("1.5", Fraction(3, 2)),
                                             ("1Gi", 2**30), ("4k", 4000)])
def test_parse_quantity(text: str, value: Fraction) -> None:
    assert quantity.parse(text) == value


def test_parse_rejects_garbage_with_a_hint() -> None:
    with pytest.raises(ValueError, match="examples: 500m"):
        quantity.parse("lots")


def test_parse_caches_only_short_quantities() -> None:
    # drift compares any two differing strings as quantities, some written by a tenant admin (an
    # annotation of 250 KB): such text must not stay in the cache.
    quantity._parse.cache_clear()
    assert quantity.parse("7" + " " * 250_000) == 7  # cached as "7"
    assert quantity.parse("1" * 40) == int("1" * 40)
    with pytest.raises(ValueError):
        quantity.parse("x" * 250_000)
    assert quantity._parse.cache_info().currsize == 1
    assert quantity.parse(" 7 ") == 7 and quantity._parse.cache_info().hits == 1


@given(st.integers(min_value=0, max_value=10**7))
def test_cpu_formatting_keeps_the_value(millis: int) -> None:
    assert quantity.parse(quantity.format_cpu(Fraction(millis, 1000))) == Fraction(millis, 1000)


@given(st.integers(min_value=0, max_value=10**7))
def test_memory_formatting_keeps_the_value(mebibytes: int) -> None:
    assert quantity.parse(quantity.format_bytes(Fraction(mebibytes * 2**20))) == mebibytes * 2**20


def test_a_configmap_of_ours_holds_exactly_our_data() -> None:
    desired = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"labels": {"a": "1"}},
               "data": {"seats": "50", "slug": "acme"}}
    live = {**desired, "metadata": {"labels": {"a": "1", "b": "2"}, "resourceVersion": "7"}}
    assert holds(live, desired)
    for added in ({"data": {**desired["data"], "logo.svg": "<svg onload=x/>"}},  # a key of ours it should not have
                  {"data": {**desired["data"], "seats": "0.05k"}},  # reads the same as a quantity only
                  {"binaryData": {"payload.bin": "AAEC"}},
                  {OTHERS_DATA: True}):  # what memory does not keep, marked
        assert not holds({**live, **added}, desired), added
    # Other kinds compare as before: extra fields stay, quantities by value.
    quota = {"kind": "ResourceQuota", "spec": {"hard": {"requests.memory": "1024Mi"}}}
    assert holds({"kind": "ResourceQuota", "spec": {"hard": {"requests.memory": "1Gi", "pods": "2"}}}, quota)


def test_covers_ignores_extra_fields_and_compares_quantities_by_value() -> None:
    desired = {"spec": {"hard": {"requests.memory": "1024Mi", "pods": "20"}}, "metadata": {"labels": {"a": "1"}}}
    live = {"spec": {"hard": {"requests.memory": "1Gi", "pods": "20"}}, "metadata": {"labels": {"a": "1", "b": "2"}},
            "status": {"used": {}}}
    assert covers(live, desired)
    assert not covers({**live, "spec": {"hard": {"requests.memory": "2Gi", "pods": "20"}}}, desired)
    assert not covers({"metadata": {"labels": {"a": "1"}}}, desired)
    assert not covers({"rules": [1]}, {"rules": [1, 2]})
    assert not covers({"name": "a"}, {"name": "b"})


def test_conditions_keep_transition_time_while_unchanged() -> None:
    previous = [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    same = conditions([Verdict("Ready", "True", "Provisioned")], previous, 3, "2026-02-02T00:00:00Z")
    flipped = conditions([Verdict("Ready", "False", "SlugConflict")], previous, 3, "2026-02-02T00:00:00Z")
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert flipped[0]["lastTransitionTime"] == "2026-02-02T00:00:00Z"
    assert same[0]["observedGeneration"] == 3


def test_ready_takes_the_first_failing_aspect() -> None:
    ok = Verdict("NamespaceReady", "True", "Provisioned")
    bad = Verdict("FeaturesReady", "False", "FeatureSetNotFound", "no FeatureSet")
    assert ready_verdict([ok, bad], "Active") == Verdict("Ready", "False", "FeatureSetNotFound", "no FeatureSet")
    assert ready_verdict([ok], "Suspended").reason == "Suspended"
    ended = Verdict("Trial", "False", "TrialEnded", "the trial ended")
    # Suspended on purpose, like any Suspended tenant: Ready=True, reason Suspended, the trial's message.
    assert ready_verdict([ok], "Suspended", ended) == Verdict("Ready", "True", "Suspended", "the trial ended")
    assert ready_verdict([ok, bad], "Suspended", ended).reason == "FeatureSetNotFound"


def _ns(labels=None, owner=None):
    meta = {"labels": labels or {}, "annotations": {naming.OWNER_ANNOTATION: owner} if owner else {}}
    return {"metadata": meta}


def test_claims() -> None:
    ours = naming.tenant_labels("m", "acme")
    assert claim(None, "partner-acme", "m") is Claim.FREE
    assert claim(_ns(ours, "partner-acme/m"), "partner-acme", "m") is Claim.OURS
    assert claim(_ns(ours, "partner-other/m"), "partner-acme", "m") is Claim.TAKEN
    assert claim(_ns({}), "partner-acme", "m") is Claim.FOREIGN
    assert claim(_ns(ours), "partner-acme", "m") is Claim.FOREIGN


def test_partner_of() -> None:
    assert partner_of(_ns({naming.PARTNER_LABEL: "acme"})) == "acme"
    assert partner_of(_ns({})) is None and partner_of(None) is None


def test_a_tenant_namespace_is_never_a_partner_namespace() -> None:
    """A namespace labelled both partner and tenant (every tenant namespace carries its partner's
    id), or managed by the operator, is no partner's: the reconcile and the webhook refuse a Tenant
    there (NotInPartnerNamespace), as the portal ignores it."""
    tenant = naming.tenant_labels("mustermann", "acme")
    assert partner_of(_ns(tenant)) is None
    assert partner_of(_ns({naming.PARTNER_LABEL: "acme", naming.TENANT_LABEL: "mustermann"})) is None
    assert partner_of(_ns({naming.PARTNER_LABEL: "evil", naming.MANAGED_BY: naming.OPERATOR})) is None
    assert partner_of(_ns({naming.PARTNER_LABEL: "acme", naming.MANAGED_BY: "Helm"})) == "acme"  # the chart's
    body = {"metadata": {"name": "x", "namespace": "tenant-mustermann"}, "spec": {}}
    refusal = tenantpass.admit(body, partner_of(_ns(tenant)), {}, OperatorConfig())
    assert isinstance(refusal, tenantpass.Refusal)
    assert {v.reason for v in refusal.verdicts} == {"NotInPartnerNamespace"}


def test_spec_errors_name_the_fields() -> None:
    message = parse_tenant_spec({"company": "", "plan": {"featureSet": "x", "seats": 0}})
    assert isinstance(message, str)
    assert "spec.company" in message and "spec.plan.seats" in message and "spec.contact" in message


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["company", "contact", "plan", "state", "admins", "domains", "x"]),
                       st.one_of(st.none(), st.integers(), st.text(max_size=20),
                                 st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
                                 st.lists(st.text(max_size=10), max_size=3))))
def test_random_specs_validate_or_explain(raw: dict) -> None:
    try:
        TenantSpec.model_validate(raw)
    except ValidationError as error:
        lines = error_lines(error, "spec")
        assert lines and all(line.startswith("spec") and ": " in line for line in lines)
    assert isinstance(parse_tenant_spec(raw), (str, TenantSpec))


def test_odd_keys_are_quoted_in_field_paths() -> None:
    message = parse_tenant_spec({"company": "X", "contact": {"name": "a", "email": "a@b.de", "; ": 0},
                                 "plan": {"featureSet": "x", "seats": 1}})
    assert isinstance(message, str) and 'spec.contact["; "]' in message


def test_a_collection_over_its_bound_is_counted_not_printed() -> None:
    """pydantic stops counting a mapping at its bound ("not more"): the message says how many."""
    too_many = {"company": "X", "contact": {"name": "a", "email": "a@b.de"}, "plan": {"featureSet": "x", "seats": 1},
                "admins": [f"a{i}@x.de" for i in range(51)],
                "features": {"tables": {"limits": {f"l{i}": 1 for i in range(33)}}}}
    message = parse_tenant_spec(too_many)
    assert isinstance(message, str)
    assert "spec.admins: 51 items, at most 50 allowed: remove some" in message
    assert "spec.features.tables.limits: 33 entries, at most 32 allowed: remove some" in message
    assert "a50@x.de" not in message and "l32" not in message


def test_settings_from_environment() -> None:
    config = OperatorConfig.from_env({"TENANTRY_PLATFORM_DOMAIN": "ki.example",
                                      "TENANTRY_INGRESS_NAMESPACE_LABELS": "team=ingress"})
    assert config.platform_domain == "ki.example"
    assert config.ingress_namespace_labels == {"team": "ingress"}
    with pytest.raises(ValueError, match="key=value"):
        parse_labels("oops")


def test_claim_and_reserved_name_settings() -> None:
    default = OperatorConfig()
    assert default.domain_claim_ttl_seconds == 7 * 86400 and default.max_pending_domains == 20
    assert all(default.slug_reserved(name) for name in ("www", "api", "admin", "login", "mail", "status", "app",
                                                         "auth", "dashboard", "portal", "grafana", "metrics",
                                                         "ingress", "smtp", "ns1", "ns2"))
    assert not default.slug_reserved("mustermann")
    config = OperatorConfig.from_env({"TENANTRY_DOMAIN_CLAIM_TTL_SECONDS": "120", "TENANTRY_MAX_PENDING_DOMAINS": "3",
                                      "TENANTRY_RESERVED_SLUGS": "acme-cloud, billing-eu",
                                      "TENANTRY_RESERVED_DOMAINS": "Platform-Corp.de."})
    assert (config.domain_claim_ttl_seconds, config.max_pending_domains) == (120, 3)
    assert config.slug_reserved("acme-cloud") and config.slug_reserved("www")  # added to the defaults
    assert config.domain_reserved("platform-corp.de") and config.domain_reserved("mail.platform-corp.de")
    assert not config.domain_reserved("notplatform-corp.de")
    with pytest.raises(ValueError, match="TENANTRY_DOMAIN_CLAIM_TTL_SECONDS"):
        OperatorConfig.from_env({"TENANTRY_DOMAIN_CLAIM_TTL_SECONDS": "0"})


def test_changed_by_others_reads_the_latest_managed_fields_entry() -> None:
    ours = {"manager": "tenantry", "time": "2026-01-01T00:00:02Z", "fieldsV1": {"f:spec": {}}}
    kubectl = {"manager": "kubectl-edit", "time": "2026-01-01T00:00:03Z", "fieldsV1": {"f:spec": {}}}
    quota_usage = {"manager": "kube-controller-manager", "time": "2026-01-01T00:00:04Z", "fieldsV1": {"f:status": {}}}
    assert changed_by_others([ours, kubectl]) is True
    assert changed_by_others([kubectl, ours | {"time": "2026-01-01T00:00:05Z"}]) is False
    assert changed_by_others([ours, quota_usage]) is False
    assert changed_by_others(None) is True


def test_a_contested_object_is_corrected_a_few_times_then_left_alone() -> None:
    contest = Contest(limit=3, window=10, pause=60)
    quota = ("tenant-a", "ResourceQuota", "tenantry-quota")
    assert [contest.may_correct(quota, t) for t in (0, 1, 2)] == [True, True, True]
    assert not contest.may_correct(quota, 3)  # the fourth change within 10 s: stop fighting
    assert contest.paused_until(quota, 3) == 63
    assert not contest.may_correct(quota, 50)
    assert contest.may_correct(quota, 64)  # after the pause: one more round
    # Corrections spread out more than the window apart never pause.
    spread = ("tenant-a", "LimitRange", "tenantry-limits")
    assert all(contest.may_correct(spread, t * 11) for t in range(10))
    contest.forget("tenant-a")
    assert contest.paused_until(quota, 65) is None and contest.may_correct(quota, 65)


def test_only_rewriting_the_same_desired_object_counts_as_a_correction() -> None:
    contest = Contest(limit=2, window=60, pause=60)
    quota = ("tenant-a", "ResourceQuota", "tenantry-quota")
    assert contest.may_write(quota, digest=1, now=0)  # first sight
    contest.written(quota, 1)
    assert contest.may_write(quota, 1, now=1) and contest.may_write(quota, 1, now=2)  # two corrections
    assert not contest.may_write(quota, 1, now=3)  # a third: paused
    assert contest.may_write(quota, digest=2, now=4)  # the plan changed: our own change is always written


def test_other_writer_names_the_manager_of_the_latest_change() -> None:
    ours = {"manager": "tenantry", "time": "2026-11-26T10:00:00Z", "fieldsV1": {"f:spec": {}}}
    bot = {"manager": "quota-bot", "time": "2026-11-26T10:00:05Z", "fieldsV1": {"f:spec": {}}}
    controller = {"manager": "kube-controller-manager", "time": "2026-11-26T10:00:09Z", "fieldsV1": {"f:status": {}}}
    assert other_writer([ours, bot]) == "quota-bot"
    assert other_writer([ours]) is None
    assert other_writer([ours, controller]) is None  # status updates are not edits
    # ...and do not hide an edit made just before them
    assert other_writer([ours, bot, controller]) == "quota-bot"
    assert other_writer([]) == "an unknown writer"
