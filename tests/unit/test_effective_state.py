"""The state in effect, the same in every view (tenantry.domain.lifecycle.effective_state).

A Tenant in state Trial whose trial.ends has passed is served as Suspended; git keeps saying Trial.
Tested here, without a cluster:
- effective_state: spec.state as it is, except a Trial past its end (or past MAX_TRIAL_DAYS from
  creation, or with an end that is not a real instant) is Suspended; trial_state agrees at the boundary
- Ready for an ended trial is reported as for any Suspended tenant: True, reason Suspended, the
  trial's message saying why
- the metrics' state label and the partner's tenants-by-state count it as Suspended, not Trial
- `tenantry report` rows and `tenantry status` show Suspended (and the spec's Trial beside it)
- `kubectl get tenants` reads State from .status.state (test_crds.py checks the columns)
"""

from __future__ import annotations

import datetime

import pytest

from tenantry.api.tenant import TenantSpec
from tenantry.cli import views
from tenantry.domain.lifecycle import MAX_TRIAL_DAYS, effective_state, trial_state
from tenantry.domain.status import Verdict, ready_verdict
from tenantry.domain.usage import tenant_facts
from tenantry.metrics.tenants import partner_series, tenant_series

UTC = datetime.UTC
ENDS = "2027-01-31T23:00:00+01:00"  # 22:00 UTC
BEFORE = datetime.datetime(2027, 1, 31, 21, 59, 59, tzinfo=UTC)
AT = datetime.datetime(2027, 1, 31, 22, 0, 0, tzinfo=UTC)
SPEC = {"company": "Probe GmbH", "contact": {"name": "P", "email": "p@probe.de"}, "state": "Trial",
        "trial": {"ends": ENDS}, "plan": {"featureSet": "starter", "seats": 5,
                                          "price": {"monthly": 300, "currency": "EUR"}}}


def _body(spec: dict, created: str | None = "2027-01-10T00:00:00Z") -> dict:
    return {"metadata": {"name": "probe", "namespace": "partner-acme", "creationTimestamp": created},
            "spec": spec, "status": {"commissionRate": 0.2, "state": "Suspended", "partner": "acme",
                                     "conditions": [{"type": "Ready", "status": "True", "reason": "Suspended",
                                                     "message": "the trial ended"}]}}


@pytest.mark.parametrize(("spec", "state"), [({"state": "Active"}, "Active"), ({}, "Active"),
                                             ({"state": "Suspended"}, "Suspended"),
                                             ({"state": "Cancelled"}, "Cancelled")])
def test_other_states_are_what_the_spec_says(spec: dict, state: str) -> None:
    assert effective_state(spec, AT) == state


def test_a_trial_is_trial_until_its_end_and_suspended_from_then_on() -> None:
    assert effective_state(SPEC, BEFORE) == "Trial"
    assert effective_state(SPEC, AT) == "Suspended"
    # trial_state (what the operator serves) draws the line at the same instant.
    spec = TenantSpec.model_validate(SPEC)
    assert trial_state(spec, BEFORE)[0].state == "Active" and trial_state(spec, AT)[0].state == "Suspended"


def test_the_maximum_from_creation_and_an_unreadable_end_count() -> None:
    created = datetime.datetime(2027, 1, 1, tzinfo=UTC)
    forever = {**SPEC, "trial": {"ends": "9999-12-31T23:59:59Z"}}
    last = created + datetime.timedelta(days=MAX_TRIAL_DAYS)
    assert effective_state(forever, last - datetime.timedelta(seconds=1), "2027-01-01T00:00:00Z") == "Trial"
    assert effective_state(forever, last, "2027-01-01T00:00:00Z") == "Suspended"
    assert effective_state(forever, last, created) == "Suspended"  # an instant as well as its text
    for ends in ("2027-02-30T00:00:00Z", "2027-01-31T23:00:00", 42):  # no such day, no zone, no text
        assert effective_state({**SPEC, "trial": {"ends": ends}}, BEFORE) == "Suspended"


def test_ready_of_an_ended_trial_reads_as_a_suspended_tenants() -> None:
    ok = Verdict("NamespaceReady", "True", "Provisioned")
    _, ended = trial_state(TenantSpec.model_validate(SPEC), AT)
    assert ended is not None and ended.reason == "TrialEnded"
    ready = ready_verdict([ok], effective_state(SPEC, AT), ended)
    suspended = ready_verdict([ok], "Suspended")
    assert (ready.status, ready.reason) == (suspended.status, suspended.reason) == ("True", "Suspended")
    assert "trial ended" in ready.message and "suspended" in ready.message


def test_metrics_count_an_ended_trial_as_suspended() -> None:
    def state_label(now: datetime.datetime | None) -> str:
        facts = tenant_facts("probe", "acme", SPEC, None, {}, True, None, created="2027-01-10T00:00:00Z", now=now)
        info = next(labels for name, labels, _ in tenant_series(facts) if name == "tenantry_tenant_info")
        counts = {labels["state"]: n for name, labels, n in partner_series("acme", [facts], (("Bronze", 0.0),))
                  if name == "tenantry_partner_tenants"}
        assert counts[info["state"]] == 1 and sum(counts.values()) == 1
        return info["state"]
    assert state_label(BEFORE) == "Trial"
    assert state_label(AT) == "Suspended"


def test_report_and_status_show_the_state_in_effect(capsys: pytest.CaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    body = _body(SPEC)
    assert views.row(body, now=BEFORE)["state"] == "Trial"
    ended = views.row(body, now=AT)
    assert (ended["state"], ended["mrr"], ended["commission"]) == ("Suspended", 0.0, 0.0)
    assert "Suspended" in views.render([ended], "table") and "Trial" not in views.render([ended], "table")
    assert views.row(_body({**SPEC, "state": "Active"}), now=AT)["state"] == "Active"

    # `tenantry status` at today's clock: a trial that ended in 2020.
    monkeypatch.setattr(views, "_visible", lambda *a, **k: [_body({**SPEC, "trial": {"ends": "2020-01-01T00:00:00Z"}},
                                                                  created="2019-12-01T00:00:00Z")])
    args = type("Args", (), {"kubeconfig": None, "context": None, "partner": None, "namespace": None,
                             "slug": "probe", "format": "table"})()
    assert views.status(args) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "probe  (Probe GmbH, partner acme, Suspended (spec.state Trial: the trial ended), plan starter)"

