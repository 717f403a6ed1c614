"""Generate CustomResourceDefinitions from the pydantic models (pure: returns dicts).

pydantic emits JSON Schema 2020-12; a CRD needs a *structural* OpenAPI v3.0 schema. The
conversion inlines every $ref, turns `X | None` into plain X, turns dictionaries (additional or
pattern properties) into `additionalProperties: <schema>`, and drops only what carries no data
rule (title, additionalProperties: false, which pruning enforces anyway, null defaults).

Nothing is dropped silently: a keyword not in the allow-list below raises, because a keyword the
API server does not know would make it prune (lose) the data it describes. What the API server
cannot express (dictionary key patterns) stays checked by the operator, the webhook and
`tenantry validate`, and the field's description says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from tenantry.api.branding import BrandingSpec
from tenantry.api.common import DNS_LABEL, GROUP, VERSION
from tenantry.api.deal import DealSpec
from tenantry.api.featureset import FeatureSetSpec
from tenantry.api.tenant import SLUG_MAX_LENGTH, TenantSpec, TenantStatus

# Copied as they are: OpenAPI v3.0 means the same by them.
_KEPT_KEYS = frozenset({
    "type", "description", "properties", "required", "items", "enum", "pattern", "minLength", "maxLength",
    "minimum", "maximum", "minItems", "maxItems", "minProperties", "maxProperties", "multipleOf", "format",
    "default", "additionalProperties",
    # Kubernetes' own extensions, set by a model on purpose (e.g. the status kopf writes into).
    "x-kubernetes-preserve-unknown-fields",
})
# Carry no rule for the data: titles, and definitions (inlined where they are referenced).
_DROPPED_KEYS = frozenset({"title", "$defs"})
# Translated below: $ref, anyOf, patternProperties, propertyNames, const, exclusive bounds, uniqueItems.
_TRANSLATED_KEYS = frozenset({"$ref", "anyOf", "patternProperties", "propertyNames", "const",
                              "exclusiveMinimum", "exclusiveMaximum", "uniqueItems"})
KNOWN_KEYWORDS = _KEPT_KEYS | _DROPPED_KEYS | _TRANSLATED_KEYS


class UnsupportedSchema(ValueError):
    """The models use JSON schema the CRD generator cannot translate without losing a rule or data."""


@dataclass(frozen=True)
class CrdSpec:
    """What differs between the three kinds."""

    kind: str
    plural: str
    short_names: list[str]
    description: str
    spec_model: type[BaseModel]
    status_model: type[BaseModel] | None = None
    name_max_length: int = 63
    name_description: str = "Name of this object, a DNS label."
    printer_columns: list[dict[str, Any]] = field(default_factory=list)


def _ready_column() -> dict[str, Any]:
    return {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    }


KINDS: tuple[CrdSpec, ...] = (
    CrdSpec(
        kind="Tenant",
        plural="tenants",
        short_names=["tn"],
        description="A customer of a partner: provisioned as a namespace with quota, isolation and "
        "RBAC, DNS names, feature flags and branding. metadata.name is the tenant's slug, unique "
        "across all partners.",
        spec_model=TenantSpec,
        status_model=TenantStatus,
        name_max_length=SLUG_MAX_LENGTH,
        name_description="The tenant's slug: unique across all partners, used for the subdomain "
        "<slug>.<platform domain> and the namespace tenant-<slug>; at most 40 characters.",
        printer_columns=[
            {"name": "Partner", "type": "string", "jsonPath": ".status.partner"},
            # The state in effect (a trial past its end is Suspended); what git asks for: -o wide.
            {"name": "State", "type": "string", "jsonPath": ".status.state",
             "description": "The state in effect: spec.state, except that a Trial whose end has passed is Suspended."},
            {"name": "Spec-State", "type": "string", "jsonPath": ".spec.state", "priority": 1,
             "description": "The state git asks for (spec.state)."},
            {"name": "Trial-Ends", "type": "string", "jsonPath": ".status.trialEnds", "priority": 1},
            {"name": "Plan", "type": "string", "jsonPath": ".spec.plan.featureSet"},
            {"name": "Seats", "type": "integer", "jsonPath": ".spec.plan.seats"},
            _ready_column(),
            {"name": "URL", "type": "string", "jsonPath": ".status.url"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    ),
    CrdSpec(
        kind="Branding",
        plural="brandings",
        short_names=["brand"],
        description="A white-label look (logo, colours, assistant name, welcome texts) for the "
        "tenants that use it.",
        spec_model=BrandingSpec,
        printer_columns=[
            {"name": "Primary", "type": "string", "jsonPath": ".spec.colours.primary"},
            {"name": "Assistant", "type": "string", "jsonPath": ".spec.assistantName"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    ),
    CrdSpec(
        kind="Deal",
        plural="deals",
        short_names=["deal"],
        description="A prospect in a partner's sales pipeline: its stage and expected revenue; nothing is "
        "provisioned for it (a trial is a Tenant in state Trial, which the Deal names).",
        spec_model=DealSpec,
        printer_columns=[
            {"name": "Company", "type": "string", "jsonPath": ".spec.company"},
            {"name": "Stage", "type": "string", "jsonPath": ".spec.stage"},
            {"name": "Expected-MRR", "type": "number", "jsonPath": ".spec.expected.monthly"},
            {"name": "Currency", "type": "string", "jsonPath": ".spec.expected.currency"},
            {"name": "Close", "type": "string", "jsonPath": ".spec.expectedClose"},
            {"name": "Trial", "type": "string", "jsonPath": ".spec.trial"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    ),
    CrdSpec(
        kind="FeatureSet",
        plural="featuresets",
        short_names=["fs"],
        description="A plan: the features tenants on it get, with included limits, and their "
        "resource quota.",
        spec_model=FeatureSetSpec,
        printer_columns=[
            {"name": "Extends", "type": "string", "jsonPath": ".spec.extends"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    ),
)


def structural_schema(model: type[BaseModel], defaults: bool = True) -> dict[str, Any]:
    """The model's JSON schema converted into a structural OpenAPI v3.0 schema for a CRD.

    `defaults=False` drops defaults: the status is written by the operator, and the 1.20 API
    server rejects an empty-string default there.
    """
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(raw, raw.get("$defs", {}), defaults)


def _convert(node: Any, defs: dict[str, Any], defaults: bool, path: str = "") -> Any:
    if isinstance(node, list):
        return [_convert(item, defs, defaults, path) for item in node]
    if not isinstance(node, dict):
        return node
    unknown = sorted(set(node) - KNOWN_KEYWORDS)
    if unknown:
        raise UnsupportedSchema(f"{path or '(root)'}: JSON schema keyword(s) {', '.join(unknown)} cannot be "
                                "translated into a CRD schema; teach api/crd.py to translate them (dropping "
                                "them would let the API server prune the data they describe)")
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs, defaults, path)
    if "anyOf" in node:
        # `X | None` is the only union the API uses; the API server treats absent as None.
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise UnsupportedSchema(f"{path}: unsupported union in API model: {node['anyOf']}")
        merged = {**options[0], **{k: v for k, v in node.items() if k != "anyOf"}}
        return _convert(merged, defs, defaults, path)
    node = _dictionary(node, path)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "default" and (value is None or not defaults):
            continue
        if key == "additionalProperties" and value is False:
            continue  # the API server prunes unknown fields of a structural schema anyway
        if key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            # 2020-12 gives the bound; OpenAPI v3.0 a boolean next to minimum/maximum.
            out[key.replace("exclusiveM", "m")] = value
            out[key] = True
        elif key == "uniqueItems":
            if value:
                out["x-kubernetes-list-type"] = "set"
        elif key == "properties":
            out[key] = {name: _convert(sub, defs, defaults, f"{path}.{name}") for name, sub in value.items()}
        else:
            out[key] = _convert(value, defs, defaults, f"{path}[*]" if key in ("items", "additionalProperties")
                                else path)
    if out.get("type") == "array" and out.get("items", {}).get("type") == "string":
        # Lists of names are sets: the API server then rejects duplicates.
        out["x-kubernetes-list-type"] = "set"
    if "required" in out:
        out["required"] = sorted(out["required"])
    return out


def _dictionary(node: dict[str, Any], path: str) -> dict[str, Any]:
    """A dictionary with a key pattern (patternProperties, propertyNames) as additionalProperties.

    A structural schema cannot constrain keys: the values keep their schema, the key pattern is
    checked by the operator, the webhook and `tenantry validate`, and the description says so.
    """
    patterns: list[str] = []
    node = dict(node)
    if "patternProperties" in node:
        by_pattern = node.pop("patternProperties")
        values = list(by_pattern.values())
        if len(values) != 1 or "additionalProperties" in node or "properties" in node:
            raise UnsupportedSchema(f"{path}: patternProperties with more than one pattern, or next to properties, "
                                    "cannot be expressed in a CRD schema")
        patterns.append(next(iter(by_pattern)))
        node["additionalProperties"] = values[0]
    if "propertyNames" in node:
        names = node.pop("propertyNames")
        if set(names) - {"pattern", "maxLength", "minLength", "title", "type"}:
            raise UnsupportedSchema(f"{path}: propertyNames {names} cannot be described for a CRD schema")
        if "pattern" in names:
            patterns.append(names["pattern"])
    if patterns:
        rule = " and ".join(f"match {p}" for p in patterns)
        note = (f"Keys must {rule} (checked by the webhook, the operator and `tenantry validate`; the API "
                "server cannot check keys).")
        node["description"] = f"{node.get('description', '').rstrip()} {note}".strip()
    return node


def crd(spec: CrdSpec) -> dict[str, Any]:
    """The CustomResourceDefinition (apiextensions.k8s.io/v1) of one kind."""
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string", "description": "APIVersion of this object."},
        "kind": {"type": "string", "description": "Kind of this object."},
        "metadata": {
            # The API server allows nothing here but constraints on name and generateName.
            "type": "object",
            "properties": {
                "name": {
                    "type": "string",
                    "description": spec.name_description,
                    "maxLength": spec.name_max_length,
                    "pattern": DNS_LABEL,
                }
            },
        },
        "spec": structural_schema(spec.spec_model),
    }
    subresources: dict[str, Any] = {}
    required = ["spec"]
    if spec.status_model is not None:
        properties["status"] = structural_schema(spec.status_model, defaults=False)
        subresources["status"] = {}
    schema = {
        "type": "object",
        "description": spec.description,
        "required": required,
        "properties": properties,
    }
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "additionalPrinterColumns": spec.printer_columns,
    }
    if subresources:
        version["subresources"] = subresources
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{spec.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "tenantry"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": spec.kind,
                "listKind": f"{spec.kind}List",
                "plural": spec.plural,
                "singular": spec.kind.lower(),
                "shortNames": spec.short_names,
                "categories": ["tenantry"],
            },
            "versions": [version],
        },
    }


def all_crds() -> dict[str, dict[str, Any]]:
    """File name -> CRD, for every kind."""
    return {f"{GROUP}_{spec.plural}.yaml": crd(spec) for spec in KINDS}
