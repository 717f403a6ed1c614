"""`python -m tenantry` / `tenantry-operator`: run the operator (all namespaces).

With TENANTRY_LEADER_ELECTION=true (the chart's default, two replicas) only the replica holding
the Lease runs kopf; the others wait. Every replica is Ready (so rollouts and health checks see a
healthy Deployment); the active one labels its own pod tenantry.dev/role=leader once it serves,
and the chart's Service selects that label, so webhook calls and scrapes reach the active one.
/healthz and /readyz: the process serves (standby or active); /leader: it leads, kopf has started
and the webhook answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import socket
import time
import uuid

import kopf
from aiohttp import web

import tenantry.handlers.tenant  # noqa: F401  (registers the handlers)
from tenantry.adapters.kube import Kube
from tenantry.domain.children import ObjectRef
from tenantry.domain.leadership import Timing
from tenantry.domain.naming import ROLE_LABEL
from tenantry.handlers import podsecurity  # registers the pod security re-check
from tenantry.handlers.leadership import LeaderElector, LeadershipLost, stop_acting

QUICK_RUN_SECONDS = 600.0  # a run of kopf shorter than this that lost a watch counts as a quick restart
MAX_QUICK_RESTARTS = 8  # then exit: 1+2+4+...+60 s of back-off did not help


def _timing(env: dict[str, str]) -> Timing:
    default = Timing()
    return Timing(float(env.get("TENANTRY_LEASE_SECONDS", default.lease_duration)),
                  float(env.get("TENANTRY_RENEW_DEADLINE_SECONDS", default.renew_deadline)),
                  float(env.get("TENANTRY_RETRY_SECONDS", default.retry_period)))


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


async def _label_own_pod(kube: Kube, env: dict[str, str], role: str) -> bool:
    """tenantry.dev/role on our pod, which the chart's Service selects (outside a pod: nothing to do)."""
    if not env.get("POD_NAME") or not env.get("KUBERNETES_SERVICE_HOST"):
        return True
    pod = ObjectRef("v1", "Pod", env["POD_NAME"], env.get("TENANTRY_PLATFORM_NAMESPACE", "tenantry-system"))
    try:
        await kube.patch_labels(pod, {ROLE_LABEL: role})
    except Exception as error:  # noqa: BLE001  (retried by the caller where it matters)
        logging.getLogger("tenantry").warning("cannot label pod %s as %s: %s", pod.name, role, error)
        return False
    return True


async def _listening(port: int) -> None:
    """Wait until our own webhook server accepts connections."""
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.close()
        return


class _LostWatch(logging.Handler):
    """Notices kopf giving up a watch, so kopf can be started again in this process.

    kopf stops watching a resource for good when a watch request fails with an HTTP error, such as
    the 404 a restarting API server answers for custom resources until it serves the CRDs again;
    the operator would then never hear of new Tenants. Stopping kopf and starting it again (same
    process, same memo: no lost metrics, a fresh listing of everything) recovers from that.
    """

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.arm(None)

    def arm(self, operator: asyncio.Task | None) -> None:
        """For each run of kopf: the task to stop, nothing fired yet."""
        # Cancelled rather than given a stop flag: kopf would wait 5 s for a flag's waiter at
        # every SIGTERM, which delays handing the leader lease over.
        self.operator = operator
        self.fired = ""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Watcher for ") and " has failed" in message and not self.fired:
            self.fired = message.split(":")[0]
            if self.operator is not None:
                self.operator.cancel()


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

    async def mark_ready() -> None:
        await memo.started.wait()
        # The Service follows the leader label: set it only once the webhook really answers.
        if env.get("TENANTRY_WEBHOOK_PORT"):
            await _listening(int(env["TENANTRY_WEBHOOK_PORT"]))
        state["leading"] = True
        while elector is not None and not await _label_own_pod(elector.kube, env, "leader"):
            await asyncio.sleep(elector.timing.retry_period)

    hold = asyncio.create_task(elector.hold()) if elector is not None else None
    lost_watch = _LostWatch()
    logging.getLogger("kopf").addHandler(lost_watch)
    terminating = asyncio.Event()
    quick_restarts = 0
    ready: asyncio.Task | None = None
    try:
        while True:
            memo.started = asyncio.Event()  # set by the startup handler
            ready = asyncio.create_task(mark_ready())
            began = time.monotonic()
            operator = asyncio.create_task(kopf.operator(clusterwide=True, standalone=True, memo=memo))
            lost_watch.arm(operator)
            await asyncio.wait({operator} | ({hold} if hold else set()), return_when=asyncio.FIRST_COMPLETED)
            if hold is not None and hold.done():
                hold.result()  # raises LeadershipLost
            try:
                await operator
            except asyncio.CancelledError:
                if not lost_watch.fired:
                    raise
            ready.cancel()
            state["leading"] = False
            if not lost_watch.fired:
                break  # a normal stop (SIGTERM, SIGINT)
            quick_restarts = quick_restarts + 1 if time.monotonic() - began < QUICK_RUN_SECONDS else 1
            if quick_restarts > MAX_QUICK_RESTARTS:
                # Something is persistently wrong (RBAC, a deleted CRD): let the kubelet's back-off take over.
                logging.getLogger("tenantry").critical("kopf lost a watch %d times in a row (%s): exiting",
                                                       quick_restarts, lost_watch.fired)
                raise SystemExit(70)
            delay = min(60.0, 2.0 ** (quick_restarts - 1))
            logging.getLogger("tenantry").warning("a kopf watch was lost (%s): starting kopf again in %.0f s",
                                                  lost_watch.fired, delay)
            # kopf's signal handlers left with it: until it runs again, a SIGTERM is ours to honour.
            for signum in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(signum, terminating.set)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(terminating.wait(), delay)
            if terminating.is_set():
                break
    except LeadershipLost as lost:
        stop_acting(str(lost))
    finally:
        state["leading"] = False
        logging.getLogger("kopf").removeHandler(lost_watch)
        for task in (ready, hold):
            if task is not None:
                task.cancel()
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
        podsecurity.register_webhook()  # pods and pod templates in tenant namespaces
    asyncio.run(run(dict(os.environ)))


if __name__ == "__main__":
    main()
