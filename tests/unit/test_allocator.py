"""The glibc allocator settings of the operator process (adapters/allocator.py), each in a fresh
interpreter so that its arenas and heap are its own.

Tested here:
- trim gives back the pages a burst freed, which glibc keeps inside the heap without it, and
  leaves the heap alone while less than it is asked to wait for is free
- one_arena puts a thread's allocations into the main heap, not into an arena of the thread's own
- both are no-ops (False) where there is no glibc
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tenantry.adapters import allocator

pytestmark = pytest.mark.skipif(allocator._LIBC is None, reason="the settings are glibc's; this libc is not glibc")

RSS = "def rss(): return int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024\n"


def _run(code: str) -> dict[str, float]:
    script = "import json\nfrom tenantry.adapters import allocator\n" + RSS + textwrap.dedent(code)
    # glibc's own defaults: the environment may tune the allocator (MALLOC_ARENA_MAX, GLIBC_TUNABLES).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120,
                         env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_trim_returns_the_pages_a_burst_freed() -> None:
    result = _run("""
        burst = [bytes(1000) for _ in range(60_000)]   # about 60 MiB from malloc (over 512 bytes each)
        pin = bytes(1000)                              # above them: the heap's top stays in use
        del burst
        before = rss()
        trimmed = allocator.trim()
        print(json.dumps({"before": before, "after": rss(), "trimmed": trimmed}))
    """)
    assert result["trimmed"]
    assert result["before"] - result["after"] > 40, result  # MiB


def test_trim_waits_until_enough_is_free() -> None:
    result = _run("""
        burst = [bytes(1000) for _ in range(60_000)]
        pin = bytes(1000)
        del burst
        free = allocator.free_bytes()
        print(json.dumps({"free": free, "skipped": not allocator.trim(at_least=free + (1 << 30)),
                          "trimmed": allocator.trim(at_least=free // 2)}))
    """)
    assert result["free"] > 40 << 20 and result["skipped"] and result["trimmed"]


def heap_growth(one_arena: bool) -> float:
    """MiB by which the main heap grew while a thread allocated about 30 MiB and kept it."""
    return _run(f"""
        import threading
        if {one_arena}:
            allocator.one_arena()
        def heap():
            size, in_heap = 0, False
            for line in open('/proc/self/smaps'):
                if line[0] in '0123456789abcdef' and '-' in line.split()[0]:
                    in_heap = line.rstrip().endswith('[heap]')
                elif in_heap and line.startswith('Rss:'):
                    size += int(line.split()[1])
            return size / 1024
        kept, before = [], heap()
        worker = threading.Thread(target=lambda: kept.extend(bytes(1000) for _ in range(30_000)))
        worker.start(); worker.join()
        print(json.dumps({{"growth": heap() - before}}))
    """)["growth"]


def test_one_arena_keeps_a_threads_allocations_in_the_main_heap() -> None:
    assert heap_growth(one_arena=True) > 20
    assert heap_growth(one_arena=False) < 5  # the contrast: glibc's default gives the thread its own arena


def test_without_glibc_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_LIBC", None)
    assert allocator.trim() is False
    assert allocator.one_arena() is False
