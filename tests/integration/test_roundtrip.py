"""What a partner writes is what the API server keeps: every field survives the generated CRDs.

Tested here, against the real API server with the generated CRDs:
- every Tenant, Branding and FeatureSet in examples/ comes back (server-side apply, then get) with
  exactly the spec that was sent, plus only the defaults the CRD schema declares (before the fix
  the API server pruned every Branding `welcome` text: the CRD had no schema for its values)
- a generated document per kind that sets EVERY field of every model, found by walking the
  pydantic model fields (so a new field is covered without touching this test), comes back equal
- the tenant NetworkPolicy the operator computes (IPv4 and IPv6 egress, denied networks) is
  accepted by the real API server as it is
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, find, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from tenantry.api.branding import BrandingSpec, Logo
from tenantry.api.crd import KINDS, structural_schema
from tenantry.api.features import CORE_FEATURES
from tenantry.api.featureset import FeatureSetSpec
from tenantry.api.tenant import TenantSpec
from tenantry.cli.quickschema import python_escapes
from tenantry.domain.children import TenantInput, desired_state
from tenantry.domain.config import OperatorConfig
from tenantry.domain.features import Plan
from tests.integration.fixtures import ClusterHandle

REPO = Path(__file__).resolve().parents[2]
MODELS: dict[str, type[BaseModel]] = {"Tenant": TenantSpec, "Branding": BrandingSpec, "FeatureSet": FeatureSetSpec}
SAFE_SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 2 1"><rect width="2" height="1" fill="#123456"/></svg>'


def _examples() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((REPO / "examples").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("apiVersion") == "tenantry.dev/v1alpha1" and doc.get("kind") in MODELS:
                docs.append(doc)
    return docs


def _schema(kind: str) -> dict[str, Any]:
    spec = next(s for s in KINDS if s.kind == kind)
    return structural_schema(spec.spec_model)


def _differences(sent: Any, back: Any, schema: dict[str, Any], path: str = "spec") -> list[str]:
    """Where `back` differs from `sent`, allowing only keys `sent` lacked that carry the schema's default."""
    if isinstance(sent, dict) and isinstance(back, dict):
        problems = []
        properties = schema.get("properties", {})
        for key in sorted(set(sent) | set(back)):
            sub = properties.get(key) or (schema.get("additionalProperties") or {})
            if key not in back:
                problems.append(f"{path}.{key}: sent {sent[key]!r}, not kept (pruned)")
            elif key not in sent:
                if "default" not in sub or sub["default"] != back[key]:
                    problems.append(f"{path}.{key}: not sent, came back as {back[key]!r}")
            else:
                problems += _differences(sent[key], back[key], sub, f"{path}.{key}")
        return problems
    if isinstance(sent, list) and isinstance(back, list) and len(sent) == len(back):
        return [p for i, (a, b) in enumerate(zip(sent, back, strict=True))
                for p in _differences(a, b, schema.get("items", {}), f"{path}[{i}]")]
    return [] if sent == back else [f"{path}: sent {sent!r}, came back as {back!r}"]


def _round_trip(cluster: ClusterHandle, namespace: str, docs: list[dict[str, Any]]) -> list[str]:
    """Apply each document (server-side) under a new name in `namespace`; the differences found."""
    problems = []
    for index, doc in enumerate(docs):
        kind = doc["kind"]
        name = f"rt{index}-{doc['metadata'].get('name', 'x')}"[:40].rstrip("-")
        sent = {"apiVersion": doc["apiVersion"], "kind": kind, "metadata": {"name": name, "namespace": namespace},
                "spec": doc["spec"]}
        cluster.kubectl("apply", "--server-side", "--field-manager=roundtrip", "-f", "-", input=json.dumps(sent))
        back = json.loads(cluster.kubectl("get", kind.lower(), name, "-n", namespace, "-o", "json").stdout)
        problems += [f"{kind} {doc['metadata'].get('name')}: {p}"
                     for p in _differences(doc["spec"], back["spec"], _schema(kind))]
    return problems


def test_every_example_comes_back_as_it_was_sent(cluster: ClusterHandle, namespace: str) -> None:
    docs = _examples()
    assert {d["kind"] for d in docs} == set(MODELS), "examples/ should hold every kind"
    assert any((d["spec"].get("welcome")) for d in docs if d["kind"] == "Branding")
    assert _round_trip(cluster, namespace, docs) == []


# --- a document that sets every field ------------------------------------------------------------

