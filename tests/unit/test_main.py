"""The entry point's own logic, without a cluster.

Tested here:
- a kopf watcher failing (as on a restarting API server's 404) asks for kopf to be started again,
  once; other errors do not
- kopf's per-handler success lines are hidden at the default level; everything else is kept
"""

from __future__ import annotations

import logging
import subprocess
import sys

from tenantry.__main__ import _LostWatch, _Routine


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


def _record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_routine_kopf_lines_are_hidden_and_the_rest_kept() -> None:
    routine = _Routine()
    assert not routine.filter(_record("kopf.objects", logging.INFO, "Handler 'tenant_event' succeeded."))
    assert not routine.filter(_record("kopf.objects", logging.INFO, "Timer 'tenant_resync' succeeded."))
    assert not routine.filter(_record("kopf.objects", logging.INFO, "Creation is processed: 1 succeeded; 0 failed."))
    assert routine.filter(_record("kopf.objects", logging.INFO, "FeatureSet p/x changed: re-rendering 3 tenant(s)"))
    assert routine.filter(_record("kopf.objects", logging.ERROR, "Handler 'tenant_deleted' succeeded."))
    assert routine.filter(_record("tenantry", logging.INFO, "a tenant named 'x' succeeded."))


def test_the_operator_does_not_import_what_it_never_runs_at_start() -> None:
    # Resident memory: dnspython's DNS-over-HTTPS client stack, and the welcome e-mail's template
    # and calendar libraries (imported at the first welcome) stay out of a starting operator.
    script = ("import sys, tenantry.__main__\n"
              "print(sorted(m for m in ('httpcore2', 'h2', 'jinja2', 'icalendar') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
