"""The /metrics server over real HTTP on loopback (no cluster).

Tested here:
- plain: Content-Type text/plain; version=0.0.4, the tenant exposition then the registry's
  output, exactly; parsed back it has both
- gzip: one gzip member (Python's gzip and zlib, aiohttp's decoder and curl all read it) whose
  content is the plain body, also after tenants change, are removed, or only the registry changed
  (the cached deflated chunks never go stale)
- Prometheus's own parser (promtool check metrics) accepts what curl reads, hostile company names
  included
- Accept-Encoding: gzip named or by `*`, refused with q=0
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import shutil
import zlib

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.parser import text_string_to_metric_families

from tenantry.metrics.server import accepts_gzip, serve_metrics
from tenantry.metrics.tenants import TenantExposition
from tests.unit.test_metrics import facts

HOSTILE_COMPANY = 'Evil "Corp" \\ GmbH\n# TYPE tenantry_partner_mrr counter\ntenantry_partner_mrr{partner="x"} 1'


def scenario_exposition() -> TenantExposition:
    exposition = TenantExposition()
    exposition.BLOCK = 2  # several chunks per family
    for i, partner in enumerate(["acme", "acme", "beta", "acme", "gamma"]):
        exposition.put((partner, f"t{i}"), facts(f"t{i}", partner, company=HOSTILE_COMPANY if i == 1 else "A GmbH"))
    return exposition


async def fetch(session: aiohttp.ClientSession, url: str, encoding: str) -> tuple[bytes, dict[str, str]]:
    async with session.get(url, headers={"Accept-Encoding": encoding}) as response:
        assert response.status == 200
        return await response.read(), dict(response.headers)


def one_gzip_member(body: bytes) -> bytes:
    """The content of a body that is exactly one gzip member (CRC and size checked by zlib)."""
    reader = zlib.decompressobj(wbits=31)
    content = reader.decompress(body) + reader.flush()
    assert reader.eof and reader.unused_data == b""
    assert gzip.decompress(body) == content
    return content


def test_plain_and_gzip_over_http_stay_current() -> None:
    exposition, registry = scenario_exposition(), CollectorRegistry()
    passes = Counter("tenantry_reconcile", "Reconcile passes.", ["kind", "result"], registry=registry)
    passes.labels("Tenant", "ok").inc()

    async def scenario() -> None:
        runner = await serve_metrics(exposition, 0, "127.0.0.1", registry=registry)
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/metrics"
        try:
            async with aiohttp.ClientSession(auto_decompress=False) as session:
                async def check() -> None:
                    expected = exposition.render() + generate_latest(registry)
                    plain, headers = await fetch(session, url, "identity")
                    assert plain == expected
                    assert headers["Content-Type"] == CONTENT_TYPE_PLAIN_0_0_4 and "Content-Encoding" not in headers
                    packed, headers = await fetch(session, url, "gzip, deflate")
                    assert headers["Content-Encoding"] == "gzip"
                    assert headers["Content-Type"] == CONTENT_TYPE_PLAIN_0_0_4
                    assert one_gzip_member(packed) == expected and len(packed) < len(expected)

                await check()
                await check()  # everything cached
                exposition.put(("acme", "t3"), dataclasses.replace(facts("t3", "acme"), active_users=7))
                await check()
                exposition.remove(("beta", "t2"))
                exposition.put(("delta", "t9"), facts("t9", "delta"))
                await check()
                passes.labels("Tenant", "ok").inc()  # only the registry's part changed
                await check()
            async with aiohttp.ClientSession() as session:  # aiohttp's own gzip decoder
                async with session.get(url) as response:
                    text = await response.text()
            assert response.headers["Content-Encoding"] == "gzip"
            families = {family.name: family for family in text_string_to_metric_families(text)}
            assert families["tenantry_reconcile"].samples[0].value == 2
            assert 'tenant="t2"' not in text and 'partner="beta"' not in text
            assert {s.labels["company"] for s in families["tenantry_tenant_info"].samples} == {HOSTILE_COMPANY,
                                                                                               "A GmbH",
                                                                                               "Mustermann GmbH"}
        finally:
            await runner.cleanup()
    asyncio.run(scenario())


def test_curl_reads_it_and_promtool_accepts_it() -> None:
    assert shutil.which("curl") and shutil.which("promtool"), "`make deps` installs curl and Debian's prometheus"
    exposition = scenario_exposition()

    async def scenario() -> tuple[bytes, bytes]:
        runner = await serve_metrics(exposition, 0, "127.0.0.1", registry=CollectorRegistry())
        try:
            curl = await asyncio.create_subprocess_exec(
                "curl", "-sSf", "--compressed", "-D", "-", f"http://127.0.0.1:{runner.addresses[0][1]}/metrics",
                stdout=asyncio.subprocess.PIPE)
            out, _ = await curl.communicate()
            assert curl.returncode == 0
            headers, _, body = out.partition(b"\r\n\r\n")
            assert b"content-encoding: gzip" in headers.lower()
            promtool = await asyncio.create_subprocess_exec(
                "promtool", "check", "metrics", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT)
            verdict, _ = await promtool.communicate(body)
            assert promtool.returncode == 0, verdict.decode()
            return body, verdict
        finally:
            await runner.cleanup()
    body, _ = asyncio.run(scenario())
    assert body == exposition.render()


@pytest.mark.parametrize(("header", "gzip_ok"), [
    ("gzip", True), ("gzip, deflate, br", True), ("*", True), ("gzip;q=0.5", True), ("*;q=0, gzip", True),
    ("", False), ("identity", False), ("deflate", False), ("gzip;q=0", False), ("gzip;q=0,*", False),
    ("*;q=0", False)])
def test_accept_encoding(header: str, gzip_ok: bool) -> None:
    assert accepts_gzip(header) is gzip_ok
