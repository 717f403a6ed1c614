"""The generated CRDs: in sync with the models, structural, documented, and complete.

Tested here:
- crds/ equals what `make crds` generates from the models now (the chart's templates/crds/: test_chart_crds.py)
- every field of every schema has a description (so `kubectl explain` helps)
- nothing a structural schema forbids (refs, unions, nullable defaults) survives the conversion
- names: short names, category, printer columns (Tenant's and Deal's; every column reads a field of
  its schema), status subresource
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tenantry.api.branding import PLAIN_TEXT
from tenantry.api.crd import all_crds
from tenantry.devtools.gencrds import TARGETS, rendered

FORBIDDEN = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "title", "propertyNames", "patternProperties"}


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.parent.name + "/" + t.name)
def test_committed_crds_match_the_models(target) -> None:
    expected = rendered()
    committed = {p.name: p.read_text() for p in target.glob("*.yaml")}
    assert committed.keys() == expected.keys(), "run `make crds`"
    for name, text in expected.items():
        assert committed[name] == text, f"{target.name}/{name} drifted from the models: run `make crds`"


def _walk(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_every_field_is_described_and_structural(name: str) -> None:
    schema = all_crds()[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema, ""):
        assert not FORBIDDEN & node.keys(), f"{path}: {FORBIDDEN & node.keys()}"
        assert "type" in node, f"{path} has no type"
        is_item = path.endswith("[]") or path.endswith("{}")
        # Below spec and status, every field (the API server forbids a description on metadata).
        if path.count(".") >= 2 and not is_item:
            assert node.get("description"), f"{path} has no description"


def test_tenant_names_columns_and_subresources() -> None:
    crd = all_crds()["tenantry.dev_tenants.yaml"]
    names = crd["spec"]["names"]
    assert names["shortNames"] == ["tn"] and names["categories"] == ["tenantry"]
    version = crd["spec"]["versions"][0]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Partner", "State", "Spec-State", "Trial-Ends", "Plan", "Seats", "Ready", "URL", "Age"]
    by_name = {c["name"]: c for c in version["additionalPrinterColumns"]}
    # The state in effect (an ended trial is Suspended), not what git asks for; that one with -o wide.
    assert by_name["State"]["jsonPath"] == ".status.state" and "priority" not in by_name["State"]
    assert (by_name["Spec-State"]["jsonPath"], by_name["Spec-State"]["priority"]) == (".spec.state", 1)
    assert version["subresources"] == {"status": {}}
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["state"]["enum"] == ["Active", "Trial", "Suspended", "Cancelled"]
    assert spec["properties"]["state"]["default"] == "Active"
    assert spec["properties"]["deletionPolicy"]["default"] == "Retain"
    assert spec["properties"]["domains"]["x-kubernetes-list-type"] == "set"
    assert spec["required"] == ["company", "contact", "plan"]


def test_deal_names_and_columns() -> None:
    crd = all_crds()["tenantry.dev_deals.yaml"]
    names = crd["spec"]["names"]
    assert (names["kind"], names["shortNames"], names["categories"]) == ("Deal", ["deal"], ["tenantry"])
    version = crd["spec"]["versions"][0]
    columns = [(c["name"], c["type"], c["jsonPath"], c.get("priority", 0)) for c in version["additionalPrinterColumns"]]
    assert columns == [
        ("Company", "string", ".spec.company", 0),
        ("Stage", "string", ".spec.stage", 0),
        ("Expected-MRR", "number", ".spec.expected.monthly", 0),
        ("Currency", "string", ".spec.expected.currency", 0),
        ("Close", "string", ".spec.expectedClose", 0),
        ("Trial", "string", ".spec.trial", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0),
    ]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["stage"]["enum"] == ["Discovery", "Demo", "Proposal", "Negotiation"]
    assert sorted(spec["required"]) == ["company", "expected", "stage"]


_SCALAR_TYPES = {"string": {"string"}, "integer": {"integer"}, "number": {"number", "integer"},
                 "boolean": {"boolean"}, "date": {"string"}}


@pytest.mark.parametrize("name", sorted(all_crds()))
def test_every_column_reads_a_field_of_its_schema(name: str) -> None:
    """A column whose path has a typo shows an empty cell forever: each one names a field of the
    schema, of a type the column can show (a condition's status is the Ready column's own filter)."""
    version = all_crds()[name]["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    for column in version["additionalPrinterColumns"]:
        path = column["jsonPath"]
        if path == ".metadata.creationTimestamp":
            continue
        if path.startswith(".status.conditions[?"):
            node = schema["properties"]["status"]["properties"]["conditions"]["items"]["properties"]["status"]
        else:
            node = schema
            for part in path.lstrip(".").split("."):
                assert part in node.get("properties", {}), f"{name}: column {column['name']} reads {path}: no {part}"
                node = node["properties"][part]
        assert node["type"] in _SCALAR_TYPES[column["type"]], f"{name}: column {column['name']} is {node['type']}"


def test_short_names_of_all_kinds() -> None:
    short = {c["spec"]["names"]["kind"]: c["spec"]["names"]["shortNames"] for c in all_crds().values()}
    assert short == {"Tenant": ["tn"], "Branding": ["brand"], "FeatureSet": ["fs"], "Deal": ["deal"]}


def test_committed_files_are_plain_yaml_with_a_header() -> None:
    for target in TARGETS:
        for path in target.glob("*.yaml"):
            text = path.read_text()
            assert text.startswith("# Generated from operator/tenantry/api")
            assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"


def test_dictionaries_keep_their_values_and_document_their_key_pattern() -> None:
    branding = all_crds()["tenantry.dev_brandings.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    welcome = branding["properties"]["spec"]["properties"]["welcome"]
    assert welcome["additionalProperties"] == {"type": "string", "maxLength": 2000, "pattern": PLAIN_TEXT}
    assert "^[a-z]{2}(-[A-Z]{2})?$" in welcome["description"] and "cannot check keys" in welcome["description"]


@pytest.mark.parametrize("keyword", [{"oneOf": [{"type": "string"}]}, {"not": {"type": "string"}},
                                     {"if": {"type": "string"}}, {"dependentRequired": {"a": ["b"]}},
                                     {"patternProperties": {"^a": {"type": "string"}, "^b": {"type": "string"}}}])
def test_generator_raises_on_what_it_cannot_translate(keyword: dict[str, Any]) -> None:
    from pydantic import BaseModel, Field

    from tenantry.api.crd import UnsupportedSchema, structural_schema

    class Odd(BaseModel):
        value: dict[str, str] = Field(default_factory=dict, json_schema_extra=keyword)  # type: ignore[arg-type]

    with pytest.raises(UnsupportedSchema, match=r"\.value"):
        structural_schema(Odd)


def test_generator_translates_const_and_exclusive_bounds() -> None:
    from typing import Literal

    from pydantic import BaseModel, Field

    from tenantry.api.crd import structural_schema

    class Bounds(BaseModel):
        kind: Literal["only"] = "only"
        ratio: float = Field(gt=0, lt=1)

    schema = structural_schema(Bounds)["properties"]
    assert schema["kind"]["enum"] == ["only"]
    assert (schema["ratio"]["minimum"], schema["ratio"]["exclusiveMinimum"]) == (0, True)
    assert (schema["ratio"]["maximum"], schema["ratio"]["exclusiveMaximum"]) == (1, True)
