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
CACHED_BYTES = Gauge("tenantry_cached_bytes", "Bytes of the objects held in the informers' memory (their "
                     "deflated JSON, shared parts and digests aside), by kind.", ["kind"])
INFORMER_LISTS = Counter("tenantry_informer_lists_total",
                         "LISTs an informer made (one at a start, one per broken watch; read in pages), by kind.",
                         ["kind"])
ADMISSION_SECONDS = Histogram("tenantry_admission_duration_seconds",
                              "Time to judge one admission review, by webhook path.", ["webhook"],
                              buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
WELCOME_EMAILS = Counter("tenantry_welcome_emails_total",
                         "Welcome e-mail attempts by outcome: sent, partly (some recipients refused), failed, limited.",
                         ["outcome"])
BUILD_INFO = Gauge("tenantry_build_info", "Always 1, labelled with the operator's version; absent when no active "
                   "operator is scraped (alert TenantryOperatorAbsent).", ["version", "python"])
BUILD_INFO.labels(__version__, platform.python_version()).set(1)

# Which work this replica does: with one shard, whether it holds the leader Lease; with several,
# how many shards it holds. Set by functions, so a scrape reads the elector's state at that moment.
LEADER = Gauge("tenantry_leader", "1 while this replica holds the leader Lease (shards: 1), else 0.")
SHARDS_HELD = Gauge("tenantry_shards_held", "Shards whose Lease this replica holds (shards > 1).")

# The work queues (tenants, welcome e-mails), named like controller-runtime's workqueue metrics.
QUEUE_DEPTH = Gauge("tenantry_workqueue_depth", "Keys waiting in the queue (not yet being worked on).", ["queue"])
QUEUE_ADDS = Counter("tenantry_workqueue_adds_total", "Keys added to the queue (a key already waiting counts "
                     "once).", ["queue"])
QUEUE_RETRIES = Counter("tenantry_workqueue_retries_total", "Keys queued again after their work failed.", ["queue"])
_QUEUE_BUCKETS = (0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900)
QUEUE_WAIT_SECONDS = Histogram("tenantry_workqueue_queue_duration_seconds",
                               "Time a key waits in the queue before work on it starts.", ["queue"],
                               buckets=_QUEUE_BUCKETS)
QUEUE_WORK_SECONDS = Histogram("tenantry_workqueue_work_duration_seconds", "Time the work on one key takes.",
                               ["queue"], buckets=_QUEUE_BUCKETS)

ADMISSION_REVIEWS = Counter("tenantry_admission_reviews_total",
                            "Admission reviews answered, by webhook path and result: allowed, denied, error "
                            "(refused because judging failed) or unavailable (503 while starting).",
                            ["webhook", "result"])
DNS_SYNCS = Counter("tenantry_dns_syncs_total",
                    "Syncs of a tenant's platform DNS name through the provider (one per reconcile pass), by "
                    "result: published, withdrawn, conflict (records tenantry does not own), error, not-managed.",
                    ["result"])
DOMAIN_CHECKS = Counter("tenantry_domain_checks_total",
                        "DNS checks of custom domains (CNAME and TXT challenge), by result: verified, pending, "
                        "error.", ["result"])
