"""Does a live object already hold everything we want? Decides whether a write is needed."""

from __future__ import annotations

from typing import Any

from tenantry.domain import quantity


def covers(actual: Any, desired: Any) -> bool:
    """True when every field of `desired` is present in `actual` with the same meaning.

    Fields only the API server or other writers add (status, managedFields, extra labels) do not
    matter; quantities compare by value because the API server rewrites "1024Mi" as "1Gi".
    """
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return False
        return all(key in actual and covers(actual[key], value) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(actual) != len(desired):
            return False
        return all(covers(a, d) for a, d in zip(actual, desired, strict=True))
    if isinstance(desired, str) and isinstance(actual, str) and desired != actual:
        return quantity.equal(actual, desired)
    return bool(actual == desired)

