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
    return Evaluation(np.asarray(total / d), grad / d, np.asarray(total_scale / abs(d)))


def softmax_coefficients(
    spec: LossSpec, inputs: Inputs, dt: np.dtype, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The coefficients ``a[i, c]`` of ``-log p[i, c]`` and the mean's denominator D (module docstring).

    `labels` replaces the index targets (the variants read out-of-range labels differently).
    """
    x = np.asarray(inputs.x)
    ndim, c = x.ndim, x.shape[1]
    w = np.ones(c, dt) if inputs.weight is None else np.asarray(inputs.weight).astype(dt)
    wc = _class_axis(w, ndim)
    e = dt.type(spec.label_smoothing)
    if spec.target == "prob":
        a = np.asarray(inputs.target).astype(dt)  # a fresh array, worked on in place (memory: one copy)
        if e:
            a *= 1 - e
            a += e / dt.type(c)
        a *= wc
        return a, np.asarray(x.size // c, dt)
    y = np.asarray(inputs.target if labels is None else labels)
    valid = np.ones(y.shape, bool) if spec.ignore_index is None else y != spec.ignore_index
    bad = valid & ((y < 0) | (y >= c))
    if bad.any():
        raise ValueError(
            f"Expected target in [0, {c}) or == ignore_index={spec.ignore_index}. "
            f"Received: target value {int(y[bad].flat[0])}"
        )
    y_safe = np.where(valid, y, 0)
    a = np.full(x.shape, e / dt.type(c), dt)  # the smoothing share of every class ...
    np.put_along_axis(a, np.expand_dims(y_safe, 1), (1 - e) + e / dt.type(c), axis=1)  # ... and the target's
    a *= wc
    a *= np.expand_dims(valid, 1)  # ignored elements contribute nothing
    return a, (w[y_safe] * valid).sum(dtype=dt)


def softmax_from_coefficients(
    spec: LossSpec, x: np.ndarray, a: np.ndarray, denominator: np.ndarray, dt: np.dtype
) -> Evaluation:
    """``l_i = -sum_c a[i, c] log p[i, c]`` with its gradient, reduced as `spec` says.

    Works in place on two buffers of x's size besides `a` (the reference runs on 32000-class cases in
    every worker and in the parent, so its temporaries count).
    """
    x = np.asarray(x).astype(dt, copy=False)
    used = a != 0
    abs_a = a if not (a < 0).any() else np.abs(a)
    with np.errstate(all="ignore"):
        if spec.input == "logits":
            m = x.max(axis=1, keepdims=True)
            buf = np.subtract(x, m)
            np.exp(buf, out=buf)
            lse = m + np.log(buf.sum(axis=1, keepdims=True, dtype=dt))
            logp = np.subtract(x, lse, out=buf)
            terms = np.abs(x)  # the rounding scale of log p = x - lse: |lse| + |x|
            terms[~np.isfinite(x)] = 0
            terms += np.abs(lse)
        elif spec.input == "log_probs":
            logp = x
            terms = np.abs(x)
        else:
            logp = np.log(x)
            terms = np.abs(logp)

        terms *= abs_a
        terms[~used] = 0
        scale = terms.sum(axis=1, dtype=dt)
        np.multiply(a, logp, out=terms)
        terms[~used] = 0  # 0 log 0 = 0
        loss = -terms.sum(axis=1, dtype=dt)
        del terms
        if spec.input == "logits":
            grad = np.exp(logp, out=logp)  # p, in log p's buffer
            grad *= a.sum(axis=1, keepdims=True, dtype=dt)
            grad -= a
        elif spec.input == "log_probs":
            grad = -a
        else:
            grad = np.where(used, -a / x, dt.type(0))
        return _reduce(spec, loss, scale, grad.astype(dt, copy=False), denominator, dt)


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
