"""The running operator in one object, assembled in one place: what every handler fetches.

`__main__` makes one Runtime per process from the settings and hands it to kopf as its memo (kopf
gives each handler a shallow copy: the same clients, informers and queue). At the start of each
run of kopf (the first, and each after a lost watch) kopf's startup handler here calls `start`,
which builds what a run needs from fresh listings; kopf's cleanup handler calls `stop`. Both run
inside kopf, so its signal handling, retries of a failed start and stopping of the run's tasks
apply to them. The settings, the write contest, the metrics endpoint and its exposition, the
leader or shard elector outlive the runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

import kopf
from aiohttp import web

from tenantry.adapters.http import LIST_PAGE
from tenantry.adapters.informer import Cache, Informer, Scope
from tenantry.adapters.kube import Kube
from tenantry.api.common import GROUP, VERSION
from tenantry.domain import lifecycle, naming, welcomemail
from tenantry.domain.children import PRIORITY_QUOTA
from tenantry.domain.config import OperatorConfig
from tenantry.domain.contest import Contest
from tenantry.domain.settings import Settings
from tenantry.domain.shards import CLUSTER_WIDE
from tenantry.handlers import dnsflow, periodic, tenant
from tenantry.handlers import reconcile as passes
from tenantry.handlers.catalogue import Catalogue
from tenantry.handlers.leadership import ShardElector, ensure_leading, owns
from tenantry.handlers.welcome import Mailer
from tenantry.handlers.workqueue import WorkQueue
from tenantry.metrics.operator import CACHED_BYTES, CACHED_OBJECTS
from tenantry.metrics.pipeline import PIPELINE, DealFacts
from tenantry.metrics.server import serve_metrics
from tenantry.metrics.tenants import TenantExposition

logger = logging.getLogger("tenantry")

# The kinds of managed objects in tenant namespaces, watched by informers (see _informers), and
# the names the operator gives them.
CHILD_KINDS = (("v1", "ResourceQuota"), ("v1", "LimitRange"), ("v1", "ConfigMap"),
               ("networking.k8s.io/v1", "NetworkPolicy"), ("rbac.authorization.k8s.io/v1", "RoleBinding"))
OPERATOR_OBJECTS = {"ResourceQuota": frozenset({naming.QUOTA, PRIORITY_QUOTA}),
                    "LimitRange": frozenset({naming.LIMITS}), "ConfigMap": naming.OPERATOR_CONFIGMAPS,
                    "NetworkPolicy": frozenset({naming.NETWORK_POLICY}),
                    "RoleBinding": frozenset({naming.ADMIN_BINDING})}
CATALOGUE_WAIT_SECONDS = 30.0  # for the first listing of FeatureSets and Brandings, then again


class Runtime(kopf.Memo):
    """Everything the running operator holds. Set by __main__ for the process: settings, config,
    started, and leading (leader election) or shards (shards above 1). Set by `start` for each run
    of kopf: the rest."""

    settings: Settings
    config: OperatorConfig
    started: asyncio.Event  # one per run of kopf (__main__), set by `start`: the webhook and /readyz wait
    leading: Callable[[], bool]
    shards: ShardElector
    services: passes.Services  # the API client, DNS, the write contest, mail and commission settings
    kube: Kube
    mailer: Mailer | None
    tenants: Informer  # fed by kopf's own watch of Tenants (tenant.tenant_event)
    catalogue: Catalogue  # FeatureSets and Brandings (indexed by the tenants using them), partners' kept namespaces
    namespaces: Informer
    cache: Cache  # every informer a pass reads
    deals: Informer
    queue: WorkQueue[tenant.TenantKey]
    background_tasks: list[asyncio.Task]
    sweep: asyncio.Task
    exposition: TenantExposition
    metrics_server: web.AppRunner

    @classmethod
    def of(cls, settings: Settings) -> Runtime:
        runtime = cls()
        runtime.settings, runtime.config = settings, settings.operator
        runtime.started = asyncio.Event()
        return runtime


class _NoDiffBase(kopf.DiffBaseStorage):
    """kopf's copy of the last handled spec, kept nowhere: no handler here compares specs (a pass
    compares the live objects with the desired ones), and keeping it cost a PATCH of every new or
    changed Tenant (each one more webhook call and watch event) and a deep copy of every event.
    Without it kopf sees each event as a creation, for which nothing is registered."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.startup()
async def _kopf_starts(settings: kopf.OperatorSettings, memo: Runtime, **_: Any) -> None:
    _configure_kopf(settings)
    await start(memo)


@kopf.on.cleanup()
async def _kopf_stops(memo: Runtime, **_: Any) -> None:
    # Before kopf waits for the tasks still running: a replica that got SIGTERM would otherwise
    # hold the leader lease seconds longer, its workers reconciling on.
    await stop(memo)


