"""A quick yes-or-maybe check of a JSON schema, so that valid documents skip jsonschema's slow walk.

`compile_check(schema)` returns a function that says True only when jsonschema's Draft 7 validator
would report no error for the instance; False means "maybe not": the caller then asks jsonschema,
whose errors are the findings. So the check must never say True for an invalid instance, and it
may say False for a valid one (being strict costs only time). Anything it does not understand
(a keyword it does not know, a float where an integer is wanted, an enum of non-strings) is False.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from numbers import Number
from typing import Any

Check = Callable[[Any], bool]

# Keywords that only describe (jsonschema validates nothing with them), so a check ignores them.
# "format" too: validate's Draft 7 validator has no format checker (the models check dates).
_ANNOTATIONS = frozenset({"description", "default", "example", "title", "format", "x-kubernetes-list-type",
                          "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string"})
# Exact types only: a bool is not an integer, and a float integer (5.0) is left to jsonschema.
_TYPES: dict[str, tuple[type, ...]] = {"object": (dict,), "array": (list,), "string": (str,), "integer": (int,),
                                       "number": (int, float), "boolean": (bool,), "null": (type(None),)}


def _never(_: Any) -> bool:
    return False


def compile_check(schema: Any) -> Check:
    """The quick check of one (sub)schema; see the module's docstring for what True and False mean."""
    if schema is True or schema == {}:
        return lambda _: True
    if not isinstance(schema, dict) or not set(schema) <= _ANNOTATIONS | set(_KEYWORDS):
        return _never
    checks = [_KEYWORDS[key](value, schema) for key, value in schema.items() if key in _KEYWORDS]
    if any(check is _never for check in checks):
        return _never
    return _all(checks)


def _all(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]

    def check(instance: Any) -> bool:
        for one in checks:  # a plain loop: all() over a generator costs twice as much per keyword
            if not one(instance):
                return False
        return True
    return check


def _type(value: Any, _: dict) -> Check:
    if not isinstance(value, str) or value not in _TYPES:  # a list of types is left to jsonschema
        return _never
    exact = _TYPES[value]
    return lambda instance: type(instance) in exact


def _numbers(compare: Callable[[Any, Any], bool]) -> Callable[[Any, dict], Check]:
    def make(bound: Any, _: dict) -> Check:
        if type(bound) not in (int, float):
            return _never
        # As jsonschema: only numbers (never a bool) are compared; other values pass this keyword.
        return lambda instance: (isinstance(instance, bool) or not isinstance(instance, Number)
                                 or compare(instance, bound))
    return make


def _lengths(compare: Callable[[int, int], bool], kind: type) -> Callable[[Any, dict], Check]:
    def make(bound: Any, _: dict) -> Check:
        if type(bound) is not int:
            return _never
        return lambda instance: not isinstance(instance, kind) or compare(len(instance), bound)
    return make


_BRACED_HEX = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")


def python_escapes(pattern: str) -> str:
    """RE2's and Rust's `\\x{2028}` (which keeps the CRDs ASCII) as Python's `\\U00002028`."""
    return _BRACED_HEX.sub(lambda m: f"\\U{int(m.group(1), 16):08x}", pattern)


def end_anchored(pattern: str) -> str:
    """The pattern as the API server (Go, RE2) reads it, for Python: a closing `$` as `\\Z` (Python's
    also matches before a final line break: `admin\\n` would pass a slug pattern), and `\\x{2028}`
    (RE2's and Rust's escape, which keeps the CRDs ASCII) as Python's `\\U00002028`."""
    pattern = python_escapes(pattern)
    return pattern[:-1] + "\\Z" if pattern.endswith("$") and not pattern.endswith("\\$") else pattern


def _pattern(value: Any, _: dict) -> Check:
    if not isinstance(value, str):
        return _never
    search = re.compile(end_anchored(value)).search  # jsonschema searches too (the pattern is not anchored for it)
    return lambda instance: not isinstance(instance, str) or search(instance) is not None


def _enum(value: Any, _: dict) -> Check:
    if not isinstance(value, list) or not all(type(v) is str for v in value):
        return _never  # jsonschema's equality differs from Python's for 1, 1.0 and True: not handled here
    allowed = frozenset(value)
    return lambda instance: type(instance) is str and instance in allowed


def _required(value: Any, _: dict) -> Check:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return _never
    return lambda instance: not isinstance(instance, dict) or all(key in instance for key in value)


def _properties(value: Any, schema: dict) -> Check:
    if not isinstance(value, dict):
        return _never
    fields = {name: compile_check(sub) for name, sub in value.items()}
    if any(check is _never for check in fields.values()):
        return _never
    extra = schema.get("additionalProperties", True)
    rest = compile_check(extra) if extra is not False else None

    def check(instance: Any) -> bool:
        if not isinstance(instance, dict):
            return True
        for key, item in instance.items():
            inner = fields.get(key, rest)
            if inner is None or not inner(item):
                return False
        return True
    return check


def _additional(value: Any, schema: dict) -> Check:
    if "properties" in schema:
        return lambda _: True  # checked by _properties, which knows which keys are declared
    if value is False:
        return lambda instance: not isinstance(instance, dict) or not instance
    inner = compile_check(value)
    return lambda instance: not isinstance(instance, dict) or all(inner(item) for item in instance.values())


def _items(value: Any, _: dict) -> Check:
    if not isinstance(value, dict):
        return _never  # a list of schemas (tuple validation) is left to jsonschema
    inner = compile_check(value)
    return lambda instance: not isinstance(instance, list) or all(inner(item) for item in instance)


_KEYWORDS: dict[str, Callable[[Any, dict], Check]] = {
    "type": _type,
    "minimum": _numbers(lambda instance, bound: not instance < bound),
    "maximum": _numbers(lambda instance, bound: not instance > bound),
    "minLength": _lengths(lambda length, bound: length >= bound, str),
    "maxLength": _lengths(lambda length, bound: length <= bound, str),
    "minItems": _lengths(lambda length, bound: length >= bound, list),
    "maxItems": _lengths(lambda length, bound: length <= bound, list),
    "minProperties": _lengths(lambda length, bound: length >= bound, dict),
    "maxProperties": _lengths(lambda length, bound: length <= bound, dict),
    "pattern": _pattern,
    "enum": _enum,
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional,
    "items": _items,
}
