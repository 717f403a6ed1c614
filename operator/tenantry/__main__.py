"""`python -m tenantry` / `tenantry-operator`: run the operator (all namespaces).

With TENANTRY_LEADER_ELECTION=true (the chart's default, two replicas) only the replica holding
the Lease runs kopf; the others wait. Every replica is Ready (so rollouts and health checks see a
healthy Deployment); the active one labels its own pod tenantry.dev/role=leader once it serves,
and the chart's Service selects that label, so webhook calls and scrapes reach the active one.
/healthz: the process runs. /readyz: it is a standby, or it is active and serves: kopf started,
the FeatureSets and Brandings are loaded, every informer has listed its kind, and the webhook
answers (503 with the phase while starting, or while kopf starts again after a lost watch).
/leader: it is active and serves.

With TENANTRY_SHARDS above 1 every replica runs kopf and works on the partners of the shards it
holds (handlers/leadership.ShardElector); each labels itself leader (active) once it serves, so
the Service sends webhook calls to all of them and Prometheus scrapes each one's own tenants.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
import uuid

import kopf
from aiohttp import web

from tenantry.adapters import allocator
from tenantry.adapters.kube import Kube
from tenantry.adapters.nesting import allow_kubernetes_nesting
from tenantry.domain.children import ObjectRef
from tenantry.domain.naming import ROLE_LABEL
from tenantry.domain.settings import ProcessSettings, Settings
from tenantry.handlers import podsecurity  # noqa: F401  (registers the pod security re-check)
from tenantry.handlers import runtime as running  # importing it registers the Tenant handlers
from tenantry.handlers.admission import Judges
from tenantry.handlers.leadership import LeaderElector, LeadershipLost, ShardElector, stop_acting
from tenantry.handlers.webhook import WebhookServer
from tenantry.metrics.operator import LEADER, SHARDS_HELD

QUICK_RUN_SECONDS = 600.0  # a run of kopf shorter than this that lost a watch counts as a quick restart
MAX_QUICK_RESTARTS = 8  # then exit: 1+2+4+...+60 s of back-off did not help


READY_PHASES = ("standby", "serving")  # a standby is Ready: the Service selects the leader by its label


async def _health(port: int, address: str, state: dict[str, object]) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        phase = str(state["phase"])
        return web.Response(status=200 if phase in READY_PHASES else 503, text=phase)

    async def leader(_: web.Request) -> web.Response:
        return web.Response(text="leading") if state["leading"] else web.Response(status=503, text="standby")

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/leader", leader)])
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    return runner


async def _label_own_pod(kube: Kube, settings: Settings, role: str) -> bool:
    """tenantry.dev/role on our pod, which the chart's Service selects (outside a pod: nothing to do)."""
    if not settings.process.pod_name or not settings.process.in_cluster:
        return True
    pod = ObjectRef("v1", "Pod", settings.process.pod_name, settings.operator.platform_namespace)
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


WEBHOOK_SWITCH_SECONDS = 0.0005
TRIM_SECONDS = 5.0


async def _trimming() -> None:
    # A burst (an onboarding, a restart's LISTs) frees most of what it allocated, but glibc keeps the
    # free pages: given back every few seconds, they do not add up to the process's resident peak.
    while True:
        await asyncio.sleep(TRIM_SECONDS)
        allocator.trim(at_least=allocator.TRIM_FROM)


