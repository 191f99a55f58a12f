"""Peak memory of one call: the most bytes in use while it runs, above those in use just before it.

Counted by the framework's allocator where it keeps a count (`Adapter.memory_counters`: torch.cuda's
``max_memory_allocated``, the bytes of live tensors), else by the process' resident set (`resident_set`: Linux's
VmHWM, its peak reset through /proc/self/clear_refs). A resident set counts pages, not arrays: memory freed before
the call and kept by the C allocator would be reused without showing, so the reset first hands freed memory back
to the system (glibc's ``malloc_trim``); large arrays are mapped on their own and unmapped when freed, so the
peak is that of the arrays alive at once, to a page. Threads share the process' pages: a framework's intra-op
pool is counted.

This module knows nothing of frameworks: like `harness.runner.timing`, it takes the call, the synchronisation and
the counters as parameters.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.base import MemoryCounters

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_PEAK_RSS = "5"  # proc(5): "reset the peak resident set size (VmHWM) to the current resident set size"


def status_bytes(field: str, status: Path = STATUS) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM) in bytes."""
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(f"Expected {field} in {status}. Received: no such line")


def release_freed_memory() -> bool:
    """Hand memory that malloc keeps after a free back to the system (glibc's malloc_trim(0)); False where the C
    library has no such call."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


def resident_set() -> MemoryCounters | None:
    """The process' resident set as `MemoryCounters` (Linux), or None where its peak cannot be reset here."""
    try:
        status_bytes("VmHWM")
        CLEAR_REFS.write_text(RESET_PEAK_RSS)
    except (OSError, KeyError):
        return None

    def reset() -> None:
        release_freed_memory()
        CLEAR_REFS.write_text(RESET_PEAK_RSS)

    return MemoryCounters("VmHWM", reset, lambda: status_bytes("VmHWM"), lambda: status_bytes("VmRSS"))


def peak_bytes(call: Callable[[], Any], sync: Callable[[Any], None], counters: MemoryCounters) -> int:
    """The most bytes in use while `call` ran and `sync` waited for its result, above those in use before (its
    inputs, staged beforehand, are not counted; its outputs are). The result is dropped before returning."""
    counters.reset()
    before = counters.current()
    result = call()
    sync(result)
    peak = counters.peak()
    del result
    return max(0, peak - before)
