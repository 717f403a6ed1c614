"""`make bench`: how fast and how cheap tenantry is, on a real local control plane.

Numbers, not pass/fail: every phase is printed next to its physical floor, measured in the same
run on the same API server (the same objects written directly at full concurrency), and write
requests are read from the API server's own /metrics. Results go to bench/results.json and
bench/results.md.

    make bench                                   # 1,000 tenants, then the same operator grown to 10,000
    BENCH_TENANTS=200 BENCH_LARGE=0 make bench   # quick: 200 tenants, no 10,000 phase

Writes bench/results.json, bench/results.md and bench/results.png (tenantry next to the floor).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import portal as portal_bench  # bench/portal.py, beside this file (sys.path[0] for `python bench/run.py`)
from lightkube import AsyncClient
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import ConfigMap, Namespace
from lightkube.types import PatchType
from prometheus_client.parser import text_string_to_metric_families

from tenantry.adapters.http import LIST_PAGE, collection_path
from tenantry.api.tenant import TenantSpec
from tenantry.devtools import cluster as local_cluster
from tenantry.domain import tenantpass
from tenantry.domain.children import TenantInput, desired_state
from tenantry.domain.config import OperatorConfig

REPO = Path(__file__).resolve().parents[1]
N = int(os.environ.get("BENCH_TENANTS", "1000"))
LARGE = int(os.environ.get("BENCH_LARGE", "10000"))  # 0: skip growing to this many tenants
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
PLAN_ROUNDS = int(os.environ.get("BENCH_PLAN_ROUNDS", "3"))  # plan changes, each beside its floor
TRACEMALLOC = os.environ.get("BENCH_TRACEMALLOC") == "1"  # memory profile (bench/memory.txt); slow
PARTNER_NS, PLATFORM_NS = "partner-bench", "tenantry-system"
Tenant = create_namespaced_resource("tenantry.dev", "v1alpha1", "Tenant", "tenants")
FeatureSet = create_namespaced_resource("tenantry.dev", "v1alpha1", "FeatureSet", "featuresets")
WRITES = {"POST", "PUT", "PATCH", "APPLY", "DELETE"}  # APPLY: server-side apply
READS = {"GET", "LIST"}


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# The platform namespace with the bench's plan and branding, and the partner namespace.
PLATFORM_YAML = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {PLATFORM_NS}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: {PARTNER_NS}, labels: {{tenantry.dev/partner: bench}}}}
---
apiVersion: tenantry.dev/v1alpha1
kind: Branding
metadata: {{name: default, namespace: {PLATFORM_NS}}}
spec: {{colours: {{primary: "#1F4E79"}}}}
---
apiVersion: tenantry.dev/v1alpha1
kind: FeatureSet
metadata: {{name: bench, namespace: {PLATFORM_NS}}}
spec: {{features: {{chat: {{}}, tables: {{limits: {{tables: 5}}}}}}}}
"""


def tenant_doc(slug: str) -> dict[str, Any]:
    return {"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": slug, "namespace": PARTNER_NS},
            "spec": {"company": f"Firma {slug} GmbH", "contact": {"name": "Max", "email": "max@example.de"},
                     "plan": {"featureSet": "bench", "seats": 20}, "admins": ["admin@example.de"]}}


async def gather_limited(coroutines: list, limit: int = CONCURRENCY) -> list:
    gate = asyncio.Semaphore(limit)

    async def run(coroutine):
        async with gate:
            return await coroutine
    return await asyncio.gather(*(run(c) for c in coroutines))


# What the operator writes; the rest (quota usage, service-account tokens) is the controllers'.
OPERATOR_RESOURCES = {"tenants", "namespaces", "resourcequotas", "limitranges", "networkpolicies", "roles",
                      "rolebindings", "configmaps", "events"}


def _request_counts(local: local_cluster.Cluster, key_of: Any) -> dict[str, float]:
    """apiserver_request_total summed by key_of(labels) (None: not counted)."""
    _, body = local_cluster._get(local, "/metrics", timeout=30)
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            key = key_of(sample.labels) if sample.name == "apiserver_request_total" else None
            if key is not None:
                counts[key] = counts.get(key, 0) + sample.value
    return counts


def apiserver_requests(local: local_cluster.Cluster) -> dict[str, float]:
    """Requests the API server counted, by "VERB resource/subresource"."""
    return _request_counts(local, lambda labels: f"{labels['verb']} {labels.get('resource')}/"
                                                 f"{labels.get('subresource', '')}")


def scoped_reads(local: local_cluster.Cluster) -> dict[str, float]:
    """GET and LIST requests on the operator's resources, by "VERB resource scope"."""
    watched = OPERATOR_RESOURCES | {"featuresets", "brandings"}
    return _request_counts(local, lambda labels: f"{labels['verb']} {labels['resource']} {labels.get('scope')}"
                           if labels["verb"] in READS and not labels.get("subresource")
                           and labels.get("resource") in watched else None)


def failed_lists(local: local_cluster.Cluster) -> dict[str, float]:
    """LIST requests on the operator's resources that the API server answered with an error, by any
    client, by "resource code" (a 410: the list's snapshot was compacted away while it was read in pages, and
    the lister starts again from the first page)."""
    watched = OPERATOR_RESOURCES | {"featuresets", "brandings"}
    return _request_counts(local, lambda labels: f"{labels['resource']} {labels.get('code')}"
                           if labels["verb"] == "LIST" and not str(labels.get("code", "")).startswith("2")
                           and labels.get("resource") in watched else None)


def ended_watches(local: local_cluster.Cluster) -> dict[str, float]:
    """WATCH requests on the operator's resources that ended, by any client, by "resource code" (a
    410: the watch asked for a resourceVersion etcd compacted away, and kopf lists again)."""
    watched = OPERATOR_RESOURCES | {"featuresets", "brandings"}
    return _request_counts(local, lambda labels: f"{labels['resource']} {labels.get('code')}"
                           if labels["verb"] == "WATCH" and labels.get("resource") in watched else None)


