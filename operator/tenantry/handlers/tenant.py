"""kopf registrations for Tenants, the FeatureSets and Brandings they use, and the objects they own.

One reconcile path serves every trigger: watch events (create, update, and the initial listing
at start, i.e. resume), a periodic resync timer, a change to a FeatureSet or Branding (the
tenants using it are found through indexes, not a scan), and a change to a managed child object
made by someone else (drift). Every trigger only queues the tenant (see workqueue); a per-tenant
lock keeps the reconcile and the deletion clean-up apart.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import kopf

from tenantry.adapters.dns import DnsError
from tenantry.adapters.informer import same_object
from tenantry.adapters.kube import Conflict, KubeError, Unavailable
from tenantry.api.common import GROUP, VERSION
from tenantry.domain import caps, naming, offboarding
from tenantry.domain.children import ObjectRef
from tenantry.domain.config import OperatorConfig
from tenantry.domain.contest import USER_WRITABLE_KINDS
from tenantry.domain.drift import changed_by_others
from tenantry.domain.welcome import RESEND_ANNOTATION
from tenantry.handlers import dnsflow
from tenantry.handlers import reconcile as passes
from tenantry.handlers.keylocks import KeyLocks
from tenantry.handlers.leadership import ShardLost, acting, ensure_leading, owns
from tenantry.handlers.writer import NotYet, Writer
from tenantry.metrics.operator import (
    LAST_RESYNC,
    PROPAGATIONS,
    RECONCILE_SECONDS,
    RECONCILES,
    WRITES,
)

if TYPE_CHECKING:  # runtime imports this module: the type only, for the handlers' memo
    from tenantry.handlers.runtime import Runtime

MANAGED = {naming.MANAGED_BY: naming.OPERATOR}
TRIAL_TIMER_HORIZON = 7 * 86400.0  # seconds: trials ending later get their timer from a later pass
TenantKey = tuple[str, str]  # (partner namespace, slug)
logger = logging.getLogger("tenantry")

_locks: KeyLocks[TenantKey] = KeyLocks()
# The generation, usage report and resend annotation each tenant was last (or is being) reconciled
# with: our own writes come back as MODIFIED events with all three unchanged and need no second pass.
_reconciled: dict[TenantKey, tuple[int, Any, Any]] = {}
# The passes in a row that ended the same way without going through (NotYet, Unavailable,
# Conflict): (that way, how many). A pass that goes through, or ends another way, starts it again.
_streaks: dict[TenantKey, tuple[type, int]] = {}
# From this Unavailable in a row on, the pass tells it in the status (a lasting 5xx must not hide
# the tenant's state for ever); before, it is retried with back-off only.
UNAVAILABLE_TOLD_AFTER = 4
# Conflicts in a row run again at once this many times, then after a growing wait.
CONFLICTS_AT_ONCE = 3


def _in_a_row(key: TenantKey, ended: type) -> int:
    """How many passes in a row, up to the last, ended this way."""
    way, times = _streaks.get(key, (ended, 0))
    return times if way is ended else 0


def _streak(key: TenantKey, ended: type) -> int:
    """_in_a_row before this pass, which ended this way too (and is counted now)."""
    times = _in_a_row(key, ended)
    _streaks[key] = (ended, times + 1)
    return times


def _seen(body: Mapping[str, Any]) -> tuple[int, Any, Any]:
    meta = body.get("metadata") or {}
    return (meta.get("generation", 0), (body.get("status") or {}).get("usage"),
            (meta.get("annotations") or {}).get(RESEND_ANNOTATION))


def tenant_lock(key: TenantKey) -> AbstractAsyncContextManager[None]:
    """The lock that keeps writers of one tenant's status apart (reconcile, finalizer, pod security)."""
    return _locks.hold(key)


def forget(key: TenantKey) -> None:
    """A tenant's next event gets a pass, even one that changes nothing (its shard moved here)."""
    _reconciled.pop(key, None)