def _constraints(info: FieldInfo | None, extra: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    items = [*(info.metadata if info else []), *extra]
    items += [sub for item in items if isinstance(item, FieldInfo) for sub in item.metadata]
    for item in items:
        for attr in ("pattern", "max_length", "min_length", "ge", "le", "gt", "lt"):
            if getattr(item, attr, None) is not None:
                found[attr] = getattr(item, attr)
    return found


def _string(limits: dict[str, Any], avoid: Any) -> str:
    pattern = limits.get("pattern")
    if pattern is None:
        return "Beispiel ÄÖÜ text"[: limits.get("max_length", 100)]
    fits = settings(database=None, max_examples=2000, suppress_health_check=list(HealthCheck))
    low, high = max(1, limits.get("min_length", 1)), min(limits.get("max_length", 60), 60)
    return find(st.from_regex(python_escapes(pattern), fullmatch=True), lambda s: low <= len(s) <= high and s != avoid,
                settings=fits)


def _sample(annotation: Any, info: FieldInfo | None, path: str, choices: dict[str, Any], written: set[str]) -> Any:
    """A valid value for `annotation` that differs from the field's default, setting every sub-field.

    `choices` fixes values by path (None: leave the field out); `written` collects the paths set.
    """
    value = choices[path] if path in choices else _value(annotation, info, path, choices, written)
    if value is not None:
        written.add(path)
    return value


def _value(annotation: Any, info: FieldInfo | None, path: str, choices: dict[str, Any], written: set[str]) -> Any:
    extra: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        annotation, *more = typing.get_args(annotation)
        extra += more
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, info, path, choices, written)
    default = info.default if info is not None else None
    limits = _constraints(info, extra)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = {field.alias or name: _sample(field.annotation, field, f"{path}.{field.alias or name}", choices,
                                               written) for name, field in annotation.model_fields.items()}
        return {key: value for key, value in fields.items() if value is not None}
    if origin is dict:
        key = _sample(args[0], None, f"{path}{{key}}", choices, written)
        return {key: _sample(args[1], None, f"{path}{{}}", choices, written)}
    if origin is list:
        return [_sample(args[0], None, f"{path}[]", choices, written)]
    if origin is typing.Literal:
        return next(a for a in reversed(args) if a != default)
    if annotation is bool:
        return not default if isinstance(default, bool) else True
    if annotation in (int, float):
        low = limits.get("ge", limits.get("gt", 0))
        high = limits.get("le", limits.get("lt", 1_000_000))
        value = min(max(low + 7, 1), high)
        return value + 0.5 if annotation is float and value + 0.5 <= high else value
    if annotation is str:
        return _string(limits, default)
    raise AssertionError(f"{path}: no sample for {annotation!r}; teach test_roundtrip._value")


# Values with rules beyond their type: a feature name as key, a currency in use, the logo's url XOR a safe svg, a
# trial's end and an appointment the calendar has (the pattern alone would give 0000-00-00).
CHOICES = {"spec.features{key}": CORE_FEATURES[2], "spec.extends": "business", "spec.logo.svg": None,
           "spec.plan.price.currency": "CHF", "spec.expected.currency": "CHF",  # an allow-list, not a pattern
           "spec.trial.ends": "2027-01-31T23:59:59Z", "spec.onboarding.appointment.start": "2027-01-14T10:00:00+01:00"}
VARIANTS = {"Branding": [{"spec.logo.url": None, "spec.logo.svg": SAFE_SVG}]}


def _full_documents() -> tuple[list[dict[str, Any]], dict[str, set[str]], dict[str, set[str]]]:
    """(documents, every field path of each kind's model, the paths the documents set)."""
    docs: list[dict[str, Any]] = []
    fields: dict[str, set[str]] = {}
    written: dict[str, set[str]] = {}
    for kind, model in MODELS.items():
        fields[kind], written[kind] = set(), set()
        _sample(model, None, "spec", {}, fields[kind])  # every field, with no choices
        for extra in [{}, *VARIANTS.get(kind, [])]:
            spec = _sample(model, None, "spec", {**CHOICES, **extra}, written[kind])
            model.model_validate(spec)  # a valid document, as a partner could write it
            docs.append({"apiVersion": "tenantry.dev/v1alpha1", "kind": kind, "metadata": {"name": kind.lower()},
                         "spec": spec})
    return docs, fields, written


def test_a_document_with_every_field_set_comes_back_equal(cluster: ClusterHandle, namespace: str) -> None:
    docs, fields, written = _full_documents()
    for kind in MODELS:
        missing = sorted(fields[kind] - written[kind])
        assert missing == [], f"{kind}: fields set in no document"
        assert len(fields[kind]) > 5
    # Every key was sent, so nothing may come back different, not even as a default.
    assert _round_trip(cluster, namespace, docs) == []


def test_generated_documents_cover_a_logo_by_url_and_by_svg() -> None:
    docs, _, _ = _full_documents()
    logos = [d["spec"]["logo"] for d in docs if d["kind"] == "Branding"]
    assert [sorted(logo) for logo in logos] == [["url"], ["svg"]]
    assert Logo.model_validate(logos[1])
    assert any(d["spec"].get("welcome") for d in docs if d["kind"] == "Branding")


# --- the NetworkPolicy ------------------------------------------------------------------------------

def test_the_tenant_network_policy_is_accepted_by_the_api_server(cluster: ClusterHandle, namespace: str) -> None:
    spec = TenantSpec.model_validate({"company": "M", "contact": {"name": "M", "email": "m@m.de"},
                                      "plan": {"featureSet": "business", "seats": 5}})
    desired = desired_state(TenantInput("rt", "partner-rt", "rt", spec, Plan(("x/y",), {}, None), None),
                            OperatorConfig())
    policy = next(m for m in desired.apply if m["kind"] == "NetworkPolicy")
    policy = {**policy, "metadata": {"name": policy["metadata"]["name"], "namespace": namespace}}
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(policy))
    back = json.loads(cluster.kubectl("get", "networkpolicy", policy["metadata"]["name"], "-n", namespace,
                                      "-o", "json").stdout)
    assert back["spec"]["egress"] == policy["spec"]["egress"]
    blocks = [peer["ipBlock"] for rule in back["spec"]["egress"] for peer in rule.get("to", []) if "ipBlock" in peer]
    assert {b["cidr"] for b in blocks} == {"0.0.0.0/0", "::/0"}
    assert "169.254.0.0/16" in blocks[0]["except"] and "fc00::/7" in blocks[1]["except"]
