"""The admission webhook's HTTPS server: its own thread and event loop, AdmissionReview in and out.

Why not kopf's webhook server: kopf answers admission requests on the loop that reconciles, so
while the operator onboards a thousand tenants each review waits behind reconcile work (p99 of
seconds), and every review goes through kopf's cause and handler machinery. Here the server has
a loop of its own in a thread (the reconcile holds the interpreter at most one switch interval
at a time) and a review is one function call. It reads what the reconcile keeps in memory
(catalogue, namespace informer) with plain dict lookups, which are atomic under the GIL, and
makes its own API requests on its own connection (`Kube` on this thread's loop).

One server per process, started once (kopf may be restarted in the same process); until kopf's
start-up has built the catalogue it answers 503, which the API server treats by the webhook's
failurePolicy. The certificate is re-read when its files change (cert-manager renews it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

from tenantry.domain.settings import ProcessSettings
from tenantry.metrics.operator import ADMISSION_REVIEWS, ADMISSION_SECONDS

logger = logging.getLogger("tenantry")
CERT_CHECK_SECONDS = 10.0


class Denied(Exception):
    """The review's answer is no: `message` for the user (kubectl prints it), an HTTP-like code."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.message, self.code = message, code


class NotReady(Exception):
    """The operator has not built what a review reads yet (a 503: the failurePolicy decides)."""


@dataclass
class Review:
    """One AdmissionReview request, as the judges read it."""

    operation: str
    body: Mapping[str, Any]
    old: Mapping[str, Any] | None
    userinfo: Mapping[str, Any]
    warnings: list[str] = field(default_factory=list)
    patch: list[dict[str, Any]] = field(default_factory=list)  # JSON patch ops (mutating webhooks only)


Judge = Callable[[Review], Awaitable[None]]  # raises Denied; may add warnings


