"""The chart's values.schema.json and values.yaml, checked by the real Helm engine.

Tested here:
- the schema describes every value in values.yaml, every object in it refuses unknown keys
  (additionalProperties false), and every value in values.yaml has a comment
- Helm refuses wrong values with a message naming the field (wrong type, enum, pattern, bound,
  unknown key at any level, RFC 2136 without server/key, an extra env var the chart sets itself, a
  metrics port the pod uses for health or the webhook; the template refuses that port too)
- extraEnv and portal.extraEnv refuse exactly the names the chart sets on their container (every
  option on, each variable of the template rendered), so the lists cannot fall behind the templates
- the operator's sizing comment quotes no benchmark figure (they go stale): it points at
  docs/performance.md
- values that are right (the full set in tests/unit/chart.py and some edge cases) are accepted
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.unit.chart import CHART, FULL_VALUES, find, render

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
    ({"extraEnv": [{"name": "TENANTRY_LOG_LEVEL", "value": "debug"}]}, "/extraEnv/0/name"),
    ({"extraEnv": [{"name": "TENANTRY_OPERATOR_USERNAME", "value": "system:admin"}]}, "/extraEnv/0/name"),
    ({"portal": {"extraEnv": [{"name": "TENANTRY_PORTAL_TRUST_PROXY_HEADERS", "value": "true"}]}},
     "/portal/extraEnv/0/name"),
    ({"portal": {"extraEnv": [{"value": "x"}]}}, "name"),
    # The pod's own ports: health (8081) and the webhook (9443).
    ({"metrics": {"port": 8081}}, "/metrics/port"),
    ({"metrics": {"port": 9443}}, "/metrics/port"),
    ({"webhook": {"enabled": False}, "metrics": {"port": 9443}}, "/metrics/port"),
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
    {"metrics": {"port": 8082}},
    {"metrics": {"port": 9090}},
])
def test_schema_accepts_right_values(values: dict) -> None:
    assert render(values)


# --- extraEnv refuses what the chart sets -----------------------------------------------------------

ENV_NAME = re.compile(r"^\s*- name: ([A-Z][A-Z0-9_]*)\s*$", flags=re.MULTILINE)


@pytest.mark.parametrize(("template", "deployment", "value"), [
    ("deployment.yaml", "tenantry", "extraEnv"),
    ("portal.yaml", "tenantry-portal", "portal.extraEnv"),
], ids=["operator", "portal"])
def test_extra_env_refuses_every_name_the_chart_sets(template: str, deployment: str, value: str) -> None:
    # Every option on, so every variable of the template is rendered (checked against the template's
    # own text); every one of them must be a name extraEnv refuses, else it renders twice.
    objects = render(FULL_VALUES)
    (container,) = find(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    given = {variable["name"] for variable in _value_at(FULL_VALUES, value)}
    rendered = {variable["name"] for variable in container["env"]} - given
    in_template = set(ENV_NAME.findall((CHART / "templates" / template).read_text()))
    assert in_template - rendered == set(), "set every option in FULL_VALUES (tests/unit/chart.py)"
    refused = set(_schema_at(value)["items"]["properties"]["name"]["not"]["enum"])
    assert rendered - refused == set(), f"{value} must refuse these (values.schema.json)"
    assert refused - rendered == set(), f"{value} refuses names the chart does not set"


def _value_at(values: dict, path: str) -> Any:
    for key in path.split("."):
        values = values[key]
    return values


def test_an_extra_env_name_the_chart_sets_is_refused_by_helm() -> None:
    for name in _schema_at("extraEnv")["items"]["properties"]["name"]["not"]["enum"]:
        with pytest.raises(helm.HelmError, match="/extraEnv/0/name"):
            render({"extraEnv": [{"name": name, "value": "x"}]})


# --- ports --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("port", [8081, 9443])
def test_the_template_refuses_a_metrics_port_the_pod_uses_when_the_schema_is_skipped(port: int,
                                                                                      tmp_path: Path) -> None:
    unchecked = tmp_path / "tenantry"
    shutil.copytree(CHART, unchecked)
    (unchecked / "values.schema.json").unlink()
    with pytest.raises(helm.HelmError, match=f"metrics.port: {port} is the pod's"):
        render({"metrics": {"port": port}, "operator": {"platformDomain": "platform.example"}}, chart=unchecked)


# --- sizing -------------------------------------------------------------------------------------------

def test_the_sizing_comment_quotes_no_benchmark_figure() -> None:
    # Measured figures go stale with the next benchmark run; docs/performance.md and the README's
    # Sizing table carry them with markers that tests/unit/test_docs.py checks against the latest run.
    lines = VALUES_TEXT.split("\nresources:\n", 1)[0].splitlines()
    comment = []
    for line in reversed(lines):
        if not line.startswith("#"):
            break
        comment.insert(0, line)
    text = "\n".join(comment)
    assert "docs/performance.md" in text
    figures = re.findall(r"\d[\d,.]*\s*(?:KiB|MiB|GiB|KB|MB|GB|ms|s\b|seconds|minutes|%)", text)
    assert figures == [], "quote no measured figure here: point at docs/performance.md"


def test_the_version_is_written_once_and_the_chart_follows_it() -> None:
    import importlib.metadata
    from pathlib import Path

    import tenantry

    chart = yaml.safe_load((Path(CHART) / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == tenantry.__version__
    assert importlib.metadata.version("tenantry") == tenantry.__version__  # pyproject reads it (dynamic)
    pyproject = (Path(CHART).parents[1] / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and f'version = "{tenantry.__version__}"' not in pyproject
