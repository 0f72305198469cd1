"""Give memory back to the system after spikes (glibc malloc only; elsewhere these do nothing).

Request bodies and decoded frames are large, short-lived buffers. glibc raises its mmap threshold after
each large free, so later ones land in the heap and arenas, which fragment and are never returned: repeated
big uploads left a replica at 6 GB. A fixed threshold keeps large buffers in mmap (freed at once), two
arenas bound per-thread fragmentation, and `trim()` after a create hands freed heap pages back."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc only
        return libc
    except (OSError, AttributeError):
        return None


@functools.lru_cache(maxsize=1)
def configure() -> bool:
    """Once per process, before the server allocates much."""
    libc = _libc()
    if libc is None:
        return False
    ok = all(libc.mallopt(opt, value) == 1 for opt, value in
             ((M_MMAP_THRESHOLD, 256 * 1024), (M_TRIM_THRESHOLD, 8 * 1024 * 1024), (M_ARENA_MAX, 2)))
    if not ok:
        log.warning("mallopt refused a setting; memory may not be returned after large requests")
    return ok


def trim() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