def answer(review: Mapping[str, Any], judge_outcome: Denied | None, warnings: list[str],
           patch: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The AdmissionReview response for a request, in the request's own API version."""
    request = review.get("request") or {}
    response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": judge_outcome is None}
    if judge_outcome is not None:
        response["status"] = {"message": judge_outcome.message, "code": judge_outcome.code}
    elif patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(msgspec.json.encode(patch)).decode()
    if warnings:
        response["warnings"] = warnings
    return {"apiVersion": review.get("apiVersion", "admission.k8s.io/v1"), "kind": "AdmissionReview",
            "response": response}


def review_of(document: Mapping[str, Any]) -> Review:
    request = document.get("request") or {}
    return Review(operation=str(request.get("operation") or ""), body=request.get("object") or {},
                  old=request.get("oldObject"), userinfo=request.get("userInfo") or {})


def _decoded(body: bytes) -> Mapping[str, Any] | None:
    """The AdmissionReview in a request body, or None when it is none."""
    try:
        document = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    return document if isinstance(document, dict) and isinstance(document.get("request"), dict) else None


# The request's uid and the review's apiVersion, found in a body that did not decode: the API
# server writes the request's uid before its object.
_UID = re.compile(rb'"uid"\s*:\s*"([0-9A-Za-z-]{1,64})"')
_REVIEW_VERSION = re.compile(rb'"apiVersion"\s*:\s*"(admission\.k8s\.io/v1(?:beta1)?)"')


def _unreadable(path: str, body: bytes) -> web.Response:
    """A review the webhook cannot read is refused, not answered with an error status: failurePolicy
    Ignore would let an error through (and a request whose object we cannot read is not one we have
    judged). Only a body that names no request at all gets 400."""
    uid = _UID.search(body)
    if uid is None:
        return web.Response(status=400, text="not an AdmissionReview")
    version = _REVIEW_VERSION.search(body)
    logger.warning("the %s webhook could not read a review of %d bytes; refusing it", path, len(body))
    ADMISSION_REVIEWS.labels(path, "unreadable").inc()
    review = {"apiVersion": version.group(1).decode() if version else "admission.k8s.io/v1",
              "request": {"uid": uid.group(1).decode()}}
    refusal = Denied("the operator could not read this request (it is not valid JSON, or nested deeper than "
                     "the API server allows); simplify the object, or tell the platform team", code=400)
    return web.Response(body=msgspec.json.encode(answer(review, refusal, [])), content_type="application/json")


async def _serve(judges: Mapping[str, Judge], request: web.Request) -> web.Response:
    path = request.match_info["path"]
    judge = judges.get(path)
    if judge is None:
        return web.Response(status=404, text="no such webhook")
    body = await request.read()
    document = _decoded(body)
    if document is None:
        return _unreadable(path, body)
    started = time.perf_counter()
    review = review_of(document)
    outcome: Denied | None = None
    result = "allowed"
    try:
        if review.operation in ("CREATE", "UPDATE"):  # deletes are never intercepted
            await judge(review)
    except Denied as denied:
        outcome, result = denied, "denied"
    except NotReady:
        result = "unavailable"
        return web.Response(status=503, text="the operator is starting")
    except Exception:  # noqa: BLE001
        # Closed, not open: with failurePolicy Ignore an error status would let the request in,
        # so a review the judge fails on (a bug a tenant admin found) is refused, and logged.
        logger.exception("the %s webhook failed on a review; refusing it", path)
        outcome, result = Denied("the operator could not judge this request (its log says why); try again or "
                                 "tell the platform team", code=500), "error"
    finally:
        ADMISSION_SECONDS.labels(path).observe(time.perf_counter() - started)
        ADMISSION_REVIEWS.labels(path, result).inc()
    return web.Response(body=msgspec.json.encode(answer(document, outcome, review.warnings, review.patch)),
                        content_type="application/json")


class _Certificate:
    """tls.crt/tls.key of the cert dir in one SSL context, loaded again when either file changes."""

    def __init__(self, folder: Path) -> None:
        self.files = (folder / "tls.crt", folder / "tls.key")
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._stamp = self._load()

    def _mtimes(self) -> tuple[float, float]:
        return (self.files[0].stat().st_mtime, self.files[1].stat().st_mtime)

    def _load(self) -> tuple[float, float]:
        stamp = self._mtimes()
        # A pair that does not load (a renewal half written: new certificate, old key) must not
        # reach the context that serves: a failed load there breaks every handshake after it.
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(*map(str, self.files))
        self.context.load_cert_chain(*map(str, self.files))
        return stamp

    async def follow(self) -> None:
        while True:
            await asyncio.sleep(CERT_CHECK_SECONDS)
            try:
                if self._mtimes() != self._stamp:
                    self._stamp = self._load()
                    logger.info("webhook certificate reloaded from %s", self.files[0].parent)
            except (OSError, ssl.SSLError) as error:  # half-written during a renewal: next time
                logger.warning("webhook certificate not reloaded: %s", error)


class WebhookServer:
    """Serves `judges` by URL path on the webhook port, on a thread of its own."""

    def __init__(self, process: ProcessSettings, judges: Callable[[], Mapping[str, Judge]]) -> None:
        """judges: made on the server's own loop (they may hold clients bound to it)."""
        self._process, self._make_judges = process, judges
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None

    def start(self) -> None:
        """Start the thread; returns once the port listens (raises what kept it from listening)."""
        threading.Thread(target=self._run, name="webhook", daemon=True).start()
        self._started.wait()
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        """Close the port and end the thread's loop (waits at most a few seconds)."""
        if self._loop is None or not self._loop.is_running():
            return
        done = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        with contextlib.suppress(Exception):
            done.result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _shutdown(self) -> None:
        self._follow.cancel()
        await self._runner.cleanup()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._listen())
        except BaseException as error:  # noqa: BLE001  (handed to start(), which raises it)
            self._failure = error
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    async def _listen(self) -> None:
        certificate = _Certificate(Path(self._process.webhook_cert_dir))
        judges = self._make_judges()
        # An object is at most ~1.5 MiB in etcd, but a review carries it twice (object and
        # oldObject) in JSON that escapes <, > and & as six bytes each: a smaller limit would turn
        # a padded Pod into a 413, which failurePolicy Ignore lets in.
        app = web.Application(client_max_size=32 * 2**20)
        async def serve(request: web.Request) -> web.Response:
            return await _serve(judges, request)
        app.add_routes([web.post("/{path}", serve)])
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self._process.webhook_address, self._process.webhook_port,
                          ssl_context=certificate.context).start()
        self._runner = runner
        self._follow = asyncio.get_running_loop().create_task(certificate.follow())
