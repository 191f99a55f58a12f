"""Errors of a framework's value and gradient against the reference, and the row's outcome.

Definitions (errors are maxima over elements; NaN/Inf positions are compared separately):

- value_abs_err = max |v - r|;  value_rel_err = max |v - r| / |r|;
  value_ulp_err = max |v - r| / ulp_dtype(r), the classic ULP distance.
- grad_abs_err = max |g - gr|;  grad_rel_err = max |g - gr| / max |gr| (norm-wise: a gradient element
  near zero has no meaningful relative error of its own);  grad_ulp_err = max |g - gr| / ulp_dtype(max |gr|).
- value_scaled_err = max |v - r| / scale and grad_scaled_err = max |g - gr| / grad_scale, element by
  element, where the scales are the reference's (`Evaluation.scale`, `Evaluation.grad_scale`): the size of
  the terms the element is made of, which is what a correct implementation's rounding error grows with.
  A confident prediction's loss (~1e-5) is a log near 1 and its gradient p - 1 a difference of terms of
  size 1: their rounding is judged against those terms, not against the small result. A scale is at
  least `tolerances.scale_floor(dtype)`: below the dtype's normal range nothing keeps relative precision.
- outcome: `nonfinite` if NaN/Inf appear in different places (or differ: NaN vs Inf, +Inf vs -Inf); else
  `ok` when value_scaled_err <= tol and grad_scaled_err <= tol (`harness.judge.tolerances`); else `mismatch`.
- A linear head's (`LossSpec.linear`): grad_* are of the hidden states E, grad_w_* the same errors of the
  classifier's gradient [W | b], judged with the same tol (ok needs both).
  Where the canonical loss has no value (labels outside [0, C): PyTorch raises; `Evaluation.undefined`),
  any numbers are a departure, never `ok`; raising is what the canonical semantics do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adapters.reference import Evaluation, GradRows, block_rows
from harness.judge.tolerances import scale_floor, ulp


@dataclass(frozen=True)
class Comparison:
    outcome: str
    error: str
    value: float
    ref_value: float
    value_abs_err: float
    value_rel_err: float
    value_ulp_err: float
    grad_abs_err: float
    grad_rel_err: float
    grad_ulp_err: float
    value_scaled_err: float
    grad_scaled_err: float
    # a linear head's classifier [W | b] (`Evaluation.grad_w`), judged like the gradient; NaN elsewhere
    grad_w_abs_err: float = float("nan")
    grad_w_rel_err: float = float("nan")
    grad_w_ulp_err: float = float("nan")
    grad_w_scaled_err: float = float("nan")


ERRORS = (
    "value_abs_err", "value_rel_err", "value_ulp_err", "grad_abs_err", "grad_rel_err", "grad_ulp_err",
    "value_scaled_err", "grad_scaled_err",
)  # fmt: skip
W_ERRORS = ("grad_w_abs_err", "grad_w_rel_err", "grad_w_ulp_err", "grad_w_scaled_err")


def first(a: np.ndarray) -> float:
    """The reduced scalar, or the first element for reduction='none'."""
    a = np.asarray(a, dtype=np.float64)
    return float(a.flat[0]) if a.size else float("nan")


def _same_nonfinite(a: np.ndarray, b: np.ndarray) -> bool:
    fa, fb = np.isfinite(a), np.isfinite(b)
    if not np.array_equal(fa, fb):
        return False
    na, nb = a[~fa], b[~fb]
    return bool(np.array_equal(np.isnan(na), np.isnan(nb)) and np.array_equal(na[~np.isnan(na)], nb[~np.isnan(nb)]))


def _max(a: np.ndarray) -> float:
    return float(a.max()) if a.size else 0.0


def scaled(diff: np.ndarray, scale: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """``diff / max(|scale|, floor)`` element by element (`tolerances.scale_floor`), 0 where diff is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(diff == 0, 0.0, diff / np.maximum(np.abs(scale), floor))


@dataclass(frozen=True)
class GradErrors:
    abs_err: float  # max |g - gr| over the elements finite in both
    ref_max: float  # max |gr| over the same elements
    same_nonfinite: bool  # NaN/Inf in the same places with the same values (_same_nonfinite)
    nonfinite: int  # non-finite elements of g
    ref_nonfinite: int  # ... and of gr
    scaled_err: float = 0.0  # max |g - gr| / grad_scale over the same elements


Grad = np.ndarray | GradRows


def _grad_maxima(grad: np.ndarray, gr: Grad, gs: Grad | None = None, floor: float = 0.0) -> GradErrors:
    """The gradient's errors, a block of rows at a time: a gradient is as large as the logits,
    whole-array temporaries would be several of it, and a `GradRows` reference is made per block.
    Without a scale `gs`, the scaled error is taken against max |gr| (norm-wise)."""
    g_abs = g_max = g_scaled = 0.0
    same, counts = True, [0, 0]
    rows = block_rows(grad.shape) if grad.ndim else 1
    for i in range(0, len(grad) if grad.ndim else 1, rows):
        if grad.ndim:
            a, b = grad[i : i + rows], gr[i : i + rows]
            s = None if gs is None else gs[i : i + rows]
        else:
            a, b, s = grad, np.asarray(gr), (None if gs is None else np.asarray(gs))
        fa, fb = np.isfinite(a), np.isfinite(b)
        counts[0] += a.size - np.count_nonzero(fa)
        counts[1] += b.size - np.count_nonzero(fb)
        same = same and _same_nonfinite(a, b)
        f = fa & fb
        if f.any():
            d = np.abs(a[f].astype(np.float64) - b[f])
            g_abs = max(g_abs, float(d.max()))
            g_max = max(g_max, float(np.abs(b[f]).max()))
            if s is not None:
                g_scaled = max(g_scaled, float(scaled(d, np.asarray(s, np.float64)[f], floor).max()))
    if gs is None:
        g_scaled = 0.0 if g_abs == 0 else (g_abs / g_max if g_max else float("inf"))
    return GradErrors(g_abs, g_max, same, *counts, g_scaled)


