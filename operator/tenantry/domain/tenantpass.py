"""The decisions of one reconcile pass over a Tenant (pure: no I/O, tested without an API server).

A pass gathers what exists (from memory), lets these functions decide, and writes only the
difference (handlers/reconcile.py). Decided here:
- whether the tenant may be provisioned at all (partner namespace, valid spec, the partner's cap),
  and the verdicts when not;
- its plan and branding with their verdicts and warnings (resolved once per pass);
- what to write and delete in the tenant's namespace, and in which order (namespace_work);
- the billing currency (fixed at provisioning) and the in-sync verdict;
- the status to write, or None when the live status already says it all (conclusion.conclude
  puts these together at the end of a pass).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tenantry.api.tenant import TenantSpec
from tenantry.domain import admission, lifecycle, naming, status
from tenantry.domain.branding import ResolvedBranding, contrast_warning, resolve_branding
from tenantry.domain.caps import (
    NOTHING_HELD,
    PARTNER_TENANT_LIMIT,
    Held,
    PartnerTenants,
    partner_cap_message,
    within_partner_cap,
)
from tenantry.domain.children import DesiredState, Manifest, ObjectRef, quota_clamped_message, ref
from tenantry.domain.config import OperatorConfig
from tenantry.domain.contest import Contest
from tenantry.domain.drift import covers, holds
from tenantry.domain.features import (
    EffectiveFeature,
    Plan,
    SpecLookup,
    Unresolved,
    effective_features,
    ignored_resources_message,
    resolve_plan,
)
from tenantry.domain.lifecycle import Claim
from tenantry.domain.status import (
    BRANDING_CONTRAST,
    BRANDING_READY,
    CURRENCY_FIXED,
    DNS_READY,
    FEATURES_READY,
    IN_SYNC,
    NAMESPACE_READY,
    PLAN_RESOURCES,
    QUOTA_CEILING,
    USAGE_VALID,
    Verdict,
)
from tenantry.domain.usage import usage_problems

# Aspects that cannot be judged while the tenant is refused (reported Unknown, with the same reason).
UNKNOWN_ASPECTS = (FEATURES_READY, BRANDING_READY, DNS_READY)


@dataclass(frozen=True)
class Refusal:
    """Why the tenant is not provisioned at all this pass, and the status fields still known."""

    verdicts: tuple[Verdict, ...]
    fields: Mapping[str, Any]


def refused(reason: str, why: str, fields: Mapping[str, Any]) -> Refusal:
    return Refusal((Verdict(NAMESPACE_READY, "False", reason, why),
                    *(Verdict(t, "Unknown", reason, why) for t in UNKNOWN_ASPECTS)), fields)


def admit(body: Mapping[str, Any], partner: str | None, partner_tenants: PartnerTenants,
          config: OperatorConfig, held: Held = NOTHING_HELD) -> TenantSpec | EndedTrial | Refusal:
    """The parsed spec when the tenant may be provisioned; else why not.

    `partner`: the partner id of the Tenant's namespace (None: not a partner namespace);
    `partner_tenants`, `held`: the partner's tenants and the namespaces it holds, for its cap.
    """
    meta = body["metadata"]
    if partner is None:
        return refused("NotInPartnerNamespace",
                       f"namespace {meta['namespace']!r} is not a partner namespace: tenants are only "
                       f"provisioned in a partner's own namespace (labelled {naming.PARTNER_LABEL}=<partner-id>, "
                       "and not a tenant's): move the Tenant there", {})
    spec = lifecycle.parse_tenant_spec(body.get("spec"))
    if isinstance(spec, str):
        endless = _trial_without_an_end(body.get("spec"))
        if endless is None:
            ended = _ended_trial(body, spec)
            if ended is not None:
                spec = ended
            else:
                # Served as last provisioned until the spec is fixed: it keeps its namespace, url and
                # state in effect in the status (billed as it is served, not as the spec now says).
                held = {key: (body.get("status") or {}).get(key) for key in ("namespace", "url", "state")}
                return refused("InvalidSpec", f"the Tenant is invalid: {spec}",
                               {"partner": partner, **{key: value for key, value in held.items() if value}})
        else:
            spec = endless
    if not _within_cap(body, partner_tenants, config.max_tenants_per_partner, held):
        return refused(PARTNER_TENANT_LIMIT, partner_cap_message(partner, config.max_tenants_per_partner, held),
                       {"partner": partner})
    return spec


def _trial_without_an_end(raw: Any) -> TenantSpec | None:
    """A Trial without trial.ends, valid otherwise: the API server stores one while the webhook is
    down. Refused as invalid it would stay served as last provisioned, a trial that never ends;
    so it goes on as a Trial (lifecycle.trial_state suspends it and says why)."""
    if not isinstance(raw, Mapping) or raw.get("state") != "Trial" or raw.get("trial") is not None:
        return None
    parsed = lifecycle.parse_tenant_spec({**raw, "state": "Suspended"})
    # model_copy does not validate: the one spec the model refuses, on purpose, for trial_state.
    return parsed.model_copy(update={"state": "Trial"}) if isinstance(parsed, TenantSpec) else None


@dataclass(frozen=True)
class EndedTrial:
    """A Trial whose spec the model refuses, served as ended: see _ended_trial."""

    spec: TenantSpec  # state Suspended
    verdict: Verdict


# What a suspended tenant can be served without (its plan's features and the partner's default
# Branding instead), when those are what the model refuses.
_DROPPABLE = frozenset({"features", "branding", "onboarding", "industry", "employees", "supportLevel"})


def _ended_trial(body: Mapping[str, Any], problem: str) -> EndedTrial | None:
    """A Trial stored while the webhook was down with a spec the model refuses (an unknown limit,
    a made-up feature), or any such spec of a tenant last served as a trial (state Active beside
    the invalid part). Refused, it would be served as last provisioned: a trial running past its
    end and billed as nothing. It counts as ended instead (suspended, its data kept) until the spec
    is fixed, served from the parts the model accepts; None when even those are refused."""
    raw = body.get("spec")
    was_trial = (body.get("status") or {}).get("state") == "Trial"
    if not isinstance(raw, Mapping) or (raw.get("state") != "Trial" and not was_trial):
        return None
    suspended = {**{key: value for key, value in raw.items() if key != "trial"}, "state": "Suspended"}
    for candidate in (suspended, {key: value for key, value in suspended.items() if key not in _DROPPABLE}):
        parsed = lifecycle.parse_tenant_spec(candidate)
        if isinstance(parsed, TenantSpec):
            return EndedTrial(parsed, Verdict(
                lifecycle.TRIAL, "False", "TrialEnded", f"the Tenant is invalid: {problem}; a trial whose spec is "
                "invalid counts as ended: the tenant is suspended, its data and access kept, until the spec is "
                "fixed (the webhook refuses such a spec; `tenantry validate` names the problem)"))
    return None


def _within_cap(body: Mapping[str, Any], tenants: PartnerTenants, cap: int, held: Held = NOTHING_HELD) -> bool:
    """Whether the partner's tenant cap leaves a place for this tenant (see within_partner_cap)."""
    meta = body["metadata"]
    name = meta["name"]
    # Counted with this tenant, which the catalogue may not hold yet (then a namespace of its name
    # counts as without a Tenant: not twice). Decided here without a scan: a partner exactly at the
    # cap (the catalogue full of tenants still waiting for their first pass) would otherwise cost
    # every pass a copy and two walks of all its tenants.
    new = name not in tenants
    if cap <= 0 or len(tenants) + new + held.without_tenant - (new and name in held.names) <= cap:
        return True
    # This tenant as it is now: the catalogue may not have seen its latest status yet.
    mine = (str(meta.get("creationTimestamp") or ""), bool((body.get("status") or {}).get("namespace")))
    if new and name in held.names:
        held = Held(held.names, held.without_tenant - 1)
    return within_partner_cap(name, {**tenants, name: mine}, cap, held)


