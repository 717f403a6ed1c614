"""kopf registrations for Tenants and the objects they own.

One reconcile path serves every trigger: watch events (create, update, and the initial listing
at start, i.e. resume), a periodic resync timer, and changes to a managed child object made by
someone else (drift). A per-tenant lock keeps two triggers from reconciling one tenant at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import kopf
import prometheus_client

from tenantry.adapters.kube import Kube, KubeError
from tenantry.api.common import GROUP, VERSION
from tenantry.domain import naming
from tenantry.domain.children import ObjectRef
from tenantry.domain.config import OperatorConfig
from tenantry.handlers import reconcile as passes
from tenantry.metrics.operator import RECONCILE_SECONDS, RECONCILES, WRITES

RESYNC_SECONDS = float(os.environ.get("TENANTRY_RESYNC_SECONDS", "300"))
METRICS_PORT = int(os.environ.get("TENANTRY_METRICS_PORT", "8080"))
CHILD_KINDS = (("", "v1", "namespaces"), ("", "v1", "resourcequotas"), ("", "v1", "limitranges"),
               ("", "v1", "configmaps"), ("networking.k8s.io", "v1", "networkpolicies"),
               ("rbac.authorization.k8s.io", "v1", "roles"),
               ("rbac.authorization.k8s.io", "v1", "rolebindings"))
MANAGED = {naming.MANAGED_BY: naming.OPERATOR}

_locks: dict[str, asyncio.Lock] = {}


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger,
                  **_: Any) -> None:
    # Our own names for kopf's marks, so users see tenantry.dev/* on their objects.
    settings.persistence.finalizer = "tenantry.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="tenantry.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="tenantry.dev", key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.batching.worker_limit = int(os.environ.get("TENANTRY_WORKERS", "64"))
    memo.config = OperatorConfig.from_env(os.environ)
    memo.kube = Kube.from_environment()
    if METRICS_PORT:
        prometheus_client.start_http_server(METRICS_PORT)
        logger.info("metrics on :%d/metrics", METRICS_PORT)


async def _reconcile(body: Mapping[str, Any], memo: kopf.Memo, logger: logging.Logger | Any) -> None:
    meta = body["metadata"]
    if meta.get("deletionTimestamp"):
        return  # the finalizer handles it
    key = f"{meta['namespace']}/{meta['name']}"
    lock = _locks.setdefault(key, asyncio.Lock())
    async with lock:
        started = time.monotonic()
        # The body of a trigger may be outdated by the time the lock is ours: read it fresh.
        fresh = await memo.kube.get(passes.tenant_ref(body))
        if fresh is None or fresh["metadata"].get("deletionTimestamp"):
            return
        try:
            outcome = await passes.reconcile(memo.kube, memo.config, fresh)
        except Exception:
            RECONCILES.labels("Tenant", "error").inc()
            raise
        finally:
            RECONCILE_SECONDS.labels("Tenant").observe(time.monotonic() - started)
        RECONCILES.labels("Tenant", "ok" if outcome.ready.ok else "not-ready").inc()
        WRITES.labels("Tenant").inc(outcome.writes)
        if outcome.transitioned:
            kind = "Normal" if outcome.ready.ok else "Warning"
            kopf.event(fresh, type=kind, reason=outcome.ready.reason, message=outcome.ready.message)
            logger.info("tenant %s: Ready=%s %s", key, outcome.ready.status, outcome.ready.reason)


@kopf.on.event(GROUP, VERSION, "tenants")
async def tenant_event(event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo,
                       logger: logging.Logger, **_: Any) -> None:
    if event.get("type") == "DELETED":
        _locks.pop(f"{body.meta.namespace}/{body.meta.name}", None)
        return
    await _reconcile(body, memo, logger)


@kopf.timer(GROUP, VERSION, "tenants", interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS,
            sharp=False)
async def tenant_resync(body: kopf.Body, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    await _reconcile(body, memo, logger)


@kopf.on.delete(GROUP, VERSION, "tenants")
async def tenant_deleted(body: kopf.Body, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    try:
        message = await passes.finalize(memo.kube, memo.config, body)
    except KubeError as error:
        raise kopf.TemporaryError(str(error), delay=10) from error
    logger.info("tenant %s/%s deleted: %s", body.meta.namespace, body.meta.name, message)


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
                         logger: logging.Logger, **_: Any) -> None:
    if event.get("type") is None:
        return  # initial listing: the Tenants' own listing reconciles everything anyway
    if event.get("type") == "MODIFIED" and not _written_by_someone_else(body):
        return
    owner = naming.parse_owner_key(body.metadata.annotations.get(naming.OWNER_ANNOTATION, ""))
    if owner is None:
        return
    partner_namespace, slug = owner
    tenant = await memo.kube.get(ObjectRef(f"{GROUP}/{VERSION}", "Tenant", slug, partner_namespace))
    if tenant is not None:
        logger.info("%s %s of tenant %s changed by someone else: reconciling",
                    body.get("kind"), body.metadata.name, slug)
        await _reconcile(tenant, memo, logger)


for _group, _version, _plural in CHILD_KINDS:
    kopf.on.event(_group, _version, _plural, labels=MANAGED)(_child_changed)
