"""`python -m tenantry` / `tenantry-operator`: run the operator (all namespaces).

With TENANTRY_LEADER_ELECTION=true (the chart's default, two replicas) only the replica holding
the Lease runs kopf; the others wait, answering /healthz but not /readyz, so the webhook
Service sends requests to the active one only.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import socket
import uuid

import kopf
from aiohttp import web

import tenantry.handlers.tenant  # noqa: F401  (registers the handlers)
from tenantry.adapters.kube import Kube
from tenantry.domain.leadership import Timing
from tenantry.handlers.leadership import LeaderElector, LeadershipLost, stop_acting


def _timing(env: dict[str, str]) -> Timing:
    return Timing(float(env.get("TENANTRY_LEASE_SECONDS", "15")),
                  float(env.get("TENANTRY_RENEW_DEADLINE_SECONDS", "10")),
                  float(env.get("TENANTRY_RETRY_SECONDS", "2")))


async def _health(port: int, state: dict[str, bool]) -> web.AppRunner:
    """/healthz: the process serves; /readyz: it leads and kopf has started (so it serves the webhook)."""
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ready") if state["ready"] else web.Response(status=503, text="standby")

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz)])
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, os.environ.get("TENANTRY_HEALTH_ADDRESS", "0.0.0.0"), port).start()
    return runner


async def run(env: dict[str, str]) -> None:
    state = {"ready": False}
    health = await _health(int(env["TENANTRY_HEALTH_PORT"]), state) if env.get("TENANTRY_HEALTH_PORT") else None
    memo = kopf.Memo()
    elector = None
    if env.get("TENANTRY_LEADER_ELECTION", "").lower() in ("1", "true", "yes"):
        identity = env.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        elector = LeaderElector(Kube.from_environment(), env.get("TENANTRY_PLATFORM_NAMESPACE", "tenantry-system"),
                                env.get("TENANTRY_LEASE_NAME", "tenantry-leader"), identity, _timing(env))
        await elector.acquire()
        memo.leading = elector.leading
    memo.started = asyncio.Event()  # set by the startup handler

    async def mark_ready() -> None:
        await memo.started.wait()
        state["ready"] = True

    operator = asyncio.create_task(kopf.operator(clusterwide=True, standalone=True, memo=memo,
                                                 liveness_endpoint=env.get("TENANTRY_HEALTH_ENDPOINT") or None))
    watchers = [asyncio.create_task(mark_ready())]
    try:
        if elector is not None:
            hold = asyncio.create_task(elector.hold())
            watchers.append(hold)
            await asyncio.wait({operator, hold}, return_when=asyncio.FIRST_COMPLETED)
            if hold.done():
                hold.result()  # raises LeadershipLost
        await operator
    except LeadershipLost as lost:
        stop_acting(str(lost))
    finally:
        state["ready"] = False
        for watcher in watchers:
            watcher.cancel()
        if elector is not None:
            with contextlib.suppress(Exception):
                await elector.release()
        if health is not None:
            await health.cleanup()


def main() -> None:
    kopf.configure(verbose=os.environ.get("TENANTRY_VERBOSE") == "1")
    # One line per HTTP request drowns the operator's own messages.
    for noisy in ("httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if os.environ.get("TENANTRY_WEBHOOK_PORT"):
        importlib.import_module("tenantry.handlers.admission")  # registers the webhook and its server
    asyncio.run(run(dict(os.environ)))


if __name__ == "__main__":
    main()
