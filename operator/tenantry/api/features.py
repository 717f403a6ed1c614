"""The catalogue of features a plan can switch on: the names flags and limits are keyed by."""

from __future__ import annotations

import re

from tenantry.api.common import SHOWN_CHARACTERS, quoted

CORE_FEATURES = ("chat", "files", "tables", "meetings", "scheduler")
INTEGRATIONS = ("hubspot", "salesforce", "confluence", "jira", "sharepoint", "teams", "slack", "google-drive")
KNOWN_FEATURES = frozenset(CORE_FEATURES + INTEGRATIONS)
# Always on while a tenant is active: the product without chat is no product.
ALWAYS_ON = frozenset({"chat"})


NAMES_SHOWN = 10  # unknown names a message lists (a document may hold thousands)


def _shown(name: str) -> str:
    """A name as written when it is plain, else quoted and cut (it came from a partner's document)."""
    return name if len(name) <= SHOWN_CHARACTERS and re.fullmatch(r"[a-z0-9-]+", name) else quoted(name)


def unknown_features(names: object) -> str | None:
    """A message naming unknown feature names (with the known ones), or None when all are known."""
    unknown = sorted(str(name) for name in set(names) - KNOWN_FEATURES)  # type: ignore[call-overload]
    if not unknown:
        return None
    more = f" and {len(unknown) - NAMES_SHOWN} more" if len(unknown) > NAMES_SHOWN else ""
    return (f"unknown feature(s) {', '.join(map(_shown, unknown[:NAMES_SHOWN]))}{more}; known features: "
            f"{', '.join(CORE_FEATURES + INTEGRATIONS)}")


def known_features(value: object) -> object:
    """A pydantic before-validator for dictionaries keyed by feature name: unknown names are refused
    before the values are validated (thousands of unknown features, each with invalid values, would
    otherwise cost an error each). Anything but a dictionary is left to the type's own check."""
    problem = unknown_features(value) if isinstance(value, dict) else None
    if problem:
        raise ValueError(problem)
    return value