def compare(
    value: np.ndarray, grad: np.ndarray | None, ref: Evaluation, dtype: str, tol: float,
    grad_w: np.ndarray | None = None,
) -> Comparison:  # fmt: skip
    """Judge a framework's (value, grad) against `ref` (the float64 reference, or a variant's evaluation).
    Without a gradient (``grad=None``: a framework that cannot differentiate) the value alone is judged and
    the gradient errors are NaN. A linear head's classifier gradient `grad_w` is judged like `grad` against
    ``ref.grad_w`` (the grad_w_* errors), where both are given."""
    # the gradients stay in their dtypes (a float32 copy in float64 would be twice its size; `ref` is a
    # variant computed in float32 when explain() compares with one): the block differences in
    # _grad_maxima are taken in float64, which is exact for every harness dtype
    value = np.asarray(value, np.float64)
    grad = None if grad is None else np.asarray(grad)
    r, scale = (np.asarray(a, np.float64) for a in (ref.value, ref.scale))
    gr = ref.grad if isinstance(ref.grad, GradRows) else np.asarray(ref.grad)
    gs = (
        ref.grad_scale
        if (ref.grad_scale is None or isinstance(ref.grad_scale, GradRows))
        else np.asarray(ref.grad_scale)
    )
    nan = float("nan")
    if value.shape != r.shape or (grad is not None and grad.shape != gr.shape):
        shapes = f"value {value.shape}" + ("" if grad is None else f" grad {grad.shape}")
        why = f"shape mismatch: {shapes}, reference value {r.shape} grad {gr.shape}"
        return Comparison("mismatch", why, first(value), first(r), *([nan] * len(ERRORS)))
    judge_w = grad_w is not None and ref.grad_w is not None
    if judge_w and np.shape(grad_w) != np.shape(ref.grad_w):
        why = f"shape mismatch: grad_w {np.shape(grad_w)}, reference grad_w {np.shape(ref.grad_w)}"
        return Comparison("mismatch", why, first(value), first(r), *([nan] * len(ERRORS)))

    with np.errstate(all="ignore"):
        fv = np.isfinite(value) & np.isfinite(r)
        dv = np.abs(value - r)[fv]
        rel = np.where(dv == 0, 0.0, dv / np.abs(r[fv]))
        v_ulp = dv / ulp(r[fv], dtype)
        floor = scale_floor(dtype)
        v_scaled = scaled(dv, scale[fv], floor)

        if grad is None:
            ge = GradErrors(nan, nan, True, 0, 0, nan)
            g_abs = g_rel = g_ulp = nan
        else:
            ge = _grad_maxima(grad, gr, gs, floor)
            g_abs, g_max = ge.abs_err, ge.ref_max
            g_rel = 0.0 if g_abs == 0 else (g_abs / g_max if g_max else float("inf"))
            g_ulp = g_abs / float(ulp(g_max, dtype))
        we = GradErrors(nan, nan, True, 0, 0, nan)
        w_errors: dict[str, float] = {}
        if judge_w:
            we = _grad_maxima(np.asarray(grad_w), np.asarray(ref.grad_w), ref.grad_w_scale, floor)
            w_rel = 0.0 if we.abs_err == 0 else (we.abs_err / we.ref_max if we.ref_max else float("inf"))
            w_ulp = we.abs_err / float(ulp(we.ref_max, dtype))
            w_errors = dict(zip(W_ERRORS, (we.abs_err, w_rel, w_ulp, we.scaled_err), strict=True))

    errors = (_max(dv), _max(rel), _max(v_ulp), g_abs, g_rel, g_ulp, _max(v_scaled), ge.scaled_err)
    same_value = _same_nonfinite(value, r)
    if not (same_value and ge.same_nonfinite and we.same_nonfinite):
        what = []
        if not same_value:
            n, n_ref = np.count_nonzero(~np.isfinite(value)), np.count_nonzero(~np.isfinite(r))
            what.append(f"value has {n} non-finite, reference {n_ref}")
        if not ge.same_nonfinite:
            what.append(f"grad has {ge.nonfinite} non-finite, reference {ge.ref_nonfinite}")
        if not we.same_nonfinite:
            what.append(f"grad_w has {we.nonfinite} non-finite, reference {we.ref_nonfinite}")
        if ref.undefined:
            what.insert(0, f"{ref.undefined}; this returned numbers")
        return Comparison("nonfinite", "; ".join(what), first(value), first(r), *errors, **w_errors)
    ok = _max(v_scaled) <= tol and (grad is None or ge.scaled_err <= tol) and (not judge_w or we.scaled_err <= tol)
    if ref.undefined:  # the canonical loss raises here (as PyTorch does): numbers of any kind depart from it
        why = f"{ref.undefined}; this returned numbers"
        return Comparison("mismatch", why, first(value), first(r), *errors, **w_errors)
    return Comparison("ok" if ok else "mismatch", "", first(value), first(r), *errors, **w_errors)
