"""Trials on the real control plane: a Tenant in state Trial with trial.ends.

The operator runs with a resync of an hour here (watch_triggered): the pass that ends the trial
is the one timed to trial.ends, not a periodic one.

Tested here:
- a trial is provisioned and served like an Active tenant (URL, quota for pods), condition Trial=True
- at trial.ends it is suspended: Ready=True with reason Suspended (as any suspended tenant) and an
  Event of that reason saying the trial ended, condition Trial=False TrialEnded, status.state
  Suspended, the State column of `kubectl get tenants` and the metrics' state label Suspended (git's
  Trial in the wide Spec-State column), the quota refuses pods, no URL; never before trial.ends
- nothing is lost: a customer's object in the tenant namespace is still there
- converting the trial (state Active, trial removed) keeps the very same namespace and its data
- state Trial without trial.ends, stored with no webhook to refuse it, is suspended by the
  operator, whose Trial condition names the field (tenantry validate and the webhook refuse it)
- the trial's end is a metric for the TenantTrialEndsSoon alert
- as the partner: a Trial with deletionPolicy Retain, deleted and applied again, gets back its
  namespace and data but no new MAX_TRIAL_DAYS: its end (condition, metric, status.trialStarted
  for the CLI and portal) still counts from when its namespace was first provisioned
- Deals become the pipeline metrics (expected MRR and deals by stage), and leave them when deleted;
  `kubectl get deals` shows the CRD's columns
"""

from __future__ import annotations

import datetime
import json

import pytest
import yaml

from tenantry.domain.lifecycle import MAX_TRIAL_DAYS
from tests.integration.fixtures import ClusterHandle, OperatorProcess, Partner, namespace_of, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("watch_triggered")]


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_trial_ends_on_time_keeps_its_data_and_converts(partner: Partner, cluster: ClusterHandle,
                                                          operator: OperatorProcess) -> None:
    slug = partner.slug("trial")
    ends = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(seconds=25)
    partner.apply(partner.tenant(slug, state="Trial", trial={"ends": _rfc3339(ends)}))
    partner.wait_condition(slug, reason="Provisioned")
    trial = partner.condition(slug, kind="Trial")
    assert (trial["status"], trial["reason"]) == ("True", "TrialRunning")
    body = partner.get(slug) or {}
    assert body["status"]["state"] == "Trial" and body["status"].get("url")
    namespace = f"tenant-{slug}"
    uid = (namespace_of(cluster, namespace) or {})["metadata"]["uid"]
    cluster.kubectl("create", "configmap", "customer-data", "-n", namespace, "--from-literal=invoices=42")
    trial_series = f'tenantry_tenant_trial_ends_timestamp_seconds{{partner="acme-{partner.suffix}",tenant="{slug}"}}'
    assert operator.metric("tenantry_tenant_trial_ends_timestamp_seconds", tenant=slug) == ends.timestamp()

    ready = partner.wait_condition(slug, reason="Suspended", timeout=120)
    assert "trial ended" in ready["message"], ready
    ended = partner.condition(slug, kind="Trial")  # (Ready stayed True: its transition time is older)
    assert (ended["status"], ended["reason"]) == ("False", "TrialEnded")
    assert datetime.datetime.fromisoformat(ended["lastTransitionTime"].replace("Z", "+00:00")) >= ends
    body = partner.get(slug) or {}
    assert body["status"]["state"] == "Suspended" and "url" not in body["status"]
    assert body["spec"]["state"] == "Trial"  # git is not rewritten
    wide = cluster.kubectl("get", "tenant", slug, "-n", partner.namespace, "-o", "wide").stdout.splitlines()
    columns = dict(zip(wide[0].split(), wide[1].split(), strict=False))
    assert (columns["STATE"], columns["SPEC-STATE"], columns["READY"]) == ("Suspended", "Trial", "True"), wide
    wait_for(lambda: operator.metric("tenantry_tenant_info", tenant=slug, state="Suspended") == 1.0, timeout=30,
             what="the metrics' state label of the ended trial: Suspended")
    quota = json.loads(cluster.kubectl("get", "quota", "tenantry-quota", "-n", namespace, "-o", "json").stdout)
    assert quota["spec"]["hard"]["pods"] == "0"
    events = json.loads(cluster.kubectl("get", "events", "-n", partner.namespace, "--field-selector",
                                        f"involvedObject.name={slug}", "-o", "json").stdout)["items"]
    assert any(e["reason"] == "Suspended" and "trial ended" in e["message"] for e in events), \
        [(e["reason"], e["message"]) for e in events]
    assert cluster.kubectl("get", "configmap", "customer-data", "-n", namespace, "-o",
                           "jsonpath={.data.invoices}").stdout == "42"

    # Converted: the same namespace, the same data, served again.
    partner.apply(partner.tenant(slug, state="Active"))
    partner.wait_condition(slug, reason="Provisioned")
    assert (namespace_of(cluster, namespace) or {})["metadata"]["uid"] == uid
    assert cluster.kubectl("get", "configmap", "customer-data", "-n", namespace, "-o",
                           "jsonpath={.data.invoices}").stdout == "42"
    assert (partner.get(slug) or {})["status"]["state"] == "Active"
    wait_for(lambda: f'tenant="{slug}"' in operator.metrics_text() and trial_series not in operator.metrics_text(),
             timeout=30, what="the trial's metric gone after the conversion")


