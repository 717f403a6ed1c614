"""A tenant's effective features: plan chain -> tenant overrides -> lifecycle, and its flagd flags.

Where the flags live and how apps select a tenant: every tenant gets its own flag set, a flagd
(schema v0) document in the ConfigMap `tenantry-flags` of its namespace. No document ever holds
more than one tenant, so 10,000 tenants are 10,000 small documents instead of one that would
outgrow a ConfigMap's 1 MiB. An app reads its tenant's document (flagd file source, or a flagd
sidecar syncing from that ConfigMap) and evaluates `<feature>` (boolean) and `<feature>-limits`
(object). Each flag also targets on the context attribute `tenant`: an evaluation that names a
different tenant gets "off", so a document served to the wrong tenant fails closed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from tenantry.api.features import ALWAYS_ON, CORE_FEATURES, INTEGRATIONS, KNOWN_FEATURES
from tenantry.api.featureset import Feature, FeatureSetSpec, Resources
from tenantry.api.tenant import TenantSpec
from tenantry.domain.lifecycle import describe_errors

FLAGD_SCHEMA = "https://flagd.dev/schema/v0/flags.json"
MAX_EXTENDS_DEPTH = 10

# (namespace, name) -> the raw FeatureSet spec, or None when there is none of that name there.
SpecLookup = Callable[[str, str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class Unresolved:
    """Why a tenant's plan could not be resolved; `reason` is the condition reason."""

    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    """A FeatureSet with everything it extends folded in."""

    chain: tuple[str, ...]  # namespace/name, the tenant's FeatureSet first
    features: Mapping[str, Feature]
    resources: Resources | None
    # FeatureSets outside the platform namespace whose spec.resources were ignored (namespace/name):
    # only the platform sets quotas, even while the webhook that refuses them is down.
    ignored_resources: tuple[str, ...] = ()


@dataclass(frozen=True)
class EffectiveFeature:
    enabled: bool
    limits: Mapping[str, int] = field(default_factory=dict)


def find(lookup: SpecLookup, name: str, partner_namespace: str, platform_namespace: str
         ) -> tuple[str, Mapping[str, Any]] | None:
    """The FeatureSet or Branding of that name: the partner's own first, else the platform's."""
    for namespace in (partner_namespace, platform_namespace):
        spec = lookup(namespace, name)
        if spec is not None:
            return f"{namespace}/{name}", spec
    return None


def resolve_plan(name: str, lookup: SpecLookup, partner_namespace: str, platform_namespace: str
                 ) -> Plan | Unresolved:
    """Follow `extends` from the named FeatureSet; children override what they inherit."""
    chain: list[tuple[str, FeatureSetSpec]] = []
    seen: list[str] = []
    current: str | None = name
    while current is not None:
        if current in seen:
            cycle = " -> ".join([*seen[seen.index(current):], current])
            return Unresolved("ExtendsCycle", f"FeatureSet extends form a cycle ({cycle}): remove one "
                                             "of the extends")
        if len(seen) >= MAX_EXTENDS_DEPTH:
            return Unresolved("ExtendsTooDeep", f"FeatureSet {name!r} extends more than "
                                               f"{MAX_EXTENDS_DEPTH} levels deep: flatten the plans")
        seen.append(current)
        found = find(lookup, current, partner_namespace, platform_namespace)
        if found is None:
            hint = ("fix spec.plan.featureSet" if current == name else
                    f"fix spec.extends of FeatureSet {chain[-1][0]!r}")
            return Unresolved("FeatureSetNotFound", f"no FeatureSet {current!r} in namespace "
                             f"{partner_namespace!r} nor in the platform namespace {platform_namespace!r}: "
                             f"create it or {hint}")
        where, raw = found
        try:
            spec = FeatureSetSpec.model_validate(raw)
        except ValidationError as error:
            return Unresolved("InvalidFeatureSet", f"FeatureSet {where} is invalid: "
                                                  f"{describe_errors(error, 'spec')}")
        chain.append((where, spec))
        current = spec.extends
    features: dict[str, Feature] = {}
    resources: Resources | None = None
    ignored: list[str] = []
    for where, spec in reversed(chain):  # the most basic plan first, so children override
        for key, feature in spec.features.items():
            inherited = features.get(key)
            limits = {**(inherited.limits if inherited else {}), **feature.limits}
            features[key] = Feature(enabled=feature.enabled, limits=limits)
        if spec.resources is not None and not where.startswith(f"{platform_namespace}/"):
            ignored.insert(0, where)
            continue
        resources = spec.resources or resources
    return Plan(tuple(where for where, _ in chain), features, resources, tuple(ignored))