def forget_all() -> None:
    """Before kopf runs again in this process: its fresh listing passes every tenant once more."""
    _reconciled.clear()


async def reconcile_key(key: TenantKey, memo: Runtime) -> None:
    try:
        with acting(memo, key):
            await _reconcile_held(key, memo)
    except ShardLost as lost:
        # Given up or lost while queued or under way: its new owner reconciles it.
        _reconciled.pop(key, None)
        logger.debug("tenant %s/%s left alone: %s", *key, lost)


async def _reconcile_held(key: TenantKey, memo: Runtime) -> None:
    async with _locks.hold(key):
        ensure_leading(memo)
        # Until every informer has listed its kind, a read from memory could miss what exists.
        await memo.cache.wait_synced()
        started = time.monotonic()
        # The newest Tenant we know: from its watch, or from our own last write to it.
        body = memo.tenants.get(key[0], key[1])
        if body is None or body["metadata"].get("deletionTimestamp"):
            return  # gone, or the finalizer's business
        if naming.FINALIZER not in (body["metadata"].get("finalizers") or []):
            # The mutating webhook gives a new Tenant the finalizer; created while it was away,
            # kopf adds it (its deletion handler needs it), and the event of that write queues the
            # tenant again: nothing is provisioned that a deletion could miss, and one writer of it.
            return
        # Set now, not when done: the events of this very pass (our status patch)
        # arrive while it runs and must not queue the tenant again.
        _reconciled[key] = _seen(body)
        try:
            catalogue = passes.Lookups(memo.catalogue.feature_set(), memo.catalogue.branding(),
                                       memo.catalogue.partner_tenants, memo.catalogue.held)
            outcome = await passes.reconcile(memo.services, memo.config, catalogue, body,
                                             tell_unavailable=_in_a_row(key, Unavailable) >= UNAVAILABLE_TOLD_AFTER)
        except Conflict:
            # Our copy of an object was behind; memory holds it as it is now (Kube.stale): a pass
            # right after this one; after a few in a row (another controller moving an object all
            # the time) a growing wait first, so that the two do not spin.
            RECONCILES.labels("Tenant", "conflict").inc()
            times = _streak(key, Conflict)
            if times < CONFLICTS_AT_ONCE:
                memo.queue.add(key)
            else:
                memo.queue.add_after(key, NotYet.delay(times - CONFLICTS_AT_ONCE))
            return
        except NotYet as waiting:
            times = _streak(key, NotYet)
            logger.info("tenant %s/%s: %s; again in %.1f s", *key, waiting, NotYet.delay(times))
            RECONCILES.labels("Tenant", "waiting").inc()
            memo.queue.add_after(key, NotYet.delay(times))
            return
        except ShardLost:
            raise
        except Unavailable:
            _streak(key, Unavailable)
            RECONCILES.labels("Tenant", "error").inc()
            raise
        except Exception:
            RECONCILES.labels("Tenant", "error").inc()
            raise
        finally:
            RECONCILE_SECONDS.labels("Tenant").observe(time.monotonic() - started)
        _streaks.pop(key, None)
        if outcome.facts is not None and owns(memo, key[0]):
            # (a shard lost during the pass already removed its tenants' series here)
            memo.exposition.put(key, outcome.facts)
        RECONCILES.labels("Tenant", "ok" if outcome.ready.ok else "not-ready").inc()
        WRITES.labels("Tenant").inc(outcome.writes)
        if outcome.transitioned:
            kind = "Normal" if outcome.ready.ok else "Warning"
            kopf.event(body, type=kind, reason=outcome.ready.reason, message=outcome.ready.message)
            logger.info("tenant %s/%s: Ready=%s %s", *key, outcome.ready.status, outcome.ready.reason)
        if outcome.welcome_due and memo.mailer is not None:
            memo.mailer.add(key)
        _wake_later(memo, key, outcome.trial_ends, outcome.wake_at)


_timers: dict[TenantKey, asyncio.TimerHandle] = {}


