"""glibc's allocator tuned to keep freed memory, for the processes napari-medseg launches.

A prediction run in a thread other than the main one (the dock's workers) gets its
memory from a per-thread malloc arena that hands large temporaries back to the kernel
after each use and faults them in again on the next: measured 10-17 % slower than the
same prediction on the main thread (BENCHMARKS.md, the dock's model run). One arena,
a fixed mmap threshold and a high trim threshold keep that memory in the process.
These settings are process-wide, so only the viewer that ``napari-medseg view`` starts
(``make run``) sets them, before any thread exists; a plugin loaded into someone
else's napari leaves the allocator alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters, from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
KEPT_SETTINGS = {_M_ARENA_MAX: 1, _M_MMAP_THRESHOLD: 32 * 2**20,
                 _M_TRIM_THRESHOLD: 256 * 2**20}


def keep_freed_memory() -> bool:
    """Tune glibc's malloc to keep freed memory: one arena, 32 MiB mmap threshold, 256 MiB
    trim threshold.

    Returns
    -------
    bool
        True when every setting was taken; False where there is no glibc (macOS,
        Windows, musl), which is left as it is.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(parameter, value) == 1 for parameter, value in KEPT_SETTINGS.items())
