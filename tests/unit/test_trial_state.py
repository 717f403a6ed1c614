"""Trials decided without a cluster (tenantry.domain.lifecycle.trial_state and the Tenant model).

Tested here: served as Active before the end and Suspended from the end on (time zones compared
as instants); a date the calendar does not have is refused by the model, and treated as ended by
the operator if one gets past the webhook; a trial lasts at most MAX_TRIAL_DAYS from the Tenant's
creation however far its end is moved; a Trial without an end (stored while the webhook was down)
is admitted and suspended, not left served; so is a Trial whose spec the model refuses for any
other reason (an unknown limit: it ran past its end, billed as nothing), served from the parts the
model accepts; an Active tenant whose spec turns invalid keeps its namespace, url and state in
effect in the status (billed as served); other states pass through untouched.
The trial clock (trial_clock): a Tenant applied again over its own retained namespace counts from
the namespace's creation (deleting and re-applying the file gives no new MAX_TRIAL_DAYS); another
tenant's namespace, a foreign one, one being deleted (its data going) or a younger one changes
nothing; trial_end_of, what the operator's timer waits for, uses that clock; trial_clock_of, what
views read, takes the operator's status.trialStarted only when it is earlier than the creation.
"""

from __future__ import annotations

import datetime

import pytest
from pydantic import ValidationError

from tenantry.api.tenant import TenantSpec, Trial
from tenantry.domain import naming
from tenantry.domain.lifecycle import MAX_TRIAL_DAYS, trial_clock, trial_clock_of, trial_end_of, trial_state

UTC = datetime.UTC
BASE = {"company": "Probe GmbH", "contact": {"name": "P", "email": "p@probe.de"},
        "plan": {"featureSet": "starter", "seats": 5}}


def spec(**fields: object) -> TenantSpec:
    return TenantSpec.model_validate({**BASE, **fields})


def test_running_then_ended_as_instants() -> None:
    trial = spec(state="Trial", trial={"ends": "2027-01-31T23:00:00+01:00"})  # 22:00 UTC
    before = datetime.datetime(2027, 1, 31, 21, 59, 59, tzinfo=UTC)
    after = datetime.datetime(2027, 1, 31, 22, 0, 0, tzinfo=UTC)
    served, verdict = trial_state(trial, before)
    assert served.state == "Active" and verdict is not None and verdict.reason == "TrialRunning"
    served, verdict = trial_state(trial, after)
    assert served.state == "Suspended" and verdict is not None and verdict.reason == "TrialEnded"
    assert "data and access are kept" in verdict.message and "state Active" in verdict.message


@pytest.mark.parametrize("ends", ["2027-02-30T00:00:00Z", "2027-01-31T24:00:00Z", "2027-01-31T12:00:00+24:00",
                                  "0000-01-01T00:00:00Z"])
def test_a_date_the_calendar_lacks_is_refused(ends: str) -> None:
    with pytest.raises(ValidationError, match="not a real date and time"):
        spec(state="Trial", trial={"ends": ends})


def test_an_unreadable_end_that_got_in_counts_as_ended() -> None:
    # As if built by an older model: model_construct skips the validators.
    sneaked = TenantSpec.model_construct(**{**spec(state="Trial", trial={"ends": "2027-01-31T23:00:00Z"}).__dict__,
                                            "trial": Trial.model_construct(ends="2027-02-30T00:00:00Z")})
    served, verdict = trial_state(sneaked, datetime.datetime(2026, 1, 1, tzinfo=UTC))
    assert served.state == "Suspended" and verdict is not None and "not a real date" in verdict.message


def test_a_trial_lasts_at_most_the_maximum_from_creation() -> None:
    created = datetime.datetime(2027, 1, 1, tzinfo=UTC)
    forever = spec(state="Trial", trial={"ends": "9999-12-31T23:59:59Z"})
    last_day = created + datetime.timedelta(days=MAX_TRIAL_DAYS)
    served, verdict = trial_state(forever, last_day - datetime.timedelta(seconds=1), created)
    assert served.state == "Active" and verdict is not None and f"at most {MAX_TRIAL_DAYS} days" in verdict.message
    served, verdict = trial_state(forever, last_day, created)
    assert served.state == "Suspended" and verdict is not None and verdict.reason == "TrialEnded"