def _instant(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_trial_deleted_and_applied_again_gets_no_new_trial(partner: Partner, cluster: ClusterHandle,
                                                             operator: OperatorProcess) -> None:
    slug = partner.slug("retrial")
    forever = partner.tenant(slug, state="Trial", trial={"ends": "2099-12-31T23:59:59Z"}, deletionPolicy="Retain")
    partner.apply(forever)
    partner.wait_condition(slug, reason="Provisioned")
    first = _instant((partner.get(slug) or {})["metadata"]["creationTimestamp"])
    assert operator.metric("tenantry_tenant_trial_ends_timestamp_seconds", tenant=slug) == \
        (first + datetime.timedelta(days=MAX_TRIAL_DAYS)).timestamp()
    # kubectl's Trial-Ends column shows the end in effect (status.trialEnds), not the spec's 2099.
    capped = _rfc3339(first + datetime.timedelta(days=MAX_TRIAL_DAYS))
    assert (partner.get(slug) or {})["status"]["trialEnds"] == capped
    wide = cluster.kubectl("get", "tenant", slug, "-n", partner.namespace, "-o", "wide").stdout
    assert capped in wide and "2099" not in wide, wide
    namespace = f"tenant-{slug}"
    cluster.kubectl("create", "configmap", "customer-data", "-n", namespace, "--from-literal=invoices=42")

    partner.delete(slug)
    wait_for(lambda: ((namespace_of(cluster, namespace) or {}).get("metadata", {}).get("labels") or {})
             .get("tenantry.dev/orphaned") == "true", timeout=60, what="the retained namespace marked orphaned")
    # The new Tenant's creationTimestamp must differ from the first one's (whole seconds).
    wait_for(lambda: datetime.datetime.now(datetime.UTC) >= first + datetime.timedelta(seconds=2), timeout=10,
             what="two seconds after the first creation")
    partner.apply(forever)
    partner.wait_condition(slug, reason="Provisioned")
    assert _instant((partner.get(slug) or {})["metadata"]["creationTimestamp"]) > first
    provisioned = _instant((namespace_of(cluster, namespace) or {})["metadata"]["creationTimestamp"])
    assert provisioned < _instant((partner.get(slug) or {})["metadata"]["creationTimestamp"])
    ends = provisioned + datetime.timedelta(days=MAX_TRIAL_DAYS)
    # What the CLI and the portal read (a partner cannot read namespaces).
    assert _instant((partner.get(slug) or {})["status"]["trialStarted"]) == provisioned
    trial = partner.condition(slug, kind="Trial")
    assert trial["reason"] == "TrialRunning" and _rfc3339(ends) in trial["message"], trial
    wait_for(lambda: operator.metric("tenantry_tenant_trial_ends_timestamp_seconds", tenant=slug) == ends.timestamp(),
             timeout=30, what="the trial's end metric counting from the namespace's first provisioning")
    assert cluster.kubectl("get", "configmap", "customer-data", "-n", namespace, "-o",
                           "jsonpath={.data.invoices}").stdout == "42"


def test_a_trial_without_an_end_is_suspended_naming_the_field(partner: Partner) -> None:
    # The webhook refuses it; without one (as here) the API server stores it. Refused as invalid it
    # would stay served as last provisioned; the operator suspends it instead and says why.
    slug = partner.slug("endless")
    partner.apply(partner.tenant(slug, state="Trial"))
    cond = partner.wait_condition(slug, status="False", reason="TrialEnded", kind="Trial")
    assert "trial.ends" in cond["message"]
    assert partner.get(slug)["status"]["state"] == "Suspended"


def test_deals_are_pipeline_metrics(partner: Partner, operator: OperatorProcess) -> None:
    for name, stage, monthly in (("d1", "Demo", 450.0), ("d2", "Demo", 550.0), ("d3", "Proposal", 2400.0)):
        partner.apply({"apiVersion": "tenantry.dev/v1alpha1", "kind": "Deal",
                       "metadata": {"name": name, "namespace": partner.namespace},
                       "spec": {"company": f"Prospect {name}", "stage": stage, "expected": {"monthly": monthly}}})
    partner_id = f"acme-{partner.suffix}"

    def pipeline() -> tuple[float, float, float]:
        return (operator.metric("tenantry_partner_pipeline_mrr", partner=partner_id, stage="Demo"),
                operator.metric("tenantry_partner_pipeline_mrr", partner=partner_id, stage="Proposal"),
                operator.metric("tenantry_partner_pipeline_deals", partner=partner_id, stage="Demo"))
    wait_for(lambda: pipeline() == (1000.0, 2400.0, 2.0), timeout=30, what="the deals in the pipeline metrics")
    # kubectl get deals: the columns the CRD declares, as the API server fills them.
    listed = partner.cluster.kubectl("get", "deals", "-n", partner.namespace, "--sort-by=.metadata.name").stdout
    header, *rows = [line.split() for line in listed.splitlines()]
    assert header == ["NAME", "COMPANY", "STAGE", "EXPECTED-MRR", "CURRENCY", "CLOSE", "TRIAL", "AGE"], listed
    assert [row[:6] for row in rows] == [["d1", "Prospect", "d1", "Demo", "450", "EUR"],
                                         ["d2", "Prospect", "d2", "Demo", "550", "EUR"],
                                         ["d3", "Prospect", "d3", "Proposal", "2400", "EUR"]], listed
    partner.cluster.kubectl("delete", "deal", "d1", "-n", partner.namespace)
    wait_for(lambda: pipeline() == (550.0, 2400.0, 1.0), timeout=30, what="a deleted deal gone from the metrics")


def test_an_impossible_trial_end_is_refused_by_the_api_server(partner: Partner) -> None:
    """With the webhook down too: the CRD's date-time format, not only the model, refuses it (a spec
    the operator could not parse would leave the trial unreconciled, and so served)."""
    slug = partner.slug("feb30")
    result = partner.cluster.kubectl("apply", "-f", "-", check=False, input=yaml.safe_dump(
        partner.tenant(slug, state="Trial", trial={"ends": "2027-02-30T00:00:00Z"})))
    assert result.returncode != 0 and "spec.trial.ends" in result.stderr, result.stderr
    assert partner.get(slug) is None
