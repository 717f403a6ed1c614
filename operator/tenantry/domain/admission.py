"""What the API schema cannot check, as problems with a field, a message and a hint (pure).

Shared by the admission webhook (one object against the cluster) and `tenantry validate` (many
files against each other), so a partner reads the same words in a pull request and in kubectl.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from tenantry.api.branding import BrandingSpec
from tenantry.api.deal import DealSpec
from tenantry.api.featureset import FeatureSetSpec
from tenantry.api.tenant import TenantSpec
from tenantry.domain.branding import size_problem
from tenantry.domain.lifecycle import field_path, shown_problems
from tenantry.domain.naming import FINALIZER, PREFIX

SPEC_MODELS: dict[str, type[BaseModel]] = {"Tenant": TenantSpec, "Branding": BrandingSpec,
                                           "FeatureSet": FeatureSetSpec, "Deal": DealSpec}
SLUG_HINT = "tenant names are unique across all partners: choose another metadata.name"
DOMAIN_HINT = "a domain can belong to one tenant only"
# Taken by another partner's tenant, or reserved by the platform: the same words for both, so an
# answer (of the webhook, also to --dry-run=server, or of the reconcile's status) never tells a
# partner which names and domains other partners hold.
UNAVAILABLE_SLUG_HINT = "tenant names are unique across all partners and some are reserved: choose another " \
                        "metadata.name"
UNAVAILABLE_DOMAIN_HINT = "a domain can belong to one tenant only, and some are reserved: list another domain " \
                          "or ask the platform team"
RESOURCES_HINT = ("remove spec.resources: the plan inherits them from the FeatureSet it extends, else the platform "
                  "default; ask the platform team for a plan with more resources")


@dataclass(frozen=True)
class Problem:
    location: tuple[str | int, ...]
    message: str
    hint: str = ""

    @property
    def field(self) -> str:
        return field_path(self.location[0], self.location[1:]) if self.location else "(document)"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" + (f" ({self.hint})" if self.hint else "")


def spec_problems(kind: str, spec: Mapping[str, Any] | None) -> list[Problem]:
    """The model's own rules (known features, safe SVG, ...), one problem per invalid field."""
    try:
        model = SPEC_MODELS[kind].model_validate(spec or {})
    except ValidationError as error:
        return [Problem(("spec", *location), message) for location, message in shown_problems(error)]
    if isinstance(model, BrandingSpec):
        too_big = size_problem(model)
        return [Problem(("spec",), too_big)] if too_big else []
    return []


def slug_unavailable(slug: str) -> Problem:
    """A slug another tenant holds, or a reserved one. Never names the holder, nor which of the two."""
    return Problem(("metadata", "name"), unavailable_slug_message(slug), UNAVAILABLE_SLUG_HINT)


def unavailable_slug_message(slug: str) -> str:
    return f"tenant name {slug!r} is not available on this platform"


def domain_unavailable(index: int, domain: str) -> Problem:
    """A domain another tenant claimed, or a reserved one: the same words for both."""
    return Problem(("spec", "domains", index), unavailable_domain_message(domain), UNAVAILABLE_DOMAIN_HINT)


def unavailable_domain_message(domain: str) -> str:
    return f"custom domain {domain!r} is not available on this platform"


def not_in_partner_namespace(namespace: str) -> Problem:
    return Problem(("metadata", "namespace"), f"namespace {namespace!r} is not a partner namespace",
                   f"Tenants live in a namespace labelled {PREFIX}partner=<partner id>; create the partner "
                   "(chart value `partners`) or use its namespace")


def missing_plan(namespace: str, plan: str, platform_namespace: str) -> Problem:
    return Problem(("spec", "plan", "featureSet"),
                   f"no FeatureSet {plan!r} in {namespace!r} nor in the platform namespace {platform_namespace!r}",
                   "add the FeatureSet or name an existing plan")


