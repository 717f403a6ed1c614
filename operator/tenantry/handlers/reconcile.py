"""One reconcile path for a Tenant (create, update, resume, resync, drift) and its finalizer.

Read what exists, let the domain decide, write only the difference: a pass over a tenant that
is already as desired makes no write request at all.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenantry.adapters.kube import AlreadyExists, Kube, KubeError
from tenantry.api.common import API_VERSION
from tenantry.api.tenant import TenantSpec
from tenantry.domain import lifecycle, naming, status
from tenantry.domain.children import DesiredState, ObjectRef, TenantInput, desired_state, ref, tenant_url
from tenantry.domain.config import OperatorConfig
from tenantry.domain.drift import covers
from tenantry.domain.lifecycle import Claim
from tenantry.domain.status import FEATURES_READY, NAMESPACE_READY, Verdict


@dataclass(frozen=True)
class Outcome:
    """What a reconcile pass decided, for events and metrics."""

    ready: Verdict
    previous_ready: tuple[str, str] | None  # (status, reason) before this pass
    writes: int

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


class _Writer:
    """Counts the writes of one pass."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.count = 0

    async def apply_if_needed(self, manifest: dict[str, Any], live: Mapping[str, Any] | None) -> None:
        if live is None or not covers(live, manifest):
            self.count += 1
            await self.kube.apply(manifest)


async def _feature_set(kube: Kube, name: str, partner_namespace: str, config: OperatorConfig
                       ) -> Mapping[str, Any] | None:
    """The partner's FeatureSet of that name, else the platform's."""
    for namespace in (partner_namespace, config.platform_namespace):
        found = await kube.get(ObjectRef(API_VERSION, "FeatureSet", name, namespace))
        if found is not None:
            return found
    return None


async def _claim_namespace(writer: _Writer, desired: DesiredState, inp: TenantInput
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


async def _provision(writer: _Writer, inp: TenantInput, config: OperatorConfig) -> Verdict:
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
    children = desired.apply[1:]
    lives = await writer.kube.get_many([ref(m) for m in children] + list(desired.remove))
    await writer.apply_if_needed(desired.namespace, live_ns)
    await asyncio.gather(*(writer.apply_if_needed(m, live) for m, live in zip(children, lives, strict=False)))
    for target, live in zip(desired.remove, lives[len(children):], strict=True):
        if live is not None and naming.is_managed(live["metadata"].get("labels")):
            writer.count += 1
            await writer.kube.delete(target)
    return Verdict(NAMESPACE_READY, "True", "Provisioned",
                   f"namespace {ns_name} with quota, limits, network isolation and admin access")


async def _verdicts(writer: _Writer, body: Mapping[str, Any], config: OperatorConfig
                    ) -> tuple[list[Verdict], str | None, TenantSpec | None]:
    meta = body["metadata"]
    slug, partner_namespace = meta["name"], meta["namespace"]
    partner = lifecycle.partner_of(await writer.kube.get(ObjectRef("v1", "Namespace", partner_namespace)))
    if partner is None:
        why = (f"namespace {partner_namespace!r} is not a partner namespace: tenants are only "
               f"provisioned in namespaces labelled {naming.PARTNER_LABEL}=<partner-id>; label the "
               "namespace or move the Tenant")
        return ([Verdict(NAMESPACE_READY, "False", "NotInPartnerNamespace", why),
                 Verdict(FEATURES_READY, "Unknown", "NotInPartnerNamespace", why)], None, None)
    spec = lifecycle.parse_tenant_spec(body.get("spec"))
    if isinstance(spec, str):
        why = f"the Tenant is invalid: {spec}"
        return ([Verdict(NAMESPACE_READY, "False", "InvalidSpec", why),
                 Verdict(FEATURES_READY, "Unknown", "InvalidSpec", why)], partner, None)
    plan = spec.plan.feature_set
    feature_set = await _feature_set(writer.kube, plan, partner_namespace, config)
    resources = lifecycle.resources_of(feature_set, config.default_resources)
    if feature_set is None:
        features = Verdict(FEATURES_READY, "False", "FeatureSetNotFound",
                           f"no FeatureSet {plan!r} in namespace {partner_namespace!r} nor in the platform "
                           f"namespace {config.platform_namespace!r}: create it or fix spec.plan.featureSet")
    elif isinstance(resources, str):
        features = Verdict(FEATURES_READY, "False", "InvalidFeatureSet",
                           f"FeatureSet {plan!r} is invalid: {resources}")
    else:
        features = Verdict(FEATURES_READY, "True", "PlanResolved", f"plan {plan!r} resolved")
    if isinstance(resources, str):
        resources = config.default_resources  # still provision; FeaturesReady says what is wrong
    inp = TenantInput(slug, partner_namespace, partner, spec, resources)
    try:
        namespace = await _provision(writer, inp, config)
    except KubeError as error:
        namespace = Verdict(NAMESPACE_READY, "False", error.reason, str(error))
    return [namespace, features], partner, spec


async def reconcile(kube: Kube, config: OperatorConfig, body: Mapping[str, Any]) -> Outcome:
    """Bring one tenant to its desired state and report it in its status."""
    writer = _Writer(kube)
    meta = body["metadata"]
    generation = meta.get("generation", 0)
    old_status = body.get("status") or {}
    previous = next((c for c in old_status.get("conditions", []) if c.get("type") == status.READY), None)
    verdicts, partner, spec = await _verdicts(writer, body, config)
    state = spec.state if spec else "Active"
    ready = status.ready_verdict(verdicts, state)
    provisioned = verdicts[0].ok and spec is not None
    new_status = {
        "observedGeneration": generation,
        "conditions": status.conditions([ready, *verdicts], old_status.get("conditions", []), generation,
                                        _now()),
        "partner": partner,
        "namespace": naming.tenant_namespace(config.namespace_prefix, meta["name"]) if provisioned else None,
        "url": tenant_url(meta["name"], config) if provisioned and state == "Active" else None,
    }
    # Only keys we own, and null for those that no longer apply (merge-patch removes them).
    wanted = {k: v for k, v in new_status.items() if v is not None}
    stale = {k: None for k, v in new_status.items() if v is None and k in old_status}
    if not covers(old_status, wanted) or stale:
        writer.count += 1
        await kube.patch_status(tenant_ref(body), {**wanted, **stale})
    return Outcome(ready, (previous["status"], previous["reason"]) if previous else None, writer.count)


async def finalize(kube: Kube, config: OperatorConfig, body: Mapping[str, Any]) -> str:
    """On deletion: Retain keeps the namespace (labelled orphaned), Delete removes it.

    Only a namespace this tenant holds is touched; what another tenant holds is never deleted.
    """
    meta = body["metadata"]
    slug, partner_namespace = meta["name"], meta["namespace"]
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
