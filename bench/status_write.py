"""What does a Tenant's status write cost the API server, and would another way of writing it cost
less? An experiment, not a target.

The onboarding writes one status per tenant. The API server's CPU profile (bench/results.md) puts
these writes at about a ninth of its CPU while the operator onboards, so they were named the next
lever for the onboarding ratio. This script measures how much that lever can give: the API
server's and etcd's CPU for N writes of each kind, at concurrency 16, with no operator running:

    create        the Tenant itself (spec only), as a partner creates it: the unit
    merge         the status by JSON merge patch, as the operator writes it today
    put           the same status by PUT of the whole object (read beforehand, not timed); needs
                  the current resourceVersion, so a second writer of the status (the platform's
                  usage reports, the pod security re-check) would turn into conflicts and retries
    merge-slim    a merge patch of a status without the six informational conditions that are
                  True on a healthy tenant (a smaller status, at the price of what it shows)
    put-slim      that smaller status by PUT

Each round writes the variants in another order (the first writes after the control plane starts
cost more); the creates of all variants together give the unit. Writes name the operator's field
manager, as its own do.

The status is a real one (bench/status_write_sample.json: a Tenant of `make bench`'s kind after
the operator made it Ready). Run: `.venv/bin/python bench/status_write.py` (about three minutes, its
own control plane); it prints one line per measure and writes bench/status_write.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import run as bench  # bench/run.py, beside this file

OUT = Path(__file__).with_name("status_write.json")
SAMPLE = json.loads(Path(__file__).with_name("status_write_sample.json").read_text())
WRITES, CONCURRENCY, ROUNDS = 500, 16, 4
MANAGER = "?fieldManager=tenantry"
NAMESPACE = "status-write"
# Informational conditions that say nothing on a healthy tenant (domain/status.py).
QUIET_WHEN_TRUE = {"PlanResourcesAccepted", "QuotaWithinCeiling", "BrandingContrast", "DomainsVerified",
                   "ManagedObjectsInSync", "UsageValid"}


def slim_status() -> dict[str, Any]:
    status = dict(SAMPLE["status"])
    status["conditions"] = [c for c in status["conditions"] if c["type"] not in QUIET_WHEN_TRUE]
    return status


async def timed(local: Any, work: list) -> float:
    """Control-plane CPU milliseconds per write for these requests."""
    before = bench.control_plane_cpu(local)
    await bench.gather_limited(work, CONCURRENCY)
    return round(1000 * (bench.control_plane_cpu(local) - before) / len(work), 2)


VARIANTS = (("merge", False, "PATCH"), ("put", False, "PUT"), ("merge-slim", True, "PATCH"),
            ("put-slim", True, "PUT"))


async def one_round(local: Any, direct: bench.Direct, number: int) -> dict[str, float]:
    base = f"/apis/tenantry.dev/v1alpha1/namespaces/{NAMESPACE}/tenants"
    out: dict[str, float] = {"create": 0.0}
    order = VARIANTS[number % len(VARIANTS):] + VARIANTS[:number % len(VARIANTS)]
    for variant, slim, method in order:
        status = slim_status() if slim else SAMPLE["status"]
        names = [f"{variant}-{number}-{i}" for i in range(WRITES)]
        docs = [{"apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
                 "metadata": {"name": name, "namespace": NAMESPACE}, "spec": SAMPLE["spec"]} for name in names]
        out["create"] += await timed(local, [direct.create(d) for d in docs]) / len(VARIANTS)
        if method == "PATCH":
            work = [direct.request("PATCH", f"{base}/{n}/status{MANAGER}", {"status": status},
                                   "application/merge-patch+json") for n in names]
        else:
            current = await bench.gather_limited([direct.request("GET", f"{base}/{n}", None) for n in names],
                                                 CONCURRENCY)
            work = [direct.request("PUT", f"{base}/{n}/status{MANAGER}", {**json.loads(text), "status": status})
                    for n, (_, text) in zip(names, current, strict=True)]
        out[variant] = await timed(local, work)
    out["create"] = round(out["create"], 2)
    return out


async def main() -> None:
    # Beside a running `make bench` or `make cluster`: a folder and ports of its own.
    os.environ.setdefault("TENANTRY_CLUSTER_DIR", str(bench.REPO / ".local" / "status-write-cluster"))
    os.environ.setdefault("TENANTRY_APISERVER_PORT", "17543")
    os.environ.setdefault("TENANTRY_ETCD_PORT", "24890")
    local = bench.portal_bench.fresh_cluster()
    direct = bench.Direct(local)
    try:
        subprocess.run(["kubectl", "--kubeconfig", str(local.kubeconfig), "create", "namespace", NAMESPACE],
                       check=True, capture_output=True)
        rounds = []
        for number in range(ROUNDS):
            rounds.append(await one_round(local, direct, number))
            bench.log(f"round {number + 1}: control-plane CPU ms per write {rounds[-1]}")
    finally:
        await direct.close()
        bench.local_cluster.down(local)
    sizes = {"status_bytes": len(json.dumps(SAMPLE["status"], separators=(",", ":"))),
             "slim_status_bytes": len(json.dumps(slim_status(), separators=(",", ":")))}
    mean = {k: round(sum(r[k] for r in rounds) / len(rounds), 2) for k in rounds[0]}
    spread = {k: [min(r[k] for r in rounds), max(r[k] for r in rounds)] for k in rounds[0]}
    # What each variant saves against the operator's merge patch, round by round (same round, same load).
    saved = {k: [round(r["merge"] - r[k], 2) for r in rounds] for k in rounds[0] if k not in ("create", "merge")}
    results = {"writes": WRITES, "concurrency": CONCURRENCY, "rounds": rounds, "mean_cpu_ms": mean,
               "min_max_cpu_ms": spread, "saved_against_merge_ms": saved,
               "per_create": {k: round(v / mean["create"], 1) for k, v in mean.items()}, **sizes}
    bench.log(f"mean control-plane CPU ms per write {mean}; as creates {results['per_create']}")
    OUT.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