def test_other_states_pass_through() -> None:
    for state in ("Active", "Suspended", "Cancelled"):
        original = spec(state=state)
        assert trial_state(original, datetime.datetime.now(UTC)) == (original, None)
    with pytest.raises(ValidationError, match="state Trial needs trial.ends"):
        spec(state="Trial")


def test_a_trial_without_an_end_stored_while_the_webhook_was_down_is_suspended() -> None:
    # The model refuses it; the API server (webhook down) does not. Refused as invalid it would stay
    # served as last provisioned: a trial that never ends. It is admitted and suspended instead.
    from tenantry.domain.config import OperatorConfig
    from tenantry.domain.lifecycle import effective_state
    from tenantry.domain.tenantpass import admit
    raw = {**BASE, "state": "Trial"}
    body = {"metadata": {"name": "probe", "namespace": "partner-p", "creationTimestamp": "2027-01-01T00:00:00Z"},
            "spec": raw}
    admitted = admit(body, "p", {}, OperatorConfig())
    assert isinstance(admitted, TenantSpec) and admitted.state == "Trial" and admitted.trial is None
    served, verdict = trial_state(admitted, datetime.datetime(2027, 1, 2, tzinfo=UTC))
    assert served.state == "Suspended" and verdict is not None and verdict.reason == "TrialEnded"
    assert "without trial.ends" in verdict.message
    assert effective_state(raw, datetime.datetime(2027, 1, 2, tzinfo=UTC)) == "Suspended"
    # Anything else invalid stays refused as before.
    broken = admit({**body, "spec": {**raw, "plan": {"seats": -1}}}, "p", {}, OperatorConfig())
    assert not isinstance(broken, TenantSpec)


@pytest.mark.parametrize("invalid", [{"features": {"chat": {"limits": {"X": 1}}}}, {"features": {"made-up": {}}},
                                     {"trial": {"ends": "2099-02-30T00:00:00Z"}}, {"branding": "Not A Name"}])
def test_a_trial_whose_spec_turns_invalid_is_suspended_and_says_why(invalid: dict[str, object]) -> None:
    from tenantry.domain.config import OperatorConfig
    from tenantry.domain.tenantpass import EndedTrial, admit
    raw = {**BASE, "state": "Trial", "trial": {"ends": "2099-01-01T00:00:00Z"}, **invalid}
    body = {"metadata": {"name": "probe", "namespace": "partner-p", "creationTimestamp": "2027-01-01T00:00:00Z"},
            "spec": raw}
    ended = admit(body, "p", {}, OperatorConfig())
    assert isinstance(ended, EndedTrial) and ended.spec.state == "Suspended"
    assert (ended.verdict.type, ended.verdict.status, ended.verdict.reason) == ("Trial", "False", "TrialEnded")
    message = ended.verdict.message
    assert message.startswith("the Tenant is invalid: spec.") and "counts as ended" in message
    assert ended.spec.company == "Probe GmbH" and ended.spec.plan.seats == 5


def test_a_tenant_served_as_a_trial_made_active_and_invalid_at_once_counts_as_ended() -> None:
    """Converted to Active with an invalid part in the same edit: frozen as last served, it would be
    a trial running on, billed as nothing (its status says Trial)."""
    from tenantry.domain.config import OperatorConfig
    from tenantry.domain.tenantpass import EndedTrial, admit
    body = {"metadata": {"name": "probe", "namespace": "partner-p"}, "status": {"state": "Trial"},
            "spec": {**BASE, "state": "Active", "features": {"made-up": {}}}}
    ended = admit(body, "p", {}, OperatorConfig())
    assert isinstance(ended, EndedTrial) and ended.spec.state == "Suspended"


def test_an_invalid_trial_with_an_invalid_plan_stays_refused() -> None:
    from tenantry.domain.config import OperatorConfig
    from tenantry.domain.tenantpass import Refusal, admit
    raw = {**BASE, "state": "Trial", "trial": {"ends": "2099-01-01T00:00:00Z"}, "plan": {"seats": -1}}
    refused = admit({"metadata": {"name": "probe", "namespace": "partner-p"}, "spec": raw}, "p", {},
                    OperatorConfig())
    assert isinstance(refused, Refusal) and refused.verdicts[0].reason == "InvalidSpec"


