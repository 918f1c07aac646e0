"""Process-wide memory settings for per-frame inference on the CPU.

PyTorch's CPU tensors come from ``malloc``. glibc serves large blocks (above its mmap
threshold, 128 KiB at start) with fresh ``mmap`` pages and unmaps them when freed, and it
returns freed memory at the top of the heap to the system (trim threshold). The transforms
allocate and free the same tens of large tensors every frame (0.5-25 MB each), so each
frame touched thousands of new pages, each a page fault. Measured on this project's 2-core
VM (medians of five alternating runs of 30 frames, one thread, ``docs/keep_freed_memory_ab.txt``):
2,100-20,000 page faults per frame before, 230-840 after; 640x480 float32 analysis 19.4 ->
14.1 ms and synthesis 23.5 -> 15.0 ms, bfloat16 8.4 -> 7.8 and 11.8 -> 9.1 ms; 1280x720
bfloat16 26.3 -> 19.3 and 33.1 -> 22.5 ms. Without it the times were also erratic from run
to run (glibc adapts its threshold to the sizes it sees freed, sometimes in time).
"""

from __future__ import annotations

import ctypes
import platform

#: ``mallopt`` parameters (glibc's ``malloc.h``).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap and are reused (glibc's largest allowed value
#: on 64-bit systems): a 1920x1088 float32 RGB frame is 25 MB.
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
#: Freed heap memory up to this much stays with the process instead of going back.
TRIM_THRESHOLD_BYTES = 1024 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Let ``malloc`` reuse freed large blocks instead of unmapping them (glibc only).

    Call once at start-up, before the first frame. The process keeps up to
    ``TRIM_THRESHOLD_BYTES`` of freed memory for reuse (its peak resident size does not
    grow; it just does not shrink after a peak). Returns ``True`` when the settings took
    effect, ``False`` elsewhere (macOS, Windows, musl), where nothing changes.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
