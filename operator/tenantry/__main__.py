"""`python -m tenantry` / `tenantry-operator`: run the operator (all namespaces).

With TENANTRY_LEADER_ELECTION=true (the chart's default, two replicas) only the replica holding
the Lease runs kopf; the others wait. Every replica is Ready (so rollouts and health checks see a
healthy Deployment); the active one labels its own pod tenantry.dev/role=leader once it serves,
and the chart's Service selects that label, so webhook calls and scrapes reach the active one.
/healthz: the process serves; /readyz: initialised; /leader: leading and started.
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
from tenantry.adapters.kube import Kube, KubeError
from tenantry.domain.children import ObjectRef
from tenantry.domain.leadership import Timing
from tenantry.domain.naming import ROLE_LABEL
from tenantry.handlers.leadership import LeaderElector, LeadershipLost, stop_acting


def _timing(env: dict[str, str]) -> Timing:
    return Timing(float(env.get("TENANTRY_LEASE_SECONDS", "15")),
                  float(env.get("TENANTRY_RENEW_DEADLINE_SECONDS", "10")),
                  float(env.get("TENANTRY_RETRY_SECONDS", "2")))


async def _health(port: int, state: dict[str, bool]) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def leader(_: web.Request) -> web.Response:
        return web.Response(text="leading") if state["leading"] else web.Response(status=503, text="standby")

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", healthz), web.get("/leader", leader)])
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, os.environ.get("TENANTRY_HEALTH_ADDRESS", "0.0.0.0"), port).start()
    return runner


async def _label_own_pod(kube: Kube, env: dict[str, str], role: str) -> None:
    """tenantry.dev/role on our pod, which the chart's Service selects (outside a pod: nothing to do)."""
    if not env.get("POD_NAME") or not env.get("KUBERNETES_SERVICE_HOST"):
        return
    pod = ObjectRef("v1", "Pod", env["POD_NAME"], env.get("TENANTRY_PLATFORM_NAMESPACE", "tenantry-system"))
    try:
        await kube.patch_labels(pod, {ROLE_LABEL: role})
    except KubeError as error:
        logging.getLogger("tenantry").warning("cannot label pod %s as %s: %s", pod.name, role, error)


async def run(env: dict[str, str]) -> None:
    state = {"leading": False}
    health = await _health(int(env["TENANTRY_HEALTH_PORT"]), state) if env.get("TENANTRY_HEALTH_PORT") else None
    memo = kopf.Memo()
    elector = None
    if env.get("TENANTRY_LEADER_ELECTION", "").lower() in ("1", "true", "yes"):
        identity = env.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        elector = LeaderElector(Kube.from_environment(), env.get("TENANTRY_PLATFORM_NAMESPACE", "tenantry-system"),
                                env.get("TENANTRY_LEASE_NAME", "tenantry-leader"), identity, _timing(env))
        # A restarted container keeps its pod: the label of a previous, leading run must go first.
        await _label_own_pod(elector.kube, env, "standby")
        await elector.acquire()
        memo.leading = elector.leading
    memo.started = asyncio.Event()  # set by the startup handler

    async def mark_ready() -> None:
        await memo.started.wait()
        state["leading"] = True
        if elector is not None:
            await _label_own_pod(elector.kube, env, "leader")

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
        state["leading"] = False
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