def ignored_resources_message(plan: Plan, platform_namespace: str) -> str | None:
    """What the status says when partner FeatureSets set spec.resources (None: none did)."""
    if not plan.ignored_resources:
        return None
    names = ", ".join(f"FeatureSet {where}" for where in plan.ignored_resources)
    return (f"{names} sets spec.resources, which only FeatureSets in the platform namespace "
            f"{platform_namespace!r} may set: ignored; the quota comes from the platform FeatureSet it extends, "
            "else the platform default. Remove spec.resources, or ask the platform team for a plan with more")


def effective_features(plan: Plan, spec: TenantSpec) -> dict[str, EffectiveFeature]:
    """The plan with the tenant's overrides on top, and the lifecycle applied last.

    Every known feature gets an answer (off when the plan lacks it), so apps never fall back to
    their own defaults. Suspended: every feature off. Cancelled: no features at all.
    """
    if spec.state == "Cancelled":
        return {}
    result: dict[str, EffectiveFeature] = {}
    for key in sorted(KNOWN_FEATURES | set(plan.features) | set(spec.features)):
        base = plan.features.get(key)
        override = spec.features.get(key)
        enabled = base.enabled if base else False
        limits = dict(base.limits) if base else {}
        if override is not None:
            enabled = override.enabled if override.enabled is not None else (enabled or bool(override.limits))
            limits.update(override.limits)
        if key in ALWAYS_ON:
            enabled = True
        if spec.state == "Suspended":
            enabled = False
        result[key] = EffectiveFeature(enabled, limits)
    return result


def features_document(slug: str, plan: Plan, features: Mapping[str, EffectiveFeature]) -> dict[str, Any]:
    """The effective features as plain JSON, for apps that read a config file."""
    return {
        "tenant": slug,
        "plan": plan.chain[0],
        "features": {k: {"enabled": f.enabled, "limits": dict(f.limits)} for k, f in features.items()},
    }


def _guard(slug: str) -> dict[str, Any]:
    # JsonLogic: "off" when the context names another tenant; null -> the defaultVariant.
    return {"if": [{"and": [{"var": "tenant"}, {"!=": [{"var": "tenant"}, slug]}]}, "off", None]}


def flagd_document(slug: str, partner: str, plan: Plan, features: Mapping[str, EffectiveFeature]
                   ) -> dict[str, Any]:
    """The tenant's flag set in the flagd flag-definition format (schema v0)."""
    flags: dict[str, Any] = {}
    guard = _guard(slug)  # one shared object: the document is only encoded, never changed
    for key in sorted(features):
        feature = features[key]
        kind = "integration" if key in INTEGRATIONS else "core" if key in CORE_FEATURES else "other"
        flags[key] = {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on" if feature.enabled else "off",
            "targeting": guard,
            "metadata": {"feature": key, "kind": kind},
        }
        flags[f"{key}-limits"] = {
            "state": "ENABLED",
            "variants": {"plan": dict(feature.limits), "off": {}},
            "defaultVariant": "plan" if feature.enabled else "off",
            "targeting": guard,
            "metadata": {"feature": key},
        }
    return {"$schema": FLAGD_SCHEMA,
            "metadata": {"tenant": slug, "partner": partner, "plan": plan.chain[0]},
            "flags": flags}


def dependents(name: str, specs: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """`name` and every FeatureSet name that extends it, directly or not (by name, any namespace)."""
    children: dict[str, set[str]] = {}
    for child, spec in specs.items():
        parent = spec.get("extends") if isinstance(spec, Mapping) else None
        if isinstance(parent, str):
            children.setdefault(parent, set()).add(child)
    found, todo = {name}, [name]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