def requests_between(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    return {k: int(v - before.get(k, 0)) for k, v in sorted(after.items()) if v != before.get(k, 0)}


def operator_requests(diff: dict[str, int], verbs: set[str]) -> int:
    """Requests on what the operator manages, leaving out the quota controller's status updates
    and the benchmark's own Tenant creations."""
    return sum(n for key, n in diff.items()
               if key.split()[0] in verbs and key.split()[1].split("/")[0] in OPERATOR_RESOURCES
               and key.split()[1] != "resourcequotas/status" and key != "POST tenants/")


def of_verbs(diff: dict[str, int], verbs: set[str]) -> dict[str, int]:
    """The requests of every client with these verbs (1.20 counts a GET of a custom resource as a LIST)."""
    return {key: n for key, n in diff.items() if key.split()[0] in verbs}


OPERATOR_LOG = REPO / ".local" / "bench-operator.log"


class Operator:
    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig, self.port, self.proc = kubeconfig, 18099, None
        self.env: dict[str, str] = {}
        # A run that fails half-way must not leave it running: it would hold the webhook's port.
        atexit.register(self.stop)

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "TENANTRY_METRICS_PORT": str(self.port),
               "TENANTRY_RESYNC_SECONDS": "3600", **self.env}
        command = [sys.executable, "-m", "tenantry"]
        if TRACEMALLOC:
            command = [sys.executable, str(REPO / "bench" / "traced.py")]
        self.proc = subprocess.Popen(command, env=env,
                                     stdout=open(OPERATOR_LOG, "ab"),
                                     stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)

    def rss_mib(self) -> tuple[float, float]:
        """(current, peak) resident memory of the operator process."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.proc.pid)

    def metric(self, name: str) -> float:
        return sum(self.metric_by(name, "").values())

    def metric_by(self, name: str, label: str) -> dict[str, float]:
        """A metric of the operator summed by one label's values."""
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5).read().decode()
        except OSError:
            return {}
        found: dict[str, float] = {}
        for sample in (s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name):
            found[sample.labels.get(label, "")] = found.get(sample.labels.get(label, ""), 0.0) + sample.value
        return found


async def quiet(operator: Operator, seconds: float = 3.0, timeout: float = 900) -> None:
    """Wait until the operator has made no reconcile pass for a while (its queues are empty)."""
    last, since, began = operator.metric("tenantry_reconcile_total"), time.monotonic(), time.monotonic()
    while time.monotonic() - since < seconds:
        if time.monotonic() - began > timeout:
            raise SystemExit(f"the operator kept reconciling for {timeout:.0f} s with nothing changing")
        await asyncio.sleep(2)  # a scrape of 10,000 tenants' metrics is itself work for the operator
        now = operator.metric("tenantry_reconcile_total")
        if now != last:
            last, since = now, time.monotonic()