@dataclass(frozen=True)
class Resolved:
    """A tenant's plan and branding, each with its verdicts."""

    plan: Plan | None
    branding: ResolvedBranding | None
    verdicts: tuple[Verdict, ...]
    warnings: tuple[Verdict, ...]
    features: dict[str, EffectiveFeature] | None  # of the resolved plan, with overrides and lifecycle


def resolve(spec: TenantSpec, partner_namespace: str, feature_sets: SpecLookup, brandings: SpecLookup,
            config: OperatorConfig) -> Resolved:
    plan = resolve_plan(spec.plan.feature_set, feature_sets, partner_namespace, config.platform_namespace)
    if isinstance(plan, Unresolved):
        features = Verdict(FEATURES_READY, "False", plan.reason,
                           f"{plan.message}; the tenant keeps its last good quota and flags")
        effective = None
        quota_warnings: list[Verdict] = []
    else:
        effective = effective_features(plan, spec)
        enabled = [k for k, f in effective.items() if f.enabled]
        features = Verdict(FEATURES_READY, "True", "PlanResolved",
                           f"plan {' <- '.join(plan.chain)}: {len(enabled)} features enabled")
        quota_warnings = _quota_warnings(spec, plan, config)
    branding = resolve_branding(spec.branding, brandings, partner_namespace, config.platform_namespace)
    warnings: list[Verdict] = list(quota_warnings)
    if isinstance(branding, Unresolved):
        look = Verdict(BRANDING_READY, "False", branding.reason,
                       f"{branding.message}; the tenant keeps its last good branding")
    else:
        look = Verdict(BRANDING_READY, "True", "BrandingResolved", f"branding {branding.source}")
        warning = contrast_warning(branding.spec)
        warnings.append(Verdict(BRANDING_CONTRAST, "False", "LowContrast", warning) if warning else
                        Verdict(BRANDING_CONTRAST, "True", "ContrastSufficient", "text on the primary colour "
                                "meets WCAG AA"))
    return Resolved(None if isinstance(plan, Unresolved) else plan,
                    None if isinstance(branding, Unresolved) else branding, (features, look), tuple(warnings),
                    effective)


