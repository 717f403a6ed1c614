"""A write is checked by the fence (leadership, the shard) again once its connection is ready, not
only before it waits for one (a concurrency review, 3 Dec): the session has 64 connections, and
a write queued behind them on a busy replica reached the API server seconds after the shard was
lost, with nothing but the first check behind it.

A real aiohttp server stands in for a slow API server (what is under test is the client's pool and
its hooks; the fence against real Leases is tested in tests/integration/test_shards.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from tenantry.adapters.http import Api
from tenantry.adapters.kube import Kube
from tests.integration.net import free_port


class Lost(Exception):
    """What the fence raises (ShardLost in the operator)."""


class NoCredentials:
    def headers(self, fresh: bool = False) -> dict[str, str]:
        return {}


def test_a_write_that_waited_for_a_connection_is_checked_again_before_it_is_sent() -> None:
    received: list[str] = []
    answer = asyncio.Event()
    lost = False

    async def slow(request: web.Request) -> web.Response:
        received.append(request.path)
        await answer.wait()
        body = await request.json()
        return web.json_response({**body, "metadata": {**body["metadata"], "resourceVersion": "1"}})

    def fence() -> None:
        if lost:
            raise Lost("shard 3 was lost by this replica")

    async def run() -> list[Any]:
        nonlocal lost
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", slow)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        api = Api.__new__(Api)
        api._server, api._ssl, api._credentials, api._session = f"http://127.0.0.1:{port}", False, NoCredentials(), None
        api._timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=30)
        kube = Kube(api, fence)
        writes = [asyncio.create_task(kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                                                   "metadata": {"name": f"cm{i}", "namespace": "tenant-x"}}))
                  for i in range(70)]
        for _ in range(500):  # until the pool's 64 connections are all busy at the server
            if len(received) == 64:
                break
            await asyncio.sleep(0.01)
        lost = True  # the shard goes while six writes wait for a connection
        answer.set()
        results = await asyncio.gather(*writes, return_exceptions=True)
        assert runner.server is not None
        pooled = sum(len(idle) for idle in api._connected().connector._conns.values())  # type: ignore[union-attr]
        await api.close()
        for _ in range(500):  # until the server saw every connection close (a leaked one stays open)
            if not runner.server.connections:
                break
            await asyncio.sleep(0.01)
        open_after_close = len(runner.server.connections)
        await runner.cleanup()
        return [results, pooled, open_after_close]

    results, pooled, open_after_close = asyncio.run(run())
    assert len(received) == 64
    assert sum(isinstance(r, Lost) for r in results) == 6 and sum(isinstance(r, dict) for r in results) == 64
    # A refused write gives its connection back: all 64 are in the pool, and none stays open after
    # the session is closed (raised in aiohttp's connection hooks, each one leaked a connection).
    assert (pooled, open_after_close) == (64, 0)