def _wake_later(memo: Runtime, key: TenantKey, trial_ends: datetime.datetime | None,
                due: datetime.datetime | None) -> None:
    """A pass at the very moment a trial ends or a welcome retry is due (not up to a resync later);
    one timer per tenant, for the earlier of the two."""
    timer = _timers.pop(key, None)
    if timer is not None:
        timer.cancel()
    now = datetime.datetime.now(datetime.UTC)
    moments = [m for m in (trial_ends, due) if m is not None and m > now]  # a past one: this pass saw it
    if not moments:
        return
    delay = (min(moments) - now).total_seconds()
    if delay < TRIAL_TIMER_HORIZON:  # later ones: a resync on the way sets the timer then
        _timers[key] = asyncio.get_running_loop().call_later(delay + 0.5, memo.queue.add, key, False)


@kopf.on.event(GROUP, VERSION, "tenants")
async def tenant_event(event: Mapping[str, Any], namespace: str, name: str, spec: kopf.Spec, memo: Runtime,
                       **kwargs: Any) -> None:
    key = (namespace, name)
    if event.get("type") == "DELETED":
        await _gone(memo, event.get("object") or {})
        return
    memo.tenants.observe(event.get("type") or "ADDED", event.get("object") or {})
    obj = event.get("object") or {}
    memo.catalogue.track_tenant(key, spec, obj)
    seen = _seen(obj)
    # MODIFIED: our own writes, or metadata. No type: kopf listing everything again when it restarts
    # a watch (every few minutes), which must not reconcile 10,000 unchanged tenants each time;
    # the first listing of a run still does (nothing is remembered yet), and the resync timer.
    if event.get("type") in ("MODIFIED", None) and _reconciled.get(key) == seen:
        return
    memo.queue.add(key)


async def _gone(memo: Runtime, body: Mapping[str, Any]) -> None:
    """A Tenant is gone: memory, metrics, timers and its place under the partner's cap let go of it."""
    meta = body.get("metadata") or {}
    key = (meta.get("namespace") or "", meta.get("name") or "")
    held = memo.tenants.get(*key)
    if held is not None and not same_object(held, body):
        # A Tenant of the name was created since and its event came first (kopf works each uid on
        # its own): memory, metrics and the cap keep the new one; only the old one's clean-up is due.
        await _clean_up_after(memo, body)
        return
    memo.tenants.observe("DELETED", body)
    _reconciled.pop(key, None)
    _streaks.pop(key, None)
    timer = _timers.pop(key, None)
    if timer is not None:
        timer.cancel()
    memo.exposition.remove(key)
    memo.catalogue.track_tenant(key, None)
    memo.services.contest.forget(naming.tenant_namespace(memo.config.namespace_prefix, key[1]))
    if memo.services.dns is not None:
        memo.services.dns.forget(key)
    _place_freed(memo, key[0])
    await _clean_up_after(memo, body)


async def forget_vanished(memo: Runtime) -> list[TenantKey]:
    """Tenants memory holds that the API server no longer has, handled as if their DELETED event
    had come. kopf misses that event for a Tenant deleted while its watch had to start over (410
    Gone: it lists again and reports only what it finds), and a Tenant kept in memory would keep
    its series in /metrics (its revenue counted on) and its place under the partner's cap. One
    LIST of the Tenants' metadata, once per TENANTRY_VANISHED_CHECK_SECONDS."""
    listed: set[TenantKey] = set()
    version = ""
    async for page, page_version in memo.kube.api.list(f"{GROUP}/{VERSION}", "Tenant", None, metadata_only=True):
        version = page_version  # every page names the same: the list is one consistent snapshot
        listed.update((t["metadata"].get("namespace") or "", t["metadata"]["name"]) for t in page)
    vanished = memo.tenants.vanished(listed, version)
    for key in vanished:
        # Asked again at each one: while the clean-up of the one before awaited, this one's DELETED
        # event may have come, or a Tenant of the same name been created (its ADDED event is newer
        # than the list: not gone).
        body = memo.tenants.get(*key)
        if body is None or not memo.tenants.vanished(listed, version, among=[key]):
            continue
        logger.warning("tenant %s/%s is gone, though no watch event said so (its watch started over): "
                       "forgetting it", *key)
        await _gone(memo, body)
    return vanished


