"""The thread count of every OpenBLAS loaded in the server process (numpy's bundled one).

Why: OpenBLAS's worker threads spin (sched_yield) for a while after each call, waiting for the next.
The server calls BLAS with small matrices many times a second (the motion-only mouth's batch thread
reads out every session's windows each audio chunk), so with the default of one thread a core the
spinning worker cost about a third of the server's CPU at 100 motion-only streams on 2 cores (perf:
28% of samples in sched_yield) and the products gained nothing from it. One thread is the setting
for a server that runs many sessions; torch keeps its own thread pool (not affected).

Linux (glibc, /proc/self/maps); elsewhere nothing is found and nothing changes (OPENBLAS_NUM_THREADS
in the environment does the same before numpy loads)."""
from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

# numpy's wheels build OpenBLAS with 64-bit ints and the `64_` suffix; a system OpenBLAS has none
_SUFFIXES = ("64_", "")


def loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries mapped into this process."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in os.path.basename(line.split()[-1]).lower()}
    except OSError:
        return []
    return sorted(p for p in paths if os.path.isfile(p))


def _function(lib: ctypes.CDLL, name: str):
    return next((getattr(lib, f"openblas_{name}{s}") for s in _SUFFIXES if hasattr(lib, f"openblas_{name}{s}")), None)


def threads() -> dict[str, int]:
    """Each loaded OpenBLAS's current thread count."""
    out = {}
    for path in loaded_openblas():
        get = _function(ctypes.CDLL(path), "get_num_threads")
        if get is not None:
            out[path] = int(get())
    return out


def limit(n: int) -> dict[str, int]:
    """Set every loaded OpenBLAS to `n` threads (0: leave them as they are); returns their counts now."""
    if n > 0:
        for path in loaded_openblas():
            set_threads = _function(ctypes.CDLL(path), "set_num_threads")
            if set_threads is not None:
                set_threads(ctypes.c_int(n))
    now = threads()
    log.debug("OpenBLAS threads: %s", now)
    return now
