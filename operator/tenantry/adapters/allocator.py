"""glibc's allocator, tuned for one long-lived process that holds many small objects.

Python hands objects over 512 bytes (each cached object's JSON, dicts of many keys) to malloc.
By default glibc gives every thread an arena of its own and keeps freed pages inside its heap;
both show as resident memory that no object uses. Elsewhere than on glibc this does nothing."""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC = _glibc()


def one_arena() -> bool:
    """Every thread allocates from the main arena. Call before starting threads: the webhook's thread
    would otherwise fill an arena of its own whose free pages the reconcile never reuses. The
    interpreter lock already serialises most allocations, so one arena costs no contention."""
    return bool(_LIBC is not None and _LIBC.mallopt(M_ARENA_MAX, 1))


def trim() -> bool:
    """Give the heap's wholly free pages back to the system (True if any were)."""
    return bool(_LIBC is not None and _LIBC.malloc_trim(0))
