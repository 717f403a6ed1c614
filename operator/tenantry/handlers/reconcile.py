"""One reconcile path for a Tenant (create, update, resume, resync, drift) and its finalizer.

Gather what exists (from the informers' memory: a pass over an unchanged tenant makes no GET),
let the domain decide (domain/tenantpass.py: admission, plan and branding, the work in the
tenant's namespace; domain/conclusion.py, once the objects are written: Ready, the status, the
metrics' facts and when a pass is due next), and write only the difference (Writer). The namespace
and domain claims are the one exception to reading from memory: create, then read back, since
creation is what makes a claim atomic between two tenants racing for a name.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tenantry.adapters.kube import AlreadyExists, Conflict, Kube, KubeError, Unavailable
from tenantry.api.common import API_VERSION
from tenantry.domain import lifecycle, naming, tenantpass, usage, welcome
from tenantry.domain.caps import NOTHING_HELD, Held, PartnerTenants
from tenantry.domain.children import DesiredState, Manifest, ObjectRef, TenantInput, desired_state, ref, tenant_url
from tenantry.domain.conclusion import Found, Mail, conclude
from tenantry.domain.config import OperatorConfig
from tenantry.domain.contest import Contest
from tenantry.domain.features import SpecLookup
from tenantry.domain.lifecycle import Claim
from tenantry.domain.status import DNS_READY, NAMESPACE_READY, Verdict
from tenantry.domain.tenantpass import Refusal
from tenantry.domain.usage import TenantFacts
from tenantry.handlers import dnsflow, offboard
from tenantry.handlers.leadership import ShardLost
from tenantry.handlers.writer import NotYet, Writer


@dataclass(frozen=True)
class Lookups:
    """Where to find FeatureSets and Brandings by (namespace, name)."""

    feature_sets: SpecLookup
    brandings: SpecLookup
    # partner namespace -> its tenants (name -> (creationTimestamp, provisioned)), for the tenant cap
    partner_tenants: Callable[[str], PartnerTenants] = lambda namespace: {}
    # partner namespace -> the tenant namespaces of its tenants that exist (the cap counts them)
    partner_held: Callable[[str], Held] = lambda namespace: NOTHING_HELD


@dataclass(frozen=True)
class Services:
    """What a reconcile pass talks to, and what it remembers between passes."""

    kube: Kube
    dns: dnsflow.DnsServices
    contest: Contest = field(default_factory=Contest)
    mail_configured: bool = False  # an SMTP relay for the welcome e-mails (handlers/welcome)
    resend_cooldown: float = welcome.RESEND_COOLDOWN_SECONDS
    commission_rate: float = usage.DEFAULT_COMMISSION_RATE  # the platform's; a partner namespace may set its own


@dataclass(frozen=True)
class Outcome:
    """What a reconcile pass decided, for events and metrics."""

    ready: Verdict
    previous_ready: tuple[str, str] | None  # (status, reason) before this pass
    writes: int
    facts: TenantFacts | None = None
    welcome_due: bool = False  # the welcome e-mail is to be sent now (handlers/welcome)
    wake_at: datetime.datetime | None = None  # a pass is due then (a welcome retry or resend)
    trial_ends: datetime.datetime | None = None  # a pass is due then too: the trial ends

    @property
    def transitioned(self) -> bool:
        return self.previous_ready != (self.ready.status, self.ready.reason)


def tenant_ref(body: Mapping[str, Any]) -> ObjectRef:
    meta = body["metadata"]
    return ObjectRef(API_VERSION, "Tenant", meta["name"], meta["namespace"])


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
            live = await writer.kube.refresh(ref(desired.namespace))  # (read back: memory has it too)
            if live is None:
                raise Conflict(f"namespace {desired.namespace['metadata']['name']} was deleted meanwhile") from None
        held = lifecycle.claim(live, inp.partner_namespace, inp.slug)
    return held, live


async def _provision(writer: Writer, inp: TenantInput, config: OperatorConfig, tell_unavailable: bool = False
                     ) -> tuple[Verdict, Manifest | None, bool]:
    """The namespace and its children as desired; (the verdict, the live quota, whether the tenant
    holds and is served its namespace: also when a child was refused)."""
    desired = desired_state(inp, config)
    held, live_ns = await _claim_namespace(writer, desired, inp, config.slug_reserved(inp.slug))
    if held in (Claim.TAKEN, Claim.FOREIGN):
        return tenantpass.claim_conflict(held, inp.slug, desired.namespace["metadata"]["name"]), None, False
    targets = [ref(m) for m in (*desired.apply[1:], *desired.ensure)] + list(desired.remove)
    lives = dict(zip(targets, await writer.kube.get_many(targets), strict=True))
    work = tenantpass.namespace_work(desired, live_ns, lives, naming.owner_key(inp.partner_namespace, inp.slug),
                                     inp.spec.state)
    try:
        await _carry_out(writer, work, ref(desired.namespace))
    except Conflict:
        raise
    except KubeError as error:
        if isinstance(error, Unavailable) and not tell_unavailable:
            raise
        # A child refused (a tenant admin may fill the quota's count of ConfigMaps so that the
        # operator's own cannot be created again): the tenant is not Ready, yet it holds and is
        # served its namespace, and is billed for it (status.namespace stays).
        return Verdict(NAMESPACE_READY, "False", error.reason, str(error)), work.quota, True
    return work.verdict, work.quota, work.verdict.ok


async def _carry_out(writer: Writer, work: tenantpass.NamespaceWork, namespace: ObjectRef) -> None:
    """Write what namespace_work decided, in its order."""
    if work.delete_namespace:
        writer.count += 1
        await writer.kube.delete(namespace)
    if work.unorphan:
        writer.count += 1
        await writer.kube.patch_labels(namespace, {naming.ORPHANED_LABEL: None})
    failures: list[Exception] = []
    quota_refused = False
    for wave in work.waves:
        # Every write of a wave ends before the next wave starts: the next pass must not race one.
        # A failed write does not hold the later waves back: the quotas (last) must exist even when
        # a ConfigMap was refused, or the tenant's admins would work in a namespace without them.
        results = await asyncio.gather(*(writer.apply_if_needed(m, live) for m, live in wave), return_exceptions=True)
        refused = [(m, r) for (m, _), r in zip(wave, results, strict=True) if isinstance(r, Exception)]
        failures += [r for _, r in refused]
        quota_refused = quota_refused or any(m["kind"] == "ResourceQuota" for m, _ in refused)
        if any(isinstance(f, ShardLost) for f in failures):
            break
    if not any(isinstance(f, ShardLost) for f in failures):
        try:
            # (a quota whose own write was refused is not waited for: it will not take effect)
            await _remove_and_stop(writer, work, namespace, patient=not quota_refused)
        except Exception as later:  # (not a cancellation: that goes on as it is)
            if not failures:
                raise
            failures.append(later)
    if failures:
        raise min(failures, key=_telling)


def _telling(failure: Exception) -> tuple[bool, bool, bool, bool]:
    """The failure that says most about what to do next comes first: the shard is gone; else run
    again now (Conflict); else again with back-off (the API server could not take a write now);
    else what was refused (the status says so; the next pass tries again); else soon (NotYet)."""
    return (not isinstance(failure, ShardLost), not isinstance(failure, Conflict),
            not isinstance(failure, Unavailable), isinstance(failure, NotYet))


async def _remove_and_stop(writer: Writer, work: tenantpass.NamespaceWork, namespace: ObjectRef,
                           patient: bool = True) -> None:
    for target in work.deletes:
        writer.count += 1
        await writer.kube.delete(target)
    if work.stop_workloads:
        # The quota (pods: 0, applied above) refuses new pods once its controller has caught up;
        # then the running ones stop here (not before: they would be recreated).
        wait = offboard.PASS_QUOTA_WAIT_SECONDS if patient else 0.0
        if work.quota_first and not await offboard.quota_in_effect(writer, namespace.name, wait):
            raise NotYet(f"the quota of {namespace.name} does not refuse new pods yet: its controller has not "
                         "put pods: 0 in its status")
        await offboard.stop_workloads(writer, namespace.name, scale=work.scale_to_zero)


async def _find(writer: Writer, body: Mapping[str, Any], catalogue: Lookups, config: OperatorConfig,
                services: Services, moment: datetime.datetime, tell_unavailable: bool = False) -> Found:
    """Admit, resolve, provision, publish: the verdicts of one tenant."""
    meta = body["metadata"]
    slug, partner_namespace = meta["name"], meta["namespace"]
    partner_ns = await writer.kube.get(ObjectRef("v1", "Namespace", partner_namespace))
    partner = lifecycle.partner_of(partner_ns)
    rate = usage.commission_rate(((partner_ns or {}).get("metadata") or {}).get("annotations"),
                                 services.commission_rate)
    admitted = tenantpass.admit(body, partner, catalogue.partner_tenants(partner_namespace), config,
                                catalogue.partner_held(partner_namespace))
    if isinstance(admitted, Refusal):
        return Found(list(admitted.verdicts), fields={**admitted.fields, "commissionRate": rate})
    assert partner is not None
    ended = admitted if isinstance(admitted, tenantpass.EndedTrial) else None
    if ended is not None:
        admitted = ended.spec
    # A trial is served as Active until it ends, then as Suspended: everything below sees that state.
    own_namespace = await writer.kube.get(_namespace_ref(config, slug))
    created = lifecycle.trial_clock(meta.get("creationTimestamp"), own_namespace, partner_namespace, slug)
    spec, trial = lifecycle.trial_state(admitted, moment, lifecycle.timestamp(created) if created else None)
    resolved = tenantpass.resolve(spec, partner_namespace, catalogue.feature_sets, catalogue.brandings, config)
    inp = TenantInput(slug, partner_namespace, partner, spec, resolved.plan, resolved.branding, resolved.features)
    state = lifecycle.effective_state(body.get("spec") or {}, moment, created)  # status.state: what views show
    if ended is not None:
        state, trial = spec.state, ended.verdict
    found = Found([], list(resolved.warnings), {"partner": partner, "state": state, "commissionRate": rate},
                   resolved)
    found.trial_clock = created
    # (A refused Tenant keeps the last one: a refusal leaves status.state alone too.)
    found.fields["trialStarted"] = created if admitted.state == "Trial" else None
    # The end in effect (spec.trial.ends, at the latest 90 days in): what kubectl's Trial-Ends shows.
    ends = lifecycle.trial_end_of(body.get("spec") or {}, created) if admitted.state == "Trial" else None
    found.fields["trialEnds"] = ends.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ends else None
    if trial is not None:
        found.warnings.append(trial)
        found.trial = trial
    ns_name = naming.tenant_namespace(config.namespace_prefix, slug)
    holds_namespace = False
    try:
        namespace, found.quota, holds_namespace = await _provision(writer, inp, config, tell_unavailable)
        dns_verdict = Verdict(DNS_READY, "Unknown", namespace.reason, "waiting for the namespace")
        if namespace.ok:
            dns_verdict = await dnsflow.platform_records(writer, services.dns, inp, config, ns_name)
        if namespace.ok and namespace.reason != "Offboarded":
            previous = (body.get("status") or {}).get("domains", [])
            domains = await dnsflow.custom_domains(writer, services.dns, inp, config, previous)
            routed = await dnsflow.routes(writer, services.dns, inp, config, ns_name,
                                          domains.verified if spec.state != "Cancelled" else [],
                                          previously_verified=any(d.get("verified") for d in previous))
            found.warnings.append(domains.verdict)
            if routed is not None:
                found.warnings.append(routed)
            if {d.get("name") for d in previous} - set(spec.domains):
                # A dropped domain's claim goes once its route is gone, which routes() just did.
                await dnsflow.release_unlisted(writer, config, inp)
            found.fields["domains"] = domains.entries
    except Conflict:
        raise  # our copy of an object was behind: the Tenant's pass runs again (handlers/tenant)
    except KubeError as error:
        if isinstance(error, Unavailable) and not tell_unavailable:
            # The API server could not take a request now: the pass runs again with back-off, and
            # the status is not told of a moment's trouble (after a few passes in a row it is).
            raise
        namespace = Verdict(NAMESPACE_READY, "False", error.reason, str(error))
        dns_verdict = Verdict(DNS_READY, "Unknown", error.reason, str(error))
    if namespace.ok or holds_namespace:
        found.fields["namespace"] = ns_name
        found.fields["url"] = tenant_url(slug, config) if spec.state == "Active" else None
    if resolved.plan is not None and resolved.features is not None:
        found.fields["plan"] = " <- ".join(resolved.plan.chain)
        found.fields["features"] = [k for k, f in resolved.features.items() if f.enabled]
    if resolved.branding is not None:
        found.fields["branding"] = resolved.branding.source
    found.aspects = [namespace, *resolved.verdicts, dns_verdict]
    return found


async def reconcile(services: Services, config: OperatorConfig, catalogue: Lookups, body: Mapping[str, Any],
                    tell_unavailable: bool = False) -> Outcome:
    """Bring one tenant to its desired state and report it in its status. `tell_unavailable`: an
    API server that could not take a request is told in the status as a refusal is (it has kept
    failing: a lasting 5xx, such as an object of a tenant admin's grown too large to update)."""
    writer = Writer(services.kube, services.contest)
    started = datetime.datetime.now(datetime.UTC)  # one instant for the trial's end, status.state and the metrics
    found = await _find(writer, body, catalogue, config, services, started, tell_unavailable)
    found.contested = writer.contested
    mail = Mail(services.mail_configured, services.resend_cooldown, config.platform_domain)
    decided = conclude(body, found, services.contest, mail, services.commission_rate, started,
                       datetime.datetime.now(datetime.UTC))
    if decided.status_patch is not None:
        writer.count += 1
        await services.kube.patch_status(tenant_ref(body), decided.status_patch)
    return Outcome(decided.ready, decided.previous_ready, writer.count, decided.facts, welcome_due=decided.welcome_due,
                   wake_at=decided.wake_at, trial_ends=decided.trial_ends)


async def finalize(services: Services, config: OperatorConfig, body: Mapping[str, Any]) -> str:
    """On deletion: stop serving first, keep the data, then let go.

    Whatever the policy: the routes (Ingress, Certificates) and DNS records go; a domain claim is
    released only once no Ingress in the namespace routes that domain any more (until then this
    raises, and kopf retries), so no other tenant can claim a host still served from here.
    Retain: the quota goes to pods: 0 and the admins' access goes first; the pods stop once the
    quota refuses new ones (Deployments and StatefulSets at 0 replicas, pods deleted; after 30 s
    without the quota controller's answer, all the same) and the namespace with its volumes,
    ConfigMaps and Secrets stays, labelled orphaned. Delete: the namespace goes.

    Every clean-up checks this tenant's owner key first: a tenant that lost a slug race (its
    namespace name is held by another tenant) removes nothing but its own claims.
    """
    kube = services.kube
    writer = Writer(kube)
    meta = body["metadata"]
    slug, partner_namespace = meta["name"], meta["namespace"]
    owner = naming.owner_key(partner_namespace, slug)
    target = _namespace_ref(config, slug)
    live = await kube.read(target)  # a deletion decides on what is, not on what memory says
    ours = lifecycle.claim(live, partner_namespace, slug) is Claim.OURS
    policy = (body.get("spec") or {}).get("deletionPolicy", "Retain")
    retain = ours and policy != "Delete"
    quota_ours = retain and await offboard.block_new_pods(writer, target.name, owner)
    if retain:
        await offboard.revoke_admins(writer, target.name, owner)
    if ours:
        await dnsflow.withdraw_routes(writer, services.dns, target.name, owner)
    # As in a pass (_carry_out): pods deleted before the quota refuses new ones could come back.
    # Not waited for without end: a cluster whose quota controller does not answer enforces no
    # quota anyway, and the Tenant (its partner namespace too) must still be deletable.
    quota_in_effect = not quota_ours or await offboard.quota_in_effect(writer, target.name)
    if retain:
        await offboard.stop_workloads(writer, target.name, scale=True)
    # (After the pods: a DNS server that fails makes the clean-up run again, with nothing running.)
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
        # The namespace refuses new pods now; its controller would delete the running ones with the
        # grace their author chose (years, for one that ignores SIGTERM): here they get 30 s.
        await offboard.stop_workloads(writer, target.name, scale=False)
        return f"namespace {target.name} deleted (deletionPolicy: Delete)"
    if (live["metadata"].get("labels") or {}).get(naming.ORPHANED_LABEL) != "true":
        await kube.patch_labels(target, {naming.ORPHANED_LABEL: "true"})
    unsure = "" if quota_in_effect else (
        f"; the quota controller did not put pods: 0 in the quota's status within "
        f"{offboard.QUOTA_EFFECT_SECONDS:.0f} s (is kube-controller-manager running?), so pods started since may run")
    return (f"namespace {target.name} and its data retained, labelled {naming.ORPHANED_LABEL}=true; "
            f"routes, admin access and pods removed{unsure}")