def test_an_active_tenant_whose_spec_turns_invalid_keeps_what_it_is_served_in_the_status() -> None:
    from tenantry.domain.config import OperatorConfig
    from tenantry.domain.tenantpass import Refusal, admit
    held = {"namespace": "tenant-probe", "url": "https://probe.platform.test", "state": "Active", "partner": "x"}
    body = {"metadata": {"name": "probe", "namespace": "partner-p"},
            "spec": {**BASE, "state": "Suspended", "features": {"made-up": {}}}, "status": held}
    refused = admit(body, "p", {}, OperatorConfig())
    assert isinstance(refused, Refusal) and refused.verdicts[0].reason == "InvalidSpec"
    assert refused.fields == {"partner": "p", "namespace": "tenant-probe", "url": "https://probe.platform.test",
                              "state": "Active"}
    never = admit({**body, "status": {}}, "p", {}, OperatorConfig())  # never provisioned: nothing held
    assert isinstance(never, Refusal) and never.fields == {"partner": "p"}


def namespace(owner: str, created: str, managed: bool = True) -> dict[str, object]:
    labels = {naming.MANAGED_BY: naming.OPERATOR} if managed else {}
    return {"metadata": {"name": "tenant-probe", "creationTimestamp": created, "labels": labels,
                         "annotations": {naming.OWNER_ANNOTATION: owner}}}


def test_a_tenant_applied_again_over_its_retained_namespace_keeps_its_trial_clock() -> None:
    first, again = "2027-01-01T00:00:00Z", "2027-03-20T00:00:00Z"
    retained = namespace("partner-acme/probe", first)
    assert trial_clock(again, retained, "partner-acme", "probe") == first
    forever = {"state": "Trial", "trial": {"ends": "9999-12-31T23:59:59Z"}}
    ends = trial_end_of(forever, trial_clock(again, retained, "partner-acme", "probe"))
    assert ends == datetime.datetime(2027, 1, 1, tzinfo=UTC) + datetime.timedelta(days=MAX_TRIAL_DAYS)
    served, verdict = trial_state(TenantSpec.model_validate({**BASE, **forever}), ends, first)
    assert served.state == "Suspended" and verdict is not None and "first creation" in verdict.message


def test_only_its_own_older_namespace_moves_the_trial_clock() -> None:
    created = "2027-03-20T00:00:00Z"
    assert trial_clock(created, None, "partner-acme", "probe") == created
    assert trial_clock(created, namespace("partner-other/probe", "2026-01-01T00:00:00Z"), "partner-acme",
                       "probe") == created
    assert trial_clock(created, namespace("partner-acme/probe", "2026-01-01T00:00:00Z", managed=False),
                       "partner-acme", "probe") == created
    # Provisioned after the Tenant was created (the usual first pass): the Tenant's own creation.
    assert trial_clock(created, namespace("partner-acme/probe", "2027-03-20T00:00:05Z"), "partner-acme",
                       "probe") == created
    assert trial_clock(None, namespace("partner-acme/probe", "2027-01-01T00:00:00Z"), "partner-acme",
                       "probe") == "2027-01-01T00:00:00Z"


def test_trial_end_of_is_none_off_trial_or_for_an_impossible_end() -> None:
    assert trial_end_of({"state": "Active"}, None) is None
    assert trial_end_of({"state": "Trial", "trial": {"ends": "2027-02-30T00:00:00Z"}}, None) is None
    assert trial_end_of({"state": "Trial", "trial": {"ends": "2027-02-01T00:00:00Z"}}, None) == \
        datetime.datetime(2027, 2, 1, tzinfo=UTC)


def test_a_namespace_being_deleted_has_no_past() -> None:
    going = namespace("partner-acme/probe", "2026-01-01T00:00:00Z")
    going["metadata"]["deletionTimestamp"] = "2027-03-19T00:00:00Z"  # type: ignore[index]
    assert trial_clock("2027-03-20T00:00:00Z", going, "partner-acme", "probe") == "2027-03-20T00:00:00Z"


def test_views_read_the_operators_trial_clock_only_when_earlier() -> None:
    created = "2027-03-20T00:00:00Z"

    def body(started: object) -> dict[str, object]:
        return {"metadata": {"creationTimestamp": created}, "status": {"trialStarted": started}}

    assert trial_clock_of(body("2027-01-01T00:00:00Z")) == "2027-01-01T00:00:00Z"
    assert trial_clock_of(body("2027-04-01T00:00:00Z")) == created
    assert trial_clock_of(body("yesterday")) == created
    assert trial_clock_of(body(None)) == created
    assert trial_clock_of({"metadata": {"creationTimestamp": created}}) == created
