"""Read documents nested as deep as the API server stores them.

Anyone who may write an object may send its metadata.managedFields, and the API server keeps a
fieldsV1 nested up to its JSON decoder's limit (10,000 levels); every watch event, list and
admission review then carries it. Python's parsers (json, msgspec) give up at the interpreter's
recursion limit, 1,000 by default: one such object from a tenant admin would fail kopf's watch
(which then starts over, and the operator exits after eight quick restarts), keep an informer from
ever listing its kind, and leave the webhook unable to read the review (failing open). So the
limit is raised above the API server's, and the C stack they recurse on is made big enough for it:
msgspec takes about 800 bytes a level, so 10,000 levels are about 8 MiB, the usual main-thread
limit. The stacks are address space, used only as deep as a document goes; where the hard stack
limit is lower, the recursion limit follows it (a clean RecursionError, not a crash).
"""

from __future__ import annotations

import logging
import resource
import sys
import threading

KUBERNETES_MAX_DEPTH = 10_000  # the API server refuses JSON nested deeper
RECURSION_LIMIT = 25_000  # that, plus the frames of whoever parses, with room to spare
BYTES_PER_LEVEL = 1024  # of C stack a parser takes per level (msgspec about 800)
STACK_BYTES = 32 << 20  # RECURSION_LIMIT levels at BYTES_PER_LEVEL, and more


def allow_kubernetes_nesting() -> int:
    """Call first thing in a process's main(), before it starts any thread (a thread's stack size
    is set when it starts; the main thread's grows up to the stack limit set here). Returns the
    recursion limit set: lower than RECURSION_LIMIT when the hard stack limit is lower (then a
    document nested deeper fails with RecursionError, as before, instead of overflowing the stack)."""
    threading.stack_size(STACK_BYTES)
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    if soft != resource.RLIM_INFINITY and soft < STACK_BYTES:
        wanted = STACK_BYTES if hard == resource.RLIM_INFINITY else min(STACK_BYTES, hard)
        if wanted > soft:
            resource.setrlimit(resource.RLIMIT_STACK, (wanted, hard))
            soft = wanted
    stack = STACK_BYTES if soft == resource.RLIM_INFINITY else soft
    limit = min(RECURSION_LIMIT, stack // BYTES_PER_LEVEL)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), limit))
    if limit < KUBERNETES_MAX_DEPTH + 100:
        logging.getLogger("tenantry").warning(
            "the stack limit (%d KiB) lets this process read documents nested about %d levels deep, not the "
            "%d the API server stores: raise it (ulimit -s %d)", stack // 1024, limit, KUBERNETES_MAX_DEPTH,
            STACK_BYTES // 1024)
    return sys.getrecursionlimit()