def _quota_warnings(spec: TenantSpec, plan: Plan, config: OperatorConfig) -> list[Verdict]:
    """Where the quota differs from what the plan asks for: partner resources ignored, the ceiling."""
    ignored = ignored_resources_message(plan, config.platform_namespace)
    clamped = quota_clamped_message(plan.resources or config.default_resources, spec.plan.seats, config)
    return [Verdict(PLAN_RESOURCES, "False", "PartnerResourcesIgnored", ignored) if ignored else
            Verdict(PLAN_RESOURCES, "True", "PlatformResources", "the quota comes from the platform's plans"),
            Verdict(QUOTA_CEILING, "False", "ClampedToCeiling", clamped) if clamped else
            Verdict(QUOTA_CEILING, "True", "WithinCeiling", "the plan's quota is within the platform's ceiling")]


def claim_conflict(held: Claim, slug: str, namespace: str) -> Verdict:
    """The verdict when the tenant's namespace name is held by another tenant, or by no tenant."""
    if held is Claim.TAKEN:
        return Verdict(NAMESPACE_READY, "False", "SlugConflict",
                       f"{admission.unavailable_slug_message(slug)}: {admission.UNAVAILABLE_SLUG_HINT}")
    return Verdict(NAMESPACE_READY, "False", "NamespaceNotOwned",
                   f"namespace {namespace!r} exists but is not managed by tenantry, so it is left "
                   "alone: choose another metadata.name or ask the platform team to remove it")


def to_write(desired: Sequence[Manifest], lives: Sequence[Manifest | None]) -> list[list[tuple[Manifest, Any]]]:
    """The desired objects that differ from what lives, in waves to write one after the other.

    The namespace comes first, quotas last: once a quota with count/ limits exists, the API server
    refuses every create of a counted kind (403 "status unknown for quota") until the quota
    controller has filled in its usage, which can take long on a busy cluster; so after a crash
    mid-onboarding the rest is already there.
    """
    changed = [(m, live) for m, live in zip(desired, lives, strict=True) if live is None or not holds(live, m)]
    waves = [[(m, live) for m, live in changed if _WAVE.get(m["kind"], 1) == wave] for wave in range(3)]
    return [wave for wave in waves if wave]


_WAVE = {"Namespace": 0, "ResourceQuota": 2}  # every other kind: 1


@dataclass(frozen=True)
class NamespaceWork:
    """What one pass does in the tenant's own namespace (namespace_work), in the order done."""

    verdict: Verdict
    delete_namespace: bool = False  # Cancelled with deletionPolicy Delete
    unorphan: bool = False  # drop the orphaned label: the tenant is back after a Retain deletion
    waves: tuple[tuple[tuple[Manifest, Manifest | None], ...], ...] = ()  # (desired, live) that differ
    deletes: tuple[ObjectRef, ...] = ()  # this tenant's objects that must no longer exist
    stop_workloads: bool = False  # pods deleted (with a bounded grace), once the quota (pods: 0) is in effect
    scale_to_zero: bool = False  # Deployments and StatefulSets to 0 replicas too
    quota_first: bool = True  # False: the namespace is going, which refuses new pods itself
    quota: Manifest | None = None  # the live quota (usage metrics)


