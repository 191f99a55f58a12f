"""The canonical cross-entropy semantics (DESIGN.md) in NumPy: values and analytic gradients.

Evaluated in float64 this is the reference every framework is compared with. The same code in a
lower dtype is what the `numpy` framework rows report (the textbook, stable formulas rounded to
that dtype), so there is exactly one implementation of the semantics.

Softmax family, per element i (over N and d1..dk), ``log p = log_softmax(x)`` on axis 1 (or
``x`` itself for log-probabilities, ``log x`` for probabilities), with coefficients ``a[i, c]``:

  index target y:  a[i, c] = w[c] ((1-e) [c == y_i] + e/C),  0 where y_i == ignore_index
  prob target t:   a[i, c] = w[c] ((1-e) t[i, c] + e/C)

  l_i = -sum_c a[i, c] log p[i, c]            (a term with a == 0 is 0, even where log p = -inf)
  dl_i/dx[i, c] = -a[i, c] + p[i, c] sum_c' a[i, c']   (logits)
                = -a[i, c]                              (log-probabilities)
                = -a[i, c] / x[i, c]                    (probabilities)

  mean divides by D = sum_i w[y_i] over non-ignored i (index targets) or by the number of
  elements (prob targets); D == 0 gives a NaN value and a zero gradient, as PyTorch.

Sigmoid family, element-wise with ``t' = (1-e) t + e/2`` and pos_weight ``w`` on axis 1:

  l = w t' softplus(-x) + (1-t') softplus(x)          (logits; = -w t' log s(x) - (1-t') log(1-s(x)))
  dl/dx = s(x) (w t' + 1 - t') - w t'
  l = -w t' log x - (1-t') log(1-x)                   (probabilities)
  dl/dx = -w t'/x + (1-t')/(1-x)

  mean divides by the number of elements.

Gradients are of the reduced loss; for ``none`` they are of the sum of the elements.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cases.spec import Inputs, LossSpec


@dataclass(frozen=True, eq=False)
class Evaluation:
    """A loss value, its gradient with respect to ``x``, and the scale its rounding error grows with.

    Attributes:
      value: shape () for ``sum``/``mean``, the per-element shape for ``none``.
      grad: shape of ``x``; a `GradRows` where evaluated with ``lazy=True``.
      scale: shape of ``value``; the same reduction applied to the absolute values of the terms
        that make up the loss (for logits ``|lse| + |x_c|``), so ``|error| <= tol * scale`` is the
        test a correctly rounded implementation passes even where the loss cancels to near zero.
    """

    value: np.ndarray
    grad: np.ndarray | GradRows
    scale: np.ndarray


def numpy_dtype(dtype: str) -> np.dtype:
    """The NumPy dtype for a harness dtype name (bfloat16 through ml_dtypes, when installed)."""
    if dtype == "bfloat16":
        try:
            import ml_dtypes
        except ImportError as e:  # reported as an unsupported row by the numpy adapter
            raise TypeError("NumPy has no bfloat16 without the ml_dtypes package") from e
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


# Elements per block of rows wherever an array of the logits' size is worked through a block at a time
# (coefficients, loss terms, gradient rows, comparisons): 128 KiB of float64, so that the blocks' temporaries
# stay small beside the logits of even the smallest case that is worked in blocks.
BLOCK_ELEMENTS = 2**14


def softmax(x: np.ndarray) -> np.ndarray:
    """softmax along the class axis (axis 1), 0 for -inf entries."""
    with np.errstate(all="ignore"):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def evaluate(spec: LossSpec, inputs: Inputs, dtype: str = "float64", lazy: bool = False) -> Evaluation:
    """Value, gradient and error scale of the canonical loss, computed in `dtype`.

    Args:
      spec: the loss configuration.
      inputs: x (N, C[, d1..dk]), target (index: int (N[, d1..dk]); prob: x's shape), weight (C,) or None.
      dtype: the dtype to compute in; ``float64`` gives the reference.
      lazy: the softmax family's gradient as a `GradRows`, remade from `inputs` a block of rows at a
        time when read, not held (the same numbers); the sigmoid family's is an array regardless.

    Returns:
      An `Evaluation` (arrays of `dtype`).
    """
    dt = numpy_dtype(dtype)
    with np.errstate(all="ignore"):
        if spec.family == "softmax":
            a, denominator = softmax_coefficients(spec, inputs, dt)
            return softmax_from_coefficients(spec, inputs.x, a, denominator, dt, lazy)
        return _sigmoid(spec, inputs, dt)


def _class_axis(v: np.ndarray, ndim: int) -> np.ndarray:
    """Shape a (C,) vector to broadcast along axis 1 of an ndim array."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _reduce(spec: LossSpec, loss, scale, grad, denominator, dt) -> Evaluation:
    if spec.reduction == "none":
        return Evaluation(loss, grad, scale)
    total, total_scale = loss.sum(dtype=dt), scale.sum(dtype=dt)
    if spec.reduction == "sum":
        return Evaluation(np.asarray(total), grad, np.asarray(total_scale))
    d = np.asarray(denominator, dtype=dt)
    if d == 0:  # every element ignored or weighted 0: 0/0 as PyTorch; nothing depends on x
        nan = np.asarray(np.nan, dtype=dt)
        if isinstance(grad, GradRows):
            shape, dtype = grad.shape, grad.dtype
            zeros = GradRows(shape, dtype, lambda r: np.zeros((r.stop - r.start, *shape[1:]), dtype))
            return Evaluation(nan, zeros, nan)
        return Evaluation(nan, np.zeros_like(grad), nan)
    if isinstance(grad, GradRows):
        grad = grad.divided(d)
    else:
        grad /= d  # in place: every caller hands over a gradient array of its own
    return Evaluation(np.asarray(total / d), grad, np.asarray(total_scale / abs(d)))


@dataclass(frozen=True, eq=False)
class GradRows:
    """A gradient made a block of rows (axis 0) at a time, when those rows are read: ``g[i:j]`` is an
    array, ``np.asarray(g)`` the whole gradient.

    The reference a run judges every row against is one of these: its gradient is as large as the
    logits, and the parent would otherwise hold it beside the inputs, the row's gradient and a
    variant's while it explains a difference: four times the logits. Remaking rows costs a pass over them.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    rows: Callable[[slice], np.ndarray]  # rows(slice(i, j)), 0 <= i <= j <= shape[0]: a fresh array

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: object) -> np.ndarray:
        if isinstance(key, slice) and key.step in (None, 1):
            return self.rows(slice(*key.indices(self.shape[0])[:2]))
        return np.asarray(self)[key]

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        step = block_rows(self.shape)
        for i in range(0, self.shape[0], step):
            out[i : i + step] = self.rows(slice(i, min(i + step, self.shape[0])))
        return out if dtype is None else out.astype(dtype, copy=False)

    def divided(self, d: np.ndarray) -> GradRows:
        """The gradient divided by `d` (as an array's ``grad /= d`` would be, element by element)."""
        rows = self.rows
        return GradRows(self.shape, self.dtype, lambda r: np.divide(g := rows(r), d, out=g))


def block_rows(shape: tuple[int, ...]) -> int:
    """Rows (axis 0) per block of an array of `shape`: BLOCK_ELEMENTS elements, at least one row."""
    return max(1, BLOCK_ELEMENTS // max(1, math.prod(shape[1:])))


Coefficients = Callable[[slice], np.ndarray]
"""``a[rows]``: the coefficients of a block of rows (axis 0), made when needed (see below)."""


def softmax_coefficients(
    spec: LossSpec, inputs: Inputs, dt: np.dtype, labels: np.ndarray | None = None
) -> tuple[Coefficients, np.ndarray]:
    """The coefficients ``a[i, c]`` of ``-log p[i, c]`` (module docstring), a block of rows at a time,
    and the mean's denominator D.

    A function of the rows rather than an array: ``a`` is as large as the logits, and made per block
    it never exists whole (on a 32000-class case that is one copy of the logits fewer, in every worker
    and in the parent). `labels` replaces the index targets (the variants read out-of-range labels
    differently).
    """
    x = np.asarray(inputs.x)
    ndim, c = x.ndim, x.shape[1]
    w = np.ones(c, dt) if inputs.weight is None else np.asarray(inputs.weight).astype(dt)
    wc = _class_axis(w, ndim)
    e = dt.type(spec.label_smoothing)
    if spec.target == "prob":
        t = np.asarray(inputs.target)

        def prob(rows: slice) -> np.ndarray:
            a = t[rows].astype(dt)  # a fresh array, worked on in place
            if e:
                a *= 1 - e
                a += e / dt.type(c)
            a *= wc
            return a

        return prob, np.asarray(x.size // c, dt)
    y = np.asarray(inputs.target if labels is None else labels)
    valid = np.ones(y.shape, bool) if spec.ignore_index is None else y != spec.ignore_index
    bad = valid & ((y < 0) | (y >= c))
    if bad.any():
        raise ValueError(
            f"Expected target in [0, {c}) or == ignore_index={spec.ignore_index}. "
            f"Received: target value {int(y[bad].flat[0])}"
        )
    y_safe = np.where(valid, y, 0)

    def index(rows: slice) -> np.ndarray:
        a = np.full(x[rows].shape, e / dt.type(c), dt)  # the smoothing share of every class ...
        np.put_along_axis(a, np.expand_dims(y_safe[rows], 1), (1 - e) + e / dt.type(c), axis=1)  # ... the target's
        a *= wc
        a *= np.expand_dims(valid[rows], 1)  # ignored elements contribute nothing
        return a

    return index, (w[y_safe] * valid).sum(dtype=dt)


def softmax_from_coefficients(
    spec: LossSpec, x: np.ndarray, coefficients: Coefficients, denominator: np.ndarray, dt: np.dtype,
    lazy: bool = False,
) -> Evaluation:  # fmt: skip
    """``l_i = -sum_c a[i, c] log p[i, c]`` with its gradient, reduced as `spec` says.

    Made a block of rows at a time; the gradient is the one array of x's size (none with `lazy`: then
    it is a `GradRows` that remakes its rows from x, log-sum-exp and the coefficients when read). A
    block's sums are those rows' sums over the whole array (the same additions in the same order), so
    the numbers depend neither on the block size nor on `lazy`.
    """
    x = np.asarray(x).astype(dt, copy=False)
    out_shape = x.shape[:1] + x.shape[2:]  # the class axis summed away
    loss, scale = np.empty(out_shape, dt), np.empty(out_shape, dt)
    lse = np.empty((*x.shape[:1], 1, *x.shape[2:]), dt) if spec.input == "logits" else None
    grad = None if lazy else np.empty_like(x)
    step = block_rows(x.shape)
    with np.errstate(all="ignore"):
        for i in range(0, x.shape[0], step):
            r = slice(i, i + step)
            a = coefficients(r)
            used = a != 0
            xr = x[r]
            if spec.input == "logits":
                m = xr.max(axis=1, keepdims=True)
                logp = np.subtract(xr, m)
                np.exp(logp, out=logp)
                lse[r] = m + np.log(logp.sum(axis=1, keepdims=True, dtype=dt))
                logp = np.subtract(xr, lse[r], out=logp)
                terms = np.abs(xr)  # the rounding scale of log p = x - lse: |lse| + |x_c|
                terms[~np.isfinite(xr)] = 0
                terms += np.abs(lse[r])
            elif spec.input == "log_probs":
                terms = np.abs(xr)
                logp = xr
            else:
                logp = np.log(xr)
                terms = np.abs(logp)
            terms *= np.abs(a)
            terms[~used] = 0
            scale[r] = terms.sum(axis=1, dtype=dt)
            np.multiply(a, logp, out=terms)
            terms[~used] = 0  # 0 log 0 = 0
            loss[r] = -terms.sum(axis=1, dtype=dt)
            if grad is not None:
                grad[r] = _softmax_grad_rows(spec, xr, logp, a, dt)

    def rows(r: slice) -> np.ndarray:
        with np.errstate(all="ignore"):
            xr = x[r]
            logp = np.subtract(xr, lse[r]) if spec.input == "logits" else xr
            return _softmax_grad_rows(spec, xr, logp, coefficients(r), dt)

    if grad is None:
        grad = GradRows(x.shape, dt, rows)
    return _reduce(spec, loss, scale, grad, denominator, dt)


def _softmax_grad_rows(spec: LossSpec, xr: np.ndarray, logp: np.ndarray, a: np.ndarray, dt: np.dtype) -> np.ndarray:
    """The unreduced gradient of a block of rows; it may take the place of `logp` and `a`."""
    if spec.input == "logits":  # p sum(a) - a, with p = exp(log p) in log p's place
        g = np.exp(logp, out=logp)
        g *= a.sum(axis=1, keepdims=True, dtype=dt)
        g -= a
        return g
    if spec.input == "log_probs":
        return np.negative(a, out=a)
    g = np.zeros_like(a)
    used = a != 0
    np.divide(np.negative(a, out=a), xr, out=g, where=used)
    return g


def _sigmoid(spec: LossSpec, inputs: Inputs, dt: np.dtype) -> Evaluation:
    x = np.asarray(inputs.x).astype(dt)
    t = np.asarray(inputs.target).astype(dt)
    e = dt.type(spec.label_smoothing)
    t = (1 - e) * t + e / dt.type(2)
    pw = dt.type(1) if inputs.weight is None else _class_axis(np.asarray(inputs.weight).astype(dt), x.ndim)
    pos, neg = pw * t, 1 - t  # coefficients of -log s(x) and -log(1 - s(x))

    if spec.input == "logits":
        ax = np.abs(x)
        log1p_term = np.log1p(np.exp(-ax))
        softplus_neg = np.maximum(-x, dt.type(0)) + log1p_term  # -log s(x)
        softplus_pos = np.maximum(x, dt.type(0)) + log1p_term  # -log(1 - s(x))
        loss = pos * softplus_neg + neg * softplus_pos
        scale = (np.abs(pos) + np.abs(neg)) * (ax + log1p_term)
        s = np.where(x >= 0, 1 / (1 + np.exp(-ax)), np.exp(-ax) / (1 + np.exp(-ax)))
        grad = s * (pos + neg) - pos
    else:
        log_p, log_q = np.log(x), np.log1p(-x)
        loss = -np.where(pos != 0, pos * log_p, dt.type(0)) - np.where(neg != 0, neg * log_q, dt.type(0))
        scale = np.abs(loss)
        grad = np.where(pos != 0, -pos / x, dt.type(0)) + np.where(neg != 0, neg / (1 - x), dt.type(0))
    loss = np.broadcast_to(loss, x.shape).astype(dt)
    return _reduce(spec, loss, np.broadcast_to(scale, x.shape).astype(dt), grad.astype(dt), dt.type(x.size), dt)
