"""The partner portal's customers page for a partner with 100 customers: server time, p50 and p95.

Part of `make bench` (bench/run.py calls `portal_benchmark` on its control plane); alone:
`.venv/bin/python bench/portal.py` starts its own. The portal runs as the chart's portal
ServiceAccount, asks a real Prometheus (35 days of sample history for the 100 customers) and
the API server on every request, as in production; the time is the portal's own Server-Timing.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.prometheus import Prometheus  # noqa: E402
from tests.integration.net import free_port  # noqa: E402

from tenantry.devtools import chart  # noqa: E402
from tenantry.devtools import cluster as local_cluster  # noqa: E402
from tenantry.devtools.samplehistory import SampleTenant, write_blocks  # noqa: E402

CUSTOMERS = 100
REQUESTS = 200
PARTNER = "portalbench"
PLATFORM_NS = "tenantry-system"


def _wait(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def portal_benchmark(kubeconfig: Path) -> dict[str, Any]:
    kubectl = ["kubectl", "--kubeconfig", str(kubeconfig)]
    namespace = f"partner-{PARTNER}"
    chart.apply_partners(kubeconfig, [PARTNER], PLATFORM_NS)
    tenants = [{"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
                "metadata": {"name": f"pb{i:03d}", "namespace": namespace},
                "spec": {"company": f"Kunde {i:03d} GmbH", "contact": {"name": "Max", "email": f"max@k{i}.de"},
                         "plan": {"featureSet": "bench", "seats": 20 + i, "price": {"monthly": 100.0 + i}}}}
               for i in range(CUSTOMERS)]
    subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                      "items": tenants}),
                   text=True, check=True, capture_output=True)
    for i, tenant in enumerate(tenants):
        usage = {"activeUsers": 10 + i // 2, "requests": {"chat": 1000 + 37 * i, "tables": i % 6}}
        subprocess.run([*kubectl, "patch", "tenant", tenant["metadata"]["name"], "-n", namespace,
                        "--subresource=status", "--type=merge", "-p", json.dumps({"status": {"usage": usage}})],
                       check=True, capture_output=True)
    folder = Path(tempfile.mkdtemp(prefix="tenantry-portal-bench-"))
    write_blocks([SampleTenant(PARTNER, t["metadata"]["name"], t["spec"]["company"], "bench", "Active", "EUR",
                               80.0 + i, 100.0 + i, 5, 10 + i // 2) for i, t in enumerate(tenants)],
                 folder / "data", time.time())
    prometheus = Prometheus(folder, free_port())  # nothing to scrape there: the history is what it holds
    portal_kubeconfig = chart.service_account_kubeconfig(kubeconfig, PLATFORM_NS, "tenantry-portal",
                                                         folder / "portal.kubeconfig")
    token = subprocess.run([*kubectl, "create", "token", "tenantry-gitops", "-n", namespace], check=True,
                           capture_output=True, text=True).stdout.strip()
    port = free_port()
    env = {**os.environ, "KUBECONFIG": str(portal_kubeconfig), "TENANTRY_PORTAL_PORT": str(port),
           "TENANTRY_PORTAL_ADDRESS": "127.0.0.1", "TENANTRY_PLATFORM_NAMESPACE": PLATFORM_NS,
           "TENANTRY_PORTAL_PROMETHEUS_URL": f"http://127.0.0.1:{prometheus.port}"}
    portal = subprocess.Popen([sys.executable, "-m", "tenantry.portal"], env=env,
                              stdout=(folder / "portal.log").open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/p/{PARTNER}/customers"
    try:
        _wait(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200, "portal")
        server_ms, wall_ms = [], []
        for i in range(REQUESTS + 10):
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read().decode()
                timing = response.headers["Server-Timing"]
            if i < 10:
                assert body.count('<tr data-tenant="') == CUSTOMERS, "the page does not show every customer"
                continue  # warm-up: token and access reviews are remembered after the first request
            wall_ms.append((time.perf_counter() - started) * 1000)
            server_ms.append(float(timing.partition("dur=")[2]))
    finally:
        portal.terminate()
        portal.wait(20)
        prometheus.stop()
        subprocess.run([*kubectl, "delete", "namespace", namespace, "--wait=false"], capture_output=True)

    def pct(values: list[float], share: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 1)
    return {"portal_customers": CUSTOMERS, "portal_requests": REQUESTS,
            "portal_customers_p50_ms": round(statistics.median(server_ms), 1),
            "portal_customers_p95_ms": pct(server_ms, 0.95), "portal_customers_wall_p95_ms": pct(wall_ms, 0.95)}


def fresh_cluster() -> local_cluster.Cluster:
    """The benchmarks' own control plane (its own folder and ports, beside a `make cluster`),
    started afresh, with the CRDs established."""
    os.environ.setdefault("TENANTRY_CLUSTER_DIR", str(REPO / ".local" / "bench-cluster"))
    os.environ.setdefault("TENANTRY_APISERVER_PORT", "17443")
    os.environ.setdefault("TENANTRY_ETCD_PORT", "24790")
    local = local_cluster.default_cluster()
    local_cluster.down(local)
    local_cluster.up(local)
    kubectl = ["kubectl", "--kubeconfig", str(local.kubeconfig)]
    subprocess.run([*kubectl, "apply", "-f", str(REPO / "crds")], check=True, capture_output=True)
    subprocess.run([*kubectl, "wait", "--for=condition=Established", "crd", "--all"], check=True, capture_output=True)
    return local


def main() -> None:
    local = fresh_cluster()
    subprocess.run(["kubectl", "--kubeconfig", str(local.kubeconfig), "apply", "-f", "-"], text=True, check=True,
                   capture_output=True, input=f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {PLATFORM_NS}}}
---
apiVersion: tenantry.dev/v1alpha1
kind: FeatureSet
metadata: {{name: bench, namespace: {PLATFORM_NS}}}
spec: {{features: {{chat: {{}}, tables: {{limits: {{tables: 5}}}}}}}}
""")
    try:
        print(json.dumps(portal_benchmark(local.kubeconfig), indent=2))
    finally:
        local_cluster.down(local)


if __name__ == "__main__":
    main()
