"""Semantic variants: what a framework computes where it departs from the canonical semantics.

Each variant is a small function ``(spec, inputs) -> Evaluation | None`` beside the reference (None
where it does not apply), with the framework documentation or issue that describes the behaviour.
When a row is not `ok`, `harness.explain` looks for the variant that reproduces the framework's
output; its name goes into the row's `explanation`. The names are stable: the known-differences
registry (`adapters/known_differences.csv`) and the porting guide refer to them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from adapters.reference import (
    Evaluation,
    _reduce,
    block_rows,
    evaluate,
    softmax,
    softmax_coefficients,
    softmax_from_coefficients,
)
from cases.spec import Inputs, LossSpec, quantize

F64 = np.dtype(np.float64)


@dataclass(frozen=True)
class Variant:
    name: str
    summary: str  # what the framework does, in one line (shown in the summary and the porting guide)
    source: str  # where that behaviour is documented
    fn: Callable[[LossSpec, Inputs, str], Evaluation | None]
    dtype: str | None = None  # the variant computes in this dtype (its tolerance applies)


def _replace(spec: LossSpec, **changes: object) -> LossSpec:
    return dataclasses.replace(spec, **changes)


# -- input kind mix-ups -----------------------------------------------------------------------------


def probs_passed_as_logits(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Probabilities given to an API that applies softmax/sigmoid itself (cross_entropy, *_with_logits,
    from_logits=True). Read the other way round, logits whose loss was computed by hand as if they
    were probabilities: seed 001 prints -log(0.4) for inputs that CrossEntropyLoss reads as logits.
    https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html ("The input is expected
    to contain the unnormalized logits for each class")."""
    if spec.input == "probs":
        return evaluate(_replace(spec, input="logits"), inputs)
    if spec.input == "logits" and np.all((inputs.x >= 0) & (inputs.x <= 1)):
        return evaluate(_replace(spec, input="probs"), inputs)
    return None