def _configure_kopf(settings: kopf.OperatorSettings) -> None:
    # Our own names for kopf's marks, so users see tenantry.dev/* on their objects.
    settings.persistence.finalizer = naming.FINALIZER
    # kopf's progress of the deletion handler lives in the status, which partners cannot write: a
    # forged "already done" mark (an annotation, with the webhook down) would skip the clean-up.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(name="kopf")
    settings.persistence.diffbase_storage = _NoDiffBase()
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    # kopf's own LIST of Tenants in pages, as our informers read theirs: at a restart over 10,000
    # Tenants the whole list (some 40 MB of JSON, decoded at once) was the operator's memory peak.
    settings.watching.chunk_size = LIST_PAGE
    # Handlers return at once (they only queue), so kopf's per-object workers need not linger:
    # at a start, the initial listing of every managed object would otherwise keep one per object.
    settings.batching.idle_timeout = 1.0


async def start(runtime: Runtime) -> None:
    """Build what one run of kopf needs; returns once the FeatureSets and Brandings are listed."""
    process = runtime.settings.process
    if "services" in runtime:
        # kopf runs again in this process after it lost a watch (see __main__), or retries a start
        # that failed: what the previous run remembered per tenant may be stale; the fresh listing
        # rebuilds it. Its cleanup (stop) may not have run; a second stop does nothing.
        await stop(runtime)
        # The informers go with their tasks, uncounted: the new ones count from nothing.
        CACHED_OBJECTS.clear()
        CACHED_BYTES.clear()
        await runtime.services.kube.close()
        contest = runtime.services.contest
        if "exposition" in runtime:  # (a first start that failed before it got that far has none)
            runtime.exposition.clear()
        tenant.forget_all()
    else:
        contest = Contest(limit=process.contest_limit, window=process.contest_window_seconds,
                          pause=process.contest_pause_seconds)
    smtp = runtime.settings.smtp
    runtime.services = passes.Services(Kube.from_environment(before_write=lambda: ensure_leading(runtime)),
                                       dnsflow.make_dns_services(runtime.settings.dns), contest, smtp.configured,
                                       smtp.resend_cooldown_seconds, process.commission_rate)
    runtime.mailer = Mailer(runtime, smtp, tenant.tenant_lock) if smtp.configured else None
    if runtime.mailer is not None:
        welcomemail.prepare()
    runtime.kube = runtime.services.kube
    # Tenants come from kopf's own watch (its events feed this store); the rest from informers.
    runtime.tenants = Informer(runtime.kube.api, Scope(f"{GROUP}/{VERSION}", "Tenant"))
    runtime.catalogue = Catalogue(namespace_prefix=runtime.config.namespace_prefix)  # filled by informers
    informers = _informers(runtime)
    runtime.namespaces = informers[0]
    runtime.cache = runtime.kube.cache = Cache(informers, fed=[runtime.tenants])
    # Deals only feed the pipeline metrics: their informer is not one a pass waits for (an older
    # install without the Deal CRD or its RBAC provisions tenants all the same).
    runtime.deals = Informer(runtime.kube.api, Scope(f"{GROUP}/{VERSION}", "Deal"))
    PIPELINE.source = lambda: _deal_facts(runtime)
    runtime.background_tasks = [asyncio.create_task(i.run()) for i in (*informers, runtime.deals)]
    runtime.background_tasks += _periodic(runtime)
    # With shards, only the tenants of the shards this replica holds (see shard_changed).
    # Partners take turns (key[0]: the partner namespace), so one partner's thousands of tenants
    # queued at once hold no other partner's tenants up.
    runtime.queue = WorkQueue(lambda key: tenant.reconcile_key(key, runtime), process.workers,
                              admit=lambda key: owns(runtime, key[0]), group=lambda key: key[0])
    # Plans and brandings before any tenant or webhook call: judged against an empty catalogue, a
    # tenant would report its plan missing (and write that) for a moment after every restart.
    catalogue = [i for i in informers if i.scope.kind in ("FeatureSet", "Branding")]
    while not all(i.synced.is_set() for i in catalogue):
        try:
            await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in catalogue)), CATALOGUE_WAIT_SECONDS)
        except TimeoutError:
            # An API server that is starting answers soon; the informers keep trying meanwhile.
            logger.warning("FeatureSets and Brandings not listed after %.0f s: waiting on", CATALOGUE_WAIT_SECONDS)
    runtime.sweep = asyncio.create_task(tenant.sweep_leftovers(runtime))  # never holds up (or fails) the start
    if "exposition" not in runtime:
        # Each tenant's series are rendered when its facts change; a scrape joins bytes (see metrics).
        exposition = TenantExposition(process.partner_levels, process.partner_level_currency)
        if process.metrics_port:
            # All interfaces by default, so Prometheus reaches the pod; the demo binds to 127.0.0.1.
            runtime.metrics_server = await serve_metrics(exposition, process.metrics_port, process.metrics_address)
            logger.info("metrics on :%d/metrics", process.metrics_port)
        # Kept only once it is served: a start that failed to serve it tries again when kopf retries.
        runtime.exposition = exposition
    runtime.started.set()


