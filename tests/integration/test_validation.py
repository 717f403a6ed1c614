"""Invalid Tenant documents are rejected by the API server itself (the generated CRD schema),
with a message that names the offending field. Nothing reaches the operator.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.integration.fixtures import Partner

pytestmark = pytest.mark.integration


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node.setdefault(key, {})
    if value is _DELETE:
        node.pop(last)
    else:
        node[last] = value
    return doc


_DELETE = object()

# (what is wrong, path to change, new value, text the API server's message must contain)
INVALID = [
    ("slug with capitals", "metadata.name", "Mustermann", "metadata.name"),
    ("slug too long", "metadata.name", "m" * 41, "metadata.name"),
    ("no company", "spec.company", _DELETE, "spec.company"),
    ("empty company", "spec.company", "", "spec.company"),
    ("unknown state", "spec.state", "Paused", "spec.state"),
    ("zero seats", "spec.plan.seats", 0, "spec.plan.seats"),
    ("seats as text", "spec.plan.seats", "many", "spec.plan.seats"),
    ("plan without FeatureSet", "spec.plan.featureSet", _DELETE, "spec.plan.featureSet"),
    ("FeatureSet name with spaces", "spec.plan.featureSet", "Business Plan", "spec.plan.featureSet"),
    ("negative price", "spec.plan.price", {"monthly": -5, "currency": "EUR"}, "spec.plan.price.monthly"),
    ("lower-case currency", "spec.plan.price", {"monthly": 5, "currency": "eur"}, "spec.plan.price.currency"),
    ("contact e-mail without @", "spec.contact.email", "max.mustermann.de", "spec.contact.email"),
    ("phone with letters", "spec.contact.phone", "call me", "spec.contact.phone"),
    ("wildcard domain", "spec.domains", ["*.mustermann.de"], "spec.domains"),
    ("domain with scheme", "spec.domains", ["https://ki.mustermann.de"], "spec.domains"),
    ("duplicate domain", "spec.domains", ["ki.mustermann.de", "ki.mustermann.de"], "spec.domains[1]"),
    ("admin not an e-mail", "spec.admins", ["root"], "spec.admins"),
    ("unknown deletion policy", "spec.deletionPolicy", "Purge", "spec.deletionPolicy"),
    ("negative feature limit", "spec.features", {"tables": {"limits": {"tables": -1}}},
     "spec.features.tables.limits.tables"),
    ("branding name with underscore", "spec.branding", "my_brand", "spec.branding"),
]


@pytest.mark.parametrize(("why", "path", "value", "field"), INVALID, ids=[row[0] for row in INVALID])
def test_api_server_rejects_invalid_tenant(partner: Partner, why: str, path: str, value: Any, field: str) -> None:
    doc = _set(partner.tenant(f"valid-{partner.suffix}"), path, value)
    # --validate=false: skip kubectl's own check, so the API server is what refuses.
    result = partner.cluster.kubectl("apply", "--validate=false", "-f", "-", input=yaml.safe_dump(doc),
                                     check=False)
    assert result.returncode != 0, f"{why}: accepted"
    assert "is invalid" in result.stderr and field in result.stderr, result.stderr
    assert partner.get(doc["metadata"]["name"]) is None


def test_the_valid_baseline_is_accepted(partner: Partner) -> None:
    """The table above changes one field each of this document, which itself is valid."""
    slug = partner.slug("valid")
    partner.apply(partner.tenant(slug))
    assert partner.get(slug) is not None