def log_probs_passed_as_logits(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Log-probabilities given to an API that applies log_softmax again (the value survives since
    log_softmax(log p) = log p, the gradient becomes that of a renormalised loss), or raw scores given
    to NLLLoss as if they were log-probabilities (seed 004's -0.1399).
    https://pytorch.org/docs/stable/generated/torch.nn.NLLLoss.html"""
    if spec.family != "softmax":
        return None
    if spec.input == "log_probs":
        return evaluate(_replace(spec, input="logits"), inputs)
    if spec.input == "logits":
        return evaluate(_replace(spec, input="log_probs"), inputs)
    return None


def class_axis_0(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Softmax over axis 0 (the batch) instead of the class axis: seed 004's nn.Softmax(dim=0).
    https://pytorch.org/docs/stable/generated/torch.nn.Softmax.html ("dim: A dimension along which
    Softmax will be computed")."""
    if spec.family != "softmax" or spec.input != "logits" or inputs.x.ndim != 2 or inputs.x.shape[0] < 2:
        return None
    x = inputs.x
    m = x.max(axis=0, keepdims=True)
    logp = np.subtract(x, m)  # one buffer of x's size: log p, then (block by block) the gradient
    lse = m + np.log(np.exp(logp, out=logp).sum(axis=0, keepdims=True))
    logp = np.subtract(x, lse, out=logp)
    lp_spec = _replace(spec, input="log_probs")
    inner = evaluate(lp_spec, Inputs(logp, inputs.target, inputs.weight), lazy=True)
    g = inner.grad  # d/d logp, -a/D: made from the targets alone, so logp may be overwritten below
    step = block_rows(x.shape)
    total = sum(g[i : i + step].sum(axis=0, keepdims=True) for i in range(0, len(x), step))
    for i in range(0, len(x), step):  # chain rule through log_softmax along axis 0: g - p * sum(g)
        p = np.exp(logp[i : i + step], out=logp[i : i + step])
        p *= total
        np.subtract(g[i : i + step], p, out=p)
    return Evaluation(inner.value, logp, inner.scale)


# -- reductions and weights -------------------------------------------------------------------------


def _renormalised_mean(spec: LossSpec, inputs: Inputs, denominator: Callable[[LossSpec, Inputs], float]):
    if spec.reduction != "mean" or spec.target != "index" or not (spec.weighted or spec.ignore_index is not None):
        return None
    total = evaluate(_replace(spec, reduction="sum"), inputs)
    d = denominator(spec, inputs)
    if d == 0:
        return None
    grad = total.grad
    grad /= d  # in place: a fresh array of the logits' size
    return Evaluation(total.value / d, grad, total.scale / d)


def weight_norm_n(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Weighted (or masked) mean divided by the number of elements N, not by the sum of the targets'
    weights: Keras' reduction 'sum_over_batch_size' with sample_weight=w[y], and tf.reduce_mean of
    weighted per-example losses. https://keras.io/api/losses/ ("sum_over_batch_size ... divided by the
    batch size") vs https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html."""
    return _renormalised_mean(spec, inputs, lambda s, i: float(np.asarray(i.target).size))


def weight_norm_count(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Weighted mean divided by the number of non-ignored elements (a mask's count), not by the sum of
    their weights. https://keras.io/api/losses/ (masked losses average over the unmasked entries)."""

    def count(s: LossSpec, i: Inputs) -> float:
        y = np.asarray(i.target)
        return float(np.count_nonzero(y != s.ignore_index)) if s.ignore_index is not None else float(y.size)

    if not spec.weighted:
        return None
    return _renormalised_mean(spec, inputs, count)


def reduction_sum(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Summed where a mean was asked for (e.g. tf.nn.*_cross_entropy_with_logits return per-example
    losses; a port that reduces with reduce_sum). https://www.tensorflow.org/api_docs/python/tf/nn"""
    return evaluate(_replace(spec, reduction="sum"), inputs) if spec.reduction == "mean" else None


def reduction_mean(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Averaged where a sum was asked for. https://keras.io/api/losses/ (Keras' default reduction)"""
    return evaluate(_replace(spec, reduction="mean"), inputs) if spec.reduction == "sum" else None


# -- label smoothing --------------------------------------------------------------------------------


def _smoothed_index(spec: LossSpec, inputs: Inputs, others: Callable[[float, int], tuple[float, float]]):
    if spec.family != "softmax" or spec.target != "index" or not spec.label_smoothing:
        return None
    c = inputs.x.shape[1]
    on, off = others(spec.label_smoothing, c)
    unsmoothed, d = softmax_coefficients(_replace(spec, label_smoothing=0.0), inputs, F64)
    w = np.ones(c) if inputs.weight is None else inputs.weight
    wc = w.reshape((1, -1) + (1,) * (inputs.x.ndim - 2))

    def smoothed(rows: slice) -> np.ndarray:
        hit = unsmoothed(rows) != 0
        valid = hit.any(axis=1, keepdims=True)
        return np.where(valid, wc * np.where(hit, on, off), 0.0)

    return softmax_from_coefficients(spec, inputs.x, smoothed, d, F64)


def sample_weight_per_element(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Class weights passed as per-sample weights w[y]: with label smoothing the whole smoothed loss is
    scaled by w[y] (not each class term by w[c]), and the mean divides by N (Keras
    'sum_over_batch_size' with sample_weight). https://keras.io/api/losses/ (sample_weight)"""
    if spec.family != "softmax" or spec.target != "index" or not spec.weighted or not spec.label_smoothing:
        return None
    y = np.asarray(inputs.target)
    valid = np.ones(y.shape, bool) if spec.ignore_index is None else y != spec.ignore_index
    unweighted = Inputs(inputs.x, y, None)
    unweighted_coefficients, _ = softmax_coefficients(spec, unweighted, F64)
    wy = np.where(valid, inputs.weight[np.where(valid, y, 0)], 0.0)
    d = float(y.size) if spec.reduction == "mean" else 1.0

    def per_element(rows: slice) -> np.ndarray:
        return unweighted_coefficients(rows) * np.expand_dims(wy[rows], 1)

    return softmax_from_coefficients(spec, inputs.x, per_element, np.asarray(d), F64)


def smoothing_c_minus_1(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Label smoothing that spreads e over the C-1 other classes (target 1-e, others e/(C-1)) instead
    of e/C over all C (target 1-e+e/C). https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html
    ("label_smoothing ... a mixture of the original ground truth and a uniform distribution")."""
    return _smoothed_index(spec, inputs, lambda e, c: (1 - e, e / (c - 1)))


def smoothing_binary(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Binary-style smoothing towards 0.5 (t' = (1-e) t + e/2, as Keras BinaryCrossentropy) applied to
    a multiclass target. https://keras.io/api/losses/probabilistic_losses/#binarycrossentropy-class"""
    return _smoothed_index(spec, inputs, lambda e, c: (1 - e / 2, e / 2))


def smoothing_last_axis(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """optax.smooth_labels on element-wise binary targets: t' = (1-e) t + e/K with K the size of the
    last axis, not the e/2 of binary smoothing.
    https://optax.readthedocs.io/en/latest/api/losses.html#optax.smooth_labels"""
    if spec.family != "sigmoid" or not spec.label_smoothing or inputs.x.ndim < 2:
        return None
    e, k = spec.label_smoothing, inputs.x.shape[-1]
    t = (1 - e) * inputs.target + e / k
    return evaluate(_replace(spec, label_smoothing=0.0), Inputs(inputs.x, t, inputs.weight))


def soft_targets_renormalised(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Probability targets rescaled to sum to 1 per element before the loss (targets that do not sum
    to 1 are accepted as they are by PyTorch, TensorFlow and optax, and silently differ from a port
    that normalises them). https://www.tensorflow.org/api_docs/python/tf/nn/softmax_cross_entropy_with_logits"""
    if spec.family != "softmax" or spec.target != "prob":
        return None
    t = inputs.target / inputs.target.sum(axis=1, keepdims=True)
    return evaluate(spec, Inputs(inputs.x, t, inputs.weight))


# -- probabilities near 0 and 1 ---------------------------------------------------------------------


def prob_clamp_log_100(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """BCELoss clamps log(p) and log(1-p) at -100, and its backward divides (p - t) by max(p(1-p), 1e-12)
    with 1e-12 in the input's dtype (0 in float16, so p in {0, 1} gives 0/0 = NaN there).
    https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html ("BCELoss clamps its log function
    outputs to be greater than or equal to -100")."""
    if spec.family != "sigmoid" or spec.input != "probs" or spec.weighted:
        return None
    p = inputs.x
    e = spec.label_smoothing
    t = (1 - e) * inputs.target + e / 2
    with np.errstate(all="ignore"):
        loss = -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log1p(-p), -100))
        grad = (p - t) / np.maximum(p * (1 - p), quantize(np.asarray(1e-12), dtype))
    return _reduce(spec, loss, np.abs(loss), grad, np.asarray(float(p.size)), F64)


def prob_clip_1e7(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Keras clips probabilities to [1e-7, 1 - 1e-7] (backend epsilon, the bounds rounded to the dtype:
    1 - 1e-7 is 1 - 2^-23 in float32) before the log, and for categorical crossentropy first divides
    them by their sum. keras/src/backend/tensorflow/nn.py
    (categorical_crossentropy, binary_crossentropy); https://keras.io/api/utils/config_utils/#epsilon-function"""
    if spec.input != "probs":
        return None
    lo, hi = (float(quantize(np.asarray(b), dtype)) for b in (1e-7, 1 - 1e-7))
    x = inputs.x
    with np.errstate(all="ignore"):
        if spec.family == "sigmoid":
            e = spec.label_smoothing
            t = (1 - e) * inputs.target + e / 2
            w = 1.0 if inputs.weight is None else inputs.weight.reshape(1, -1)
            p = np.clip(x, lo, hi)
            inside = (x > lo) & (x < hi)
            loss = -(w * t * np.log(p) + (1 - t) * np.log1p(-p))
            grad = np.where(inside, -w * t / p + (1 - t) / (1 - p), 0.0)
            return _reduce(spec, loss, np.abs(loss), grad, np.asarray(float(x.size)), F64)
        s = x.sum(axis=1, keepdims=True)
        p = np.clip(x / s, lo, hi)
        inside = (x / s > lo) & (x / s < hi)
        coefficients, d = softmax_coefficients(spec, inputs, F64)
        a = coefficients(slice(None))  # every row at once
        loss = -(a * np.log(p)).sum(axis=1)
        # d/dx_k of -sum_c a_c log(x_c / S) over unclipped c: -a_k/x_k + (sum_c a_c) / S
        grad = np.where(inside, -a / x, 0.0) + (a * inside).sum(axis=1, keepdims=True) / s
        return _reduce(spec, loss, np.abs(loss), grad, d, F64)


def zero_log_zero_nan(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Targets (probabilities, or one-hot labels) multiplied into log_softmax(x): a -inf logit with
    target 0 gives 0 * -inf = NaN where the exact term is 0 (xlogy). The gradient stays finite.
    https://github.com/google-deepmind/optax/issues/896"""
    if spec.family != "softmax" or spec.input != "logits" or not np.isneginf(inputs.x).any():
        return None
    ref = evaluate(spec, inputs)
    bad = np.isneginf(inputs.x).any(axis=1)
    value = np.where(bad, np.nan, ref.value) if spec.reduction == "none" else np.asarray(np.nan)
    return Evaluation(value, ref.grad, ref.scale)


def grad_assumes_normalised_targets(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """The right value, but the gradient softmax(x) - t, which assumes every target row sums to 1
    (exact: softmax(x) sum(t) - t). https://www.tensorflow.org/api_docs/python/tf/nn/softmax_cross_entropy_with_logits
    ("If they are not, the computation of the gradient will be incorrect")."""
    if spec.family != "softmax" or spec.target != "prob" or spec.input != "logits" or spec.weighted:
        return None
    ref = evaluate(spec, inputs)
    coefficients, d = softmax_coefficients(spec, inputs, F64)
    grad = softmax(inputs.x) - coefficients(slice(None))
    if spec.reduction == "mean":
        grad = grad / d
    return Evaluation(ref.value, grad, ref.scale)


def label_oob_zero_row(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Out-of-range labels one-hot to a zero row fed to softmax_cross_entropy_with_logits (the obvious
    port of ignore_index with tf.one_hot): the element's loss is 0 (with smoothing, only its e/C part)
    but it still counts in the mean, and its gradient is softmax(x) - t' since the op assumes labels
    sum to 1. https://www.tensorflow.org/api_docs/python/tf/one_hot (out-of-range indices give zeros)"""
    as_prob = _one_hot_or_zero(spec, inputs)
    return None if as_prob is None else grad_assumes_normalised_targets(*as_prob, dtype)


def mean_over_last_axis(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Keras BinaryCrossentropy averages over the last axis before reducing: 'none' returns (N,), 'sum'
    is the sum divided by C. https://keras.io/api/losses/probabilistic_losses/#binarycrossentropy-class"""
    if spec.family != "sigmoid" or spec.reduction == "mean" or inputs.x.ndim < 2:
        return None
    per = evaluate(_replace(spec, reduction="none"), inputs)
    c = inputs.x.shape[-1]
    if spec.reduction == "none":
        return Evaluation(per.value.mean(axis=-1), per.grad / c, per.scale.mean(axis=-1))
    return Evaluation(np.asarray(per.value.sum() / c), per.grad / c, np.asarray(per.scale.sum() / c))


# -- labels out of range ----------------------------------------------------------------------------


def _one_hot_or_zero(spec: LossSpec, inputs: Inputs) -> tuple[LossSpec, Inputs] | None:
    """Index targets with an ignore value as the one-hot probability targets an obvious port builds:
    a zero row for labels outside [0, C) (jax.nn.one_hot, tf.one_hot), smoothing and weights kept."""
    if spec.family != "softmax" or spec.target != "index" or spec.ignore_index is None:
        return None
    y = np.asarray(inputs.target)
    c = inputs.x.shape[1]
    if not (y == spec.ignore_index).any() or 0 <= spec.ignore_index < c:
        return None
    onehot = np.moveaxis(np.eye(c)[np.clip(y, 0, c - 1)], -1, 1) * np.expand_dims((y >= 0) & (y < c), 1)
    return _replace(spec, target="prob", ignore_index=None), Inputs(inputs.x, onehot, inputs.weight)


def _labels_read_as(spec: LossSpec, inputs: Inputs, read: Callable[[np.ndarray, int], np.ndarray]):
    """The ignored labels passed to an API without ignore_index, read by `read` into [0, C)."""
    if spec.target != "index" or spec.ignore_index is None:
        return None
    y = np.asarray(inputs.target)
    if not (y == spec.ignore_index).any():
        return None
    plain = _replace(spec, ignore_index=None)
    return evaluate(plain, Inputs(inputs.x, read(y, inputs.x.shape[1]), inputs.weight))


def label_oob_wrap(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Out-of-range labels wrap around (y mod C, NumPy-style negative indexing): -1 reads class C-1.
    https://numpy.org/doc/stable/user/basics.indexing.html (negative indices count from the end)."""
    return _labels_read_as(spec, inputs, lambda y, c: np.mod(y, c))


def label_oob_clip(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Out-of-range labels clamped into [0, C-1]: JAX's NumPy-style indexing ``a[y]`` (and
    take_along_axis with mode="clip") clamps out-of-bound indices.
    https://docs.jax.dev/en/latest/notebooks/Common_Gotchas_in_JAX.html#out-of-bounds-indexing"""
    return _labels_read_as(spec, inputs, lambda y, c: np.clip(y, 0, c - 1))


def label_oob_zero(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Out-of-range labels one-hot to all zeros (jax.nn.one_hot, tf.one_hot): the element contributes
    0 (with smoothing, only its e/C part) but still counts in the mean.
    https://docs.jax.dev/en/latest/_autosummary/jax.nn.one_hot.html"""
    as_prob = _one_hot_or_zero(spec, inputs)
    return None if as_prob is None else evaluate(*as_prob)


def label_oob_nan(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
    """Out-of-range labels read as NaN (JAX gathers' default mode "fill", after normalising negative
    indices): the element, and so any reduction over it, is NaN, while the gradient stays finite: the
    filled NaN does not depend on x, so such an element keeps only its log-sum-exp term,
    softmax(x) w[clip(y)] / N (the mean of an obvious port). https://github.com/google-deepmind/optax/issues/1185"""
    if spec.family != "softmax" or spec.target != "index" or spec.ignore_index is None or spec.label_smoothing:
        return None
    y = np.asarray(inputs.target)
    c = inputs.x.shape[1]
    bad = (y == spec.ignore_index) & ((y >= c) | (y < -c))  # negative ones normalise into range
    if not bad.any():
        return None
    wrapped = np.where(y < 0, y + c, y)
    inside = np.where(bad, 0, wrapped)
    w = np.ones(c) if inputs.weight is None else inputs.weight
    wy = w[np.clip(wrapped, 0, c - 1)]
    plain = _replace(spec, ignore_index=None)
    ref = evaluate(plain, Inputs(inputs.x, inside, inputs.weight))
    x = inputs.x
    p = softmax(x)
    d = float(y.size) if spec.reduction == "mean" else 1.0  # the obvious port's mean: (loss * w[y]).mean()
    coefficients, _ = softmax_coefficients(plain, Inputs(x, inside, inputs.weight), F64)
    a = coefficients(slice(None))
    grad_good = (-a + p * a.sum(axis=1, keepdims=True)) / d
    grad = np.where(np.expand_dims(bad, 1), p * np.expand_dims(wy, 1) / d, grad_good)
    value = np.where(bad, np.nan, ref.value) if spec.reduction == "none" else np.asarray(np.nan)
    return Evaluation(value, grad, ref.scale)


# -- precision --------------------------------------------------------------------------------------


def _computed_in(low: str) -> Callable[[LossSpec, Inputs, str], Evaluation | None]:
    def fn(spec: LossSpec, inputs: Inputs, dtype: str = "float64") -> Evaluation | None:
        try:
            return evaluate(spec, inputs, low)
        except TypeError:  # no bfloat16 without ml_dtypes
            return None

    fn.__doc__ = f"""The loss computed (accumulated) in {low}, not in float64: a
    half-precision sum overflows at 65504, a bfloat16 sum keeps 8 significant bits.
    https://pytorch.org/docs/stable/notes/amp_examples.html"""
    return fn


VARIANTS: tuple[Variant, ...] = (
    Variant("probs_passed_as_logits",
            "probabilities are passed where logits are expected (or logits read as probabilities)",
            "https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html", probs_passed_as_logits),
    Variant("log_probs_passed_as_logits", "log-probabilities are passed where logits are expected (or the reverse)",
            "https://pytorch.org/docs/stable/generated/torch.nn.NLLLoss.html", log_probs_passed_as_logits),
    Variant("class_axis=0", "softmax over axis 0 (the batch) instead of the class axis",
            "https://pytorch.org/docs/stable/generated/torch.nn.Softmax.html", class_axis_0),
    Variant("weight_norm=N", "weighted mean divided by the number of elements, not the sum of target weights",
            "https://keras.io/api/losses/", weight_norm_n),
    Variant("weight_norm=count", "weighted mean divided by the count of non-ignored elements",
            "https://keras.io/api/losses/", weight_norm_count),
    Variant("sample_weight=w[y]", "class weights applied per sample: w[y] scales the whole smoothed loss; mean over N",
            "https://keras.io/api/losses/", sample_weight_per_element),
    Variant("smoothing=C-1", "label smoothing spread over the C-1 other classes",
            "https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html", smoothing_c_minus_1),
    Variant("smoothing=0.5", "binary smoothing towards 0.5 applied to a multiclass target",
            "https://keras.io/api/losses/probabilistic_losses/#binarycrossentropy-class", smoothing_binary),
    Variant("smoothing=last_axis", "binary targets smoothed towards 1/K (K = size of the last axis), not 1/2",
            "https://optax.readthedocs.io/en/latest/api/losses.html#optax.smooth_labels", smoothing_last_axis),
    Variant("soft_targets_renormalised", "probability targets rescaled to sum to 1",
            "https://www.tensorflow.org/api_docs/python/tf/nn/softmax_cross_entropy_with_logits",
            soft_targets_renormalised),
    Variant("prob_clamp=log>=-100", "log(p) clamped at -100, gradient (p-t)/max(p(1-p), 1e-12)",
            "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html", prob_clamp_log_100),
    Variant("prob_clip=1e-7", "probabilities renormalised and clipped to [1e-7, 1-1e-7] before the log",
            "https://keras.io/api/utils/config_utils/#epsilon-function", prob_clip_1e7),
    Variant("0*log(0)=nan", "target * log_softmax(x) with a -inf logit: 0 * -inf = NaN",
            "https://github.com/google-deepmind/optax/issues/896", zero_log_zero_nan),
    Variant("grad_assumes_normalised_targets", "the gradient softmax(x) - t assumes targets sum to 1",
            "https://www.tensorflow.org/api_docs/python/tf/nn/softmax_cross_entropy_with_logits",
            grad_assumes_normalised_targets),
    Variant("label_oob=zero_row",
            "out-of-range labels one-hot to zeros; loss 0, gradient softmax(x), counted in the mean",
            "https://www.tensorflow.org/api_docs/python/tf/one_hot", label_oob_zero_row),
    Variant("mean_over_last_axis",
            "averaged over the last (class) axis first: 'none' gives (N,), 'sum' is divided by C",
            "https://keras.io/api/losses/probabilistic_losses/#binarycrossentropy-class", mean_over_last_axis),
    Variant("label_oob=nan", "out-of-range labels give NaN",
            "https://www.tensorflow.org/api_docs/python/tf/nn/sparse_softmax_cross_entropy_with_logits", label_oob_nan),
    Variant("label_oob=zero", "out-of-range labels one-hot to zeros (the element counts 0 in the mean)",
            "https://docs.jax.dev/en/latest/_autosummary/jax.nn.one_hot.html", label_oob_zero),
    Variant("label_oob=clip", "out-of-range labels clamped into [0, C-1]",
            "https://docs.jax.dev/en/latest/_autosummary/jax.numpy.take_along_axis.html", label_oob_clip),
    Variant("label_oob=wrap", "out-of-range labels wrap around (y mod C)",
            "https://numpy.org/doc/stable/user/basics.indexing.html", label_oob_wrap),
    Variant("reduction=sum", "summed instead of averaged", "https://www.tensorflow.org/api_docs/python/tf/nn",
            reduction_sum),
    Variant("reduction=mean", "averaged instead of summed", "https://keras.io/api/losses/", reduction_mean),
    *(
        Variant(f"computed_in={d}", f"the loss computed in {d}, below the input's precision",
                "https://pytorch.org/docs/stable/notes/amp_examples.html", _computed_in(d), d)
        for d in ("float32", "bfloat16", "float16")
    ),
)  # fmt: skip

BY_NAME = {v.name: v for v in VARIANTS}
