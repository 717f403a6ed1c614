"""Read documents nested as deep as the API server stores them.

Anyone who may write an object may send its metadata.managedFields, and the API server keeps a
fieldsV1 nested up to its JSON decoder's limit (10,000 levels); every watch event, list and
admission review then carries it. Python's parsers (json, msgspec) give up at the interpreter's
recursion limit, 1,000 by default: one such object from a tenant admin would fail kopf's watch
(which then starts over, and the operator exits after eight quick restarts), keep an informer from
ever listing its kind, and leave the webhook unable to read the review (failing open). So the
limit is raised above the API server's, and the C stack they recurse on is made big enough for it:
msgspec takes about 800 bytes a level, so 10,000 levels are about 8 MiB, the usual main-thread
limit. The stacks are address space, used only as deep as a document goes.
"""

from __future__ import annotations

import resource
import sys
import threading

KUBERNETES_MAX_DEPTH = 10_000  # the API server refuses JSON nested deeper
RECURSION_LIMIT = 25_000  # that, plus the frames of whoever parses, with room to spare
STACK_BYTES = 64 << 20  # RECURSION_LIMIT levels at about 800 bytes each, and more


def allow_kubernetes_nesting() -> None:
    """Call first thing in a process's main(), before it starts any thread (a thread's stack size
    is set when it starts; the main thread's grows up to the stack limit set here)."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    threading.stack_size(STACK_BYTES)
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    if soft != resource.RLIM_INFINITY and soft < STACK_BYTES:
        wanted = STACK_BYTES if hard == resource.RLIM_INFINITY else min(STACK_BYTES, hard)
        resource.setrlimit(resource.RLIMIT_STACK, (max(soft, wanted), hard))
