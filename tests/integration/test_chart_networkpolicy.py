"""The chart's NetworkPolicy for the operator's pods, accepted by the real API server.

Tested here: with default values and with every setting changed (other scrapers by namespace and
pod labels, an address block, a narrowed webhook, health from the nodes, RFC 2136 and resolver on
other ports, an IPv6 block) the rendered policy passes a server-side dry run; created for real, the
API server keeps the rules as rendered (selector, sources per port, egress ports).
"""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from tenantry.devtools import chart
from tests.integration.fixtures import PLATFORM_NAMESPACE, ClusterHandle

pytestmark = pytest.mark.integration

CHANGED = {
    "networkPolicy": {
        "metricsFrom": [{"namespaceSelector": {"matchLabels": {"team": "observability"}},
                         "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
                        {"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}}],
        "webhookFrom": [{"ipBlock": {"cidr": "10.0.0.0/24"}}, {"ipBlock": {"cidr": "fd00::/64"}}],
        "healthFrom": [{"ipBlock": {"cidr": "10.0.1.0/24"}}],
    },
    "metrics": {"port": 9090},
    "operator": {"dns": {"provider": "rfc2136", "resolver": "192.0.2.53:5353",
                         "rfc2136": {"server": "ns1.example.com:5300", "tsigName": "k",
                                     "tsigSecretRef": {"name": "s", "key": "k"}}}},
}


def _policy(values: dict | None, namespace: str) -> dict:
    (policy,) = [o for o in chart.render(values, namespace=namespace) if o["kind"] == "NetworkPolicy"]
    return policy


@pytest.mark.parametrize("values", [None, CHANGED], ids=["defaults", "changed"])
def test_the_api_server_accepts_the_policy(cluster: ClusterHandle, values: dict | None) -> None:
    policy = _policy(values, PLATFORM_NAMESPACE)
    out = cluster.kubectl("apply", "--server-side", "--field-manager=helm", "--dry-run=server", "-o", "json",
                          "-f", "-", input=yaml.safe_dump(policy)).stdout
    assert json.loads(out)["spec"] == policy["spec"]


def test_created_for_real_it_keeps_the_rules(cluster: ClusterHandle) -> None:
    namespace = f"np-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    try:
        policy = _policy(CHANGED, namespace)
        cluster.kubectl("apply", "--server-side", "--field-manager=helm", "-f", "-", input=yaml.safe_dump(policy))
        stored = json.loads(cluster.kubectl("get", "networkpolicy", policy["metadata"]["name"], "-n", namespace,
                                            "-o", "json").stdout)
        assert stored["spec"] == policy["spec"]
        metrics = [rule for rule in stored["spec"]["ingress"] if {"port": 9090, "protocol": "TCP"} in rule["ports"]]
        # The scrapers, then this release's `helm test` pod (tests.enabled).
        assert [rule["from"] for rule in metrics][0] == CHANGED["networkPolicy"]["metricsFrom"]
        assert [rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                for rule in metrics[1:]] == ["test"]
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")