def _is_ready(tenant: Any) -> bool:
    conditions = (tenant.get("status") or {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


async def memory_profile(operator: Operator) -> None:
    """What the operator holds after onboarding, by line (bench/traced.py), into bench/memory.txt."""
    import signal

    out = Path(os.environ["BENCH_TRACEMALLOC_OUT"])
    out.unlink(missing_ok=True)
    operator.proc.send_signal(signal.SIGUSR1)
    await wait_until(lambda: asyncio.sleep(0, out.exists() and out.stat().st_size > 0), "the memory profile", 300)
    log(f"memory profile in {out}")


def _gone(error: Exception) -> bool:
    """A watch's resourceVersion is too old (HTTP 410), in an ERROR event or as the answer's status."""
    if isinstance(error, ApiError):
        return error.status.code == 410
    return getattr(getattr(error, "response", None), "status_code", None) == 410


class Tally:
    """The objects of a kind that pass a test, kept current by one watch.

    Polling lists of thousands of tenants would itself load the API server (and the CPU) that the
    operator is measured on; a watch costs one request. It starts from a LIST's resourceVersion,
    as an informer does: a watch without one begins with every object as an ADDED event, each
    with its own (older) version, and when the API server closes it part-way (it
    closes watchers too slow to keep up: "Forcing watcher close due to unresponsiveness") the
    client resumes from the last object's version, and the objects not yet sent whose versions
    are older are never sent. A plan change waited 30 minutes on that with every flag updated.
    """

    def __init__(self, client: AsyncClient, resource: Any, test: Any, **selectors: Any) -> None:
        self.passing: set[str] = set()
        self.synced = asyncio.Event()  # the first LIST is counted: a phase's clock starts after it
        self._task = asyncio.create_task(self._follow(client, resource, test, selectors))

    @staticmethod
    def _see(passing: set[str], kind: str, obj: Any, test: Any) -> None:
        key = f"{obj.metadata.namespace}/{obj.metadata.name}"
        if kind != "DELETED" and test(obj):
            passing.add(key)
        else:
            passing.discard(key)

    async def _follow(self, client: AsyncClient, resource: Any, test: Any, selectors: dict[str, Any]) -> None:
        while True:
            try:
                listing, listed = client.list(resource, **selectors), set()
                async for obj in listing:
                    self._see(listed, "ADDED", obj, test)
                self.passing = listed
                self.synced.set()
                # Events after a LIST come in resourceVersion order, so resuming from the last one
                # (as lightkube does when the server ends the stream) misses nothing.
                async for kind, obj in client.watch(resource, resource_version=listing.resourceVersion, **selectors):
                    self._see(self.passing, kind, obj, test)
            except Exception as error:  # noqa: BLE001  (a 410 comes as ApiError, or as lightkube's HTTP error)
                if not _gone(error):
                    raise
                # The version is gone from the API server's window: LIST again.

    async def reaches(self, count: int) -> bool:
        if self._task.done():
            self._task.result()  # the watch failed: say why
        return len(self.passing) >= count

    def close(self) -> None:
        self._task.cancel()


# Writes that are the API server's own upkeep, not work left over: on this local control plane the
# API server tries every 10 s to write the `kubernetes` Endpoints (refused for its loopback address);
# Leases, for a control plane whose components elect leaders (this one's do not).
UPKEEP = ("leases/", "endpoints/")


def background_writes(local: local_cluster.Cluster) -> float:
    """Writes by every client so far, the control plane's upkeep (UPKEEP) left out."""
    return sum(_request_counts(local, lambda labels: 1 if labels["verb"] in WRITES and not any(
        f"{labels.get('resource')}/".startswith(u) for u in UPKEEP) else None).values())


async def settle(local: local_cluster.Cluster, what: str, checks: int = 3, timeout: float = 600) -> dict[str, Any]:
    """Wait until nobody writes (checks polls a second apart): a phase is measured on its own, not
    beside the controllers' backlog of the one before (a default ServiceAccount and its token per
    namespace, quota usage). Returns how long that took and how many writes it saw."""
    started, first = time.monotonic(), background_writes(local)
    last, unchanged = first, 0
    while unchanged < checks:
        if time.monotonic() - started > timeout:
            # A writer that never stops (a leader lock renewed on a ConfigMap, say) must not end
            # a run of an hour: measure anyway, and say so.
            log(f"the control plane kept writing for {timeout:.0f} s before {what}; measuring anyway")
            return {"writes": int(last - first), "s": round(time.monotonic() - started, 1), "timed_out": True}
        await asyncio.sleep(1)
        now = background_writes(local)
        unchanged, last = (unchanged + 1, last) if now == last else (0, now)
    waited = time.monotonic() - started - checks
    log(f"settled before {what}: {int(last - first)} writes by the controllers in {waited:.1f} s")
    return {"writes": int(last - first), "s": round(waited, 1)}


async def wait_until(check, what: str, timeout: float = 1800, poll: float = 0.5) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(poll)
    raise SystemExit(f"timed out waiting for {what}")


class Direct:
    """The cheapest direct way to write: one aiohttp session (token, keep-alive), JSON bodies, no
    model layer. The floors are measured with it, and the Tenant creates, timing each request."""

    def __init__(self, local: local_cluster.Cluster) -> None:
        import ssl

        import aiohttp

        context = ssl.create_default_context(cafile=str(local.pki / "ca.crt"))
        self.server = local.server
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=CONCURRENCY),
            headers={"Authorization": f"Bearer {local.admin_token}"})

    @staticmethod
    def path(obj: dict[str, Any]) -> str:
        """The collection URL of an object's kind (where it is POSTed)."""
        return collection_path(obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace"))

    async def request(self, method: str, path: str, body: Any, content_type: str = "application/json",
                      expect: int = 300) -> tuple[int, str]:
        async with self.session.request(method, self.server + path, data=json.dumps(body),
                                        headers={"Content-Type": content_type}) as response:
            text = await response.text()
            if response.status >= expect:
                raise SystemExit(f"{method} {path}: {response.status} {text[:300]}")
            return response.status, text

    async def create(self, obj: dict[str, Any], latencies: list[float] | None = None) -> None:
        started = time.perf_counter()
        await self.request("POST", self.path(obj), obj)
        if latencies is not None:
            latencies.append(time.perf_counter() - started)

    async def merge_patch(self, obj: dict[str, Any], patch: dict[str, Any]) -> None:
        await self.request("PATCH", f"{self.path(obj)}/{obj['metadata']['name']}", patch,
                           "application/merge-patch+json")

    async def close(self) -> None:
        await self.session.close()


def floor_manifests(slugs: list[str], prefix: str) -> list[list[dict[str, Any]]]:
    """Per tenant: its namespace, then the objects the operator creates in it."""
    config = OperatorConfig(namespace_prefix=prefix)
    # The bench's FeatureSet and Branding (see main), resolved as the operator resolves them.
    plans = {(PLATFORM_NS, "bench"): {"features": {"chat": {}, "tables": {"limits": {"tables": 5}}}}}
    looks = {(PLATFORM_NS, "default"): {"colours": {"primary": "#1F4E79"}}}
    manifests = []
    for slug in slugs:
        spec = TenantSpec.model_validate(tenant_doc(slug)["spec"])
        resolved = tenantpass.resolve(spec, PARTNER_NS, lambda ns, n: plans.get((ns, n)),
                                      lambda ns, n: looks.get((ns, n)), config)
        inp = TenantInput(slug, PARTNER_NS, "bench", spec, resolved.plan, resolved.branding, resolved.features)
        objects = desired_state(inp, config).apply
        for obj in objects:
            # Not the operator's label: its informers would list these too (a cluster's other
            # objects do not carry it), which no real cluster would make it do.
            obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "bench-floor"
        manifests.append(objects)
    return manifests


async def floor_onboarding_direct(direct: Direct, slugs: list[str]) -> float:
    """The floor: those objects POSTed, namespaces first, at full concurrency."""
    manifests = floor_manifests(slugs, "floor-")
    started = time.monotonic()
    await gather_limited([direct.create(m[0]) for m in manifests])
    await gather_limited([direct.create(obj) for m in manifests for obj in m[1:]])
    return time.monotonic() - started


async def floor_onboarding_apply(client: AsyncClient, slugs: list[str]) -> float:
    """The same objects by server-side apply through lightkube (the earlier floor, kept for comparison)."""
    manifests = floor_manifests(slugs, "floorapply-")
    started = time.monotonic()
    await gather_limited([client.create(Namespace.from_dict(m[0])) for m in manifests])
    await gather_limited([client.patch(type_of(obj), obj["metadata"]["name"], obj,
                                       namespace=obj["metadata"].get("namespace"), patch_type=PatchType.APPLY,
                                       field_manager="floor", force=True)
                          for m in manifests for obj in m[1:]])
    return time.monotonic() - started


WEBHOOK_PORT = 18443
WEBHOOK_NAME = "tenantry-bench"


def start_with_webhook(operator: Operator, local: local_cluster.Cluster, kubectl: list[str],
                       failure_policy: str | None = None) -> str:
    """The operator serving the admission webhook over TLS, and the chart's webhook configuration
    pointed at it (failurePolicy as the chart ships it, unless given). Returns the Tenant hook's name."""
    import tempfile

    import yaml

    from tenantry.devtools import localwebhook

    folder = Path(tempfile.mkdtemp(prefix="tenantry-bench-tls-"))
    ca = localwebhook.serving_certificate(folder)
    operator.env = {"TENANTRY_WEBHOOK_PORT": str(WEBHOOK_PORT), "TENANTRY_WEBHOOK_ADDRESS": "127.0.0.1",
                    "TENANTRY_WEBHOOK_CERT_DIR": str(folder)}
    operator.start()
    config = localwebhook.configuration(f"https://127.0.0.1:{WEBHOOK_PORT}", ca, PLATFORM_NS, WEBHOOK_NAME,
                                        failure_policy)
    subprocess.run([*kubectl, "apply", "-f", "-"], input=yaml.safe_dump(config), text=True, check=True,
                   capture_output=True)
    # The validating webhook judges a Tenant's create (the mutating one only adds the finalizer).
    validating = next(c for c in config["items"] if c["kind"] == "ValidatingWebhookConfiguration")
    return next(h["name"] for h in validating["webhooks"] if "tenants" in h["rules"][0]["resources"])


async def webhook_answers(direct: Direct) -> bool:
    """A dry-run create the webhook must refuse (an unknown feature) is refused in its words."""
    probe = tenant_doc("probe-webhook")
    probe["spec"]["features"] = {"no-such-feature": {"enabled": True}}
    status, text = await direct.request("POST", direct.path(probe) + "?dryRun=All", probe, expect=600)
    return status >= 400 and "admission webhook" in text


async def tenant_create_floor(direct: Direct, kubectl: list[str], slugs: list[str]) -> dict[str, Any]:
    """Tenant creates per second with no webhook and no operator: what the API server alone takes.

    Into a namespace of their own, removed again (with its Tenants) before the operator starts.
    """
    namespace = "bench-floor-tenants"
    subprocess.run([*kubectl, "create", "namespace", namespace], check=True, capture_output=True)
    docs = []
    for slug in slugs:
        doc = tenant_doc(slug)
        doc["metadata"]["namespace"] = namespace
        docs.append(doc)
    latencies: list[float] = []
    started = time.monotonic()
    await gather_limited([direct.create(d, latencies) for d in docs])
    elapsed = time.monotonic() - started
    subprocess.run([*kubectl, "delete", "namespace", namespace, "--wait=true", "--timeout=600s"], check=True,
                   capture_output=True)
    latencies.sort()
    return {"tenant_create_floor_per_s": round(len(slugs) / elapsed, 1),
            "tenant_create_floor_p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 1)}


def _webhook_histogram(local: local_cluster.Cluster, hook: str) -> dict[float, float]:
    """The API server's own timing of calls to this validating webhook on CREATE: cumulative count per
    bucket bound (the mutating webhook of the same name is type "admit")."""
    _, body = local_cluster._get(local, "/metrics", timeout=30)
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = sample.labels
            if (sample.name == "apiserver_admission_webhook_admission_duration_seconds_bucket"
                    and labels.get("name") == hook and labels.get("operation") == "CREATE"
                    and labels.get("type") == "validating"):
                bound = float(labels["le"])
                buckets[bound] = buckets.get(bound, 0) + sample.value
    return buckets


def _p99_bound(histogram: dict[float, float]) -> float | None:
    """The smallest bucket bound holding 99 % of a cumulative histogram's samples."""
    total = histogram.get(float("inf"), 0)
    return min(b for b, count in histogram.items() if count >= 0.99 * total) if total else None


def _operator_admission_histogram(operator: Operator) -> dict[float, float]:
    """The operator's own timing of Tenant reviews (tenantry_admission_duration_seconds)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{operator.port}/metrics", timeout=10).read().decode()
    return {float(s.labels["le"]): s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == "tenantry_admission_duration_seconds_bucket" and s.labels.get("webhook") == "validate-tenant"}


def admission_results(elapsed: float, latencies: list[float], local: local_cluster.Cluster,
                      hook: str, operator: Operator) -> dict[str, Any]:
    """Creates per second and client-side latency of the Tenant POSTs, and the webhook's share of it
    as the API server timed it (its histogram's buckets bound the percentiles)."""
    latencies = sorted(latencies)
    out: dict[str, Any] = {"webhook_creates_per_s": round(len(latencies) / elapsed, 1),
                           "webhook_create_p50_ms": round(1000 * statistics.median(latencies), 1),
                           "webhook_create_p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 1)}
    histogram = _webhook_histogram(local, hook)
    total = histogram.get(float("inf"), 0)
    if total:
        p99 = _p99_bound(histogram)
        out["webhook_calls"] = int(total)
        out["webhook_p99_bucket_ms"] = p99 * 1000 if p99 != float("inf") else "over the largest bucket"
        out["webhook_within_25ms_share"] = round(histogram.get(0.025, 0) / total, 3)
    # The same reviews as the operator timed them: its share of the wait (the rest is the API
    # server's queue and the TLS connection it opens for a call).
    judged = _p99_bound(_operator_admission_histogram(operator))
    if judged is not None:
        out["webhook_judge_p99_bucket_ms"] = judged * 1000
    return out


async def scrape_benchmark(tenants: int = 10_000) -> dict[str, float]:
    """/metrics with this many tenants, over real HTTP (gzip and plain), and what a changed tenant costs."""
    import dataclasses
    import gzip
    import itertools

    import aiohttp

    from tenantry.domain.features import EffectiveFeature
    from tenantry.domain.usage import tenant_facts
    from tenantry.metrics.server import serve_metrics
    from tenantry.metrics.tenants import TenantExposition

    features = {f: EffectiveFeature(True, {"limit": 10})
                for f in ("chat", "files", "tables", "meetings", "scheduler")}
    spec = {"company": "Firma GmbH", "plan": {"featureSet": "business", "seats": 100,
                                              "price": {"monthly": 990, "currency": "EUR"}}}
    usage = {"activeUsers": 60, "requests": {"chat": 5000, "files": 30, "tables": 12, "meetings": 3, "scheduler": 1}}
    quota = {"status": {"used": {"requests.cpu": "1", "pods": "4"}, "hard": {"requests.cpu": "4", "pods": "20"}}}
    facts = {(f"partner-{i % 50}", f"t{i:05d}"): tenant_facts(f"t{i:05d}", f"partner{i % 50}", spec, usage,
                                                               features, True, quota, {"Ready": "True"})
             for i in range(tenants)}
    exposition = TenantExposition()
    started = time.perf_counter()
    for key, value in facts.items():
        exposition.put(key, value)
    first_put = (time.perf_counter() - started) / tenants
    keys, reports = list(facts), itertools.count(1)

    def change(i: int) -> None:
        """A new usage report of one tenant: its active users change (its partner's totals are stale)."""
        key = keys[i % tenants]
        exposition.put(key, dataclasses.replace(facts[key], active_users=next(reports)))

    started = time.perf_counter()
    for i in range(1000):
        change(i)
    changed_put = (time.perf_counter() - started) / 1000
    rejoin = []  # the work left on the event loop at a scrape after one change
    for i in range(5):
        change(i)
        started = time.perf_counter()
        exposition.chunks()
        rejoin.append(time.perf_counter() - started)

    runner = await serve_metrics(exposition, 0, "127.0.0.1")  # 0: any free port
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            async def scrape(encoding: str, changed: int) -> tuple[float, bytes, bytes]:
                for i in range(changed):
                    change(i)
                started = time.perf_counter()
                async with session.get(f"http://127.0.0.1:{port}/metrics",
                                       headers={"Accept-Encoding": encoding}) as response:
                    body = await response.read()
                return time.perf_counter() - started, body, response.headers.get("Content-Encoding", "").encode()

            gzipped = [await scrape("gzip", changed=1) for _ in range(5)]
            every = [await scrape("gzip", changed=tenants) for _ in range(3)]
            unchanged = [await scrape("gzip", changed=0) for _ in range(5)]
            plain = [await scrape("identity", changed=1) for _ in range(5)]
    finally:
        await runner.cleanup()
    body, encoding = gzipped[-1][1], gzipped[-1][2]
    assert encoding == b"gzip" and gzip.decompress(body).startswith(b"# HELP tenantry_tenant_info")
    return {"scrape_tenants": tenants,
            "scrape_s": round(statistics.median(t for t, _, _ in gzipped), 3),  # gzip, one tenant changed
            "scrape_all_changed_s": round(statistics.median(t for t, _, _ in every), 3),  # gzip, every tenant
            "scrape_unchanged_s": round(statistics.median(t for t, _, _ in unchanged), 4),
            "scrape_plain_s": round(statistics.median(t for t, _, _ in plain), 3),
            "scrape_rejoin_s": round(statistics.median(rejoin), 4),
            "scrape_mib": round(len(plain[-1][1]) / 2**20, 2), "scrape_gzip_mib": round(len(body) / 2**20, 2),
            "metrics_first_put_us": round(first_put * 1e6, 1), "metrics_changed_put_us": round(changed_put * 1e6, 1)}


def validate_benchmark(files: int = 10_000) -> dict[str, float]:
    """`tenantry validate` over a generated repository of this many tenant files (50 partners)."""
    import shutil
    import tempfile

    from tenantry.cli.validate import validate

    folder = Path(tempfile.mkdtemp(prefix="tenantry-validate-"))
    try:
        shutil.copytree(REPO / "examples" / "tenants" / "platform", folder / "platform")
        (folder / "partners").mkdir()
        for p in range(50):
            (folder / "partners" / f"p{p}.yaml").write_text(
                f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: partner-p{p}\n"
                f"  labels: {{tenantry.dev/partner: p{p}}}\n")
            (folder / "tenants" / f"p{p}").mkdir(parents=True)
        for i in range(files):
            p = i % 50
            (folder / "tenants" / f"p{p}" / f"t{i:05d}.yaml").write_text(
                f"apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: t{i:05d}\n"
                f"  namespace: partner-p{p}\nspec:\n  company: Firma {i} GmbH\n"
                f"  contact: {{name: Max, email: max{i}@firma{i}.de}}\n"
                f"  plan: {{featureSet: business, seats: {10 + i % 90}, price: {{monthly: 990}}}}\n"
                f"  domains: [ki.firma{i}.de]\n  admins: [max{i}@firma{i}.de]\n")
        started = time.perf_counter()
        findings = validate([folder])
        elapsed = time.perf_counter() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"validate_files": files, "validate_s": round(elapsed, 2), "validate_findings": len(findings)}


def type_of(obj: dict[str, Any]):
    from lightkube.core.resource_registry import resource_registry
    return resource_registry.load(obj["apiVersion"], obj["kind"])


async def main() -> None:
    os.environ["BENCH_TRACEMALLOC_OUT"] = str(REPO / "bench" / "memory.txt")  # inherited by the operator
    local = portal_bench.fresh_cluster()
    kubectl = ["kubectl", "--kubeconfig", str(local.kubeconfig)]
    subprocess.run([*kubectl, "apply", "-f", "-"], input=PLATFORM_YAML, text=True, check=True, capture_output=True)
    client = AsyncClient(config=KubeConfig.from_file(str(local.kubeconfig)), field_manager="bench", timeout=60)
    direct = Direct(local)
    slugs = [f"t{i:05d}" for i in range(N)]
    results: dict[str, Any] = {"tenants": N, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                               "python": platform.python_version(), "kube": "v1.20.2 (local)"}

    log("metrics: /metrics with 10,000 tenants")
    results.update(await scrape_benchmark())
    log("tenantry validate: 10,000 tenant files")
    results.update(validate_benchmark())
    log(f"floor: the child objects of {N} tenants POSTed directly, concurrency {CONCURRENCY}")
    settled = {"floor": await settle(local, "the floor")}
    control_plane = control_plane_cpu(local)
    results["onboarding_floor_s"] = round(await floor_onboarding_direct(direct, slugs), 2)
    # What the same objects cost the API server and etcd without the operator: the rest of the
    # onboarding's control-plane CPU is what the operator's way adds.
    results["onboarding_floor_control_plane_cpu_s"] = round(control_plane_cpu(local) - control_plane, 1)
    results["floor_tenants_per_s"] = round(N / results["onboarding_floor_s"], 1)
    log(f"floor by server-side apply (lightkube), concurrency {CONCURRENCY}")
    settled["floor_apply"] = await settle(local, "the server-side-apply floor")
    results["onboarding_floor_apply_s"] = round(await floor_onboarding_apply(client, slugs), 2)
    log(f"floor: {N} Tenants POSTed with no webhook and no operator (the API server alone)")
    settled["tenant_create_floor"] = await settle(local, "the Tenant creates alone")
    results.update(await tenant_create_floor(direct, kubectl, slugs))

    operator = Operator(local.kubeconfig)
    webhook = start_with_webhook(operator, local, kubectl)
    await wait_until(lambda: webhook_answers(direct), "the webhook to answer", 120, poll=1)
    ready = Tally(client, Tenant, _is_ready, namespace=PARTNER_NS)
    await ready.synced.wait()
    settled["onboarding"] = await settle(local, "the onboarding")
    log(f"onboarding: {N} Tenants POSTed at concurrency {CONCURRENCY}, each admitted by the webhook")
    phase = Phase(local, operator)
    latencies: list[float] = []
    started = time.monotonic()
    await gather_limited([direct.create(tenant_doc(s), latencies) for s in slugs])
    results.update(admission_results(time.monotonic() - started, latencies, local, webhook, operator))
    await wait_until(lambda: ready.reaches(N), "all tenants Ready")
    results.update(phase.results("onboarding"))
    results["onboarding_ratio"] = round(results["onboarding_s"] / results["onboarding_floor_s"], 2)
    results["settled_before"] = settled  # the controllers' writes waited out before each phase
    results["onboarding_ratio_apply"] = round(results["onboarding_s"] / results["onboarding_floor_apply_s"], 1)
    results["onboarding_cpu_ms_per_tenant"] = round(results["onboarding_cpu_s"] * 1000 / N, 1)
    results["rss_mib_after_onboarding"] = round(operator.rss_mib()[0], 1)
    if TRACEMALLOC:
        await memory_profile(operator)

    log(f"plan change: one FeatureSet edited, time until every tenant's flags carry it; {PLAN_ROUNDS} rounds, "
        "each beside its floor")
    rounds: list[tuple[float, float]] = []
    for number in range(PLAN_ROUNDS):
        await quiet(operator)
        phase = Phase(local, operator)
        changed_s = await plan_change(client, 6 + number)
        if number == 0:
            results.update(phase.results("plan_change"))  # requests and CPU: those of one round
        await quiet(operator)
        rounds.append((changed_s, await plan_change_floor(direct, slugs, number)))
    # Each round's floor right after it, and the median of the rounds' ratios: the machine's speed
    # drifts within a run (one floor took 2.2 s, another 4.5 s), a pair side by side much less.
    results["plan_change_rounds"] = [[round(o, 2), round(f, 2)] for o, f in rounds]
    results["plan_change_s"] = round(statistics.median(o for o, _ in rounds), 2)
    results["plan_change_floor_s"] = round(statistics.median(f for _, f in rounds), 2)
    results["plan_change_ratio"] = round(statistics.median(o / f for o, f in rounds), 2)

    log("idle restart: the operator restarted over unchanged tenants")
    first_peak = operator.rss_mib()[1]
    results.update(await idle_restart(operator, local, N, "restart"))
    after_restart, restart_peak = operator.rss_mib()
    results["rss_mib_after_restart"] = round(after_restart, 1)
    results["rss_peak_mib"] = round(max(first_peak, restart_peak), 1)  # of either process

    await quiet(operator)
    log("single-tenant latency: apply -> Ready, 50 tenants one after another")
    latencies = []
    for i in range(50):
        slug = f"single{i:02d}"
        started = time.monotonic()
        await direct.create(tenant_doc(slug))
        await wait_until(lambda slug=slug: asyncio.sleep(0, f"{PARTNER_NS}/{slug}" in ready.passing),
                         f"{slug} Ready", 120, poll=0.005)
        latencies.append(time.monotonic() - started)
    latencies.sort()
    results["single_p50_s"] = round(statistics.median(latencies), 3)
    results["single_p99_s"] = round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 3)
    if LARGE > N + 50:
        results.update(await large_phase(direct, ready, operator, local, N + 50))
    ready.close()
    operator.stop()
    await client.close()
    await direct.close()
    log(f"partner portal: the customers page of a partner with {portal_bench.CUSTOMERS} customers")
    results.update(portal_bench.portal_benchmark(local.kubeconfig))
    local_cluster.down(local)
    write_results(results)


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def control_plane_cpu(local: local_cluster.Cluster) -> float:
    """CPU seconds of the API server and etcd so far: where the rest of the machine goes."""
    return sum(process_cpu_seconds(int(local.pid_file(name).read_text())) for name in ("kube-apiserver", "etcd"))


class Phase:
    """Time, API requests, operator CPU and the control plane's CPU from now until `results`."""

    def __init__(self, local: local_cluster.Cluster, operator: Operator) -> None:
        self.local, self.operator = local, operator
        self.requests, self.cpu, self.started = apiserver_requests(local), operator.cpu_seconds(), time.monotonic()
        self.control_plane = control_plane_cpu(local)

    def results(self, name: str) -> dict[str, Any]:
        seconds, cpu = time.monotonic() - self.started, self.operator.cpu_seconds() - self.cpu
        diff = requests_between(self.requests, apiserver_requests(self.local))
        return {f"{name}_s": round(seconds, 2), f"{name}_writes": operator_requests(diff, WRITES),
                f"{name}_reads": operator_requests(diff, READS), f"{name}_cpu_s": round(cpu, 1),
                f"{name}_control_plane_cpu_s": round(control_plane_cpu(self.local) - self.control_plane, 1),
                f"{name}_writes_all_clients": of_verbs(diff, WRITES),
                f"{name}_reads_all_clients": of_verbs(diff, READS)}


async def idle_restart(operator: Operator, local: local_cluster.Cluster, tenants: int, name: str) -> dict[str, Any]:
    """Stop the operator once it is idle, start it again, and measure its resume pass over every tenant."""
    await quiet(operator, 10.0)
    operator.stop()
    requests, scoped_reads_before, failed_before = apiserver_requests(local), scoped_reads(local), failed_lists(local)
    watches_before = ended_watches(local)
    log_before = OPERATOR_LOG.stat().st_size
    started = time.monotonic()
    operator.start()
    await wait_until(lambda: asyncio.sleep(0, operator.metric("tenantry_reconcile_total") >= tenants),
                     "resume pass", timeout=7200, poll=1)
    out: dict[str, Any] = {f"{name}_resume_s": round(time.monotonic() - started, 1),
                           f"{name}_cpu_s": round(operator.cpu_seconds(), 1)}
    await asyncio.sleep(2)
    # The operator's own counts: its informers' LISTs (each read in pages) and its GETs.
    out[f"{name}_informer_lists"] = {k: int(v) for k, v in operator.metric_by("tenantry_informer_lists_total",
                                                                                "kind").items()}
    out[f"{name}_operator_gets"] = int(operator.metric("tenantry_read_requests_total"))
    diff = requests_between(requests, apiserver_requests(local))
    out[f"{name}_writes"] = operator_requests(diff, WRITES)
    out[f"{name}_reads"] = operator_requests(diff, READS)
    out[f"{name}_writes_all_clients"] = of_verbs(diff, WRITES)
    scoped = requests_between(scoped_reads_before, scoped_reads(local))
    # kube-apiserver 1.20 counts a GET of a custom resource as a namespace-scoped LIST. LIST requests
    # here are pages (500 objects each) of the informers' LISTs and kopf's LIST of Tenants.
    out[f"{name}_lists_by_kind"] = {k.split()[1]: n for k, n in scoped.items() if k.endswith("cluster")}
    out[f"{name}_gets"] = sum(n for k, n in scoped.items() if not k.endswith("cluster"))
    out[f"{name}_gets_by_kind"] = {k: n for k, n in scoped.items() if not k.endswith("cluster")}
    out[f"{name}_failed_lists"] = requests_between(failed_before, failed_lists(local))
    # (the stopped operator's own watches usually end before the count starts: a quick run's
    # restart over 1,000 tenants counted none)
    out[f"{name}_ended_watches"] = requests_between(watches_before, ended_watches(local))
    # The start-up sweep's own LIST of every Tenant (when kopf's listing seemed to stall; it logs it).
    with OPERATOR_LOG.open("rb") as operator_log:
        operator_log.seek(log_before)
        out[f"{name}_sweep_listed_tenants"] = b"reading every Tenant once" in operator_log.read()
    return out


async def large_phase(direct: Direct, ready: Tally, operator: Operator, local: local_cluster.Cluster,
                      present: int) -> dict[str, Any]:
    """Grow the same operator to LARGE tenants: time until all Ready, memory, and an idle restart."""
    log(f"large: {LARGE - present} more Tenants, to {LARGE}")
    more = [f"l{i:05d}" for i in range(LARGE - present)]
    settled = await settle(local, f"the growth to {LARGE} tenants")
    phase = Phase(local, operator)
    await gather_limited([direct.create(tenant_doc(s)) for s in more])
    await wait_until(lambda: ready.reaches(LARGE), f"{LARGE} tenants Ready", timeout=7200, poll=1)
    out: dict[str, Any] = {"large_tenants": LARGE, **phase.results("large_onboarding"), "large_settled_before": settled}
    out["large_onboarding_per_s"] = round((LARGE - present) / out["large_onboarding_s"], 1)
    out["large_rss_mib"], first_peak = (round(x, 1) for x in operator.rss_mib())
    log(f"large: idle restart over {LARGE} unchanged tenants")
    out.update(await idle_restart(operator, local, LARGE, "large_restart"))
    after_restart, restart_peak = operator.rss_mib()
    out["large_rss_mib_after_restart"] = round(after_restart, 1)
    out["large_rss_peak_mib"] = round(max(first_peak, restart_peak), 1)
    # Which of the two processes peaked: the one that onboarded, or the one restarted over them all.
    out["large_rss_peak_onboarding_mib"], out["large_rss_peak_restart_mib"] = first_peak, round(restart_peak, 1)
    return out


def _failed(r: dict[str, Any], prefix: str) -> str:
    """The LIST requests the API server refused during a restart, if any (results before this
    figure existed have none)."""
    failed = r.get(f"{prefix}_failed_lists")
    return f"; refused: {failed}, and the list read again" if failed else ""


async def plan_change(client: AsyncClient, tables: int) -> float:
    """Seconds from one FeatureSet edit (the tables limit) until every tenant's flags carry it."""
    flagged = Tally(client, ConfigMap, lambda cm: _tables_limit(cm) == tables, namespace="*",
                    labels={"tenantry.dev/partner": "bench"}, fields={"metadata.name": "tenantry-flags"})
    await flagged.synced.wait()
    started = time.monotonic()
    await client.patch(FeatureSet, "bench", {"spec": {"features": {"tables": {"limits": {"tables": tables}}}}},
                       namespace=PLATFORM_NS, patch_type=PatchType.MERGE)
    await wait_until(lambda: flagged.reaches(N), "flags updated")
    flagged.close()
    return time.monotonic() - started


async def plan_change_floor(direct: Direct, slugs: list[str], number: int) -> float:
    """The floor writes what the operator rewrites: each tenant's features and flags ConfigMaps
    (a new value each round: the API server does not store an update that changes nothing)."""
    changed = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": f"floor-{s}"}}
               for s in slugs for name in ("tenantry-features", "tenantry-flags")]
    started = time.monotonic()
    await gather_limited([direct.merge_patch(cm, {"data": {"floor": str(number)}}) for cm in changed])
    return time.monotonic() - started


def _tables_limit(config_map: Any) -> Any:
    flags = json.loads(config_map.data["flags.json"])["flags"]
    return flags["tables-limits"]["variants"]["plan"].get("tables")


NOTES_MARKER = "<!-- Written by hand below this line; make bench keeps it. -->"


def write_results(results: dict[str, Any]) -> None:
    out = REPO / "bench"
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = [
        ("Bulk onboarding: apply -> all Ready", "onboarding_s", "onboarding_floor_s", "onboarding_ratio"),
        ("Plan change -> every tenant's flags updated", "plan_change_s", "plan_change_floor_s", "plan_change_ratio"),
    ]
    lines = [f"# tenantry benchmark ({results['tenants']} tenants; {results['machine']}; "
             f"Python {results['python']}; Kubernetes {results['kube']})", "",
             "| phase | tenantry | floor (direct writes) | ratio |", "|---|---|---|---|"]
    lines += [f"| {title} | {results[a]} s | {results[b]} s | {results[c]}x |" for title, a, b, c in rows]
    lines += ["", "## Targets (issue 13)", "", "| measure | measured | target | met |", "|---|---|---|---|"]
    lines += [f"| {title} | {value} | {target} | {'yes' if met else '**no**'} |"
              for title, value, target, met in targets(results)]
    lines += ["", "| measure | value |", "|---|---|"]
    for key, value in results.items():
        if key not in ("tenants", "machine", "python", "kube"):
            lines.append(f"| {key} | {value} |")
    notes = (out / "results.md").read_text().partition(NOTES_MARKER)[2] if (out / "results.md").exists() else ""
    lines += ["", NOTES_MARKER + notes.rstrip("\n")]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    chart(results, out / "results.png")
    print("\n".join(lines))


def _tenant_gets(r: dict[str, Any], prefix: str) -> int:
    """GETs of Tenants by any client (1.20 counts them as LISTs in a namespace)."""
    return int(r.get(f"{prefix}_gets_by_kind", {}).get("LIST tenants namespace", 0))


def targets(r: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """Each target of the issue: what was measured, the target, and whether it is met (only those measured)."""
    rows = []

    def add(keys: tuple[str, ...], title: str, value: Any, target: str, met: Any) -> None:
        if all(k in r for k in keys):
            rows.append((title, value(), target, bool(met())))
    # The ratios are judged before rounding: 2.04x printed as 2.0x is not within 2x.
    onboarding = r["onboarding_s"] / r["onboarding_floor_s"] if "onboarding_floor_s" in r else None
    add(("onboarding_ratio",), f"{r['tenants']:,} tenants onboarded, POST until all Ready",
        lambda: f"{r['onboarding_s']} s, {onboarding:.2f}x the direct-POST floor ({r['onboarding_floor_s']} s; "
                f"{r['onboarding_ratio_apply']}x the server-side-apply floor)",
        "≤ 2x floor", lambda: onboarding <= 2)
    rounds = r.get("plan_change_rounds") or [[r.get("plan_change_s", 0), r.get("plan_change_floor_s", 1)]]
    plan = statistics.median(changed / floor for changed, floor in rounds)
    add(("plan_change_ratio",), "a plan change reaching every tenant",
        lambda: f"median of {len(rounds)} rounds' ratios {plan:.2f}x (each round: "
                f"{', '.join(f'{c} s / {f} s' for c, f in rounds)})", "≤ 2x floor", lambda: plan <= 2)
    add(("onboarding_cpu_ms_per_tenant",), "operator CPU per onboarded tenant",
        lambda: f"{r['onboarding_cpu_ms_per_tenant']} ms", "≤ 15 ms", lambda: r["onboarding_cpu_ms_per_tenant"] <= 15)
    for prefix, tenants in (("restart", r["tenants"]), ("large_restart", r.get("large_tenants", 0))):
        add((f"{prefix}_writes", f"{prefix}_gets", f"{prefix}_informer_lists"),
            f"idle restart over {tenants:,} tenants",
            lambda p=prefix: f"{r[f'{p}_writes']} writes, {r[f'{p}_operator_gets']} GETs by the operator "
                             f"({_tenant_gets(r, p)} of Tenants by anyone), LISTs by its informers: "
                             f"{r[f'{p}_informer_lists']} "
                             f"(LIST requests, pages of {LIST_PAGE}: {r[f'{p}_lists_by_kind']}"
                             f"{_failed(r, p)})",
            "0 writes, ≤ 1 LIST per watched kind, no per-tenant GET",
            # kopf's one LIST of Tenants, read in pages: no more requests than pages of that many.
            lambda p=prefix, count=tenants: r[f"{p}_writes"] == 0 and r[f"{p}_operator_gets"] < 10
            and _tenant_gets(r, p) < 10 and all(n <= 1 for n in r[f"{p}_informer_lists"].values())
            and r[f"{p}_lists_by_kind"].get("tenants", 0) <= -(-count // LIST_PAGE))
    add(("rss_peak_mib",), f"RSS at {r['tenants']:,} tenants (after onboarding / peak)",
        lambda: f"{r['rss_mib_after_onboarding']} / {r['rss_peak_mib']} MiB", "≤ 150 MB",
        lambda: r["rss_peak_mib"] <= 150 / 1.048576)
    add(("large_rss_peak_mib",), f"RSS at {r.get('large_tenants', 0):,} tenants, peak included",
        lambda: f"{r['large_rss_peak_mib']} MiB", "≤ 500 MB", lambda: r["large_rss_peak_mib"] <= 500 / 1.048576)
    add(("large_onboarding_per_s",), f"sustained onboarding up to {r.get('large_tenants', 0):,} tenants",
        lambda: f"{r['large_onboarding_per_s']} tenants/s (floor: {r['floor_tenants_per_s']}/s)",
        "≥ 100/s, or the floor's rate if lower",
        lambda: r["large_onboarding_per_s"] >= min(100, r["floor_tenants_per_s"]))
    add(("scrape_s",), f"one /metrics scrape at {r['scrape_tenants']:,} tenants",
        lambda: f"{1000 * r['scrape_s']:.0f} ms", "≤ 100 ms", lambda: r["scrape_s"] <= 0.1)
    add(("validate_s",), f"tenantry validate over {r['validate_files']:,} files", lambda: f"{r['validate_s']} s",
        "≤ 3 s", lambda: r["validate_s"] <= 3)
    add(("webhook_creates_per_s",), f"{r['tenants']:,} Tenants POSTed at concurrency {CONCURRENCY}, webhook on",
        lambda: f"{r['webhook_creates_per_s']} creates/s (API server alone: {r['tenant_create_floor_per_s']}/s), "
                f"webhook p99 ≤ {r.get('webhook_p99_bucket_ms')} ms by the API server's buckets, "
                f"≤ {r.get('webhook_judge_p99_bucket_ms')} ms by the operator's",
        "≥ 500 creates/s (or the API server's own rate), p99 ≤ 50 ms",
        lambda: r["webhook_creates_per_s"] >= 0.9 * min(500, r["tenant_create_floor_per_s"])
        and r.get("webhook_p99_bucket_ms", 1e9) <= 50)
    add(("portal_customers_p95_ms",), f"portal customers page, {r.get('portal_customers')} customers (server time)",
        lambda: f"p50 {r['portal_customers_p50_ms']} ms, p95 {r['portal_customers_p95_ms']} ms",
        "≤ 300 ms", lambda: r["portal_customers_p95_ms"] <= 300)
    return rows


def chart(results: dict[str, Any], path: Path) -> None:
    """Each phase next to its floor (seconds), and the operator's memory."""
    import matplotlib

    matplotlib.use("Agg")  # no display here
    from matplotlib import pyplot

    figure, (times, memory) = pyplot.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    phases = [("onboarding", "bulk onboarding"), ("plan_change", "plan change")]
    positions = range(len(phases))
    times.bar([p - 0.2 for p in positions], [results[f"{k}_s"] for k, _ in phases], 0.4, label="tenantry")
    times.bar([p + 0.2 for p in positions], [results[f"{k}_floor_s"] for k, _ in phases], 0.4,
              label="floor (direct writes)")
    for p, (key, _) in zip(positions, phases, strict=True):
        times.annotate(f"{results[f'{key}_ratio']}x", (p - 0.2, results[f"{key}_s"]), ha="center", va="bottom")
    times.set_xticks(list(positions), [title for _, title in phases])
    times.set_ylabel("seconds")
    times.set_title(f"{results['tenants']} tenants")
    times.legend()
    labels = ["after onboarding", "after restart", "peak"]
    values = [results["rss_mib_after_onboarding"], results["rss_mib_after_restart"], results["rss_peak_mib"]]
    if "large_rss_peak_mib" in results:
        labels.append(f"peak, {results['large_tenants']:,} tenants")
        values.append(results["large_rss_peak_mib"])
    memory.bar(labels, values, color="#888")
    memory.set_ylabel("MiB (operator RSS)")
    memory.set_title("memory")
    memory.tick_params(axis="x", labelrotation=20)
    figure.suptitle(f"tenantry benchmark; {results['machine']}; Kubernetes {results['kube']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


if __name__ == "__main__":
    if sys.argv[1:] == ["--report"]:  # the tables and chart again, from bench/results.json
        write_results(json.loads((REPO / "bench" / "results.json").read_text()))
    else:
        asyncio.run(main())
