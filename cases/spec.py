"""What a loss computation is (`LossSpec`) and one concrete input to it (`Case`).

The canonical semantics of every field are in DESIGN.md ("The canonical semantics"); the float64
reference in `adapters/reference.py` implements them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cases.names import DTYPE_TAGS, DTYPES, FAMILIES, INPUTS, KINDS, REDUCTIONS, TARGETS, UsageError, choose


@dataclass(frozen=True)
class LossSpec:
    """One loss configuration, independent of data and framework.

    Attributes:
      family: ``softmax`` (classes on axis 1) or ``sigmoid`` (element-wise binary).
      input: what ``x`` holds: ``logits``, ``log_probs`` or ``probs``.
      target: ``index`` (class indices, softmax only) or ``prob`` (a distribution, or soft binary targets).
      weighted: class weights ``w[C]`` (softmax) or ``pos_weight[C]`` (sigmoid) are given.
      ignore_index: target value whose elements contribute nothing (index targets only).
      label_smoothing: ``e`` in [0, 1]; softmax ``t' = (1-e) t + e/C``, sigmoid ``t' = (1-e) t + e/2``.
      reduction: ``none``, ``sum`` or ``mean``.
    """

    family: str = "softmax"
    input: str = "logits"
    target: str = "index"
    weighted: bool = False
    ignore_index: int | None = None
    label_smoothing: float = 0.0
    reduction: str = "mean"

    def __post_init__(self) -> None:
        # Checks first, with the received value in the message (optax / Keras style).
        choose(self.family, FAMILIES, "family")
        choose(self.input, INPUTS, "input")
        choose(self.target, TARGETS, "target")
        choose(self.reduction, REDUCTIONS, "reduction")
        e = self.label_smoothing
        if not (isinstance(e, (int, float)) and math.isfinite(e) and 0.0 <= e <= 1.0):
            raise UsageError(f"Expected label_smoothing in [0, 1]. Received: label_smoothing={e!r}")
        if self.family == "sigmoid" and self.target != "prob":
            raise UsageError(f"Expected target='prob' for family='sigmoid'. Received: target={self.target!r}")
        if self.ignore_index is not None and self.target != "index":
            raise UsageError(
                f"Expected ignore_index=None for target={self.target!r} (index targets only). "
                f"Received: ignore_index={self.ignore_index!r}"
            )

    @property
    def flags(self) -> str:
        """Short readable tag of the non-default fields, used in case ids."""
        parts = []
        if self.input != "logits":
            parts.append({"log_probs": "logp", "probs": "prob"}[self.input])
        if self.family == "softmax" and self.target == "prob":
            parts.append("pt")
        if self.weighted:
            parts.append("w")
        if self.ignore_index is not None:
            parts.append(f"ii{self.ignore_index}".replace("-", "m"))
        if self.label_smoothing:
            parts.append(f"ls{self.label_smoothing:g}")
        parts.append(self.reduction)
        return "-".join(parts)


@dataclass(frozen=True, eq=False)
class Inputs:
    """Arrays of one case, as float64 NumPy (values already representable in the case dtype); x and
    float targets are C-ordered at 64-byte aligned addresses (`aligned`).

    ``x``: (N, C) or (N, C, d1..dk). ``target``: int64 (N, d1..dk) for index targets, float64 of x's
    shape for prob targets. ``weight``: float64 (C,) or None.
    """

    x: np.ndarray
    target: np.ndarray
    weight: np.ndarray | None = None


@dataclass(frozen=True)
class Case:
    """One loss spec on one concrete input, with a stable readable id.

    Generated cases are materialised from (``tag``, ``shape``, ``seed``) by ``cases.data``, so a
    Case is small to send to a worker and gives byte-identical inputs everywhere. Documented and
    user-supplied cases carry their arrays in ``data``.
    """

    kind: str
    spec: LossSpec
    shape: tuple[int, ...]
    dtype: str = "float32"
    seed: int = 0
    tag: str = ""
    name: str = ""
    data: Inputs | None = field(default=None, compare=False, repr=False)
    # Documented cases: numbers a source printed for these inputs, as (label, value) pairs.
    claimed: tuple[tuple[str, float], ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        choose(self.dtype, DTYPES, "dtype")
        if self.kind not in (*KINDS, "user", "timing"):
            raise UsageError(f"Expected kind in {{{', '.join(KINDS)}}}. Received: kind={self.kind!r}")
        if len(self.shape) < 1 or (self.spec.family == "softmax" and len(self.shape) < 2):
            raise UsageError(f"Expected x of shape (N, C) or (N, C, d1, ...). Received: shape={self.shape}")

    @property
    def n_classes(self) -> int:
        return self.shape[1] if len(self.shape) > 1 else 1

    @property
    def n_elements(self) -> int:
        """Loss elements before reduction: N*d1*..*dk for softmax, every element for sigmoid."""
        size = math.prod(self.shape)
        return size // self.n_classes if self.spec.family == "softmax" else size

    @property
    def id(self) -> str:
        n, c = self.shape[0], self.n_classes
        parts = [self.kind]
        parts += [p for p in (self.name, self.tag) if p]
        parts += [f"n{n}", f"c{c}"]
        if len(self.shape) > 2:
            parts.append("d" + "x".join(str(d) for d in self.shape[2:]))
        parts += [DTYPE_TAGS[self.dtype], self.spec.flags, f"s{self.seed}"]
        return "-".join(parts)

    @property
    def shape_str(self) -> str:
        return "x".join(str(d) for d in self.shape)

    def inputs(self) -> Inputs:
        """The case's arrays, quantised to its dtype and held as float64."""
        if self.data is not None:
            raw = self.data
        else:
            from cases.data import make  # the data makers need Case; imported here to avoid a cycle

            raw = make(self)
        return Inputs(
            x=aligned(quantize(raw.x, self.dtype)),
            target=raw.target if self.spec.target == "index" else aligned(quantize(raw.target, self.dtype)),
            weight=None if raw.weight is None else quantize(raw.weight, self.dtype),
        )


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
