"""One reconcile path for a Tenant (create, update, resume, resync, drift) and its finalizer.

Read what exists, let the domain decide, write only the difference: a pass over a tenant that
is already as desired makes no write request at all.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tenantry.adapters.kube import AlreadyExists, Kube, KubeError
from tenantry.api.common import API_VERSION
from tenantry.api.tenant import TenantSpec
from tenantry.domain import admission, lifecycle, naming, status
from tenantry.domain.branding import ResolvedBranding, contrast_warning, resolve_branding
from tenantry.domain.caps import PARTNER_TENANT_LIMIT, PartnerTenants, partner_cap_message, within_partner_cap
from tenantry.domain.children import (
    DesiredState,
    ObjectRef,
    TenantInput,
    desired_state,
    quota_clamped_message,
    ref,
    tenant_url,
)
from tenantry.domain.config import OperatorConfig
from tenantry.domain.contest import Contest
from tenantry.domain.drift import covers
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
from tenantry.domain.usage import TenantFacts, tenant_facts, usage_problems
from tenantry.handlers import dnsflow, offboard
from tenantry.handlers.writer import Writer


@dataclass(frozen=True)
class Lookups:
    """Where to find FeatureSets and Brandings by (namespace, name)."""

    feature_sets: SpecLookup
    brandings: SpecLookup
    # partner namespace -> its tenants (name -> (creationTimestamp, provisioned)), for the tenant cap
    partner_tenants: Callable[[str], PartnerTenants] = lambda namespace: {}


@dataclass(frozen=True)
class Services:
    """What a reconcile pass talks to, and what it remembers between passes."""

    kube: Kube
    dns: dnsflow.DnsServices
    contest: Contest = field(default_factory=Contest)


@dataclass(frozen=True)
class Outcome:
    """What a reconcile pass decided, for events and metrics."""

    ready: Verdict
    previous_ready: tuple[str, str] | None  # (status, reason) before this pass
    writes: int
    facts: TenantFacts | None = None

    @property
    def transitioned(self) -> bool:
        return self.previous_ready != (self.ready.status, self.ready.reason)


def tenant_ref(body: Mapping[str, Any]) -> ObjectRef:
    meta = body["metadata"]
    return ObjectRef(API_VERSION, "Tenant", meta["name"], meta["namespace"])


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _namespace_ref(config: OperatorConfig, slug: str) -> ObjectRef:
    return ObjectRef("v1", "Namespace", naming.tenant_namespace(config.namespace_prefix, slug))


async def _claim_namespace(writer: Writer, desired: DesiredState, inp: TenantInput, reserved: bool
                           ) -> tuple[Claim, Mapping[str, Any] | None]:
    live = await writer.kube.get(ref(desired.namespace))
    held = lifecycle.claim(live, inp.partner_namespace, inp.slug)
    if held is Claim.FREE and reserved:
        # A reserved name is refused as if taken (same reason and words): no oracle of who holds
        # what. A tenant that held it before the platform reserved it keeps it (Claim.OURS).
        return Claim.TAKEN, None
    if held is Claim.FREE and ref(desired.namespace) not in desired.remove:
        # Create, not apply: creation is atomic, so of two tenants racing for a slug one wins.
        try:
            writer.count += 1
            live = await writer.kube.create(desired.namespace)
        except AlreadyExists:
            live = await writer.kube.get(ref(desired.namespace))
        held = lifecycle.claim(live, inp.partner_namespace, inp.slug)
    return held, live


def _conflict(held: Claim, slug: str, namespace: str) -> Verdict:
    if held is Claim.TAKEN:
        return Verdict(NAMESPACE_READY, "False", "SlugConflict",
                       f"{admission.unavailable_slug_message(slug)}: {admission.UNAVAILABLE_SLUG_HINT}")
    return Verdict(NAMESPACE_READY, "False", "NamespaceNotOwned",
                   f"namespace {namespace!r} exists but is not managed by tenantry, so it is left "
                   "alone: choose another metadata.name or ask the platform team to remove it")


async def _provision(writer: Writer, inp: TenantInput, config: OperatorConfig) -> Verdict:
    desired = desired_state(inp, config)
    ns_name = desired.namespace["metadata"]["name"]
    held, live_ns = await _claim_namespace(writer, desired, inp, config.slug_reserved(inp.slug))
    if held in (Claim.TAKEN, Claim.FOREIGN):
        return _conflict(held, inp.slug, ns_name)
    if ref(desired.namespace) in desired.remove:
        if live_ns is not None:
            writer.count += 1
            await writer.kube.delete(ref(desired.namespace))
        return Verdict(NAMESPACE_READY, "True", "Offboarded",
                       f"namespace {ns_name} and its data are deleted (deletionPolicy: Delete)")
    assert live_ns is not None
    if live_ns["metadata"].get("deletionTimestamp"):
        return Verdict(NAMESPACE_READY, "False", "NamespaceTerminating",
                       f"namespace {ns_name} is being deleted; it is recreated once it is gone")
    if (live_ns["metadata"].get("labels") or {}).get(naming.ORPHANED_LABEL):
        writer.count += 1
        await writer.kube.patch_labels(ref(desired.namespace), {naming.ORPHANED_LABEL: None})
    children, ensure = desired.apply[1:], desired.ensure
    lives = await writer.kube.get_many([ref(m) for m in (*children, *ensure)] + list(desired.remove))
    writer.observed["quota"] = next((live for m, live in zip((*children, *ensure), lives, strict=False)
                                     if m["kind"] == "ResourceQuota" and m["metadata"]["name"] == naming.QUOTA), None)
    await writer.apply_if_needed(desired.namespace, live_ns)
    pending = [(m, live) for m, live in zip(children, lives, strict=False)]
    pending += [(m, live) for m, live in zip(ensure, lives[len(children):], strict=False) if live is None]
    # Quotas last: once a quota with count/ limits exists, the API server refuses every create of a
    # counted kind (403 "status unknown for quota") until the quota controller has filled in its
    # usage, which can take long on a busy cluster; after a crash mid-onboarding, the rest is there.
    for wave in (False, True):
        await asyncio.gather(*(writer.apply_if_needed(m, live) for m, live in pending
                               if (m["kind"] == "ResourceQuota") == wave))
    for target, live in zip(desired.remove, lives[len(children) + len(ensure):], strict=True):
        await writer.delete_if_ours(target, live, naming.owner_key(inp.partner_namespace, inp.slug))
    if inp.spec.state != "Active":
        # The quota (pods: 0, applied above) refuses new pods; the running ones stop here. Cancelled
        # also scales to 0; Suspended keeps replica counts, so reactivating restores the service.
        await offboard.stop_workloads(writer, ns_name, scale=inp.spec.state == "Cancelled")
    return Verdict(NAMESPACE_READY, "True", "Provisioned",
                   f"namespace {ns_name} with quota, limits, network isolation and admin access")


@dataclass(frozen=True)
class _Resolved:
    """A tenant's plan and branding, each with its verdicts."""

    plan: Plan | None
    branding: ResolvedBranding | None
    verdicts: tuple[Verdict, ...]
    warnings: tuple[Verdict, ...]
    features: dict[str, EffectiveFeature] | None  # of the resolved plan, with overrides and lifecycle