async def _clean_up_after(memo: Runtime, body: Mapping[str, Any]) -> None:
    """A Tenant is gone: the clean-up once more, in case it went without it.

    With the webhook down a partner can remove the operator's finalizer, and the Tenant goes
    without the deletion handler: its domain claims would be held forever, its records published.
    Normally the handler ran already and this finds nothing left to do (no write). A new Tenant
    of the same name, created meanwhile, is left alone: what it holds is its own.
    """
    meta = body.get("metadata") or {}
    key = (meta.get("namespace") or "", meta.get("name") or "")
    if not owns(memo, key[0]):
        return  # another replica's shard: its owner cleans up
    async with _locks.hold(key):
        try:
            with acting(memo, key):
                ensure_leading(memo)
                if await memo.kube.get(ObjectRef(f"{GROUP}/{VERSION}", "Tenant", key[1], key[0])) is not None:
                    return
                await memo.cache.wait_synced()  # (the clean-up reads memory, the quota's status among it)
                message = await passes.finalize(memo.services, memo.config, body)
        except (KubeError, DnsError, ShardLost) as error:
            logger.warning("tenant %s/%s gone; its clean-up failed: %s", *key, error)
            return
    logger.info("tenant %s/%s gone: %s", *key, message)


async def sweep_leftovers(memo: Runtime) -> None:
    """What Tenants that went without their clean-up left (see _clean_up_after): their domain
    claims are released and their namespaces marked orphaned (kept: never deleted here). A
    cluster-wide job: with shards, the owner of shard 0 does it (when it takes the shard)."""
    if not owns(memo, None):
        return
    try:
        with acting(memo, None):
            released = await _sweep(memo)
    except Exception as error:  # noqa: BLE001  (a background task: report, never crash)
        logger.warning("sweeping what deleted tenants left failed: %s", error)
        return
    if released:
        logger.info("released the claims of deleted tenants: %s", ", ".join(released))


SWEEP_SETTLED_CHECKS = 3  # the Tenants kopf has listed into memory stayed this many seconds unchanged
SWEEP_READS = 20  # owners still unknown after that: more than this are answered by one LIST, not a GET each
# Many owners unknown: kopf's listing is far more likely stalled (a loaded machine, 10,000 Tenants:
# a restart's informer LISTs and resume pass hold the loop for seconds) than that many Tenants gone,
# so the LIST of every Tenant waits for this many seconds unchanged (a 3 s wait made that LIST
# in one restart out of three over 10,000 tenants in `make bench`: kopf's Tenants read twice).
SWEEP_PATIENT_CHECKS = 30
# And never longer than this many checks in all, however the count moves (a partner creating a
# Tenant now and then must not put off the sweep for ever).
SWEEP_MAX_CHECKS = 120


def _marked_owner(namespace: Mapping[str, Any]) -> TenantKey | None:
    return naming.parse_owner_key((namespace["metadata"].get("annotations") or {}).get(naming.OWNER_ANNOTATION, ""))


async def _listed_tenants(memo: Runtime, owners: set[TenantKey],
                          pause: Callable[[float], Awaitable[None]] = asyncio.sleep) -> set[TenantKey]:
    """Until kopf's first listing of Tenants has reached memory: at once when every owner named
    by a tenant namespace is known (the usual restart), else when the count of Tenants in memory
    stayed unchanged for a few seconds (longer while many owners are unknown), and at the latest
    after SWEEP_MAX_CHECKS seconds. Returns the owners still unknown."""
    count, unchanged = -1, 0
    for _ in range(SWEEP_MAX_CHECKS):
        owners = {owner for owner in owners if not memo.tenants.holds(*owner)}
        patience = SWEEP_SETTLED_CHECKS if len(owners) <= SWEEP_READS else SWEEP_PATIENT_CHECKS
        if not owners or unchanged >= patience:
            return owners
        await pause(1)
        unchanged, count = (unchanged + 1 if len(memo.tenants) == count else 0), len(memo.tenants)
    return {owner for owner in owners if not memo.tenants.holds(*owner)}


