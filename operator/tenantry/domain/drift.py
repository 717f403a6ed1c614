"""Does a live object already hold everything we want? Decides whether a write is needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tenantry.domain import quantity
from tenantry.domain.naming import FIELD_MANAGER

# Set by the informers on a stored ConfigMap of ours that holds data they do not keep (binaryData,
# keys no operator ConfigMap has): a tenant admin's additions, which the next write removes.
OTHERS_DATA = "tenantryOthersData"


def holds(actual: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether a live object already is what we want, so that no write is needed: it covers
    `desired`; and a ConfigMap, the one kind of ours a tenant admin may edit, holds exactly our
    data: no key of theirs (binary or not, a logo.svg the Branding does not have), and no value
    that only reads the same as a quantity ("0.5k" seats for "500")."""
    if desired.get("kind") != "ConfigMap":
        return covers(actual, desired)
    return (covers(actual, {k: v for k, v in desired.items() if k != "data"}) and not actual.get(OTHERS_DATA)
            and not actual.get("binaryData") and (actual.get("data") or {}) == (desired.get("data") or {}))


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



def changed_by_others(managed_fields: Sequence[Mapping[str, Any]] | None) -> bool:
    """Whether an object's latest change came from a writer other than us (a watch event filter).

    Our own writes and controllers' status updates (quota usage) need no reconcile. Each change
    comes as its own event, so judging by the latest entry misses none.
    """
    if not managed_fields:
        return True
    latest = max(managed_fields, key=lambda entry: entry.get("time") or "")
    if latest.get("manager") == FIELD_MANAGER:
        return False
    return set((latest.get("fieldsV1") or {}).keys()) != {"f:status"}


def other_writer(managed_fields: Sequence[Mapping[str, Any]] | None) -> str | None:
    """Who made the latest change to anything but the status, when that was not us; else None
    (used to name the other writer of an object we find changed).

    Status updates do not count, not even as the latest entry: a controller that mirrors a
    changed quota into its status right after someone else edited it must not hide that edit.
    """
    if not managed_fields:
        return "an unknown writer"
    edits = [entry for entry in managed_fields if set((entry.get("fieldsV1") or {}).keys()) - {"f:status"}]
    if not edits:
        return None
    # Timestamps have one-second resolution: on a tie, the other writer is the likelier last one.
    latest = max(edits, key=lambda entry: (entry.get("time") or "", entry.get("manager") != FIELD_MANAGER))
    if latest.get("manager") == FIELD_MANAGER:
        return None
    return str(latest.get("manager") or "an unknown writer")
