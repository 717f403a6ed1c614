"""The quick schema check of `tenantry validate` never calls an invalid document valid.

Tested here:
- for each keyword and its edge cases (bool vs integer, 5.0, NaN, enums, extra properties, lists
  of types, unknown keywords), True from the quick check means jsonschema finds no error
- over every CRD schema and thousands of mutated documents (each field set to values of every
  kind), the same holds; and the quick check says True for the valid ones, so it saves work
"""

from __future__ import annotations

import copy
import random
from typing import Any

import jsonschema
import pytest

from tenantry.api.crd import all_crds
from tenantry.cli.quickschema import compile_check
from tenantry.cli.validate import _Validator

EDGES: list[tuple[dict[str, Any], list[Any]]] = [
    ({"type": "integer"}, [1, 0, True, False, 5.0, 2.5, "1", None, [], {}]),
    ({"type": "number", "minimum": 0, "maximum": 10}, [0, 10, -1, 11, 5.5, float("nan"), float("inf"), True, "3"]),
    ({"minimum": 1}, [0, True, False, "0", None, 2]),
    ({"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^[a-z]+$"}, ["ab", "abc", "a", "abcd", "AB",
                                                                                 "ab\n", 12, None]),
    ({"pattern": "b"}, ["abc", "xyz", 5]),  # not anchored, as jsonschema's search
    ({"enum": ["Active", "Suspended"]}, ["Active", "active", None, 1, True]),
    ({"enum": [1, True]}, [1, True, 1.0, False]),
    ({"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}, "additionalProperties": False},
     [{"a": "x"}, {"a": 1}, {}, {"a": "x", "b": 1}, [], "x"]),
    ({"type": "object", "additionalProperties": {"type": "integer"}}, [{"a": 1}, {"a": "1"}, {}, None]),
    ({"type": "object", "additionalProperties": False}, [{}, {"a": 1}]),
    ({"maxProperties": 1}, [{}, {"a": 1}, {"a": 1, "b": 2}, [], [1, 2], None, "ab", True]),
    ({"minProperties": 1}, [{}, {"a": 1}, [], None, "", False]),
    ({"properties": {"a": {"type": "integer"}}}, [{"a": 1}, {"a": "1"}, {"b": "1"}, 7]),
    ({"type": "array", "maxItems": 2, "minItems": 1, "items": {"type": "string"}}, [["a"], [], ["a", "b", "c"],
                                                                                      [1], "ab"]),
    ({"items": [{"type": "string"}]}, [["a"], [1]]),
    ({"type": ["string", "null"]}, ["a", None, 1]),
    ({"$ref": "#/definitions/x", "definitions": {"x": {"type": "string"}}}, ["a", 1]),
    ({"format": "email"}, ["x", "a@b.de"]),
    ({"x-kubernetes-preserve-unknown-fields": True, "description": "free"}, [{"a": 1}, 5]),
    ({"not": {"type": "string"}}, ["a", 1]),
    (True, [1, None]),
    (False, [1, None]),
    ({}, [1, None]),
]


@pytest.mark.parametrize(("schema", "instances"), EDGES, ids=[str(i) for i in range(len(EDGES))])
def test_quick_true_means_jsonschema_finds_nothing(schema: Any, instances: list[Any]) -> None:
    quick, full = compile_check(schema), jsonschema.Draft7Validator(schema)
    for instance in instances:
        assert not quick(instance) or full.is_valid(instance), instance


def test_quick_is_exact_where_it_is_sure() -> None:
    """The plain cases are decided by the quick check itself (else it would save nothing)."""
    quick = compile_check({"type": "object", "required": ["a"], "properties": {
        "a": {"type": "string", "pattern": "^x", "maxLength": 3}, "n": {"type": "integer", "minimum": 1},
        "l": {"type": "array", "items": {"type": "string", "enum": ["p", "q"]}}}})
    assert quick({"a": "xy", "n": 2, "l": ["p", "q"], "other": None})
    for bad in ({"a": "y"}, {"a": "xyzw"}, {}, {"a": "x", "n": 0}, {"a": "x", "l": ["r"]}, {"a": "x", "n": "1"}):
        assert not quick(bad), bad
    counted = compile_check({"type": "object", "minProperties": 1, "maxProperties": 2})
    assert counted({"a": 1}) and counted({"a": 1, "b": 2})
    assert not counted({}) and not counted({"a": 1, "b": 2, "c": 3})


VALID = {
    "Tenant": {"company": "Firma GmbH", "contact": {"name": "Max", "email": "max@firma.de", "phone": "+49 521 123"},
               "state": "Active", "plan": {"featureSet": "business", "seats": 5,
                                           "price": {"monthly": 990, "currency": "EUR"}},
               "features": {"tables": {"enabled": True, "limits": {"tables": 5}}}, "branding": "look",
               "domains": ["ki.firma.de"], "admins": ["max@firma.de"], "deletionPolicy": "Retain"},
    "Branding": {"displayName": "Look", "colours": {"primary": "#000000", "secondary": "#FFFFFF"},
                 "assistantName": "Ada", "welcome": {"de": "Hallo"}, "support": {"email": "a@b.de"}},
    "FeatureSet": {"displayName": "Plan", "extends": "business", "features": {"chat": {"enabled": True}},
                   "resources": {"base": {"cpu": "1", "memory": "2Gi", "pods": 10}}},
}
ODD_VALUES: list[Any] = [None, True, False, 0, -1, 1, 2.5, 5.0, 10**13, float("nan"), "", "x", "A" * 300,
                         "Active", "#12345G", [], ["x"], [1], {}, {"x": 1}, {"enabled": "yes"}]


def _places(value: Any, path: tuple = ()) -> list[tuple]:
    """Every path into a document (keys of mappings, indexes of lists)."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _places(item, (*path, index))
    return found


def _with(document: dict, path: tuple, value: Any) -> dict:
    changed = copy.deepcopy(document)
    node = changed
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return changed


@pytest.mark.parametrize("kind", sorted(VALID))
def test_mutated_documents_of_every_crd(kind: str) -> None:
    crd = next(c for c in all_crds().values() if c["spec"]["names"]["kind"] == kind)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    # (the full check validate runs: jsonschema, with patterns read as the API server reads them)
    quick, full = compile_check(schema), _Validator(schema)
    valid = {"apiVersion": "tenantry.dev/v1alpha1", "kind": kind, "metadata": {"name": "t1", "namespace": "p"},
             "spec": VALID[kind]}
    assert full.is_valid(valid) and quick(valid)
    rng = random.Random(13)
    places = [p for p in _places(valid) if p]
    documents = [_with(valid, path, value) for path in places for value in ODD_VALUES]
    for _ in range(500):  # two changes at once: one anywhere, one field of the spec set or added
        once = _with(valid, ("spec", rng.choice(["extra", "company", "seats", "colours", "features"])),
                     rng.choice(ODD_VALUES))
        documents.append(_with(once, rng.choice([p for p in _places(once) if p]), rng.choice(ODD_VALUES)))
    rejected = 0
    for document in documents:
        verdict = full.is_valid(document)
        assert not quick(document) or verdict, document
        rejected += not verdict
    assert rejected > len(documents) // 3  # the mutations do break documents
