"""Objects nested as deep as the API server stores them, written by a tenant admin or a partner.

Anyone who may write an object may send its metadata.managedFields, and the API server keeps a
fieldsV1 nested up to its JSON decoder's limit (10,000 levels); every watch event, list and
admission review then carries it. Python's parsers stop at 1,000 levels by default. Before the fix:
- kopf's watch of Pods failed on such a pod and kopf started over, again and again (the operator
  exits after eight quick restarts), with the webhook answering 503 meanwhile (failing open);
- an informer's list failed on a ConfigMap labelled as the operator's, so it never synced again
  and every reconcile waited for it;
- the webhook could not read the review and answered 400, which failurePolicy Ignore admits: a
  node-takeover pod went in with the webhook up.

Attacks covered (tenant admin impersonated, partner with its own token):
- webhook down: a takeover pod and a ConfigMap labelled managed-by=tenantry, both nested 9,990
  levels deep: the operator deletes the pod, keeps running (same process, no watch started over),
  and a Tenant created afterwards by the partner, nested as deep, is provisioned;
- webhook up: the same takeover pod is refused with PodSecurity's words; nothing is stored.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tenantry.adapters.nesting import allow_kubernetes_nesting
from tests.integration.attacks.test_pod_security import ADMIN, COMPLIANT_POD_SPEC, TAKEOVER_POD_SPEC, _exists
from tests.integration.fixtures import ChartPartner, ClusterHandle, OperatorProcess, Partner, wait_for
from tests.integration.test_admission import webhook  # noqa: F401  (the fixture: the chart's webhook, served)

pytestmark = pytest.mark.integration

DEPTH = 9_990  # the API server refuses a document nested deeper than 10,000 levels


@pytest.fixture(autouse=True, scope="module")
def _read_deep_documents_here_too() -> None:
    """This test's own client (lightkube) reads the deep Tenant back, as the CLI would."""
    allow_kubernetes_nesting()


def _nested(document: dict, depth: int = DEPTH) -> bytes:
    """The document as JSON with a managedFields entry whose fieldsV1 is `depth` levels deep
    (written as text: Python's own encoder stops at its recursion limit)."""
    marker = "__FIELDS__"
    document = json.loads(json.dumps(document))
    document["metadata"]["managedFields"] = [{"manager": "deep", "operation": "Update", "fieldsType": "FieldsV1",
                                              "apiVersion": document["apiVersion"], "fieldsV1": marker}]
    fields = '{"f:a":' * depth + "{}" + "}" * depth
    return json.dumps(document).replace(json.dumps(marker), fields).encode()


def _post(cluster: ClusterHandle, path: str, body: bytes, tmp_path: Path, *identity: str
          ) -> subprocess.CompletedProcess:
    """POST the bytes as they are (kubectl create -f would parse them, and its parser has a limit too)."""
    file = tmp_path / f"body-{len(list(tmp_path.iterdir()))}.json"
    file.write_bytes(body)
    return cluster.kubectl(*identity, "create", "--raw", path, "-f", str(file), check=False)


def test_deep_objects_neither_stop_the_operator_nor_get_past_its_pod_check(
        cluster: ClusterHandle, operator: OperatorProcess, partner: Partner, tmp_path: Path) -> None:
    slug = partner.slug("deep")
    partner.apply(partner.tenant(slug))
    partner.wait_condition(slug, "True", "Provisioned")
    namespace = f"tenant-{slug}"
    pid = operator.process.pid if operator.process else None
    restarts = operator.log_path.read_text().count("a kopf watch was lost")

    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "deep", "labels": {"app.kubernetes.io/managed-by": "tenantry"}},
                 "data": {"a": "b"}}
    stored = _post(cluster, f"/api/v1/namespaces/{namespace}/configmaps", _nested(configmap), tmp_path, "--as", ADMIN)
    assert stored.returncode == 0, stored.stderr
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "takeover"}, "spec": TAKEOVER_POD_SPEC}
    stored = _post(cluster, f"/api/v1/namespaces/{namespace}/pods", _nested(pod), tmp_path, "--as", ADMIN)
    assert stored.returncode == 0, stored.stderr  # (the webhook is down: the API server stores it)

    wait_for(lambda: not _exists(cluster, "pod", "takeover", namespace), timeout=60,
             what="the operator to delete the deep takeover pod")
    # The partner's own deep Tenant, created after both: every informer still lists and watches.
    late = partner.slug("deep-late")
    tenant = json.loads(json.dumps(partner.tenant(late)))
    tenant["metadata"]["namespace"] = partner.namespace
    stored = _post(cluster, f"/apis/tenantry.dev/v1alpha1/namespaces/{partner.namespace}/tenants",
                   _nested(tenant), tmp_path)
    assert stored.returncode == 0, stored.stderr
    partner.wait_condition(late, "True", "Provisioned", timeout=120)
    assert operator.process is not None and operator.process.poll() is None and operator.process.pid == pid
    assert operator.log_path.read_text().count("a kopf watch was lost") == restarts, "kopf started over"
    assert "RecursionError" not in operator.log_path.read_text()


def test_the_webhook_judges_a_deep_pod_and_refuses_it(
        webhook: dict, chart_partners: tuple[ChartPartner, ChartPartner], cluster: ClusterHandle,  # noqa: F811
        tmp_path: Path) -> None:
    alpha, _ = chart_partners
    slug = alpha.slug("deep-wh")
    assert alpha.apply_as_partner(alpha.tenant(slug)).returncode == 0
    alpha.wait_condition(slug, "True", "Provisioned")
    namespace = f"tenant-{slug}"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "takeover"}, "spec": TAKEOVER_POD_SPEC}
    refused = _post(cluster, f"/api/v1/namespaces/{namespace}/pods", _nested(pod), tmp_path, "--as", ADMIN)
    assert refused.returncode != 0, refused.stdout
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr, refused.stderr
    assert not _exists(cluster, "pod", "takeover", namespace)
    # A compliant pod nested as deep is judged and let in: the webhook read it.
    good = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "good"}, "spec": COMPLIANT_POD_SPEC}
    accepted = _post(cluster, f"/api/v1/namespaces/{namespace}/pods", _nested(good), tmp_path, "--as", ADMIN)
    assert accepted.returncode == 0, accepted.stderr
    assert yaml.safe_load(accepted.stdout)["metadata"]["name"] == "good"
