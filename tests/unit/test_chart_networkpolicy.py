"""The chart's NetworkPolicy for the operator's own pods, rendered by the real Helm engine.

/metrics carries every partner's customers and revenue; without a policy any pod in the cluster
(a tenant's workload included) can read it. Tested here:
- rendered by default; none when networkPolicy.enabled is false
- it selects exactly the operator's pods (the Deployment's selector and pod labels)
- every ingress rule names its sources (no rule open to all), and the metrics port (the container's,
  also when moved) is reachable only from networkPolicy.metricsFrom: by default the namespace named
  monitoring, otherwise exactly the configured selectors; [] closes it; besides them only this
  release's `helm test` pod (metrics and webhook ports), whose rule goes with tests.enabled
- the webhook port is open to webhookFrom (the API server is not a pod) and only with the webhook on;
  the health port to nobody but healthFrom (the kubelet is let through by most plugins)
- egress: the API server ports and DNS by default, the port of an RFC 2136 server and resolver on
  another port added, [] leaves egress unrestricted
- values.schema.json refuses unknown keys in the policy's values and peers
"""

from __future__ import annotations

import helm_python as helm
import pytest

from tests.unit import chart

MONITORING = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
# The `helm test` pod of the release "rel" (tests.enabled).
TEST_POD = [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "tenantry-test",
                                             "app.kubernetes.io/instance": "rel",
                                             "app.kubernetes.io/component": "test"}}}]


def rendered(values: dict | None = None) -> tuple[dict | None, dict]:
    """(the NetworkPolicy or None, the Deployment)."""
    objects = chart.render(values, name="rel")
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    assert len(policies) <= 1
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    return (policies[0] if policies else None), deployment


def container_port(deployment: dict, name: str) -> int:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return next(p["containerPort"] for p in only["ports"] if p["name"] == name)


def sources(policy: dict, port: int) -> list[dict]:
    """Every peer any ingress rule lets reach this port."""
    found = []
    for rule in policy["spec"].get("ingress") or []:
        assert rule.get("from"), f"an ingress rule open to every source: {rule}"
        assert rule.get("ports"), f"an ingress rule open on every port: {rule}"
        if any(p["port"] == port for p in rule["ports"]):
            found += rule["from"]
    return found


def test_rendered_by_default_and_selects_the_operator_pods() -> None:
    policy, deployment = rendered()
    assert policy is not None and policy["metadata"]["namespace"] == "tenantry-system"
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert "Ingress" in policy["spec"]["policyTypes"]


def test_disabled_renders_none() -> None:
    assert rendered({"networkPolicy": {"enabled": False}})[0] is None


def test_default_scrapers_are_the_monitoring_namespace_only() -> None:
    policy, deployment = rendered()
    assert sources(policy, container_port(deployment, "metrics")) == MONITORING + TEST_POD
    untested, deployment = rendered({"tests": {"enabled": False}})
    assert sources(untested, container_port(deployment, "metrics")) == MONITORING


def test_the_test_pod_rule_selects_the_test_pod_only() -> None:
    objects = chart.render(name="rel")
    (test_pod,) = chart.hooks(name="rel")
    selector = TEST_POD[0]["podSelector"]["matchLabels"]
    assert selector.items() <= test_pod["metadata"]["labels"].items()
    for pod_template in (o["spec"]["template"] for o in objects if o["kind"] == "Deployment"):
        assert not selector.items() <= pod_template["metadata"]["labels"].items()


def test_configured_scrapers_and_a_moved_metrics_port() -> None:
    scrapers = [{"namespaceSelector": {"matchLabels": {"team": "observability"}},
                 "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
                {"ipBlock": {"cidr": "192.0.2.10/32"}}]
    policy, deployment = rendered({"networkPolicy": {"metricsFrom": scrapers}, "metrics": {"port": 9090}})
    port = container_port(deployment, "metrics")
    assert port == 9090 and sources(policy, port) == scrapers + TEST_POD
    assert sources(policy, 8080) == []
    closed, deployment = rendered({"networkPolicy": {"metricsFrom": []}, "tests": {"enabled": False}})
    assert sources(closed, container_port(deployment, "metrics")) == []


def test_webhook_and_health_ports() -> None:
    policy, deployment = rendered()
    webhook = sources(policy, container_port(deployment, "webhook"))
    assert webhook[-1:] == TEST_POD
    assert {p["ipBlock"]["cidr"] for p in webhook[:-1]} == {"0.0.0.0/0", "::/0"}
    assert sources(policy, container_port(deployment, "health")) == []
    control_plane = [{"ipBlock": {"cidr": "10.0.0.0/24"}}]
    narrowed, _ = rendered({"networkPolicy": {"webhookFrom": control_plane, "healthFrom": control_plane}})
    assert sources(narrowed, 9443) == control_plane + TEST_POD and sources(narrowed, 8081) == control_plane
    off, _ = rendered({"webhook": {"enabled": False}})
    assert sources(off, 9443) == []


def _egress_ports(policy: dict) -> set[tuple[int, str]]:
    return {(p["port"], p["protocol"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}


def test_egress() -> None:
    policy, _ = rendered()
    assert "Egress" in policy["spec"]["policyTypes"]
    assert _egress_ports(policy) == {(443, "TCP"), (6443, "TCP"), (53, "UDP"), (53, "TCP")}
    dns = {"provider": "rfc2136", "resolver": "192.0.2.53:5353",
           "rfc2136": {"server": "ns1.example.com:5300", "tsigName": "k", "tsigSecretRef": {"name": "s", "key": "k"}}}
    extra, _ = rendered({"operator": {"dns": dns}})
    assert {(5353, "UDP"), (5353, "TCP"), (5300, "UDP"), (5300, "TCP")} <= _egress_ports(extra)
    open_egress, _ = rendered({"networkPolicy": {"egress": []}})
    assert open_egress["spec"]["policyTypes"] == ["Ingress"] and "egress" not in open_egress["spec"]


@pytest.mark.parametrize(("values", "words"), [
    ({"networkPolicy": {"scrapers": []}}, "scrapers"),
    ({"networkPolicy": {"metricsFrom": [{"namespaceSelectr": {}}]}}, "namespaceSelectr"),
    ({"networkPolicy": {"webhookFrom": [{"ipBlock": {"cidr": "everywhere"}}]}}, "/networkPolicy/webhookFrom/0"),
    ({"networkPolicy": {"enabled": "yes"}}, "/networkPolicy/enabled"),
])
def test_schema_refuses_wrong_values(values: dict, words: str) -> None:
    with pytest.raises(helm.HelmError) as refused:
        chart.render(values)
    assert words in str(refused.value)