def missing_branding(namespace: str, wanted: str, explicit: bool, platform_namespace: str) -> Problem:
    return Problem(("spec", "branding") if explicit else ("spec",),
                   f"no Branding {wanted!r} in {namespace!r} nor in the platform namespace {platform_namespace!r}",
                   "add the Branding or name an existing one")


def partner_plan_resources(namespace: str) -> Problem:
    return Problem(("spec", "resources"),
                   f"only the platform may set the resources of a plan in partner namespace {namespace!r}",
                   RESOURCES_HINT)


def reserved_metadata_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any],
                              created_with: tuple[str, ...] = ()) -> list[Problem]:
    """Labels, annotations and finalizers under tenantry.dev/ that this request adds, changes or removes.

    created_with: finalizers an object being created may carry (added by the operator's own
    mutating webhook); never one of them removed, nor any other added.
    """
    problems = []
    for part in ("labels", "annotations"):
        before, after = (old or {}).get(part) or {}, new.get(part) or {}
        for key in sorted(set(before) | set(after)):
            if key.startswith(PREFIX) and before.get(key) != after.get(key):
                problems.append(Problem(("metadata", part, key), f"{part[:-1]} {key!r} is reserved for tenantry",
                                        f"remove it; keys under {PREFIX} are set by the operator and the platform"))
    before, after = set((old or {}).get("finalizers") or ()), set(new.get("finalizers") or ())
    if old is None:
        after -= set(created_with)
    for finalizer in sorted(before ^ after):
        if finalizer.startswith(PREFIX):
            problems.append(Problem(("metadata", "finalizers"), f"finalizer {finalizer!r} is the operator's",
                                    "leave it; delete the object instead, and the operator removes it after "
                                    "cleaning up (DNS records, domain claims, the namespace by deletionPolicy)"))
    return problems


def finalizer_patch(metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch that gives a Tenant being created the operator's finalizer (empty if it has it).

    Set at admission, the finalizer is there from the Tenant's first stored version: the operator
    need not write the Tenant (and be called about that write) before it provisions anything.
    """
    finalizers = metadata.get("finalizers")
    if not isinstance(finalizers, list):
        return [{"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}]
    if FINALIZER in finalizers:
        return []
    return [{"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}]


def immutable_changes(kind: str, old: Mapping[str, Any] | None, new_spec: Mapping[str, Any]) -> list[Problem]:
    """Fields that may not change once the tenant is provisioned.

    The slug is metadata.name, which the API server itself never lets change. The billing
    currency is fixed once a tenant exists: revenue history and reports are in that currency.
    """
    if kind != "Tenant" or old is None or not (old.get("status") or {}).get("namespace"):
        return []
    before = (((old.get("spec") or {}).get("plan") or {}).get("price") or {}).get("currency", "EUR")
    after = ((new_spec.get("plan") or {}).get("price") or {}).get("currency", "EUR")
    if before == after:
        return []
    return [Problem(("spec", "plan", "price", "currency"),
                    f"the currency of a provisioned tenant cannot change ({before} -> {after})",
                    "keep the currency; a platform admin can change it when the contract really changes")]


def platform_only_changes(kind: str, namespace: str, platform_namespace: str,
                          old_spec: Mapping[str, Any] | None, new_spec: Mapping[str, Any]) -> list[Problem]:
    """Fields a partner may not set: a plan's resources are cluster capacity the platform pays for."""
    if kind != "FeatureSet" or namespace == platform_namespace:
        return []
    if new_spec.get("resources") is not None and new_spec.get("resources") != (old_spec or {}).get("resources"):
        return [partner_plan_resources(namespace)]
    return []


def may_override(userinfo: Mapping[str, Any], platform_groups: tuple[str, ...], operator_identity: str) -> bool:
    """The platform (by group) and the operator itself may touch reserved, immutable and platform-only fields."""
    return (userinfo.get("username") == operator_identity
            or bool(set(userinfo.get("groups") or ()) & set(platform_groups)))
