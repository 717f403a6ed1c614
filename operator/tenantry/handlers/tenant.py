"""kopf registrations for Tenants, the FeatureSets and Brandings they use, and the objects they own.

One reconcile path serves every trigger: watch events (create, update, and the initial listing
at start, i.e. resume), a periodic resync timer, a change to a FeatureSet or Branding (the
tenants using it are found through indexes, not a scan), and a change to a managed child object
made by someone else (drift). A per-tenant lock keeps two triggers from reconciling one tenant
at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

import kopf
import prometheus_client

from tenantry.adapters.kube import Kube, KubeError
from tenantry.api.common import GROUP, VERSION
from tenantry.domain import naming
from tenantry.domain.branding import branding_name
from tenantry.domain.children import ObjectRef
from tenantry.domain.config import OperatorConfig
from tenantry.domain.features import dependents
from tenantry.handlers import reconcile as passes
from tenantry.metrics.operator import PROPAGATIONS, RECONCILE_SECONDS, RECONCILES, WRITES

RESYNC_SECONDS = float(os.environ.get("TENANTRY_RESYNC_SECONDS", "300"))
METRICS_PORT = int(os.environ.get("TENANTRY_METRICS_PORT", "8080"))
PROPAGATION_CONCURRENCY = int(os.environ.get("TENANTRY_PROPAGATION_CONCURRENCY", "32"))
CHILD_KINDS = (("", "v1", "namespaces"), ("", "v1", "resourcequotas"), ("", "v1", "limitranges"),
               ("", "v1", "configmaps"), ("networking.k8s.io", "v1", "networkpolicies"),
               ("rbac.authorization.k8s.io", "v1", "roles"),
               ("rbac.authorization.k8s.io", "v1", "rolebindings"))
MANAGED = {naming.MANAGED_BY: naming.OPERATOR}
TenantKey = tuple[str, str]  # (partner namespace, slug)

_locks: dict[TenantKey, asyncio.Lock] = {}


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger,
                  **_: Any) -> None:
    # Our own names for kopf's marks, so users see tenantry.dev/* on their objects.
    settings.persistence.finalizer = naming.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="tenantry.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="tenantry.dev", key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    # No kopf worker limit: objects wait for the indexes to fill before their handlers run, so a
    # limit below the number of tenants would deadlock the start. Our own gate bounds the load.
    memo.gate = asyncio.Semaphore(int(os.environ.get("TENANTRY_WORKERS", "64")))
    memo.config = OperatorConfig.from_env(os.environ)
    memo.kube = Kube.from_environment()
    if METRICS_PORT:
        prometheus_client.start_http_server(METRICS_PORT)
        logger.info("metrics on :%d/metrics", METRICS_PORT)


# In-memory views kept current by kopf from its watches: plans and brandings by (namespace,
# name), and tenants by the plan and branding names they ask for.
@kopf.index(GROUP, VERSION, "featuresets")
def feature_sets(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[TenantKey, Any]:
    return {(namespace, name): dict(spec)}


@kopf.index(GROUP, VERSION, "brandings")
def brandings(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[TenantKey, Any]:
    return {(namespace, name): dict(spec)}


@kopf.index(GROUP, VERSION, "tenants")
def tenants_by_plan(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[str | None, TenantKey]:
    return {(spec.get("plan") or {}).get("featureSet"): (namespace, name)}


@kopf.index(GROUP, VERSION, "tenants")
def tenants_by_branding(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[str, TenantKey]:
    return {branding_name(spec.get("branding")): (namespace, name)}


def _first(index: kopf.Index, key: Any) -> Any:
    store = index.get(key)
    return next(iter(store), None) if store is not None else None


def _catalogue(indexes: Mapping[str, Any]) -> passes.Catalogue:
    plans, looks = indexes["feature_sets"], indexes["brandings"]
    return passes.Catalogue(feature_sets=lambda ns, name: _first(plans, (ns, name)),
                            brandings=lambda ns, name: _first(looks, (ns, name)))


async def _reconcile(key: TenantKey, memo: kopf.Memo, logger: logging.Logger | Any,
                     indexes: Mapping[str, Any]) -> None:
    lock = _locks.setdefault(key, asyncio.Lock())
    async with lock, memo.gate:
        started = time.monotonic()
        # Whatever triggered us may carry an outdated body: read the Tenant fresh.
        body = await memo.kube.get(ObjectRef(f"{GROUP}/{VERSION}", "Tenant", key[1], key[0]))
        if body is None or body["metadata"].get("deletionTimestamp"):
            return  # gone, or the finalizer's business
        try:
            outcome = await passes.reconcile(memo.kube, memo.config, _catalogue(indexes), body)
        except Exception:
            RECONCILES.labels("Tenant", "error").inc()
            raise
        finally:
            RECONCILE_SECONDS.labels("Tenant").observe(time.monotonic() - started)
        RECONCILES.labels("Tenant", "ok" if outcome.ready.ok else "not-ready").inc()
        WRITES.labels("Tenant").inc(outcome.writes)
        if outcome.transitioned:
            kind = "Normal" if outcome.ready.ok else "Warning"
            kopf.event(body, type=kind, reason=outcome.ready.reason, message=outcome.ready.message)
            logger.info("tenant %s/%s: Ready=%s %s", *key, outcome.ready.status, outcome.ready.reason)


async def _reconcile_many(keys: Iterable[TenantKey], memo: kopf.Memo, logger: logging.Logger,
                          indexes: Mapping[str, Any]) -> None:
    """Reconcile several tenants, a bounded number at a time; one failure does not stop the rest."""
    gate = asyncio.Semaphore(PROPAGATION_CONCURRENCY)

    async def one(key: TenantKey) -> None:
        async with gate:
            try:
                await _reconcile(key, memo, logger, indexes)
            except Exception as error:  # noqa: BLE001  (reported, retried by the resync)
                logger.error("tenant %s/%s: reconcile failed: %s", *key, error)

    await asyncio.gather(*(one(key) for key in sorted(set(keys))))


def _indexes(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {name: kwargs[name] for name in ("feature_sets", "brandings")}


@kopf.on.event(GROUP, VERSION, "tenants")
async def tenant_event(event: Mapping[str, Any], namespace: str, name: str, memo: kopf.Memo,
                       logger: logging.Logger, **kwargs: Any) -> None:
    if event.get("type") == "DELETED":
        _locks.pop((namespace, name), None)
        return
    await _reconcile((namespace, name), memo, logger, _indexes(kwargs))


@kopf.timer(GROUP, VERSION, "tenants", interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS, sharp=False)
async def tenant_resync(namespace: str, name: str, memo: kopf.Memo, logger: logging.Logger,
                        **kwargs: Any) -> None:
    await _reconcile((namespace, name), memo, logger, _indexes(kwargs))


@kopf.on.delete(GROUP, VERSION, "tenants")
async def tenant_deleted(body: kopf.Body, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    try:
        message = await passes.finalize(memo.kube, memo.config, body)
    except KubeError as error:
        raise kopf.TemporaryError(str(error), delay=10) from error
    logger.info("tenant %s/%s deleted: %s", body.meta.namespace, body.meta.name, message)


def _users(namespace: str, keys: Iterable[TenantKey], config: OperatorConfig) -> set[TenantKey]:
    """Of the tenants asking for a name, those that may see the object: a platform object is
    visible to every partner, a partner's object only to that partner's tenants."""
    return {key for key in keys if namespace == config.platform_namespace or key[0] == namespace}


@kopf.on.event(GROUP, VERSION, "featuresets")
async def feature_set_changed(event: Mapping[str, Any], namespace: str, name: str, memo: kopf.Memo,
                              logger: logging.Logger, **kwargs: Any) -> None:
    if event.get("type") is None:
        return  # initial listing: the Tenants' own listing reconciles everything anyway
    plans = {key[1]: spec for key, store in kwargs["feature_sets"].items() for spec in store}
    names = dependents(name, plans)
    by_plan = kwargs["tenants_by_plan"]
    keys = _users(namespace, (key for plan in names for key in by_plan.get(plan, ())), memo.config)
    PROPAGATIONS.labels("FeatureSet").inc()
    logger.info("FeatureSet %s/%s changed: re-rendering %d tenant(s) on %s", namespace, name, len(keys),
                ", ".join(sorted(names)))
    await _reconcile_many(keys, memo, logger, _indexes(kwargs))


@kopf.on.event(GROUP, VERSION, "brandings")
async def branding_changed(event: Mapping[str, Any], namespace: str, name: str, memo: kopf.Memo,
                           logger: logging.Logger, **kwargs: Any) -> None:
    if event.get("type") is None:
        return
    keys = _users(namespace, kwargs["tenants_by_branding"].get(name, ()), memo.config)
    PROPAGATIONS.labels("Branding").inc()
    logger.info("Branding %s/%s changed: re-rendering %d tenant(s)", namespace, name, len(keys))
    await _reconcile_many(keys, memo, logger, _indexes(kwargs))


def _written_by_someone_else(body: Mapping[str, Any]) -> bool:
    """Whether the latest change to a child came from another writer than us.

    Our own writes and the controllers' status updates (quota usage) need no reconcile.
    """
    entries = body.get("metadata", {}).get("managedFields") or []
    if not entries:
        return True
    latest = max(entries, key=lambda e: e.get("time") or "")
    if latest.get("manager") == naming.FIELD_MANAGER:
        return False
    touched = set((latest.get("fieldsV1") or {}).keys())
    return touched != {"f:status"}


async def _child_changed(event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo,
                         logger: logging.Logger, **kwargs: Any) -> None:
    if event.get("type") is None:
        return  # initial listing: the Tenants' own listing reconciles everything anyway
    if event.get("type") != "DELETED" and not _written_by_someone_else(body):
        return
    owner = naming.parse_owner_key(body.metadata.annotations.get(naming.OWNER_ANNOTATION, ""))
    if owner is not None:
        logger.info("%s %s of tenant %s/%s changed by someone else: reconciling", body.get("kind"),
                    body.metadata.name, *owner)
        await _reconcile(owner, memo, logger, _indexes(kwargs))


for _group, _version, _plural in CHILD_KINDS:
    kopf.on.event(_group, _version, _plural, labels=MANAGED)(_child_changed)