async def run(settings: Settings) -> None:
    process = settings.process
    state: dict[str, object] = {"leading": False, "phase": "starting"}
    health = await _health(process.health_port, process.health_address, state) if process.health_port else None
    # The one runtime of the process: kopf hands it to every handler as its memo.
    memo = running.Runtime.of(settings)
    webhook = None
    if process.webhook_port:
        # The reconcile holds the interpreter for up to one switch interval while the webhook's
        # thread waits; at the default 5 ms a review waits that long at each of its steps (accept,
        # read, answer), which is most of its latency while the operator onboards.
        sys.setswitchinterval(WEBHOOK_SWITCH_SECONDS)
        # Its own thread and loop, once per process: it answers 503 until kopf's start-up has run.
        webhook = WebhookServer(process, lambda: Judges(memo).by_path())
        webhook.start()
    elector = shards = None
    identity = process.pod_name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    if process.shards > 1:
        shards = memo.shards = ShardElector(
            Kube.from_environment(), settings.operator.platform_namespace, process.lease_name, identity,
            process.lease, process.shards, lambda shard, held: running.shard_changed(memo, shard, held))
        SHARDS_HELD.set_function(lambda: len(shards.held()))
        await _label_own_pod(shards.kube, settings, "standby")
    elif process.leader_election:
        elector = LeaderElector(Kube.from_environment(), settings.operator.platform_namespace, process.lease_name,
                                identity, process.lease)
        # A restarted container keeps its pod: the label of a previous, leading run must go first.
        await _label_own_pod(elector.kube, settings, "standby")
        state["phase"] = "standby"
        await elector.acquire()
        state["phase"] = "starting"
        memo.leading = elector.leading
        LEADER.set_function(lambda: 1 if elector.leading() else 0)
    else:
        LEADER.set(1)  # no election: this process is the only one that acts

    async def mark_ready() -> None:
        await memo.started.wait()
        await memo.cache.wait_synced()  # every informer has listed its kind: passes read the truth
        # The Service follows the leader label: set it only once the webhook really answers.
        if process.webhook_port:
            await _listening(process.webhook_port)
        state["leading"], state["phase"] = True, "serving"
        labeller = elector or shards
        while labeller is not None and not await _label_own_pod(labeller.kube, settings, "leader"):
            await asyncio.sleep(labeller.timing.retry_period)

    hold = asyncio.create_task(elector.hold()) if elector is not None else None
    trimming = asyncio.create_task(_trimming())
    # Runs beside kopf for the whole process; losing a shard ends only that shard's work.
    renewing = asyncio.create_task(shards.run()) if shards is not None else None
    lost_watch = _LostWatch()
    logging.getLogger("kopf").addHandler(lost_watch)
    terminating = asyncio.Event()
    quick_restarts = 0
    ready: asyncio.Task | None = None
    try:
        while True:
            memo.started = asyncio.Event()  # set by the runtime's start, which kopf's startup runs
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
            state["leading"], state["phase"] = False, "restarting"
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
        state["leading"], state["phase"] = False, "stopping"
        if webhook is not None:
            webhook.stop()
        logging.getLogger("kopf").removeHandler(lost_watch)
        for task in (ready, hold, renewing, trimming):
            if task is not None:
                task.cancel()
        if elector is not None:
            with contextlib.suppress(Exception):
                await elector.release()
        if shards is not None:
            with contextlib.suppress(Exception):
                await asyncio.gather(renewing, return_exceptions=True)  # no round racing the hand-over
                await shards.release_all()
        if health is not None:
            await health.cleanup()


class _Routine(logging.Filter):
    """kopf's line for every handler that succeeded: dozens a second at a start, burying what a
    person needs (Ready transitions, refusals, retries). Shown at the debug level only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or not record.name.startswith("kopf"):
            return True
        message = record.getMessage()
        return not (message.endswith(" succeeded.") or " is processed: " in message)


def configure_logging(process: ProcessSettings) -> None:
    """Level and format from the settings: text lines for people, JSON lines for log collectors."""
    debug = process.log_level == "debug"
    kopf.configure(debug=debug, verbose=debug,
                   log_format=kopf.LogFormat.JSON if process.log_format == "json" else kopf.LogFormat.FULL)
    logging.getLogger().setLevel(process.log_level.upper())
    if not debug:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_Routine())
        # One line per HTTP request (the API client's, the health probes') drowns the operator's own.
        for noisy in ("httpx", "httpx2", "aiohttp.access"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def main() -> None:
    try:
        settings = Settings.from_env(os.environ)
    except ValueError as error:
        print(f"tenantry: cannot start: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.process)
    allocator.one_arena()  # before any thread starts
    allow_kubernetes_nesting()  # (before any thread starts, too)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
