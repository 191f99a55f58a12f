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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cases.spec import Inputs, LossSpec


@dataclass(frozen=True, eq=False)
class Evaluation:
    """A loss value, its gradient with respect to ``x``, and the scale its rounding error grows with.

    Attributes:
      value: shape () for ``sum``/``mean``, the per-element shape for ``none``.
      grad: shape of ``x``.
      scale: shape of ``value``; the same reduction applied to the absolute values of the terms
        that make up the loss (for logits ``|lse| + |x_c|``), so ``|error| <= tol * scale`` is the
        test a correctly rounded implementation passes even where the loss cancels to near zero.
    """

    value: np.ndarray
    grad: np.ndarray
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


TERMS_BLOCK = 2**16  # elements per block of rows in softmax_from_coefficients (coefficients, loss terms)


def softmax(x: np.ndarray) -> np.ndarray:
    """softmax along the class axis (axis 1), 0 for -inf entries."""
    with np.errstate(all="ignore"):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def evaluate(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation:
    """Value, gradient and error scale of the canonical loss, computed in `dtype`.

    Args:
      spec: the loss configuration.
      inputs: x (N, C[, d1..dk]), target (index: int (N[, d1..dk]); prob: x's shape), weight (C,) or None.
      dtype: the dtype to compute in; ``float64`` gives the reference.

    Returns:
      An `Evaluation` (arrays of `dtype`).
    """
    dt = numpy_dtype(dtype)
    with np.errstate(all="ignore"):
        if spec.family == "softmax":
            return _softmax(spec, inputs, dt)
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
        return Evaluation(nan, np.zeros_like(grad), nan)
    grad /= d  # in place: every caller hands over a gradient array of its own
    return Evaluation(np.asarray(total / d), grad, np.asarray(total_scale / abs(d)))


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
    spec: LossSpec, x: np.ndarray, coefficients: Coefficients, denominator: np.ndarray, dt: np.dtype
) -> Evaluation:
    """``l_i = -sum_c a[i, c] log p[i, c]`` with its gradient, reduced as `spec` says.

    One buffer of x's size (log p, then the gradient in its place); everything else is made a block of
    rows at a time. A block's sums are those rows' sums over the whole array (the same additions in the
    same order), so the numbers do not depend on the block size.
    """
    x = np.asarray(x).astype(dt, copy=False)
    out_shape = x.shape[:1] + x.shape[2:]  # the class axis summed away
    loss, scale = np.empty(out_shape, dt), np.empty(out_shape, dt)
    with np.errstate(all="ignore"):
        if spec.input == "logits":
            m = x.max(axis=1, keepdims=True)
            buf = np.subtract(x, m)
            np.exp(buf, out=buf)
            lse = m + np.log(buf.sum(axis=1, keepdims=True, dtype=dt))
            grad = np.subtract(x, lse, out=buf)  # log p; the gradient replaces it block by block
        else:
            grad = np.empty_like(x)
        rows = max(1, TERMS_BLOCK // max(1, x[:1].size))
        for i in range(0, x.shape[0], rows):
            r = slice(i, i + rows)
            a = coefficients(r)
            used = a != 0
            if spec.input == "logits":
                terms = np.abs(x[r])  # the rounding scale of log p = x - lse: |lse| + |x_c|
                terms[~np.isfinite(x[r])] = 0
                terms += np.abs(lse[r])
                logp = grad[r]
            elif spec.input == "log_probs":
                terms = np.abs(x[r])
                logp = x[r]
            else:
                logp = np.log(x[r])
                terms = np.abs(logp)
            terms *= np.abs(a)
            terms[~used] = 0
            scale[r] = terms.sum(axis=1, dtype=dt)
            np.multiply(a, logp, out=terms)
            terms[~used] = 0  # 0 log 0 = 0
            loss[r] = -terms.sum(axis=1, dtype=dt)
            g = grad[r]
            if spec.input == "logits":  # p sum(a) - a, with p = exp(log p) in log p's place
                np.exp(g, out=g)
                g *= a.sum(axis=1, keepdims=True, dtype=dt)
                g -= a
            elif spec.input == "log_probs":
                np.negative(a, out=g)
            else:
                np.divide(np.negative(a, out=a), x[r], out=g, where=used)
                g[~used] = 0
        return _reduce(spec, loss, scale, grad, denominator, dt)


def _softmax(spec: LossSpec, inputs: Inputs, dt: np.dtype) -> Evaluation:
    a, denominator = softmax_coefficients(spec, inputs, dt)
    return softmax_from_coefficients(spec, inputs.x, a, denominator, dt)


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
