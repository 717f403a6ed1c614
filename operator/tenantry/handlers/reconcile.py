"""One reconcile path for a Tenant (create, update, resume, resync, drift) and its finalizer.

Read what exists, let the domain decide, write only the difference: a pass over a tenant that
is already as desired makes no write request at all.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tenantry.adapters.kube import AlreadyExists, Kube, KubeError
from tenantry.api.common import API_VERSION
from tenantry.api.tenant import TenantSpec
from tenantry.domain import lifecycle, naming, status
from tenantry.domain.branding import ResolvedBranding, contrast_warning, resolve_branding
from tenantry.domain.children import DesiredState, ObjectRef, TenantInput, desired_state, ref, tenant_url
from tenantry.domain.config import OperatorConfig
from tenantry.domain.contest import Contest
from tenantry.domain.drift import covers
from tenantry.domain.features import EffectiveFeature, Plan, SpecLookup, Unresolved, effective_features, resolve_plan
from tenantry.domain.lifecycle import Claim
from tenantry.domain.status import (
    BRANDING_CONTRAST,
    BRANDING_READY,
    DNS_READY,
    FEATURES_READY,
    IN_SYNC,
    NAMESPACE_READY,
    USAGE_VALID,
    Verdict,
)
from tenantry.domain.usage import TenantFacts, tenant_facts, usage_problems
from tenantry.handlers import dnsflow
from tenantry.handlers.writer import Writer


@dataclass(frozen=True)
class Lookups:
    """Where to find FeatureSets and Brandings by (namespace, name)."""

    feature_sets: SpecLookup
    brandings: SpecLookup


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


async def _claim_namespace(writer: Writer, desired: DesiredState, inp: TenantInput
                           ) -> tuple[Claim, Mapping[str, Any] | None]:
    live = await writer.kube.get(ref(desired.namespace))
    held = lifecycle.claim(live, inp.partner_namespace, inp.slug)
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
                       f"the name {slug!r} is already used by another tenant of this platform; tenant "
                       "names are unique across all partners: choose another metadata.name")
    return Verdict(NAMESPACE_READY, "False", "NamespaceNotOwned",
                   f"namespace {namespace!r} exists but is not managed by tenantry, so it is left "
                   "alone: choose another metadata.name or ask the platform team to remove it")


async def _provision(writer: Writer, inp: TenantInput, config: OperatorConfig) -> Verdict:
    desired = desired_state(inp, config)
    ns_name = desired.namespace["metadata"]["name"]
    held, live_ns = await _claim_namespace(writer, desired, inp)
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
                                     if m["kind"] == "ResourceQuota"), None)
    await writer.apply_if_needed(desired.namespace, live_ns)
    await asyncio.gather(*(writer.apply_if_needed(m, live) for m, live in zip(children, lives, strict=False)))
    await asyncio.gather(*(writer.apply_if_needed(m, live) for m, live in
                           zip(ensure, lives[len(children):], strict=False) if live is None))
    for target, live in zip(desired.remove, lives[len(children) + len(ensure):], strict=True):
        await writer.delete_if_ours(target, live)
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
    else:
        effective = effective_features(plan, spec)
        enabled = [k for k, f in effective.items() if f.enabled]
        features = Verdict(FEATURES_READY, "True", "PlanResolved",
                           f"plan {' <- '.join(plan.chain)}: {len(enabled)} features enabled")
    branding = resolve_branding(spec.branding, catalogue.brandings, partner_namespace, config.platform_namespace)
    warnings: list[Verdict] = []
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
            await dnsflow.routes(writer, services, inp, config, ns_name,
                                 domains.verified if spec.state != "Cancelled" else [],
                                 previously_verified=any(d.get("verified") for d in previous))
            warnings.append(domains.verdict)
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
        facts = tenant_facts(meta["name"], fields["partner"], body.get("spec") or {}, old_status.get("usage"),
                             writer.observed.get("features") or {}, ready.ok, writer.observed.get("quota"),
                             {v.type: v.status for v in (ready, *aspects, *warnings)},
                             dns_conflict=any(v.reason == "DNSConflict" for v in aspects))
    return Outcome(ready, (previous["status"], previous["reason"]) if previous else None, writer.count, facts)


def _in_sync(contested: list[str], contest: Contest) -> Verdict:
    if not contested:
        return Verdict(IN_SYNC, "True", "InSync", "every managed object is as desired")
    return Verdict(IN_SYNC, "False", "ContestedByOtherWriter",
                   f"{', '.join(contested)}: another writer keeps changing it; tenantry corrected it "
                   f"{contest.limit} times within {contest.window:g} s and now leaves it alone for "
                   f"{contest.pause:g} s before trying again. Stop the other writer, or change the Tenant "
                   "(or its plan) instead of the object")


async def finalize(services: Services, config: OperatorConfig, body: Mapping[str, Any]) -> str:
    """On deletion: DNS records and domain claims go, whatever the policy; Retain keeps the
    namespace (labelled orphaned), Delete removes it.

    Only a namespace this tenant holds is touched; what another tenant holds is never deleted.
    """
    kube = services.kube
    meta = body["metadata"]
    slug, partner_namespace = meta["name"], meta["namespace"]
    await dnsflow.remove_records(Writer(kube), services.dns, config, partner_namespace, slug)
    await dnsflow.release_all(Writer(kube), config, partner_namespace, slug)
    target = _namespace_ref(config, slug)
    live = await kube.get(target)
    if lifecycle.claim(live, partner_namespace, slug) is not Claim.OURS:
        return "nothing to clean up: the tenant held no namespace"
    policy = (body.get("spec") or {}).get("deletionPolicy", "Retain")
    if policy == "Delete":
        await kube.delete(target)
        return f"namespace {target.name} deleted (deletionPolicy: Delete)"
    await kube.patch_labels(target, {naming.ORPHANED_LABEL: "true"})
    return f"namespace {target.name} and its data retained, labelled {naming.ORPHANED_LABEL}=true"
