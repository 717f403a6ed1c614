"""adapters/http.py without a server: what the operator's client makes of the API server's bytes.

Tested here:
- a watch stream is split into its lines however the reads cut it (mid-line, several lines in
  one read, empty lines, a line longer than many reads)
- a 404 naming the object means "no such object"; a plain 404 (the kind is not served) does not
- a LIST answer keeps its items as raw JSON, decoded one at a time (also "items": null)
"""

from __future__ import annotations

import asyncio
import json

from tenantry.adapters.http import _lines, _object_missing


class _Chunks:
    """A StreamReader stand-in that hands out fixed chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def iter_any(self):
        for chunk in self._chunks:
            yield chunk


def _split(chunks: list[bytes]) -> list[bytes]:
    async def collect() -> list[bytes]:
        return [line async for line in _lines(_Chunks(chunks))]  # type: ignore[arg-type]
    return asyncio.run(collect())


def test_lines_however_the_reads_cut_them() -> None:
    events = [json.dumps({"type": "ADDED", "object": {"n": i, "pad": "x" * (i * 7000)}}).encode() for i in range(5)]
    stream = b"\n".join(events) + b"\n\n"
    for size in (1, 3, 100, 4096, len(stream)):
        chunks = [stream[i:i + size] for i in range(0, len(stream), size)]
        assert _split(chunks) == events, size


def test_a_line_without_its_newline_yet_is_held_back() -> None:
    assert _split([b'{"a": 1}\n{"b"', b": 2"]) == [b'{"a": 1}']


def test_404_of_an_object_versus_a_kind_not_served() -> None:
    missing = {"kind": "Status", "reason": "NotFound", "code": 404,
               "details": {"name": "acme", "group": "tenantry.dev", "kind": "tenants"}}
    assert _object_missing(json.dumps(missing).encode())
    assert not _object_missing(b"404 page not found\n")
    assert not _object_missing(json.dumps({"kind": "Status", "reason": "NotFound", "code": 404}).encode())


def test_a_listing_is_decoded_item_by_item() -> None:
    import msgspec

    from tenantry.adapters.http import _Listing
    content = json.dumps({"kind": "ConfigMapList", "metadata": {"resourceVersion": "42"},
                          "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]}).encode()
    listing = msgspec.json.decode(content, type=_Listing)
    assert listing.metadata["resourceVersion"] == "42"
    assert [msgspec.json.decode(raw)["metadata"]["name"] for raw in listing.items] == ["a", "b"]
    assert msgspec.json.decode(b'{"metadata": {}, "items": null}', type=_Listing).items == []
