"""Raw JSON requests to the Kubernetes API on one aiohttp session: dicts in, dicts out.

The operator's hot path is small requests (a server-side apply, a status patch, a watch event)
whose bodies it only ever handles as dicts. Profiling showed most of its CPU going into the HTTP
stack of the general-purpose client (httpx, httpcore, anyio, h11 and TLS wrappers) rather than
into the operator; aiohttp on asyncio's own TLS does the same requests for about a third of it,
and msgspec decodes JSON faster than the standard library. lightkube still reads the kubeconfig
(or the in-cluster service account) and knows each kind's URL; only the transport is ours.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextvars
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import msgspec
import yarl
from lightkube.config.client_adapter import verify_cluster
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.core.resource import NamespacedResource
from lightkube.core.resource_registry import resource_registry

Body = dict[str, Any]
_decode = msgspec.json.decode
_encode = msgspec.json.encode
TOKEN_REFRESH_SECONDS = 60.0  # a projected service-account token is rotated by the kubelet
WATCH_SECONDS = 300  # the API server ends each watch after about this long; it is then resumed
LIST_PAGE = 500  # objects per page of a LIST (client-go's pager reads in pages of 500 too)
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"  # served since 1.15


# asyncio gives every TLS connection a 256 KiB read buffer (SSLProtocol.max_size), allocated up
# front: with the operator's pool, kopf's and the webhook's incoming connections that was 30 MiB of
# a 1,000-tenant operator's memory (tracemalloc), for reads that are rarely more than a few KiB.
# Bigger answers (a LIST) are read in more, smaller pieces.
asyncio.sslproto.SSLProtocol.max_size = 32 * 1024


def _items(listing: _Listing, api_version: str, kind: str) -> Iterator[Body]:
    for raw in listing.items or ():
        item = _decode(raw)
        item["apiVersion"], item["kind"] = api_version, kind
        yield item


class _Listing(msgspec.Struct):
    """A LIST answer with its items left as raw JSON, to be decoded one by one."""

    items: list[msgspec.Raw] | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.items = self.items or []  # "items": null for an empty list


class ApiFailure(Exception):
    """The API server answered with an error status (or a watch sent an ERROR event)."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code, self.reason, self.message = code, reason, message


def _failure(code: int, content: bytes) -> ApiFailure:
    try:
        status = _decode(content)
    except msgspec.DecodeError:
        status = {}
    if not isinstance(status, dict):
        status = {}
    return ApiFailure(int(status.get("code") or code), str(status.get("reason") or ""),
                      str(status.get("message") or content[:200].decode(errors="replace")))


def _object_missing(content: bytes) -> bool:
    """A 404 about the object (a Status naming it), not about its kind: a kind that is not served
    (a CRD not installed, or not yet served again after an API server restart) answers a plain 404
    without details, and must not read as "the object does not exist"."""
    try:
        status = _decode(content)
    except msgspec.DecodeError:
        return False
    return isinstance(status, dict) and bool((status.get("details") or {}).get("name"))


def collection_path(api_version: str, kind: str, namespace: str | None) -> str:
    """The URL path of a kind's objects (in one namespace; every namespace for None)."""
    resource = resource_registry.load(api_version, kind)
    if resource is None:
        raise ValueError(f"unknown kind {kind} of {api_version}")
    prefix = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    plural = resource._api_info.plural
    if namespace and issubclass(resource, NamespacedResource):
        return f"{prefix}/namespaces/{namespace}/{plural}"
    return f"{prefix}/{plural}"


def object_path(api_version: str, kind: str, namespace: str | None, name: str, subresource: str = "") -> str:
    return f"{collection_path(api_version, kind, namespace)}/{name}" + (f"/{subresource}" if subresource else "")


