"""The entry point's own logic, without a cluster.

Tested here:
- a kopf watcher failing (as on a restarting API server's 404) asks for kopf to be started again,
  once; other errors do not
- the lease timings come from the environment with the domain's defaults
"""

from __future__ import annotations

import logging

from tenantry.__main__ import _LostWatch, _timing
from tenantry.domain.leadership import Timing


def _kopf_logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"kopf.test.{id(handler)}")
    logger.addHandler(handler)
    logger.propagate = False
    return logger


class _Task:
    """Stands in for the asyncio task running kopf: only its cancel() is used."""

    cancelled = 0

    def cancel(self) -> None:
        self.cancelled += 1


def test_a_failed_watcher_stops_kopf_for_a_restart() -> None:
    handler, kopf_task = _LostWatch(), _Task()
    handler.arm(kopf_task)  # type: ignore[arg-type]
    kopf_log = _kopf_logger(handler)
    kopf_log.error("Handler 'tenant_event' failed with an exception and will ignore it: ReadError('')")
    assert kopf_task.cancelled == 0 and handler.fired == ""
    kopf_log.error("Watcher for tenants.v1alpha1.tenantry.dev@none has failed: 404 page not found")
    assert kopf_task.cancelled == 1
    assert handler.fired == "Watcher for tenants.v1alpha1.tenantry.dev@none has failed"
    kopf_log.error("Watcher for featuresets.v1alpha1.tenantry.dev@none has failed: 404 page not found")
    assert kopf_task.cancelled == 1 and handler.fired.startswith("Watcher for tenants")  # once per run


def test_warnings_do_not_count() -> None:
    handler, kopf_task = _LostWatch(), _Task()
    handler.arm(kopf_task)  # type: ignore[arg-type]
    _kopf_logger(handler).warning("Watcher for tenants has failed: x")
    assert kopf_task.cancelled == 0


def test_lease_timings_from_the_environment() -> None:
    assert _timing({}) == Timing()
    assert _timing({"TENANTRY_LEASE_SECONDS": "6", "TENANTRY_RENEW_DEADLINE_SECONDS": "4",
                    "TENANTRY_RETRY_SECONDS": "1"}) == Timing(6, 4, 1)
