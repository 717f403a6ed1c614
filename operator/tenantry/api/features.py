"""The catalogue of features a plan can switch on: the names flags and limits are keyed by."""

from __future__ import annotations

CORE_FEATURES = ("chat", "files", "tables", "meetings", "scheduler")
INTEGRATIONS = ("hubspot", "salesforce", "confluence", "jira", "sharepoint", "teams", "slack", "google-drive")
KNOWN_FEATURES = frozenset(CORE_FEATURES + INTEGRATIONS)
# Always on while a tenant is active: the product without chat is no product.
ALWAYS_ON = frozenset({"chat"})


def unknown_features(names: object) -> str | None:
    """A message naming unknown feature names (with the known ones), or None when all are known."""
    unknown = sorted(set(names) - KNOWN_FEATURES)  # type: ignore[call-overload]
    if not unknown:
        return None
    return (f"unknown feature(s) {', '.join(unknown)}; known features: "
            f"{', '.join(CORE_FEATURES + INTEGRATIONS)}")


def known_features(value: dict[str, object]) -> dict[str, object]:
    """A pydantic after-validator for dictionaries keyed by feature name."""
    problem = unknown_features(value)
    if problem:
        raise ValueError(problem)
    return value