def namespace_work(desired: DesiredState, live_namespace: Manifest | None,
                   lives: Mapping[ObjectRef, Manifest | None], owner: str, state: str) -> NamespaceWork:
    """What to write and delete in a namespace this tenant holds (or may create), from what lives.

    `lives`: the live children by reference (absent or None: not there); `owner`: the tenant's
    owner key. Objects to ensure are only created when missing, never updated; an object to remove
    goes only when it is this tenant's (naming.owned_by).
    """
    name = desired.namespace["metadata"]["name"]
    if ref(desired.namespace) in desired.remove:
        return NamespaceWork(Verdict(NAMESPACE_READY, "True", "Offboarded",
                                     f"namespace {name} and its data are deleted (deletionPolicy: Delete)"),
                             # (once: a namespace already going is not deleted again every pass)
                             delete_namespace=live_namespace is not None
                             and not live_namespace["metadata"].get("deletionTimestamp"),
                             # The namespace controller deletes pods with the grace their author
                             # chose (years, for one ignoring SIGTERM), NetworkPolicies and quota
                             # first: so the pods get the bounded grace here, every pass until gone.
                             stop_workloads=live_namespace is not None, quota_first=False)
    if live_namespace is None:
        raise ValueError(f"namespace {name}: a tenant's namespace is claimed (created) before its work is decided")
    meta = live_namespace["metadata"]
    if meta.get("deletionTimestamp"):
        return NamespaceWork(Verdict(NAMESPACE_READY, "False", "NamespaceTerminating",
                                     f"namespace {name} is being deleted; it is recreated once it is gone"))
    missing = [m for m in desired.ensure if lives.get(ref(m)) is None]
    objects = [*desired.apply[1:], *missing]
    waves = to_write([desired.namespace, *objects], [live_namespace, *(lives.get(ref(m)) for m in objects)])
    gone = tuple(r for r in desired.remove if (live := lives.get(r)) is not None and naming.owned_by(live, owner))
    return NamespaceWork(
        Verdict(NAMESPACE_READY, "True", "Provisioned",
                f"namespace {name} with quota, limits, network isolation and admin access"),
        unorphan=bool((meta.get("labels") or {}).get(naming.ORPHANED_LABEL)),
        waves=tuple(tuple(wave) for wave in waves), deletes=gone,
        # Suspended keeps replica counts, so reactivating restores the service; Cancelled scales to 0.
        stop_workloads=state != "Active", scale_to_zero=state == "Cancelled",
        quota=lives.get(ObjectRef("v1", "ResourceQuota", naming.QUOTA, name)))


def billing_currency(spec: Mapping[str, Any], old_status: Mapping[str, Any], provisioned: bool
                     ) -> tuple[Mapping[str, Any], str | None, Verdict | None]:
    """(the spec as metrics see it, the currency for the status, a warning) for the currency fixed
    at provisioning (status.currency).

    The webhook refuses a partner's currency change; with the webhook down the change is stored,
    so the operator keeps the provisioned currency and says so (a warning condition, only then).
    """
    plan = spec.get("plan") if isinstance(spec.get("plan"), Mapping) else {}
    price = plan.get("price") if isinstance(plan.get("price"), Mapping) else {}
    asked = str(price.get("currency", "EUR"))
    fixed = old_status.get("currency") or (asked if provisioned else None)
    if not fixed or asked == fixed:
        return spec, fixed, None
    warning = Verdict(CURRENCY_FIXED, "False", "CurrencyChangeIgnored",
                      f"spec.plan.price.currency is {asked}, but the tenant was provisioned in {fixed}: "
                      f"metrics and reports stay in {fixed}. The currency of a provisioned tenant cannot "
                      "change; a platform admin sets status.currency when a contract really changes")
    return {**spec, "plan": {**plan, "price": {**price, "currency": fixed}}}, fixed, warning


def in_sync(contested: Sequence[str], contest: Contest) -> Verdict:
    if not contested:
        return Verdict(IN_SYNC, "True", "InSync", "every managed object is as desired")
    return Verdict(IN_SYNC, "False", "ContestedByOtherWriter",
                   f"{', '.join(contested)}: another writer keeps changing it; tenantry corrected it "
                   f"{contest.limit} times within {contest.window:g} s and now leaves it alone for "
                   f"{contest.pause:g} s before trying again. Stop the other writer, or change the Tenant "
                   "(or its plan) instead of the object")


def usage_verdict(old_status: Mapping[str, Any]) -> Verdict:
    problems = usage_problems(old_status.get("usage"))
    return (Verdict(USAGE_VALID, "False", "InvalidUsage", "; ".join(problems)) if problems else
            Verdict(USAGE_VALID, "True", "UsageAccepted", "the last usage report is valid"))


# Status fields a pass owns; those not decided this pass are removed (null in the merge patch).
OWNED_FIELDS = ("partner", "namespace", "url")


def status_update(old_status: Mapping[str, Any], verdicts: Sequence[Verdict], fields: Mapping[str, Any],
                  generation: int, now: str) -> dict[str, Any] | None:
    """The merge patch of the status for these verdicts (Ready first) and fields, or None when the
    live status already says all of it.

    Only keys we own, and null for those that no longer apply (merge-patch removes them); plan,
    features and branding stay at their last good value while unresolved (absent from `fields`).
    """
    previous = old_status.get("conditions", [])
    new_status = {
        "observedGeneration": generation,
        "conditions": status.conditions(list(verdicts), previous, generation, now) + status.carried_over(previous),
        **dict.fromkeys(OWNED_FIELDS),
        **fields,
    }
    wanted = {k: v for k, v in new_status.items() if v is not None}
    stale = {k: None for k, v in new_status.items() if v is None and k in old_status}
    if covers(old_status, wanted) and not stale:
        return None
    return {**wanted, **stale}
