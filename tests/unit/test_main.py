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


def test_a_failed_watcher_stops_kopf_for_a_restart() -> None:
    handler = _LostWatch()
    kopf_log = _kopf_logger(handler)
    kopf_log.error("Handler 'tenant_event' failed with an exception and will ignore it: ReadError('')")
    assert not handler.stop.is_set() and handler.fired == ""
    kopf_log.error("Watcher for tenants.v1alpha1.tenantry.dev@none has failed: 404 page not found")
    assert handler.stop.is_set() and handler.fired == "Watcher for tenants.v1alpha1.tenantry.dev@none has failed"
    kopf_log.error("Watcher for featuresets.v1alpha1.tenantry.dev@none has failed: 404 page not found")
    assert handler.fired.startswith("Watcher for tenants")  # the first one is reported


def test_warnings_do_not_count() -> None:
    handler = _LostWatch()
    _kopf_logger(handler).warning("Watcher for tenants has failed: x")
    assert not handler.stop.is_set()


def test_lease_timings_from_the_environment() -> None:
    assert _timing({}) == Timing()
    assert _timing({"TENANTRY_LEASE_SECONDS": "6", "TENANTRY_RENEW_DEADLINE_SECONDS": "4",
                    "TENANTRY_RETRY_SECONDS": "1"}) == Timing(6, 4, 1)
