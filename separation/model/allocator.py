"""glibc's malloc, set up for a process that runs the model: no page faults per forward pass.

A forward pass of ``htdemucs`` allocates and frees activations of up to a few hundred MB.
With glibc's defaults every allocation above the mmap threshold (32 MB at most) is a
fresh ``mmap`` and every free a ``munmap``, and freed heap memory above 128 KB is trimmed
back to the kernel: the next pass faults all of it in again, page by page. A thread
other than the main one (the pool's worker) also gets its own arena, whose heaps are
capped at 64 MB, so even more of its memory goes that way. Measured on 2 Zen 4 cores,
one 7.8-second segment on the worker thread (``benchmarks/separation_benchmark.py``
profiles the whole song): fp32 2.43 s with 460k page faults per pass by default, 1.89 s
with about 1k after :func:`keep_memory_mapped`; bf16 1.50 s → 1.03 s.

So the model's process uses one arena, serves allocations up to 1 GiB from the heap
and never trims it: freed activations are reused by the next pass. The process keeps
its high-water mark (which the next pass needs anyway) instead of returning and
re-faulting it. This must run before other threads exist (an arena is chosen at a
thread's first allocation), so the command line calls it first thing. Elsewhere than
glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

logger = logging.getLogger(__name__)

# From glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

MMAP_THRESHOLD_BYTES = 1 << 30
TRIM_THRESHOLD_BYTES = (1 << 31) - 1


def keep_memory_mapped() -> bool:
    """Tune glibc's malloc as the module docstring says; False where it cannot."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        settings = (
            (_M_ARENA_MAX, 1),
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
            (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
        )
        applied = all(libc.mallopt(option, value) == 1 for option, value in settings)
    except (OSError, AttributeError):
        applied = False
    if not applied:
        logger.debug("could not tune malloc; forward passes may fault their memory in again")
    return applied