async def stop(runtime: Runtime) -> None:
    """Stop the watches and workers `start` began (the metrics endpoint serves on)."""
    tasks = [*runtime.get("background_tasks", []), *([runtime.sweep] if "sweep" in runtime else [])]
    for task in tasks:
        task.cancel()
    if "queue" in runtime:
        await runtime.queue.stop()
    if runtime.get("mailer") is not None:
        await runtime.mailer.stop()
    await asyncio.gather(*tasks, return_exceptions=True)


def shard_changed(runtime: Runtime, shard: int, held: bool) -> None:
    """This replica took a shard (its tenants get a pass here; shard 0 brings the cluster-wide
    sweep) or gave one up (its tenants' series leave this replica's /metrics)."""
    if "queue" not in runtime:
        return  # kopf is starting: its first listing queues the tenants of the shards held by then
    for key in runtime.tenants.keys():
        if runtime.shards.shard_of(key[0]) != shard:
            continue
        if held:
            runtime.queue.add(key, start=False)  # the elector's task has no kopf context
        else:
            runtime.exposition.remove(key)
            tenant.forget(key)
    if held and shard == CLUSTER_WIDE:
        runtime.sweep = asyncio.create_task(tenant.sweep_leftovers(runtime))


def _deal_facts(runtime: Runtime) -> Iterator[DealFacts]:
    """The Deals of the partners this replica works on, with their partner ids."""
    for namespace, name in runtime.deals.keys():
        partner = lifecycle.partner_of(runtime.namespaces.get(None, namespace))
        if partner is None or not owns(runtime, namespace):
            continue
        spec = (runtime.deals.get(namespace, name) or {}).get("spec") or {}
        expected = spec.get("expected") or {}
        yield DealFacts(partner, str(spec.get("stage", "")), float(expected.get("monthly", 0.0) or 0.0),
                        str(expected.get("currency") or "EUR"))


def _periodic(runtime: Runtime) -> list[asyncio.Task]:
    """Every tenant once per resync period, the ones needing DNS attention once per DNS check, and
    memory's Tenants checked against the API server's, and what deleted ones left swept, once per
    vanished check."""
    process = runtime.settings.process
    tenants = runtime.tenants
    dns_due = lambda: [k for k in tenants.keys() if tenant.needs_dns_attention(tenants.get(*k) or {})]  # noqa: E731
    return [asyncio.create_task(periodic.spread(process.resync_seconds, tenants.keys,
                                                lambda key: tenant.resync(runtime, key))),
            asyncio.create_task(periodic.spread(process.dns_check_seconds, dns_due,
                                                lambda key: runtime.queue.add(key, start=False))),
            asyncio.create_task(periodic.every(process.vanished_check_seconds,
                                               lambda: tenant.forget_vanished(runtime),
                                               "checking the Tenants in memory against the API server")),
            # A Tenant's clean-up that failed (the API server away, an Ingress's finalizer) is
            # done by the next sweep, not left until the operator starts again.
            asyncio.create_task(periodic.every(process.vanished_check_seconds,
                                               lambda: tenant.sweep_leftovers(runtime),
                                               "sweeping what deleted tenants left"))]


def _informers(runtime: Runtime) -> list[Informer]:
    """Namespaces (partners' and tenants'), the objects with an operator's name in tenant
    namespaces, FeatureSets and Brandings: what a pass reads, kept current by one watch each."""
    client = runtime.kube.api
    prefix = runtime.config.namespace_prefix

    def ours(kind: str) -> Callable[[str, str], bool]:
        # Exact names only: a tenant admin may create any number of ConfigMaps named tenantry-*,
        # and none of them may cost the operator memory.
        names = OPERATOR_OBJECTS[kind]
        return lambda namespace, name: name in names and namespace.startswith(prefix)

    namespaces = Informer(client, Scope("v1", "Namespace"),
                          lambda kind, body: tenant.namespace_changed(runtime, kind, body),
                          index=runtime.catalogue.track_namespace)
    # Only what carries our managed-by label is listed and watched: the rest of the cluster's
    # ConfigMaps, RoleBindings, ... never cross the wire. An operator-named object without the
    # label counts as absent, which is how it is treated anyway: applied over (the label comes
    # back), and never deleted (Writer.delete_if_ours requires the label).
    children = [Informer(client, Scope(api_version, kind, keeps=ours(kind), labels=tenant.MANAGED,
                                       data_keys=naming.OPERATOR_CONFIGMAP_KEYS if kind == "ConfigMap" else None,
                                       others_annotations=True),
                         lambda change, body: tenant.child_changed(runtime, change, body))
                for api_version, kind in CHILD_KINDS]
    catalogue = [Informer(client, Scope(f"{GROUP}/{VERSION}", kind), report_listing=True,
                          on_change=lambda change, body, kind=kind: tenant.catalogue_changed(runtime, kind, change,
                                                                                              body))
                 for kind in ("FeatureSet", "Branding")]
    return [namespaces, *children, *catalogue]
