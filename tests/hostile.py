"""A corpus of hostile documents: what a careless or malicious partner could put into a pull request.

Each entry is YAML text for a file under `tenants/acme-it/`, what `tenantry validate` must name
(a field, or "(file)" for documents that are not even safe YAML), and, for documents that kubectl
can send at all, words the refusal of the API server or the admission webhook must contain.
Used by tests/unit/test_hostile_cli.py (the CLI) and tests/integration/test_admission.py (the
API server and the webhook, acting as a partner's ServiceAccount).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

PARTNER_NAMESPACE = "partner-acme-it"


@dataclass(frozen=True)
class Hostile:
    id: str
    text: str
    cli_field: str  # the field one of the file's findings from `tenantry validate` names exactly
    api_words: tuple[str, ...] | None  # None: not sent to the API server (kubectl cannot parse it safely)


def _tenant(name: str = "hostile", namespace: str = PARTNER_NAMESPACE, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"company": "Test GmbH", "contact": {"name": "Test", "email": "test@example.de"},
                            "plan": {"featureSet": "business", "seats": 5}}
    base.update(spec)
    return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name, "namespace": namespace},
            "spec": {k: v for k, v in base.items() if v is not None}}


def _branding(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Branding",
            "metadata": {"name": "hostile", "namespace": PARTNER_NAMESPACE},
            "spec": {"colours": {"primary": "#003366", "secondary": "#FFCC00"}, **spec}}


def _plan(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "FeatureSet",
            "metadata": {"name": name, "namespace": PARTNER_NAMESPACE}, "spec": spec}


def _doc(obj: dict[str, Any], id: str, cli_field: str, *api_words: str) -> Hostile:
    return Hostile(id, yaml.safe_dump(obj, allow_unicode=True, sort_keys=False), cli_field, api_words)


def _plan_with(seats: Any) -> dict[str, Any]:
    return {"featureSet": "business", "seats": seats}


SVG = '<svg xmlns="http://www.w3.org/2000/svg">{}</svg>'
NESTED: Any = 1
for _ in range(60):
    NESTED = {"x": NESTED}

CORPUS: list[Hostile] = [
    # Huge and over-long strings.
    _doc(_tenant(company="A" * 201), "company-too-long", "spec.company", "spec.company"),
    _doc(_tenant(company="B" * 1_000_000), "company-one-megabyte", "spec.company", "spec.company"),
    _doc(_tenant(industry="C" * 10_000), "industry-10k", "spec.industry", "spec.industry"),
    _doc(_tenant(domains=["d" * 250 + ".de"]), "domain-too-long", "spec.domains[0]", "spec.domains"),
    _doc(_tenant(name="s" * 41), "slug-too-long", "metadata.name", "metadata.name"),
    # Unicode confusables and odd characters in slugs and domains.
    _doc(_tenant(name="muѕtermann"), "slug-cyrillic-dze", "metadata.name", "metadata.name"),
    _doc(_tenant(name="mustermаnn"), "slug-cyrillic-a", "metadata.name", "metadata.name"),
    _doc(_tenant(name="Mustermann"), "slug-uppercase", "metadata.name", "metadata.name"),
    _doc(_tenant(name="muster_mann"), "slug-underscore", "metadata.name", "metadata.name"),
    _doc(_tenant(domains=["ki.mustеrmann.de"]), "domain-cyrillic-e", "spec.domains[0]", "spec.domains"),
    _doc(_tenant(domains=["ki.mustermann.de\u200b"]), "domain-zero-width-space", "spec.domains[0]", "spec.domains"),
    _doc(_tenant(domains=["*.mustermann.de"]), "domain-wildcard", "spec.domains[0]", "spec.domains"),
    _doc(_tenant(domains=["co.uk"]), "domain-public-suffix", "spec.domains[0]", "public suffix"),
    _doc(_tenant(domains=["ki.mustermann.de"] * 21), "domains-too-many", "spec.domains", "spec.domains"),
    _doc(_tenant(contact={"name": "X", "email": "x@y.de", "phone": "+49\x00123"}), "phone-nul-byte",
         "spec.contact.phone", "spec.contact.phone"),
    # Wrong types and out-of-range numbers.
    _doc(_tenant(plan=_plan_with("many")), "seats-string", "spec.plan.seats", "spec.plan.seats"),
    _doc(_tenant(plan=_plan_with(-1)), "seats-negative", "spec.plan.seats", "spec.plan.seats"),
    _doc(_tenant(plan=_plan_with(10**12)), "seats-huge", "spec.plan.seats", "spec.plan.seats"),
    _doc(_tenant(plan=_plan_with(2.5)), "seats-fraction", "spec.plan.seats", "spec.plan.seats"),
    _doc(_tenant(plan={**_plan_with(5), "price": {"monthly": -100}}), "price-negative", "spec.plan.price.monthly",
         "spec.plan.price.monthly"),
    _doc(_tenant(plan={**_plan_with(5), "price": {"monthly": 10, "currency": "euro"}}), "currency-lowercase",
         "spec.plan.price.currency", "spec.plan.price.currency"),
    _doc(_tenant(admins="max@mustermann.de"), "admins-not-a-list", "spec.admins", "spec.admins"),
    _doc(_tenant(admins=[f"a{i}@x.de" for i in range(51)]), "admins-too-many", "spec.admins", "spec.admins"),
    _doc(_tenant(admins=["system:masters"]), "admin-not-an-email", "spec.admins[0]", "spec.admins"),
    _doc(_tenant(state="Deleted"), "state-unknown", "spec.state", "spec.state"),
    _doc(_tenant(deletionPolicy="Purge"), "deletion-policy-unknown", "spec.deletionPolicy", "spec.deletionPolicy"),
    _doc(_tenant(features="all"), "features-string", "spec.features", "spec.features"),
    _doc(_tenant(features={"teleport": {"enabled": True}}), "feature-unknown", "spec.features", "teleport"),
    _doc(_tenant(features={"tables": {"limits": {"tables": NESTED}}}), "limits-deeply-nested", "(file)",
         "spec.features"),
    # Limit names become keys of the flags, a label of tenantry_tenant_feature_limit and portal text.
    _doc(_tenant(features={"tables": {"limits": {'x"} evil{a="b': 5}}}), "limit-name-hostile",
         "spec.features.tables.limits", "spec.features.tables.limits"),
    _doc(_tenant(features={"tables": {"limits": {f"l{i}": 1 for i in range(33)}}}), "limits-too-many",
         "spec.features.tables.limits", "spec.features.tables.limits"),
    _doc(_tenant(company=None, contact=None, plan=None), "spec-empty", "spec", "spec"),
    # Brandings and plans.
    # 51 languages (aa, ab, ... by): one Branding's texts are bounded (maxProperties), with the webhook down too.
    _doc(_branding(welcome={chr(97 + i // 26) + chr(97 + i % 26): "Hallo" for i in range(51)}),
         "welcome-too-many-languages", "spec.welcome", "spec.welcome"),
    _doc(_branding(logo={"svg": SVG.format("<script>fetch('/steal')</script>")}), "svg-script", "spec.logo.svg",
         "script"),
    _doc(_branding(logo={"svg": SVG.format('<image href="https://evil.example/x.png"/>')}), "svg-external-image",
         "spec.logo.svg", "spec.logo.svg"),
    _doc(_branding(logo={"svg": SVG.format('<rect onload="alert(1)"/>')}), "svg-event-handler", "spec.logo.svg",
         "onload"),
    _doc(_branding(logo={"svg": SVG.format("<!-- " + "x" * 70_000 + " -->")}), "svg-too-big", "spec.logo.svg",
         "spec.logo.svg"),
    _doc(_branding(colours={"primary": "red", "secondary": "#FFCC00"}), "colour-name", "spec.colours.primary",
         "spec.colours.primary"),
    _doc(_plan("ouroboros", extends="ouroboros"), "plan-extends-itself", "spec.extends", "cycle"),
    _doc(_plan("greedy", resources={"base": {"cpu": "lots"}}), "plan-quantity-garbage", "spec.resources.base.cpu",
         "spec.resources.base.cpu"),
    _doc(_plan("odd-limits", features={"tables": {"limits": {"B" * 70: 5}}}), "plan-limit-name-too-long",
         "spec.features.tables.limits", "spec.features.tables.limits"),
    # Not even safe YAML: only the CLI reads these (kubectl would expand or choke on them).
    Hostile("yaml-billion-laughs", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n", "(file)", None),
    Hostile("yaml-deep-nesting", "a: " + "[" * 5000 + "]" * 5000 + "\n", "(file)", None),
    Hostile("yaml-broken", "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata: {name: [\n", "(file)", None),
    Hostile("yaml-python-tag", "!!python/object/apply:os.system ['echo pwned']\n", "(file)", None),
    Hostile("yaml-huge-file", "# padding\n" + ("x: " + "y" * 1000 + "\n") * 6000, "(file)", None),
]
