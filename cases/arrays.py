"""The arrays of one case (`Inputs`) and how they are prepared: rounded to a dtype, aligned in memory.

The bottom of the chain: nothing here knows about specs or cases, so the data makers (cases/data.py) and
the case definitions (cases/spec.py) both build on it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cases.names import DTYPES, UsageError


@dataclass(frozen=True, eq=False)
class Inputs:
    """Arrays of one case, as float64 NumPy (values already representable in the case dtype); x and
    float targets are C-ordered at 64-byte aligned addresses (`aligned`).

    ``x``: (N, C) or (N, C, d1..dk). ``target``: int64 (N, d1..dk) for index targets, float64 of x's
    shape for prob targets. ``weight``: float64 (C,) class weights (softmax) or pos_weight (sigmoid), or
    None. ``sample_weight``: float64 of the loss elements' shape ((N, d1..dk) for softmax, x's shape for
    sigmoid), a plain multiplier of each element's loss, or None.

    A linear head (`LossSpec.linear`): ``x`` holds the hidden states E (N, D), ``classifier`` the weight W
    (C, D) and ``bias`` b (C,) or None; the logits are E Wᵀ + b. Both are None otherwise.
    """

    x: np.ndarray
    target: np.ndarray
    weight: np.ndarray | None = None
    sample_weight: np.ndarray | None = None
    classifier: np.ndarray | None = None
    bias: np.ndarray | None = None


ALIGN_BYTES = 64  # Eigen's largest alignment: TensorFlow's DLPack import requires it (and aborts without)


def aligned(a: np.ndarray, dtype: np.dtype[Any] | type | None = None) -> np.ndarray:
    """`a`, as `dtype` (default its own), C-ordered at a 64-byte aligned address: `a` itself when it
    already is, else a copy (`dtype` must hold a's values exactly: the cast is unchecked).

    A framework can then use the array's memory as it is (TensorFlow through DLPack) where its own
    conversion would copy it: NumPy aligns large arrays to 16 bytes only.
    """
    dtype = np.dtype(a.dtype if dtype is None else dtype)
    if a.dtype == dtype and a.flags.c_contiguous and a.ctypes.data % ALIGN_BYTES == 0:
        return a
    nbytes = a.size * dtype.itemsize
    raw = np.empty(nbytes + ALIGN_BYTES, np.uint8)
    start = -raw.ctypes.data % ALIGN_BYTES
    out = raw[start : start + nbytes].view(dtype).reshape(a.shape)
    np.copyto(out, a, casting="unsafe")
    return out


def quantize(a: np.ndarray, dtype: str) -> np.ndarray:
    """Round `a` to the nearest value of `dtype` (ties to even) and return it as float64 (`a` itself
    for float64; otherwise a new array, `aligned`).

    The reference is evaluated on these rounded values, so a framework's error is its own
    computation's, not the rounding of its inputs. bfloat16 is done by hand (round the float32 bit
    pattern to its upper 16 bits) so that NumPy alone suffices.
    """
    a = np.asarray(a, dtype=np.float64)
    if dtype == "float64":
        return a  # already float64: nothing to round (and no copy of a large case)
    if dtype in ("float32", "float16"):
        with np.errstate(over="ignore"):  # out of range rounds to inf, as the framework would
            return aligned(a.astype(dtype), np.float64)  # the float64 copy made anyway, made aligned
    if dtype == "bfloat16":
        f = a.astype(np.float32)
        u = f.view(np.uint32).astype(np.uint64)
        finite = np.isfinite(f)
        rounded = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
        u = np.where(finite, rounded, u & 0xFFFF0000).astype(np.uint32)
        return aligned(u.view(np.float32), np.float64)
    raise UsageError(f"Expected dtype in {{{', '.join(DTYPES)}}}. Received: dtype={dtype!r}")
