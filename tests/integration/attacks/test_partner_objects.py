"""A partner floods its own namespace with tenantry objects (its own GitOps ServiceAccount token).

Every Tenant, Branding, FeatureSet and Deal a partner writes is kept in etcd, in the operator's
memory and in the portal's; a quota bounds their number (not their bytes: see the example).
What this tests, against the real API server:
- examples/quota/partner-objects.yaml counts every resource the chart's partner role lets a partner
  create, in any group or by wildcard (a resource added to the role without a count fails here)
- with that quota (counts lowered to 2 for the test) the partner's third FeatureSet, Branding and
  Deal are refused by the API server, in words that name the quota and the count
- the partner can neither delete nor raise the quota
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tenantry.devtools import chart
from tests.integration.fixtures import PLATFORM_NAMESPACE, ChartPartner, ClusterHandle, wait_for

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "quota" / "partner-objects.yaml"
ALLOWED = 2  # the test's count per kind


def _partner_creatable() -> set[str]:
    """count/<resource>.<group> for every resource the chart's partner role may create, in any group
    (a wildcard verb, resource or group shows up as "*" and matches no count)."""
    role = next(o for o in chart.render(namespace=PLATFORM_NAMESPACE)
                if o["kind"] == "ClusterRole" and o["metadata"]["name"].endswith("-partner"))
    return {f"count/{resource}.{group}" if group else f"count/{resource}"
            for rule in role["rules"] if {"create", "*"} & set(rule["verbs"])
            for group in rule["apiGroups"] for resource in rule["resources"]}


@pytest.fixture(scope="module")
def flooding_partner(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChartPartner]:
    """A partner of its own (the quota must not touch the shared partners of other tests)."""
    partner_id = f"flood-{uuid.uuid4().hex[:6]}"
    chart.apply_partners(cluster.kubeconfig, [partner_id], PLATFORM_NAMESPACE)
    namespace = f"partner-{partner_id}"
    kubeconfig = chart.service_account_kubeconfig(cluster.kubeconfig, namespace, "tenantry-gitops",
                                                  tmp_path_factory.mktemp("flood") / "partner.kubeconfig")
    yield ChartPartner(cluster, namespace, partner_id, kubeconfig=kubeconfig)
    cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


def test_the_example_quota_counts_every_kind_a_partner_may_create() -> None:
    quota = yaml.safe_load(EXAMPLE.read_text())
    assert quota["kind"] == "ResourceQuota"
    assert set(quota["spec"]["hard"]) == _partner_creatable()


def _doc(kind: str, name: str, namespace: str) -> dict[str, Any]:
    specs = {"FeatureSet": {"features": {"chat": {}}},
             "Branding": {"colours": {"primary": "#1F4E79"}},
             "Deal": {"company": "Prospect GmbH", "stage": "Demo", "expected": {"monthly": 100}}}
    return {"apiVersion": "tenantry.dev/v1alpha1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "spec": specs[kind]}


def test_a_partner_cannot_hold_more_objects_than_its_quota(cluster: ClusterHandle,
                                                          flooding_partner: ChartPartner) -> None:
    partner = flooding_partner
    quota = yaml.safe_load(EXAMPLE.read_text())
    quota["metadata"]["namespace"] = partner.namespace
    quota["spec"]["hard"] = {resource: str(ALLOWED) for resource in quota["spec"]["hard"]}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(quota))

    def counted() -> bool:
        # Until the quota controller has counted, the API server refuses every counted create.
        live = json.loads(cluster.kubectl("get", "resourcequota", "partner-objects", "-n", partner.namespace,
                                          "-o", "json").stdout)
        return set(live.get("status", {}).get("used", {})) >= set(quota["spec"]["hard"])
    wait_for(counted, 60, "the quota controller to count the partner's objects")

    for kind, resource in (("FeatureSet", "featuresets"), ("Branding", "brandings"), ("Deal", "deals")):
        for number in range(ALLOWED):
            created = partner.apply_as_partner(_doc(kind, f"{resource}-{number}", partner.namespace))
            assert created.returncode == 0, created.stderr
        refused = partner.apply_as_partner(_doc(kind, f"{resource}-{ALLOWED}", partner.namespace))
        assert refused.returncode != 0, f"the partner's {kind} number {ALLOWED + 1} was accepted"
        assert "exceeded quota: partner-objects" in refused.stderr, refused.stderr
        assert f"limited: count/{resource}.tenantry.dev={ALLOWED}" in refused.stderr, refused.stderr


def test_the_partner_cannot_remove_or_raise_its_quota(cluster: ClusterHandle, flooding_partner: ChartPartner) -> None:
    partner = flooding_partner
    quota = yaml.safe_load(EXAMPLE.read_text())
    quota["metadata"]["namespace"] = partner.namespace
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(quota))
    deleted = partner.kubectl("delete", "resourcequota", "partner-objects", "-n", partner.namespace)
    assert deleted.returncode != 0 and "forbidden" in deleted.stderr.lower(), deleted.stderr
    raised = partner.kubectl("patch", "resourcequota", "partner-objects", "-n", partner.namespace, "--type=merge",
                             "-p", '{"spec": {"hard": {"count/deals.tenantry.dev": "1000000"}}}')
    assert raised.returncode != 0 and "forbidden" in raised.stderr.lower(), raised.stderr
    replaced = partner.apply_as_partner({**quota, "metadata": {"name": "more-room", "namespace": partner.namespace}})
    assert replaced.returncode != 0 and "forbidden" in replaced.stderr.lower(), replaced.stderr
    assert cluster.kubectl("get", "resourcequota", "partner-objects", "-n", partner.namespace).returncode == 0
