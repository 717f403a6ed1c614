"""Would the admission webhook serve more creates in a process of its own? An experiment, not a target.

`make bench` measures the webhook as the operator serves it: on a thread of its own, in the
operator's process, sharing the interpreter with the reconcile. This script measures Tenant creates
at concurrency 32 (as `make bench` does) with the webhook served in the operator's process and then
by a separate process: the operator's own judges, catalogue and namespace informer, nothing else
(`serve` below, a prototype kept only for this measurement). Besides real creates, which the
operator then onboards, it times dry-run creates: admission only, nothing stored or reconciled.

    A  dry-run creates, no webhook, no operator (the API server alone)
    B  dry-run creates, the webhook in the operator's process, the operator idle
    C  creates, the webhook in the operator's process, while the operator onboards them
    D  dry-run creates, the webhook in the operator's process, while the operator onboards (C)
    F  dry-run creates, the webhook in a process of its own, no operator
    G  creates, the webhook in a process of its own, while an operator without one onboards them
    H  dry-run creates, the webhook in a process of its own, while the operator onboards (G)

C against G and D against H is what the separate process gives; B against D, what the onboarding
beside it costs. Run: `.venv/bin/python bench/webhook_process.py` (about 5 minutes, its own
control plane as `make bench`); it prints one line per measure and writes bench/webhook_process.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import run as bench  # bench/run.py, beside this file

OUT = Path(__file__).with_name("webhook_process.json")


async def serve() -> None:
    """The prototype: the operator's judges over its catalogue and namespace informer, served by
    the operator's webhook server, in this process alone (no kopf, no reconcile)."""
    import kopf

    from tenantry.adapters.informer import Cache, Informer, Scope
    from tenantry.adapters.kube import Kube
    from tenantry.domain.settings import Settings
    from tenantry.handlers.admission import Judges
    from tenantry.handlers.catalogue import Catalogue
    from tenantry.handlers.webhook import WebhookServer

    settings = Settings.from_env(os.environ)
    memo = kopf.Memo()
    memo.settings, memo.config, memo.kube, memo.catalogue = (settings, settings.operator, Kube.from_environment(),
                                                              Catalogue())

    def remember(kind: str, change: str, body: dict[str, Any]) -> None:
        key = (body["metadata"].get("namespace", ""), body["metadata"]["name"])
        memo.catalogue.put(kind, key, None if change == "DELETED" else (body.get("spec") or {}))

    informers = [Informer(memo.kube.api, Scope("v1", "Namespace"))]
    informers += [Informer(memo.kube.api, Scope("tenantry.dev/v1alpha1", kind), report_listing=True,
                           on_change=lambda change, body, kind=kind: remember(kind, change, body))
                  for kind in ("FeatureSet", "Branding")]
    memo.kube.cache = Cache(informers)
    running = [asyncio.create_task(i.run()) for i in informers]
    await memo.kube.cache.wait_synced()
    memo.started = asyncio.Event()
    memo.started.set()
    WebhookServer(settings.process, lambda: Judges(memo).by_path()).start()
    await asyncio.gather(*running)


def _line(tag: str, what: str, count: int, elapsed: float, latencies: list[float]) -> dict[str, Any]:
    latencies = sorted(latencies)
    row = {"measure": tag, "what": what, "creates_per_s": round(count / elapsed, 1),
           "p50_ms": round(1000 * statistics.median(latencies)),
           "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1])}
    print(f"{tag}  {row['creates_per_s']:7.1f}/s  p50 {row['p50_ms']:5d} ms  p99 {row['p99_ms']:5d} ms  {what}",
          flush=True)
    return row


async def creates(direct: bench.Direct, prefix: str, tag: str, what: str, dry_run: bool) -> dict[str, Any]:
    latencies: list[float] = []

    async def one(slug: str) -> None:
        doc = bench.tenant_doc(slug)
        started = time.perf_counter()
        await direct.request("POST", direct.path(doc) + ("?dryRun=All" if dry_run else ""), doc)
        latencies.append(time.perf_counter() - started)

    started = time.monotonic()
    await bench.gather_limited([one(f"{prefix}{i:05d}") for i in range(bench.N)])
    return _line(tag, what, bench.N, time.monotonic() - started, latencies)


async def resumed(operator: bench.Operator, tenants: int) -> None:
    """A (re)started operator has made its pass over the tenants there are, and is idle again."""
    await bench.wait_until(lambda: asyncio.sleep(0, operator.metric("tenantry_reconcile_total") >= tenants),
                           "the operator's resume pass", timeout=600, poll=1)
    await bench.quiet(operator)


def _resident_mib(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {name: round(int(fields[key].split()[0]) / 1024) for name, key in (("rss", "VmRSS"), ("peak", "VmHWM"))}


async def measure(local: Any, direct: bench.Direct, operator: bench.Operator, kubectl: list[str],
                  separate: list[subprocess.Popen]) -> dict[str, Any]:
    n = bench.N
    rows = [await creates(direct, "a", "A", "dry-run, no webhook, no operator", dry_run=True)]
    # failurePolicy Fail: a webhook that does not answer fails the creates instead of letting them
    # through unjudged (the chart ships Ignore), so no row can measure "no webhook" by accident.
    bench.start_with_webhook(operator, local, kubectl, failure_policy="Fail")
    await bench.wait_until(lambda: bench.webhook_answers(direct), "the webhook to answer", 120, poll=1)
    rows.append(await creates(direct, "b", "B", "dry-run, webhook in the operator's process, operator idle", True))
    rows.append(await creates(direct, "c", "C", "creates, webhook in the operator's process, operator onboards",
                              False))
    rows.append(await creates(direct, "d", "D", "dry-run, webhook in the operator's process, operator onboards",
                              True))
    await resumed(operator, n)
    webhook_env, operator.env = operator.env, {}
    operator.stop()
    env = {**os.environ, "KUBECONFIG": str(local.kubeconfig), **webhook_env}
    separate.append(subprocess.Popen([sys.executable, __file__, "serve"], env=env))
    await bench.wait_until(lambda: bench.webhook_answers(direct), "the separate webhook to answer", 120, poll=1)
    rows.append(await creates(direct, "f", "F", "dry-run, webhook in its own process, no operator", True))
    operator.start()
    await resumed(operator, n)  # over the 1,000 tenants of C: not while G is measured
    rows.append(await creates(direct, "g", "G", "creates, webhook in its own process, operator onboards", False))
    rows.append(await creates(direct, "h", "H", "dry-run, webhook in its own process, operator onboards", True))
    memory = _resident_mib(separate[0].pid)
    print(f"the separate webhook process: {memory['rss']} MiB resident, {memory['peak']} MiB at its peak", flush=True)
    await bench.quiet(operator)
    return {"tenants": n, "concurrency": bench.CONCURRENCY, "rows": rows, "separate_mib": memory}


async def main() -> None:
    local = bench.portal_bench.fresh_cluster()
    kubectl = ["kubectl", "--kubeconfig", str(local.kubeconfig)]
    operator, separate = bench.Operator(local.kubeconfig), []
    direct = bench.Direct(local)
    try:
        subprocess.run([*kubectl, "apply", "-f", "-"], input=bench.PLATFORM_YAML, text=True, check=True,
                       capture_output=True)
        results = await measure(local, direct, operator, kubectl, separate)
    finally:
        with contextlib.suppress(Exception):
            operator.stop()
        for process in separate:
            process.kill()
            process.wait()
        await direct.close()
        bench.local_cluster.down(local)
    OUT.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    asyncio.run(serve() if sys.argv[1:] == ["serve"] else main())
