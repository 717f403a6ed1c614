"""glibc's allocator, tuned for one long-lived process that holds many small objects.

Python hands objects over 512 bytes (each cached object's JSON, dicts of many keys) to malloc.
By default glibc gives every thread an arena of its own and keeps freed pages inside its heap;
both show as resident memory that no object uses. Elsewhere than on glibc this does nothing."""

from __future__ import annotations

import ctypes

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
TRIM_FROM = 8 << 20  # bytes free in the heap before a trim is worth its walk over the heap


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _glibc() -> ctypes.CDLL | None:
    libc = ctypes.CDLL(None)  # the C library the interpreter already runs on
    if not (hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt")):
        return None  # musl, macOS: their allocators have neither
    if hasattr(libc, "mallinfo2"):  # glibc 2.33 and later
        libc.mallinfo2.restype = _Mallinfo2
    return libc


_LIBC = _glibc()


def one_arena() -> bool:
    """Every thread allocates from the main arena. Call before starting threads: the webhook's thread
    would otherwise fill an arena of its own whose free pages the reconcile never reuses. The
    interpreter lock already serialises most allocations, so one arena costs no contention."""
    return bool(_LIBC is not None and _LIBC.mallopt(M_ARENA_MAX, 1))


def free_bytes() -> int | None:
    """Bytes free inside the heap (held by the process, used by no object); None if unknown."""
    return _LIBC.mallinfo2().fordblks if _LIBC is not None and hasattr(_LIBC, "mallinfo2") else None


def trim(at_least: int = 0) -> bool:
    """Give the heap's wholly free pages back to the system (True if any were), when at least
    `at_least` bytes are free (or that is unknown): the walk over the heap takes milliseconds."""
    if _LIBC is None:
        return False
    free = free_bytes()
    return bool((free is None or free >= at_least) and _LIBC.malloc_trim(0))
