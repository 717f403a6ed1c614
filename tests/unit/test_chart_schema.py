"""The chart's values.schema.json and values.yaml, checked by the real Helm engine.

Tested here:
- the schema describes every value in values.yaml, every object in it refuses unknown keys
  (additionalProperties false), and every value in values.yaml has a comment
- Helm refuses wrong values with a message naming the field (wrong type, enum, pattern, bound,
  unknown key at any level, RFC 2136 without server/key, an extra env var the chart sets itself)
- values that are right (the full set in tests/unit/chart.py and some edge cases) are accepted
"""

from __future__ import annotations

import json
import re

import helm_python as helm
import pytest
import yaml

from tests.unit.chart import CHART, render

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES_TEXT = (CHART / "values.yaml").read_text()
VALUES = yaml.safe_load(VALUES_TEXT)


def _resolve(node: dict) -> dict:
    if "$ref" in node:
        return _resolve(SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]])
    if "allOf" in node and len(node["allOf"]) == 1:
        return _resolve(node["allOf"][0])
    return node


def _objects(node: dict, path: str = "") -> list[tuple[str, dict]]:
    """Every object schema (with its path) below node."""
    node = _resolve(node)
    found = [(path, node)] if node.get("type") == "object" else []
    for key, child in node.get("properties", {}).items():
        found += _objects(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        found += _objects(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += _objects(node["additionalProperties"], f"{path}.*")
    return found


def _leaves(values: dict, path: str = "") -> list[str]:
    out = []
    for key, value in values.items():
        out += _leaves(value, f"{path}.{key}") if isinstance(value, dict) and value else [f"{path}.{key}"]
    return out


def _schema_at(path: str) -> dict:
    node = SCHEMA
    for key in path.strip(".").split("."):
        node = _resolve(node)["properties"][key]
    return _resolve(node)


def test_every_value_is_in_the_schema() -> None:
    for leaf in _leaves(VALUES):
        assert _schema_at(leaf).get("type"), f"{leaf}: no type in values.schema.json"


def test_every_object_refuses_unknown_keys() -> None:
    for path, node in _objects(SCHEMA):
        if path == ".global":
            assert node["additionalProperties"] is True  # a parent chart's, shared with all its subcharts
            continue
        # Maps (labels, annotations, nodeSelector) are closed too: their values must be strings.
        assert node.get("additionalProperties") is False or isinstance(node.get("additionalProperties"), dict), path


def test_every_value_has_a_comment() -> None:
    # A comment on the line or on the line just above it; the keys inside `resources` (Kubernetes
    # ResourceRequirements) are described by the comment above `resources`.
    lines = VALUES_TEXT.splitlines()
    missing = []
    for n, line in enumerate(lines):
        if not re.match(r"^\s*[A-Za-z][\w.-]*:", line) or line.startswith(" ") and _inside(lines, n, "resources"):
            continue
        if "#" not in line and not (n and lines[n - 1].strip().startswith("#")):
            missing.append(f"line {n + 1}: {line.strip()}")
    assert missing == []


def _inside(lines: list[str], n: int, top: str) -> bool:
    """Whether line n is inside the top-level block `top`."""
    for prev in reversed(lines[:n]):
        if re.match(r"^[A-Za-z]", prev):
            return prev.startswith(f"{top}:")
    return False


@pytest.mark.parametrize(("values", "words"), [
    ({"webhook": {"failurePolicy": "Sometimes"}}, "/webhook/failurePolicy"),
    ({"replicas": "two"}, "/replicas"),
    ({"replicas": 0}, "/replicas"),
    ({"shards": 0}, "/shards"),
    ({"shards": "six"}, "/shards"),
    ({"partners": [{"id": "Acme_IT"}]}, "/partners/0/id"),
    ({"partners": [{"id": "a" * 41}]}, "/partners/0/id"),
    ({"partners": [{"id": "acme", "namespace": "Acme.Namespace"}]}, "/partners/0/namespace"),
    ({"partners": [{"namespace": "acme"}]}, "id"),
    ({"partners": [{"id": "acme", "admins": []}]}, "admins"),
    ({"operator": {"commissionRate": 2}}, "/operator/commissionRate"),
    ({"operator": {"commissionRate": "0.2x"}}, "/operator/commissionRate"),
    ({"operator": {"commissionRate": "1.5"}}, "/operator/commissionRate"),
    ({"serviceAccount": {"create": True, "name": "default"}}, "/serviceAccount/name"),
    ({"commonLabels": {"tenantry.dev/partner": "x"}}, "tenantry.dev/partner"),
    ({"podLabels": {"tenantry.dev/role": "leader"}}, "tenantry.dev/role"),
    ({"replicaCount": 2}, "replicaCount"),  # the name in 0.1.0: refused, not ignored
    ({"operator": {"dns": {"provider": "route53"}}}, "/operator/dns/provider"),
    ({"operator": {"dns": {"provider": "rfc2136"}}}, "/operator/dns/rfc2136/server"),
    ({"operator": {"dns": {"provider": "rfc2136", "rfc2136": {"server": "ns1", "tsigName": "k"}}}},
     "/operator/dns/rfc2136/tsigSecretRef/name"),
    ({"operator": {"dns": {"rfc2136": {"tsigSecret": "c2VjcmV0"}}}}, "tsigSecret"),
    ({"operator": {"dns": {"ttl": 0}}}, "/operator/dns/ttl"),
    ({"operator": {"platformDomain": ""}}, "operator.platformDomain is required"),
    ({"operator": {"platformDomain": "https://platform.example"}}, "/operator/platformDomain"),
    ({"operator": {"partnerLevels": "Gold"}}, "/operator/partnerLevels"),
    ({"operator": {"ingressNamespaceLabels": {"team": "a,b"}}}, "/operator/ingressNamespaceLabels"),
    ({"operator": {"workers": 1.5}}, "/operator/workers"),
    ({"operator": {"routePort": 70000}}, "/operator/routePort"),
    ({"operator": {"dns": {"resolver": "10.0.0.53:dns"}}}, "/operator/dns/resolver"),
    ({"webhook": {"timeoutSeconds": 31}}, "/webhook/timeoutSeconds"),
    ({"webhook": {"certManager": {"enabled": "yes"}}}, "/webhook/certManager/enabled"),
    ({"image": {"tag": 1.2}}, "/image/tag"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"resources": {"limits": {"memory": "lots"}}}, "/resources/limits/memory"),
    ({"resources": {"limits": {"gpu": 1}}}, "gpu"),
    ({"tolerations": [{"operator": "Maybe"}]}, "/tolerations/0/operator"),
    ({"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 500}]}}},
     "weight"),
    ({"extraEnv": [{"name": "TENANTRY_PLATFORM_DOMAIN", "value": "x"}]}, "/extraEnv/0/name"),
    ({"extraEnv": [{"value": "x"}]}, "name"),
    ({"platformGroups": ["a,b"]}, "/platformGroups/0"),
    ({"metrics": {"serviceMonitor": {"interval": "soon"}}}, "/metrics/serviceMonitor/interval"),
    ({"partnerServiceAccount": "Flux"}, "/partnerServiceAccount"),
    ({"operator": {"tenantQuotaCeiling": {"cpu": "lots"}}}, "/operator/tenantQuotaCeiling/cpu"),
    ({"operator": {"tenantQuotaCeiling": {"gpu": "1"}}}, "gpu"),
    ({"operator": {"containerMax": {"memory": 1}}}, "/operator/containerMax/memory"),
    ({"operator": {"pvcMaxStorage": "1 TB"}}, "/operator/pvcMaxStorage"),
    ({"operator": {"objectCountQuota": {"secrets": -1}}}, "/operator/objectCountQuota"),
    ({"operator": {"objectCountQuota": {"Secrets!": 1}}}, "Secrets!"),
    ({"operator": {"maxTenantsPerPartner": -5}}, "/operator/maxTenantsPerPartner"),
    ({"operator": {"egressDenyCidrs": ["169.254.169.254"]}}, "/operator/egressDenyCidrs/0"),
    ({"extraEnv": [{"name": "TENANTRY_EGRESS_DENY_CIDRS", "value": "10.0.0.0/8"}]}, "/extraEnv/0/name"),
    ({"operator": {"smtp": {"tls": "ssl"}}}, "/operator/smtp/tls"),
    ({"operator": {"smtp": {"host": "smtp.example.com", "from": "Welcome <w@example.com>"}}}, "/operator/smtp/from"),
    ({"operator": {"smtp": {"password": "hunter2"}}}, "password"),
    ({"extraEnv": [{"name": "TENANTRY_SMTP_PASSWORD", "value": "hunter2"}]}, "/extraEnv/0/name"),
])
def test_schema_refuses_wrong_values(values: dict, words: str) -> None:
    with pytest.raises(helm.HelmError) as error:
        render(values)
    assert words in str(error.value)


@pytest.mark.parametrize("values", [
    {"partners": [{"id": "a"}, {"id": "a" * 40}, {"id": "x1", "namespace": "x" * 63}]},
    {"operator": {"commissionRate": 0}},
    {"operator": {"commissionRate": 1}},
    {"operator": {"commissionRate": "0.2"}},  # what `--set operator.commissionRate=0.2` gives
    {"operator": {"dns": {"provider": "externaldns", "target": "lb.example.net"}}},
    {"operator": {"dns": {"target": "2001:db8::10"}}},
    {"operator": {"partnerLevels": ""}},
    {"image": {"tag": "v1.0.0-rc.1"}},
    {"resources": {"requests": {"cpu": 0.5, "memory": "1Gi", "ephemeral-storage": "100Mi"}}},
    {"platformGroups": []},
    {"extraEnv": [{"name": "TENANTRY_VERBOSE", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
])
def test_schema_accepts_right_values(values: dict) -> None:
    assert render(values)


def test_the_version_is_written_once_and_the_chart_follows_it() -> None:
    import importlib.metadata
    from pathlib import Path

    import tenantry

    chart = yaml.safe_load((Path(CHART) / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == tenantry.__version__
    assert importlib.metadata.version("tenantry") == tenantry.__version__  # pyproject reads it (dynamic)
    pyproject = (Path(CHART).parents[1] / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and f'version = "{tenantry.__version__}"' not in pyproject