async def _sweep(memo: Runtime, pause: Callable[[float], Awaitable[None]] = asyncio.sleep) -> list[str]:
    await memo.cache.wait_synced()
    namespaces = await memo.kube.list("v1", "Namespace", None, MANAGED)  # type: ignore[arg-type]
    # The namespaces the sweep may mark: those already marked (or going) need no owner looked up.
    candidates = {ns["metadata"]["name"]: owner for ns in namespaces
                  if (owner := _marked_owner(ns)) is not None and not ns["metadata"].get("deletionTimestamp")
                  and not (ns["metadata"].get("labels") or {}).get(naming.ORPHANED_LABEL)}
    unknown = await _listed_tenants(memo, set(candidates.values()), pause)
    listed: set[TenantKey] | None = None
    if len(unknown) > SWEEP_READS:
        logger.info("sweep: %d tenant namespaces name a Tenant kopf's listing has not brought; "
                    "reading every Tenant once instead of one each", len(unknown))
        # kopf's listing is slow to reach memory (a loaded machine, 10,000 Tenants): one LIST
        # answers for all of them, where a GET each made thousands of reads at a restart.
        # Strict, as each GET below: while Tenants are not served (404) the sweep stops, never
        # taking every tenant for gone.
        listed = {(t["metadata"]["namespace"], t["metadata"]["name"])
                  async for page, _ in memo.kube.api.list(f"{GROUP}/{VERSION}", "Tenant", None) for t in page}
    confirmed: dict[TenantKey, bool] = {}

    async def exists(key: TenantKey) -> bool:
        # In memory or in the LIST: it exists. Else asked once (a Tenant may have come after the
        # LIST), so a true leftover costs one read.
        if memo.tenants.holds(*key) or (listed is not None and key in listed):
            return True
        if key not in confirmed:
            # strict: while Tenants are not served (an API server starting) none reads as gone.
            tenant = ObjectRef(f"{GROUP}/{VERSION}", "Tenant", key[1], key[0])
            confirmed[key] = await memo.kube.read(tenant, strict=True) is not None
        return confirmed[key]

    released = await dnsflow.release_orphaned(Writer(memo.kube), memo.config, exists)
    for name, owner in candidates.items():
        if not await exists(owner):
            await memo.kube.patch_labels(ObjectRef("v1", "Namespace", name), {naming.ORPHANED_LABEL: "true"})
    return released


def resync(memo: Runtime, key: TenantKey) -> None:
    memo.queue.add(key, start=False)
    LAST_RESYNC.set_to_current_time()


def needs_dns_attention(body: Mapping[str, Any]) -> bool:
    """Custom domains to (re-)verify, or DNS that failed: worth a look more often than the resync."""
    conditions = (body.get("status") or {}).get("conditions") or []
    failing = any(c.get("type") == "DNSReady" and c.get("status") != "True" for c in conditions)
    return bool((body.get("spec") or {}).get("domains")) or failing


async def _ours_to_finalize(memo: Runtime, body: kopf.Body) -> bool:
    """With shards every replica's kopf calls the deletion handler of every Tenant, and a handler
    that returns lets kopf remove the finalizer: so another shard's replica waits here, until the
    Tenant is gone (its owner cleaned up) or its shard came to this replica (the owner died)."""
    ref = ObjectRef(f"{GROUP}/{VERSION}", "Tenant", body.meta.name or "", body.meta.namespace or "")
    while not owns(memo, ref.namespace):
        live = await memo.kube.read(ref)
        if live is None or live["metadata"].get("uid") != body.meta.uid or \
                naming.FINALIZER not in (live["metadata"].get("finalizers") or []):
            return False
        await asyncio.sleep(memo.settings.process.lease.retry_period)
    return True


