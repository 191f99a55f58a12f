"""How a call is timed: warm-up, calibrated blocks, device synchronisation, raw samples, median/IQR.

The method follows torch.utils.benchmark's blocked_autorange and pytest-benchmark: the first call
is kept apart (in compiled mode it includes compilation, reported once as compile time, never in
the medians); a block of calls is sized so that the timer and the device synchronisation cost
under 1% of it; each sample is one block's time divided by its calls; samples are collected until a
time budget is spent (at least `min_samples`, at most `max_samples`, which a 0.1 ms call under a
0.3 s budget does not reach: the samples span the budget, as blocked_autorange's do); the median and
interquartile range summarise them, and a measurement whose IQR exceeds 10% of its median is marked
noisy.

This module knows nothing about frameworks: an adapter hands it a `call` that runs the loss once
on inputs already staged on the device, and a `sync` that waits for the device to finish.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

NOISY_IQR_FRACTION = 0.1
BUDGET_S = 0.1  # sampling seconds per measurement by default (92 in a default CPU run): benchmarks/timing_fidelity.py
CHEAP_CALL_S = 0.05
OVERHEAD_FRACTION = 0.01


@dataclass(frozen=True)
class Measurement:
    """Raw samples (seconds per call, one per block) and what they were taken with."""

    samples: tuple[float, ...]
    block: int  # calls per block
    first_call_s: float  # the first call on fresh inputs (compilation included in compiled mode)
    overhead_s: float  # one timer read plus one synchronisation, when nothing is queued

    @property
    def median_s(self) -> float:
        return float(np.median(self.samples))

    @property
    def iqr_s(self) -> float:
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q3 - q1)

    @property
    def noisy(self) -> bool:
        return self.iqr_s > NOISY_IQR_FRACTION * self.median_s

    @property
    def compile_s(self) -> float:
        """First call minus a steady one: compilation (and first-touch allocation) time."""
        return max(self.first_call_s - self.median_s, 0.0)


def measure(
    call: Callable[[], Any],
    sync: Callable[[Any], None],
    *,
    budget_s: float = 0.5,
    min_samples: int = 3,
    max_samples: int = 10_000,
    clock: Callable[[], float] = time.perf_counter,
) -> Measurement:
    """Time `call` (whose result `sync` waits for) as the module docstring describes.

    Args:
      call: runs the loss once; returns something `sync` can wait on.
      sync: blocks until the device has finished the work behind a result.
      budget_s: seconds of sampling after calibration (at least `min_samples` blocks regardless).
      min_samples, max_samples: bounds on the number of blocks.
      clock: the timer (injectable for tests).
    """
    if min_samples < 1 or max_samples < min_samples or budget_s < 0:
        raise ValueError(
            f"Expected 1 <= min_samples <= max_samples and budget_s >= 0. "
            f"Received: min_samples={min_samples}, max_samples={max_samples}, budget_s={budget_s}"
        )
    t0 = clock()
    result = call()
    sync(result)
    first = clock() - t0

    reads = []
    for _ in range(20):
        t0 = clock()
        sync(result)
        reads.append(clock() - t0)
    overhead = float(np.median(reads))

    # A second call shows the steady cost (the first may have compiled). A slow call is its own
    # block and this call its first sample; a cheap one grows the block (as blocked_autorange does)
    # until timer + sync cost at most 1% of it. Blocks stop there, not at a time: a longer block of
    # unsynchronised calls would time JAX's asynchronous dispatch overlapping calls, not a call.
    t0 = clock()
    result = call()
    sync(result)
    second = clock() - t0
    samples: list[float] = [second] if second >= CHEAP_CALL_S else []
    block = 1
    while second < CHEAP_CALL_S:
        t0 = clock()
        for _ in range(block):
            result = call()
        sync(result)
        took = clock() - t0
        if overhead <= OVERHEAD_FRACTION * took or took > budget_s:
            break
        block = math.ceil(block * max(2.0, overhead / (OVERHEAD_FRACTION * took)))

    del result
    start = clock()
    while len(samples) < max_samples and (len(samples) < min_samples or clock() - start < budget_s):
        t0 = clock()
        for _ in range(block - 1):
            call()  # its result dropped at once, as in a loop of `loss(x)` statements
        result = call()
        sync(result)
        del result  # not alive during the next call: its output buffer can be reused, as in the user's loop
        samples.append((clock() - t0) / block)
    return Measurement(tuple(samples), block, first, overhead)


def copy_bandwidth_gbps(nbytes: int = 256 * 2**20, repeats: int = 5) -> float:
    """Host memory bandwidth: the best of `repeats` copies of `nbytes`, bytes read plus written.

    The roofline a memory-bound loss is compared with on the CPU (a GPU adapter measures its own
    device the same way with its framework's copy).
    """
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best / 1e9
