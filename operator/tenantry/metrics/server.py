"""The operator's /metrics endpoint: the tenant exposition, then prometheus_client's registry.

Served by aiohttp on the operator's own event loop, where the reconcile also puts and removes
facts: the exposition is never read half-changed, and needs no lock. gzip is one member built
from deflated pieces: each chunk of the tenant exposition is deflated once, in a thread (zlib
releases the GIL), when it is new, and kept while the exposition hands out the same chunk; only
the registry's few kilobytes are deflated on every scrape.
"""

from __future__ import annotations

import asyncio
import struct
import zlib

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from tenantry.metrics.tenants import TenantExposition

# Level 1: a third of the time of the default level, for about 15% more bytes (bench/run.py).
GZIP_LEVEL = 1
# A gzip member with no name and no time (RFC 1952): magic, deflate, no flags, mtime 0, OS unknown.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip: named, or by `*`, with a q above 0."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *parameters = (part.strip() for part in item.split(";"))
        q = next((p[2:] for p in parameters if p.lower().startswith("q=")), "1")
        try:
            weights[coding.lower()] = float(q)
        except ValueError:
            weights[coding.lower()] = 0.0
    return weights.get("gzip", weights.get("*", 0.0)) > 0


def _deflate(data: bytes, mode: int = zlib.Z_SYNC_FLUSH) -> bytes:
    """Raw deflate with a fresh dictionary, ending on a byte boundary: blocks that can follow any
    others in one stream (they never refer back), and be followed (not final unless Z_FINISH)."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(mode)


def _deflate_new(new: list[bytes], chunks: list[bytes]) -> tuple[list[bytes], int]:
    """The new chunks deflated, and the CRC-32 of all chunks in order (run in a thread)."""
    crc = 0
    for chunk in chunks:
        crc = zlib.crc32(chunk, crc)
    return [_deflate(chunk) for chunk in new], crc


class GzipBody:
    """gzip(chunks + tail), deflating only the chunks it has not seen before (by identity)."""

    def __init__(self) -> None:
        self._deflated: dict[int, tuple[bytes, bytes]] = {}  # id(chunk) -> (chunk, deflated)
        self._head: list[bytes] | None = None
        self._deflated_head, self._head_crc, self._head_size = b"", 0, 0

    async def __call__(self, chunks: list[bytes], tail: bytes) -> bytes:
        if chunks is not self._head:
            # An id in `known` is the chunk it was stored with: `known` holds that chunk alive.
            known = self._deflated
            new = [chunk for chunk in chunks if id(chunk) not in known]
            deflated, crc = await asyncio.get_running_loop().run_in_executor(None, _deflate_new, new, chunks)
            fresh = {id(chunk): (chunk, d) for chunk, d in zip(new, deflated, strict=True)}
            # Kept: the chunks of this exposition only (holding each chunk keeps its id unique).
            self._deflated = {id(chunk): known.get(id(chunk)) or fresh[id(chunk)] for chunk in chunks}
            self._head, self._head_crc, self._head_size = chunks, crc, sum(map(len, chunks))
            self._deflated_head = b"".join(self._deflated[id(chunk)][1] for chunk in chunks)
        trailer = struct.pack("<II", zlib.crc32(tail, self._head_crc), (self._head_size + len(tail)) & 0xFFFFFFFF)
        return _GZIP_HEADER + self._deflated_head + _deflate(tail, zlib.Z_FINISH) + trailer


def metrics_app(exposition: TenantExposition, registry: CollectorRegistry = REGISTRY) -> web.Application:
    """An aiohttp application answering GET /metrics."""
    gzip_body = GzipBody()

    async def metrics(request: web.Request) -> web.Response:
        chunks, operator = exposition.chunks(), generate_latest(registry)
        headers = {"Content-Type": CONTENT_TYPE_PLAIN_0_0_4, "Vary": "Accept-Encoding"}
        if accepts_gzip(request.headers.get("Accept-Encoding", "")):
            headers["Content-Encoding"] = "gzip"
            return web.Response(body=await gzip_body(chunks, operator), headers=headers)
        return web.Response(body=b"".join([*chunks, operator]), headers=headers)

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics)])
    return app


async def serve_metrics(exposition: TenantExposition, port: int, address: str = "0.0.0.0",
                        registry: CollectorRegistry = REGISTRY) -> web.AppRunner:
    """Serve /metrics on address:port from the running event loop; `await runner.cleanup()` stops it."""
    runner = web.AppRunner(metrics_app(exposition, registry), handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    return runner
