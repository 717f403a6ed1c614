"""Operator health metrics: reconcile passes, their duration, errors and writes."""

from __future__ import annotations

import platform

from prometheus_client import Counter, Gauge, Histogram

from tenantry import __version__

RECONCILES = Counter("tenantry_reconcile_total", "Reconcile passes by resource kind and result.",
                     ["kind", "result"])
RECONCILE_SECONDS = Histogram("tenantry_reconcile_duration_seconds", "Duration of one reconcile pass.",
                              ["kind"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
WRITES = Counter("tenantry_write_requests_total", "Write requests sent to the Kubernetes API.", ["kind"])
PROPAGATIONS = Counter("tenantry_propagations_total",
                       "Changes of a FeatureSet or Branding that were propagated to the tenants using it.",
                       ["kind"])
LAST_RESYNC = Gauge("tenantry_last_resync_timestamp_seconds",
                    "When a periodic resync pass last completed without error (Unix time).")
READS = Counter("tenantry_read_requests_total",
                "GET requests sent to the Kubernetes API (reads of watched kinds come from memory).", ["kind"])
CACHED_OBJECTS = Gauge("tenantry_cached_objects", "Objects held in the informers' memory, by kind.", ["kind"])
ADMISSION_SECONDS = Histogram("tenantry_admission_duration_seconds",
                              "Time to judge one admission review, by webhook path.", ["webhook"],
                              buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
WELCOME_EMAILS = Counter("tenantry_welcome_emails_total",
                         "Welcome e-mail attempts by outcome: sent, partly (some recipients refused), failed, limited.",
                         ["outcome"])
BUILD_INFO = Gauge("tenantry_build_info", "Always 1, labelled with the operator's version; absent when no active "
                   "operator is scraped (alert TenantryOperatorAbsent).", ["version", "python"])
BUILD_INFO.labels(__version__, platform.python_version()).set(1)
