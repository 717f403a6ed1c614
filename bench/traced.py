"""The operator under tracemalloc, for `BENCH_TRACEMALLOC=1 make bench`: on SIGUSR1 it writes the
allocations still alive, grouped by line and by file, to $BENCH_TRACEMALLOC_OUT (slow: memory only)."""

from __future__ import annotations

import os
import runpy
import signal
import sys
import tracemalloc


def dump(*_: object) -> None:
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    total = sum(stat.size for stat in snapshot.statistics("filename"))
    lines = [f"traced: {total / 2**20:.1f} MiB alive", "", "by file:"]
    lines += [f"{s.size / 2**20:8.1f} MiB {s.count:9d} blocks  {s.traceback[0].filename}"
              for s in snapshot.statistics("filename")[:25]]
    lines += ["", "by line:"]
    lines += [f"{s.size / 2**20:8.1f} MiB {s.count:9d} blocks  {s.traceback[0]}"
              for s in snapshot.statistics("lineno")[:40]]
    with open(os.environ["BENCH_TRACEMALLOC_OUT"], "w") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    tracemalloc.start(1)
    signal.signal(signal.SIGUSR1, dump)
    sys.argv = ["tenantry"]
    runpy.run_module("tenantry", run_name="__main__", alter_sys=True)