def _resolve(spec: TenantSpec, partner_namespace: str, catalogue: Lookups, config: OperatorConfig
             ) -> _Resolved:
    plan = resolve_plan(spec.plan.feature_set, catalogue.feature_sets, partner_namespace,
                        config.platform_namespace)
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
    branding = resolve_branding(spec.branding, catalogue.brandings, partner_namespace, config.platform_namespace)
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
    return _Resolved(None if isinstance(plan, Unresolved) else plan,
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


def _admitted(body: Mapping[str, Any], catalogue: Lookups, config: OperatorConfig) -> bool:
    """Whether the partner's tenant cap leaves a place for this tenant (see within_partner_cap)."""
    meta, cap = body["metadata"], config.max_tenants_per_partner
    tenants = catalogue.partner_tenants(meta["namespace"])
    if cap <= 0 or len(tenants) + 1 <= cap:
        return True
    # This tenant as read just now: the catalogue may not have seen its latest status yet.
    mine = (str(meta.get("creationTimestamp") or ""), bool((body.get("status") or {}).get("namespace")))
    return within_partner_cap(meta["name"], {**tenants, meta["name"]: mine}, cap)


_UNKNOWN_ASPECTS = (FEATURES_READY, BRANDING_READY, DNS_READY)


async def _verdicts(writer: Writer, body: Mapping[str, Any], catalogue: Lookups, config: OperatorConfig,
                    services: dnsflow.DnsServices) -> tuple[list[Verdict], list[Verdict], dict[str, Any]]:
    """(aspects that make Ready, warnings, status fields) of one tenant."""
    meta = body["metadata"]
    slug, partner_namespace = meta["name"], meta["namespace"]
    partner = lifecycle.partner_of(await writer.kube.get(ObjectRef("v1", "Namespace", partner_namespace)))
    if partner is None:
        why = (f"namespace {partner_namespace!r} is not a partner namespace: tenants are only "
               f"provisioned in namespaces labelled {naming.PARTNER_LABEL}=<partner-id>; label the "
               "namespace or move the Tenant")
        return ([Verdict(NAMESPACE_READY, "False", "NotInPartnerNamespace", why),
                 *(Verdict(t, "Unknown", "NotInPartnerNamespace", why) for t in _UNKNOWN_ASPECTS)], [], {})
    spec = lifecycle.parse_tenant_spec(body.get("spec"))
    if isinstance(spec, str):
        why = f"the Tenant is invalid: {spec}"
        return ([Verdict(NAMESPACE_READY, "False", "InvalidSpec", why),
                 *(Verdict(t, "Unknown", "InvalidSpec", why) for t in _UNKNOWN_ASPECTS)], [], {"partner": partner})
    if not _admitted(body, catalogue, config):
        why = partner_cap_message(partner, config.max_tenants_per_partner)
        return ([Verdict(NAMESPACE_READY, "False", PARTNER_TENANT_LIMIT, why),
                 *(Verdict(t, "Unknown", PARTNER_TENANT_LIMIT, why) for t in _UNKNOWN_ASPECTS)], [],
                {"partner": partner})
    resolved = _resolve(spec, partner_namespace, catalogue, config)
    inp = TenantInput(slug, partner_namespace, partner, spec, resolved.plan, resolved.branding)
    fields: dict[str, Any] = {"partner": partner}
    warnings = list(resolved.warnings)
    ns_name = naming.tenant_namespace(config.namespace_prefix, slug)
    try:
        namespace = await _provision(writer, inp, config)
        dns_verdict = Verdict(DNS_READY, "Unknown", namespace.reason, "waiting for the namespace")
        if namespace.ok:
            dns_verdict = await dnsflow.platform_records(writer, services, inp, config, ns_name)
        if namespace.ok and namespace.reason != "Offboarded":
            previous = (body.get("status") or {}).get("domains", [])
            domains = await dnsflow.custom_domains(writer, services, inp, config, previous)
            routed = await dnsflow.routes(writer, services, inp, config, ns_name,
                                          domains.verified if spec.state != "Cancelled" else [],
                                          previously_verified=any(d.get("verified") for d in previous))
            warnings.append(domains.verdict)
            if routed is not None:
                warnings.append(routed)
            if {d.get("name") for d in previous} - set(spec.domains):
                # A dropped domain's claim goes once its route is gone, which routes() just did.
                await dnsflow.release_unlisted(writer, config, inp)
            fields["domains"] = domains.entries
    except KubeError as error:
        namespace = Verdict(NAMESPACE_READY, "False", error.reason, str(error))
        dns_verdict = Verdict(DNS_READY, "Unknown", error.reason, str(error))
    if namespace.ok:
        fields["namespace"] = ns_name
        fields["url"] = tenant_url(slug, config) if spec.state == "Active" else None
    if resolved.plan is not None and resolved.features is not None:
        fields["plan"] = " <- ".join(resolved.plan.chain)
        fields["features"] = [k for k, f in resolved.features.items() if f.enabled]
        writer.observed["features"] = resolved.features
    if resolved.branding is not None:
        fields["branding"] = resolved.branding.source
    return [namespace, *resolved.verdicts, dns_verdict], warnings, fields


async def reconcile(services: Services, config: OperatorConfig, catalogue: Lookups, body: Mapping[str, Any]
                    ) -> Outcome:
    """Bring one tenant to its desired state and report it in its status."""
    kube = services.kube
    writer = Writer(kube, services.contest)
    meta = body["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    if naming.FINALIZER not in finalizers:
        writer.count += 1
        await kube.add_finalizer(tenant_ref(body), finalizers, meta["resourceVersion"], naming.FINALIZER)
    generation = meta.get("generation", 0)
    old_status = body.get("status") or {}
    previous = next((c for c in old_status.get("conditions", []) if c.get("type") == status.READY), None)
    aspects, warnings, fields = await _verdicts(writer, body, catalogue, config, services.dns)
    if fields.get("namespace"):
        warnings.append(_in_sync(writer.contested, services.contest))
    spec_for_facts = _billing_currency(body.get("spec") or {}, old_status, fields, warnings)
    problems = usage_problems(old_status.get("usage"))
    warnings.append(Verdict(USAGE_VALID, "False", "InvalidUsage", "; ".join(problems)) if problems else
                    Verdict(USAGE_VALID, "True", "UsageAccepted", "the last usage report is valid"))
    state = (body.get("spec") or {}).get("state", "Active")
    ready = status.ready_verdict(aspects, state if state in ("Active", "Suspended", "Cancelled") else "Active")
    new_status = {
        "observedGeneration": generation,
        "conditions": status.conditions([ready, *aspects, *warnings], old_status.get("conditions", []),
                                        generation, _now()) + status.carried_over(old_status.get("conditions", [])),
        **{key: None for key in ("partner", "namespace", "url")},
        **fields,
    }
    # Only keys we own, and null for those that no longer apply (merge-patch removes them);
    # plan, features and branding stay at their last good value while unresolved.
    wanted = {k: v for k, v in new_status.items() if v is not None}
    stale = {k: None for k, v in new_status.items() if v is None and k in old_status}
    if not covers(old_status, wanted) or stale:
        writer.count += 1
        await kube.patch_status(tenant_ref(body), {**wanted, **stale})
    facts = None
    if fields.get("partner"):
        facts = tenant_facts(meta["name"], fields["partner"], spec_for_facts, old_status.get("usage"),
                             writer.observed.get("features") or {}, ready.ok, writer.observed.get("quota"),
                             {v.type: v.status for v in (ready, *aspects, *warnings)},
                             dns_conflict=any(v.reason == "DNSConflict" for v in aspects))
    return Outcome(ready, (previous["status"], previous["reason"]) if previous else None, writer.count, facts)


def _billing_currency(spec: Mapping[str, Any], old_status: Mapping[str, Any], fields: dict[str, Any],
                      warnings: list[Verdict]) -> Mapping[str, Any]:
    """The spec as metrics see it: in the currency fixed at provisioning (status.currency).

    The webhook refuses a partner's currency change; with the webhook down the change is stored,
    so the operator keeps the provisioned currency and says so (a warning condition, only then).
    """
    plan = spec.get("plan") if isinstance(spec.get("plan"), Mapping) else {}
    price = plan.get("price") if isinstance(plan.get("price"), Mapping) else {}
    asked = str(price.get("currency", "EUR"))
    fixed = old_status.get("currency") or (asked if fields.get("namespace") else None)
    if not fixed:
        return spec
    fields["currency"] = fixed
    if asked == fixed:
        return spec
    warnings.append(Verdict(CURRENCY_FIXED, "False", "CurrencyChangeIgnored",
                            f"spec.plan.price.currency is {asked}, but the tenant was provisioned in {fixed}: "
                            f"metrics and reports stay in {fixed}. The currency of a provisioned tenant cannot "
                            "change; a platform admin sets status.currency when a contract really changes"))
    return {**spec, "plan": {**plan, "price": {**price, "currency": fixed}}}


def _in_sync(contested: list[str], contest: Contest) -> Verdict:
    if not contested:
        return Verdict(IN_SYNC, "True", "InSync", "every managed object is as desired")
    return Verdict(IN_SYNC, "False", "ContestedByOtherWriter",
                   f"{', '.join(contested)}: another writer keeps changing it; tenantry corrected it "
                   f"{contest.limit} times within {contest.window:g} s and now leaves it alone for "
                   f"{contest.pause:g} s before trying again. Stop the other writer, or change the Tenant "
                   "(or its plan) instead of the object")


async def finalize(services: Services, config: OperatorConfig, body: Mapping[str, Any]) -> str:
    """On deletion: stop serving first, keep the data, then let go.

    Whatever the policy: the routes (Ingress, Certificates) and DNS records go; a domain claim is
    released only once no Ingress in the namespace routes that domain any more (until then this
    raises, and kopf retries), so no other tenant can claim a host still served from here.
    Retain: the admins' access goes, the pods stop (quota pods: 0, Deployments and StatefulSets
    at 0 replicas, pods deleted) and the namespace with its volumes, ConfigMaps and Secrets stays,
    labelled orphaned. Delete: the namespace goes.

    Every clean-up checks this tenant's owner key first: a tenant that lost a slug race (its
    namespace name is held by another tenant) removes nothing but its own claims.
    """
    kube = services.kube
    writer = Writer(kube)
    meta = body["metadata"]
    slug, partner_namespace = meta["name"], meta["namespace"]
    owner = naming.owner_key(partner_namespace, slug)
    target = _namespace_ref(config, slug)
    live = await kube.get(target)
    ours = lifecycle.claim(live, partner_namespace, slug) is Claim.OURS
    policy = (body.get("spec") or {}).get("deletionPolicy", "Retain")
    if ours and policy != "Delete":
        await offboard.block_new_pods(writer, target.name, owner)
        await offboard.stop_workloads(writer, target.name, scale=True)
        await offboard.revoke_admins(writer, target.name, owner)
    if ours:
        await dnsflow.withdraw_routes(writer, services.dns, target.name, owner)
    await dnsflow.remove_records(writer, services.dns, config, partner_namespace, slug)
    kept = await dnsflow.release_all(writer, config, partner_namespace, slug,
                                     await dnsflow.still_routed(writer, target.name) if ours else set())
    if kept:
        raise KubeError("RoutesNotGone", f"{', '.join(kept)} still routed by an Ingress in namespace {target.name}: "
                        "the domain claim is kept until that route is gone")
    if not ours:
        return "nothing else to clean up: the tenant held no namespace"
    if policy == "Delete":
        if not live["metadata"].get("deletionTimestamp"):  # (run again after the Tenant is gone: no write)
            await kube.delete(target)
        return f"namespace {target.name} deleted (deletionPolicy: Delete)"
    if (live["metadata"].get("labels") or {}).get(naming.ORPHANED_LABEL) != "true":
        await kube.patch_labels(target, {naming.ORPHANED_LABEL: "true"})
    return (f"namespace {target.name} and its data retained, labelled {naming.ORPHANED_LABEL}=true; "
            "routes, admin access and pods removed")