@kopf.on.delete(GROUP, VERSION, "tenants")
async def tenant_deleted(body: kopf.Body, memo: Runtime, logger: logging.Logger, **_: Any) -> None:
    if not await _ours_to_finalize(memo, body):
        return
    # The tenant's lock: a reconcile still creating the namespace finishes first, so the clean-up
    # sees (and labels or deletes) it instead of leaving it behind unmarked.
    async with _locks.hold((body.meta.namespace or "", body.meta.name or "")):
        try:
            with acting(memo, (body.meta.namespace or "", body.meta.name or "")):
                ensure_leading(memo)
                await memo.cache.wait_synced()  # (the clean-up reads memory, the quota's status among it)
                message = await passes.finalize(memo.services, memo.config, body)
        except (KubeError, DnsError, ShardLost) as error:
            raise kopf.TemporaryError(str(error), delay=10) from error
    logger.info("tenant %s/%s deleted: %s", body.meta.namespace, body.meta.name, message)


def _users(namespace: str, keys: Iterable[TenantKey], config: OperatorConfig) -> set[TenantKey]:
    """Of the tenants asking for a name, those that may see the object: a platform object is
    visible to every partner, a partner's object only to that partner's tenants."""
    return {key for key in keys if namespace == config.platform_namespace or key[0] == namespace}


def catalogue_changed(memo: Runtime, kind: str, change: str, body: Mapping[str, Any]) -> None:
    """A FeatureSet or Branding listed or changed: the catalogue keeps it; a change re-renders the
    tenants using it (found through the catalogue's indexes, not a scan)."""
    meta = body.get("metadata") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    memo.catalogue.put(kind, (namespace, name), None if change == "DELETED" else (body.get("spec") or {}))
    if change == "LISTED":
        return  # the first listing: every tenant gets its first pass anyway
    if kind == "FeatureSet":
        keys = memo.catalogue.plan_users(namespace, name, memo.config.platform_namespace)
    else:
        keys = _users(namespace, memo.catalogue.tenants_with_branding(name), memo.config)
    PROPAGATIONS.labels(kind).inc()
    logger.info("%s %s/%s changed: re-rendering %d tenant(s)", kind, namespace, name, len(keys))
    for key in keys:
        memo.queue.add(key, start=False)


def _owner_from(live: Mapping[str, Any] | None) -> TenantKey | None:
    """The tenant holding a namespace, from the namespace's owner annotation: the only ownership
    mark in a tenant namespace that its admins cannot write (they cannot write Namespaces)."""
    meta = (live or {}).get("metadata") or {}
    if not naming.is_managed(meta.get("labels")):
        return None
    return naming.parse_owner_key((meta.get("annotations") or {}).get(naming.OWNER_ANNOTATION, ""))


def _owner_of(namespace: str, memo: Runtime) -> TenantKey | None:
    """The tenant holding a namespace, from memory (drift events come after the namespace's own)."""
    if not namespace.startswith(memo.config.namespace_prefix):
        return None
    return _owner_from(memo.namespaces.get(None, namespace))


async def _read_owner_of(namespace: str, memo: Runtime) -> TenantKey | None:
    """The same, read from the API server when memory does not know the namespace (yet): at a start
    kopf's Service and pod watches may deliver before the namespace informer has listed."""
    owner = _owner_of(namespace, memo)
    if owner is None and namespace.startswith(memo.config.namespace_prefix):
        owner = _owner_from(await memo.kube.read(ObjectRef("v1", "Namespace", namespace)))
    return owner


def _place_freed(memo: Runtime, partner_namespace: str, start: bool = True) -> None:
    """A place under the partner's cap may have come free: a pass for the waiting tenants it goes to,
    and for the first in line in any case (its refusal then says what holds the place: a deleted
    Tenant's namespace that stays, say). Not all of them: a partner deleting tenants must not cost
    a pass over every waiting one each time."""
    if memo.config.max_tenants_per_partner and owns(memo, partner_namespace):
        for waiting in caps.next_in_line(memo.catalogue.partner_tenants(partner_namespace),
                                         memo.config.max_tenants_per_partner, memo.catalogue.held(partner_namespace),
                                         at_least=1):
            memo.queue.add((partner_namespace, waiting), start=start)