async def _lines(stream: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The non-empty lines of a stream of newline-separated JSON (a watch), as they complete.
    Each byte is looked at once, however many reads a long line arrives in."""
    pending = bytearray()
    async for chunk in stream.iter_any():
        searched = len(pending)
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", max(start, searched))) >= 0:
            if end > start:
                yield bytes(pending[start:end])
            start = end + 1
        del pending[:start]
        await asyncio.sleep(0)  # a burst of events must not starve the loop


class _Credentials:
    """The Authorization header: a token (re-read from its file now and then, and after a 401) or
    basic auth; client certificates go into the TLS context instead."""

    def __init__(self, config: SingleConfig) -> None:
        user = config.user
        if user is not None and (user.exec or user.auth_provider):
            raise ValueError("the operator's client supports tokens, token files, client certificates and "
                             "basic auth, not exec or auth-provider credentials: run it with a ServiceAccount "
                             "token (in the cluster) or a kubeconfig holding a token or a client certificate")
        self._user, self._header, self._read_at = user, "", 0.0
        if user is not None and user.token:
            self._header = f"Bearer {user.token}"
        elif user is not None and user.username and user.password:
            self._header = aiohttp.BasicAuth(user.username, user.password).encode()

    def headers(self, fresh: bool = False) -> dict[str, str]:
        token_file = self._user.token_file if self._user is not None else None
        if token_file and (fresh or time.monotonic() - self._read_at > TOKEN_REFRESH_SECONDS):
            self._header = f"Bearer {Path(token_file).read_text().strip()}"
            self._read_at = time.monotonic()
        return {"Authorization": self._header} if self._header else {}


# Set by a writer (Kube._write) around a request that must be checked again once its connection is
# ready, right before it is sent: a check made before a long wait for one of the pool's
# connections would let a replica that lost its shard meanwhile write all the same.
BEFORE_SEND: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar("before_send",
                                                                                       default=None)


class _FencedConnector(aiohttp.TCPConnector):
    """Checks a write (BEFORE_SEND) once it has its connection, right before it is sent; a write
    refused then gives the connection back to the pool, unused and open (an exception raised in
    aiohttp's connection hooks instead left the connection open and out of the pool)."""

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        connection = await super().connect(req, traces, timeout)
        check = BEFORE_SEND.get()
        if check is not None:
            try:
                check()  # raises (ShardLost) to stop the request
            except BaseException:
                connection.release()
                raise
        return connection


class Api:
    """One API server, one aiohttp session (made on first use, inside the running loop)."""

    def __init__(self, config: SingleConfig, timeout: float = 30.0) -> None:
        self._server = config.cluster.server.rstrip("/")
        self._ssl = verify_cluster(config.cluster, config.user, config.abs_file) \
            if self._server.startswith("https:") else False
        self._credentials = _Credentials(config)
        # Per read, not per request: a LIST of many objects may take longer than one read does.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        # A watch is quiet for long stretches, but the server ends it after WATCH_SECONDS: silence
        # beyond that is a connection that died half-open, and the informer lists again.
        self._watch_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout,
                                                    sock_read=WATCH_SECONDS + 60)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_environment(cls, timeout: float = 30.0) -> Api:
        """In-cluster credentials, else $KUBECONFIG or ~/.kube/config (as kubectl finds them)."""
        return cls(KubeConfig.from_env().get(), timeout)

    def _connected(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # One connection per concurrent request, kept alive: the API server serves HTTP/1.1 here.
            self._session = aiohttp.ClientSession(connector=_FencedConnector(ssl=self._ssl, limit=64),
                                                  skip_auto_headers=("User-Agent",),
                                                  headers={"User-Agent": "tenantry-operator"})
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None,
                      content_type: str = "application/json") -> Body | None:
        """The decoded answer (None when a GET or DELETE finds no such object); raises ApiFailure
        for an error, including a 404 because the kind is not served."""
        content = await self._send(method, path, body, params, content_type)
        if content is None:
            return None
        return _decode(content) if content else {}

    async def _send(self, method: str, path: str, body: Any, params: Mapping[str, str] | None,
                    content_type: str = "application/json", accept: str | None = None) -> bytes | None:
        """The answer's bytes (None: no such object)."""
        data = None if body is None else _encode(body)
        for attempt in (0, 1):
            headers = self._credentials.headers(fresh=attempt == 1)
            if data is not None:
                headers["Content-Type"] = content_type
            if accept is not None:
                headers["Accept"] = accept
            async with self._connected().request(method, self._url(path, params), data=data,
                                                 headers=headers, timeout=self._timeout) as response:
                content = await response.read()
                if response.status == 401 and attempt == 0:
                    continue  # a rotated token: read it again, once
                if response.status == 404 and method in ("GET", "DELETE") and _object_missing(content):
                    return None
                if response.status >= 400:
                    raise _failure(response.status, content)
                return content
        raise AssertionError("unreachable")

    def _url(self, path: str, params: Mapping[str, str] | None) -> yarl.URL:
        """The request's URL, encoded here once: paths are made of DNS names, and letting aiohttp
        parse the text and merge the query again cost a few per cent of the operator's CPU."""
        query = f"?{urlencode(params)}" if params else ""
        return yarl.URL(self._server + path + query, encoded=True)

    async def list(self, api_version: str, kind: str, namespace: str | None, labels: Mapping[str, str] | None = None,
                   page: int = LIST_PAGE, metadata_only: bool = False) -> AsyncIterator[tuple[Iterator[Body], str]]:
        """Every object (with apiVersion and kind, which list items lack), page by page: each page
        an iterator decoding its objects one at a time, with the list's resourceVersion.

        In pages of `page` objects, one consistent list (the API server's continue token): a
        LIST of every ConfigMap of 10,000 tenants is some 200 MB of JSON, which was the operator's
        memory peak at a restart; this way only one page's bytes and the item at hand are alive
        (a consumer keeps a compact copy of what it needs).

        metadata_only: each object's metadata alone (the API server's PartialObjectMetadataList),
        for a caller that needs to know only which objects exist.
        """
        accept = METADATA_LIST if metadata_only else None
        params = {"limit": str(page)}
        if labels:
            params["labelSelector"] = ",".join(f"{k}={v}" for k, v in labels.items())
        while True:
            content = await self._send("GET", collection_path(api_version, kind, namespace), None, params,
                                       accept=accept)
            if content is None:
                raise ApiFailure(404, "NotFound", f"{kind} of {api_version} is not served")
            listing = msgspec.json.decode(content, type=_Listing)
            yield _items(listing, api_version, kind), str(listing.metadata.get("resourceVersion") or "")
            token = listing.metadata.get("continue")
            if not token:
                return
            params = {**params, "continue": str(token)}

    async def watch(self, api_version: str, kind: str, namespace: str | None, labels: Mapping[str, str] | None,
                    resource_version: str) -> AsyncIterator[tuple[str, Body]]:
        """(ADDED | MODIFIED | DELETED | BOOKMARK, object) from resource_version on, until the server
        ends the watch; an ERROR event (410: the version is too old) raises ApiFailure."""
        params = {"watch": "true", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(WATCH_SECONDS)}
        if labels:
            params["labelSelector"] = ",".join(f"{k}={v}" for k, v in labels.items())
        async with self._connected().get(self._server + collection_path(api_version, kind, namespace),
                                         params=params, headers=self._credentials.headers(),
                                         timeout=self._watch_timeout) as response:
            if response.status >= 400:
                raise _failure(response.status, await response.read())
            async for line in _lines(response.content):
                event = _decode(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise ApiFailure(int(status.get("code") or 500), str(status.get("reason") or ""),
                                     str(status.get("message") or ""))
                yield event["type"], event["object"]