def namespace_changed(memo: Runtime, kind: str, body: Mapping[str, Any]) -> None:
    """A tenant namespace changed by someone else (a label, an annotation, a deletion): a pass."""
    meta = body.get("metadata") or {}
    owner = naming.parse_owner_key((meta.get("annotations") or {}).get(naming.OWNER_ANNOTATION, ""))
    labels = meta.get("labels") or {}
    if kind == "DELETED" and owner is not None and naming.is_managed(labels):
        # A tenant namespace is gone: its place under the cap may be free (the catalogue forgot it
        # as the informer dropped it, before this call).
        _place_freed(memo, owner[0], start=False)
    if not naming.is_managed(labels) and kind != "DELETED":
        return
    if owner is not None and (kind == "DELETED" or changed_by_others(meta.get("managedFields"))):
        logger.info("namespace %s of tenant %s/%s changed by someone else: reconciling", meta.get("name"), *owner)
        memo.queue.add(owner, start=False)


def child_changed(memo: Runtime, kind: str, body: Mapping[str, Any]) -> None:
    """A managed object in a tenant namespace changed: reconcile the tenant holding the NAMESPACE.

    Labels and annotations inside a tenant namespace are no evidence: its admins may write
    ConfigMaps there, with any owner annotation, and strip the managed-by label. So every object
    with an operator's name counts, and its owner comes from the namespace (see _owner_of).
    """
    meta = body.get("metadata") or {}
    others = kind == "DELETED" or changed_by_others(meta.get("managedFields"))
    # A tenant admin may write a ConfigMap under any field-manager name, ours included: for such
    # kinds the manager is no evidence, so every change gets a pass (ours end in zero writes).
    if body.get("kind") not in USER_WRITABLE_KINDS and not others:
        return
    owner = _owner_of(meta.get("namespace") or "", memo)
    if owner is not None:
        logger.log(logging.INFO if others else logging.DEBUG, "%s %s of tenant %s/%s changed%s: reconciling",
                   body.get("kind"), meta.get("name"), *owner, " by someone else" if others else "")
        memo.queue.add(owner, start=False)


@kopf.on.event("", "v1", "services")
async def service_changed(event: Mapping[str, Any], body: kopf.Body, memo: Runtime, logger: logging.Logger,
                          **kwargs: Any) -> None:
    """externalIPs and external-dns's annotations are removed from every Service in a tenant
    namespace (offboarding.service_correction: Kubernetes 1.20 has no admission plugin against
    externalIPs, and the webhook may be down), and a change to the route Service re-checks
    the tenant's routes (no route to an ExternalName Service)."""
    if event.get("type") == "DELETED":
        return
    namespace = body.metadata.namespace or ""
    owner = await _read_owner_of(namespace, memo)
    if owner is None or not owns(memo, owner[0]):
        return  # not a tenant namespace, or another replica's tenant
    correction = offboarding.service_correction(body)
    if correction is not None:
        found = [what for part, what in (("spec", "externalIPs"), ("metadata", "external-dns annotations"))
                 if part in correction]
        logger.warning("Service %s/%s of tenant %s/%s has %s: removing them", namespace, body.metadata.name, *owner,
                       " and ".join(found))
        try:
            with acting(memo, owner):
                await memo.kube.patch_if_unchanged(ObjectRef("v1", "Service", body.metadata.name or "", namespace),
                                                   correction, body["metadata"]["resourceVersion"])
        except (Conflict, ShardLost):
            pass  # changed meanwhile (its next event brings it here again), or no longer ours
        WRITES.labels("Service").inc()
    if body.metadata.name == memo.config.route_service and event.get("type") is not None:
        memo.queue.add(owner)
