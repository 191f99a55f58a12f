"""The canonical cross-entropy semantics (docs/DESIGN.md) in NumPy: values, analytic gradients, and the
scale a correct implementation's rounding error grows with; and the same loss computed the ways frameworks
depart from it (`Semantics`: each field's default is the canonical rule; `adapters.variants` names them).

Evaluated in float64 this is the reference every framework is compared with. The same code in a lower
dtype is what the `numpy` framework rows report (the stable formulas rounded to that dtype), so there is
exactly one implementation of the semantics.

Softmax family, per element i (over N and d1..dk), classes on axis 1, with coefficients ``a[i, c]``:

  index target y:  a[i, c] = w[c] ((1-e) [c == y_i] + e/C),  0 where y_i == ignore_index
  prob target t:   a[i, c] = w[c] ((1-e) t[i, c] + e/C)

  l_i = -sum_c a[i, c] log p[i, c]            (a term with a == 0 is 0, even where log p = -inf)
  dl_i/dx[i, c] = S_i p[i, c] - a[i, c],  S_i = sum_c a[i, c]     (logits)
                = -a[i, c]                                         (log-probabilities: log p = x)
                = -a[i, c] / x[i, c]                               (probabilities: log p = log x)

  mean divides by D = sum_i w[y_i] over non-ignored i (index targets) or by the number of elements
  (prob targets); D == 0 gives a NaN value and a zero gradient, as PyTorch.

Sigmoid family, element-wise with ``t' = (1-e) t + e/2`` and pos_weight ``w`` on axis 1:

  l = w t' softplus(-x) + (1-t') softplus(x)          (logits; = -w t' log s(x) - (1-t') log(1-s(x)))
  dl/dx = s(x) (w t' + 1 - t') - w t' = (1-t') s(x) - w t' s(-x)
  l = -w t' log x - (1-t') log(1-x)                   (probabilities)
  dl/dx = -w t'/x + (1-t')/(1-x)

  mean divides by the number of elements. Gradients are of the reduced loss; for ``none``, of the sum.

A linear head (`LossSpec.linear`): x holds hidden states E (N, D), the logits are z = E Wᵀ + b with a classifier
W (C, D) and bias b (C,), and the loss is the one above of z. With G = dL/dz (the gradient above, of z):

  dL/dE = G W    (N, D)         dL/dW = Gᵀ E    (C, D)         dL/db = sum_i G[i, :]    (C,)

  (W and b are judged as one parameter [W | b] (C, D+1): b is W's column for a constant input 1.) Computed in a
  dtype D, the logits are materialised in D: each dot product accumulated in float64 and rounded once (the most
  accurate a D implementation can store; frameworks accumulate half-precision products in float32, whose error is
  far below the rounding to D); likewise G W and Gᵀ E of the G computed in D.

  Error scales: the logits' own rounding grows with A = |E| |W|ᵀ + |b| (a dot product's), and an error δz moves
  G by r S p (δz - p·δz) (r: 1/D for a mean, else 1), so with s_G the scale of G above,
  s'_G = s_G + r |S| p (A + sum_c p A), and

  value:  scale(z) + sum_c |G| A (per element for ``none``, else summed: G is of the reduced loss);
  dE:     (s'_G + k_C |G|) |W|;    dW: (s'_G + k_N |G|)ᵀ |E|;    db: sum_i (s'_G + k_N |G|),
          k_K = sqrt(K) / (2 + log2 C): a dot product of K terms summed one after another (a matrix-vector product:
          a one-row chunk's dE) rounds like 4 sqrt(K) eps sum|terms| (the probabilistic bound), beyond tol's
          4 (2 + log2 C) eps, which a blocked product's error stays within.

Forms that do not cancel (the reference must be more accurate than what it judges):

  log p[c] = (x[c] - m) - log1p(sum_{c' != j} exp(x[c'] - m)),  m = x[j] = max_c x[c]
    (not x[c] - lse: for the largest logit both are ~m, and a confident prediction's loss ~1e-5 would
    keep only the digits m does not use);
  S p[c] - a[c] = S expm1(log p[c]) + r[c],  r[c] = sum_{c' != c} a[c'],  for the dominant coefficient
    (a[c] > r[c] >= 0): exact for a one-hot target as p[c] -> 1, where S p - a is 1 - 1 (tests check
    both against mpmath at 50 digits). Where a smoothed target and the prediction agree to many digits
    (p[c] ~ a[c] / S, neither 0 nor 1) the gradient is a difference of two nearly equal numbers: its
    error stays ~eps (S p + a), the bound `harness.judge.metrics` judges with.

Error scales (`Evaluation.scale`, `Evaluation.grad_scale`): what the rounding error of a correct
implementation in the evaluation's dtype grows with, per element, reduced as the loss is:

  value:    sum_c |a| (|log p| + 1) for logits (the log-sum-exp's rounding is absolute near log 1 = 0),
            sum_c |a| |log p| otherwise;
  gradient: |S| p (1 + |log p|) + |a| for logits (exp turns an absolute error of log p into a relative
            one of p), |a| for log-probabilities, |a / x| for probabilities; sigmoid likewise.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cases.spec import Inputs, LossSpec, quantize


@dataclass(frozen=True)
class Semantics:
    """How a loss is computed, field by field; every default is the canonical (PyTorch) rule.

    A variant (`adapters.variants`) sets one field; an explanation may combine several.

    Attributes:
      read: ``probs<->logits`` / ``log_probs<->logits``: x is read as the other input kind of the pair.
      class_axis: 1; 0 (softmax over the batch, 2-D logits); -1 (the last axis read as classes, K-dim
        probability targets).
      labels: how labels equal to ignore_index are read: ``ignore`` (dropped); or, by an API without
        ignore_index, as labels: ``zero`` (a zero one-hot row), ``zero_row`` (a zero row whose gradient
        is softmax(x), as softmax_cross_entropy_with_logits gives), ``clip`` (into [0, C-1]), ``wrap``
        (mod C), ``nan`` (a NaN loss: a gather that fills; negative labels wrap once first), ``nan_value``
        (the same NaN in the value only: a NaN class weight whose element the API masks, gradient and all),
        ``nan_rows`` (XLA's sparse softmax cross-entropy: loss and gradient row NaN, counted in the mean).
      smoothing: ``uniform`` (e/C), ``others`` (e/(C-1) to the others, 1-e to the target), ``half``
        (e/2), ``last_axis`` (sigmoid: e/K with K the last axis' size); ``classes`` (every class' w[c]:
        the sum ``split`` reduces).
      smoothing_order: ``folded`` (e/C in the coefficients) or ``split`` (PyTorch's order:
        (1-e) NLL + e/C sum_c -w[c] log p[c], each part reduced on its own): the same in exact arithmetic,
        not in float16, where the class sum of a 100-class confident batch overflows.
      class_weights: ``class`` (w[c] on each class term) or ``sample`` (w[y] scales the element), or ``targets``
        (Paddle's soft labels): with t' the unweighted (smoothed) target, each element's loss
        ``-sum_c t'[i, c] log p[i, c]`` times ``omega_i = sum_c w[c] t'[i, c]`` (``t' @ w``), and the mean divides by
        ``sum_i omega_i`` (the sum of w[y_i] for a one-hot t', the canonical denominator).
      targets: ``as_given`` or ``normalised`` (probability targets divided by their sum).
      probs_renormalised: probabilities divided by their sum over the classes before the log: ``""``,
        ``before_clip`` (Keras CategoricalCrossentropy) or ``after_clip`` (SparseCategoricalCrossentropy:
        log_softmax of the log of the clipped probabilities).
      probs_clip: probabilities clipped to [1e-7, 1 - 1e-7] (bounds in the dtype) before the log; for softmax
        logits, the softmax' probabilities (a hand-written softmax, clipped, then logged).
      log_clamp: logs clamped at -100, gradient (p - t) / max(p (1 - p), 1e-12) (sigmoid).
      log_clamp_grad: with `log_clamp`, that gradient (``backward``, BCELoss') or ``autodiff`` (the clamp
        differentiated, as MLX's clip is: -[log p > -100] t / p + [log(1-p) > -100] (1-t) / (1-p), where a clamped
        log passes 0 and log's 1/p still divides it: 0/0 = NaN at p = 0 or 1).
      sigmoid_grad: sigmoid logits: the gradient's sigmoid(x) computed ``direct``ly or as ``one_minus``
        sigmoid(-x) (MLX's logaddexp VJP): the same in exact arithmetic, in a low dtype it cancels where x << 0.
      lse_once: logits: the log-sum-exp counted once with the max m held constant (MLX's probability targets),
        l = (lse - m) - sum_c a_c (x_c - m) = -sum_c a_c log p_c + (1 - sum_c a_c)(lse - m): the canonical loss
        only where the coefficients sum to 1 (with m held constant the gradient is softmax(x) - a:
        ``grad=normalised_targets``).
      zero_log_zero: ``zero`` or ``nan`` (a zero coefficient times a -inf log is NaN).
      grad: ``exact`` or ``normalised_targets`` (softmax(x) - a, right only where a sums to 1).
      denominator: the mean's: ``canonical``, ``elements`` (N d1..dk), ``count`` (non-ignored elements),
        ``sample_sum`` (the canonical denominator with each element's sample weight in: sum of w[y] s).
      empty_mean: ``nan`` (PyTorch: 0/0, and a zero gradient), ``zero`` (a mean over nothing is 0) or
        ``nan_grad`` (0/0 reaches the gradient too: every entry NaN, as autodiff of a masked sum over a
        zero count gives).
      reduction: "" or the reduction used instead of the spec's.
      last_axis_mean: averaged over the last axis first (sigmoid).
      constants: the dtype clip bounds and the BCE gradient floor are rounded to ("": the evaluation's),
        so that a variant computed in float64 uses the constants a float32 framework used.
      accumulation: how a loss over micro-batches (`LossSpec.micro_batches`) is put together: ``batch`` (the
        full batch's loss, canonical) or ``mean_of_means`` (each micro-batch's mean, averaged: every
        micro-batch weighs the same whatever its number of kept labels).
      keep_class_axis: ``none`` keeps a size-1 class axis in the loss, where the softmax ran: (N, 1, d1..dk) on
        axis 1, (N, d1..dk, 1) with the last axis read as classes (Paddle's soft labels).
      logit_floor: logits: x - max_c x clipped at this floor before the softmax, for the value and the gradient
        (``S p' - a`` with p' the softmax of the clipped logits): Paddle's CPU softmax kernels clip at -64, so a
        class more than 64 below the maximum has log p' ~ -64 and a -inf logit a probability ~e^-64 (-inf: none).
      probs_rounded: the softmax of logits rounded to this many decimals before its log (None: not rounded),
        as a printed softmax is (seed 004); the loss is then piecewise constant in x: its gradient is 0.
    """

    read: str = ""
    class_axis: int = 1
    labels: str = "ignore"
    smoothing: str = "uniform"
    smoothing_order: str = "folded"
    class_weights: str = "class"
    targets: str = "as_given"
    probs_renormalised: str = ""
    probs_clip: bool = False
    log_clamp: bool = False
    log_clamp_grad: str = "backward"
    lse_once: bool = False
    sigmoid_grad: str = "direct"
    zero_log_zero: str = "zero"
    grad: str = "exact"
    denominator: str = "canonical"
    empty_mean: str = "nan"
    reduction: str = ""
    last_axis_mean: bool = False
    constants: str = ""
    accumulation: str = "batch"
    keep_class_axis: bool = False
    logit_floor: float = -math.inf
    probs_rounded: int | None = None


CANONICAL = Semantics()
UNDEFINED = "PyTorch raises on labels outside [0, C) that are not ignore_index (the loss has no value there)"
CLIP_EPSILON = 1e-7  # Keras' backend.epsilon()
BCE_LOG_FLOOR = -100.0  # torch.nn.BCELoss clamps its logs here
BCE_GRAD_FLOOR = 1e-12  # ... and its backward divides by max(p (1 - p), this), in the input's dtype


@dataclass(frozen=True, eq=False)
class Evaluation:
    """A loss value, its gradient with respect to ``x``, and the scales their rounding errors grow with.

    Attributes:
      value: shape () for ``sum``/``mean``, the per-element shape for ``none``.
      grad: shape of ``x``; a `GradRows` where evaluated with ``lazy=True``.
      scale: shape of ``value``; the reduced error scale of the loss terms (module docstring), so
        ``|error| <= tol * scale`` is the test a correctly rounded implementation passes even where the
        loss cancels to near zero.
      grad_scale: shape of ``x`` (or a `GradRows`); the same for each gradient element. None where not
        asked for.
    """

    value: np.ndarray
    grad: np.ndarray | GradRows
    scale: np.ndarray
    grad_scale: np.ndarray | GradRows | None = None
    undefined: str = ""  # why the canonical loss has no value here (PyTorch raises); its NaNs mark where
    # a linear head's (`LossSpec.linear`; `grad` is then d/dE): d/d[W | b] (C, D or D+1) and its error scale
    grad_w: np.ndarray | None = None
    grad_w_scale: np.ndarray | None = None


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


@dataclass(frozen=True, eq=False)
class GradRows:
    """A gradient (or its scale) made a block of rows (axis 0) at a time, when those rows are read:
    ``g[i:j]`` is an array, ``np.asarray(g)`` the whole gradient.

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


def class_axis(v: np.ndarray, ndim: int) -> np.ndarray:
    """Shape a (C,) vector to broadcast along axis 1 of an ndim array."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def evaluate(
    spec: LossSpec, inputs: Inputs, dtype: str = "float64", lazy: bool = False,
    semantics: Semantics = CANONICAL, scales: bool = True, value_only: bool = False, head: HeadProducts | None = None,
) -> Evaluation:  # fmt: skip
    """Value, gradient and error scales of the loss, computed in `dtype`.

    Args:
      spec: the loss configuration.
      inputs: x (N, C[, d1..dk]), target (index: int (N[, d1..dk]); prob: x's shape), weight (C,) or None.
      dtype: the dtype to compute in; ``float64`` gives the reference.
      lazy: the softmax family's gradient (and its scale) as a `GradRows`, remade from `inputs` a block
        of rows at a time when read, not held (the same numbers); the sigmoid family's are arrays regardless.
      semantics: the canonical rules, or the departures a variant models.
      scales: compute the gradient's error scale (`Evaluation.grad_scale`); the loss' is always made.
      value_only: a linear head's value and its error scale alone (the same numbers; `grad` empty, no gradients
        of E or [W | b]: four of its six matrix products skipped), what a variant is first tested with
        (harness/judge/explain.py); any other loss is evaluated whole.
      head: a linear head's logits and A, made once for many evaluations (`head_products`: the same numbers).

    A linear head's loss (`LossSpec.linear`: x holds E, `Inputs.classifier` W) is that of its logits, with the
    gradients with respect to E (`grad`) and to [W | b] (`Evaluation.grad_w`): module docstring.

    Returns:
      An `Evaluation` (arrays of `dtype`).
    """
    if spec.linear:
        return _linear(spec, inputs, dtype, semantics, scales, value_only, head)
    dt = numpy_dtype(dtype)
    sem = semantics
    if sem.reduction:
        spec = dataclasses.replace(spec, reduction=sem.reduction)
    if sem.read:
        spec = dataclasses.replace(spec, input=_read_as(spec.input, sem.read))
    if sem.keep_class_axis:  # the loss of `none` with a size-1 class axis where the softmax ran
        ev = evaluate(spec, inputs, dtype, lazy, dataclasses.replace(sem, keep_class_axis=False), scales)
        if spec.reduction != "none" or spec.family != "softmax":
            return ev
        kept = (np.expand_dims(a, sem.class_axis) for a in (ev.value, ev.scale))
        return dataclasses.replace(ev, value=next(kept), scale=next(kept))
    if spec.micro_batches:
        sizes = spec.micro_batches
        spec = dataclasses.replace(spec, micro_batches=())  # the canonical loss is the full batch's
        if sem.accumulation == "mean_of_means" and spec.reduction == "mean":
            return _mean_of_means(spec, inputs, dtype, sem, scales, sizes)
    with np.errstate(all="ignore"):
        if sem.class_axis != 1:
            return _other_class_axis(spec, inputs, dtype, sem, scales)
        if sem.probs_rounded is not None and spec.family == "softmax" and spec.input == "logits":
            return _rounded_probs(spec, inputs, dtype, sem, scales)
        if sem.probs_clip and spec.family == "softmax" and spec.input == "logits":
            return _clipped_softmax(spec, inputs, dtype, sem, scales)
        if sem.smoothing_order == "split" and spec.family == "softmax" and spec.target == "index":
            return _split_smoothing(spec, inputs, dtype, sem, scales)
        if spec.family == "softmax":
            return _softmax(spec, sem, inputs, dt, lazy, scales)
        return _sigmoid(spec, sem, inputs, dt, scales)


def _mean_of_means(
    spec: LossSpec, inputs: Inputs, dtype: str, sem: Semantics, scales: bool, sizes: tuple[int, ...]
) -> Evaluation:
    """What a gradient-accumulation loop that averages each micro-batch's mean computes: with K micro-batches
    of rows R_k, loss = (1/K) sum_k mean_k, and d loss / dx[R_k] = (1/K) d mean_k / dx[R_k] (each row belongs
    to one micro-batch). The rest of `sem` applies within each micro-batch."""
    inner = dataclasses.replace(sem, accumulation="batch")
    bounds = np.cumsum((0, *sizes))
    parts = []
    for a, b in itertools.pairwise(bounds):
        s = inputs.sample_weight
        sub = Inputs(inputs.x[a:b], inputs.target[a:b], inputs.weight, None if s is None else s[a:b])
        parts.append(evaluate(spec, sub, dtype, semantics=inner, scales=scales))
    dt, k = numpy_dtype(dtype), len(sizes)
    value = np.asarray(np.sum([p.value for p in parts], dtype=dt) / k, dtype=dt)
    scale = np.asarray(np.sum([p.scale for p in parts], dtype=dt) / k, dtype=dt)
    grad = np.concatenate([np.asarray(p.grad) / k for p in parts]).astype(dt, copy=False)
    grad_scale = None if not scales else np.concatenate([np.asarray(p.grad_scale) / k for p in parts]).astype(dt)
    return Evaluation(value, grad, scale, grad_scale, next((p.undefined for p in parts if p.undefined), ""))


def _read_as(declared: str, pair: str) -> str:
    """The input kind x is read as under ``read=pair`` (``probs<->logits``): the other one of the pair."""
    a, b = pair.split("<->")
    return {a: b, b: a}.get(declared, declared)


# -- softmax family -------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Targets:
    """The coefficients of ``-log p`` a block of rows at a time, and the mean's denominator.

    A function of the rows rather than an array: ``a`` is as large as the logits, and made per block it
    never exists whole (on a 32000-class case that is one copy of the logits fewer, in every worker and
    in the parent).
    """

    coefficients: Callable[[slice], np.ndarray]  # a[rows], a fresh array
    denominator: np.ndarray
    nan: np.ndarray | None = None  # elements whose loss is NaN (labels read as NaN)
    extra: np.ndarray | None = None  # added to S = sum_c a of those elements (the weight the port multiplied)
    unit: np.ndarray | None = None  # elements whose S is 1 (zero rows through an op assuming labels sum to 1)
    undefined: np.ndarray | None = None  # elements PyTorch raises on (labels outside [0, C)): value and gradient NaN
    nan_rows: np.ndarray | None = None  # elements whose loss and gradient row are NaN (`Semantics.labels`)


def valid_targets(target: np.ndarray, n_classes: int, ignore_index: int | None) -> np.ndarray:
    """The elements an index target takes part in: not equal to ignore_index (the one place this rule lives)."""
    return np.ones(target.shape, bool) if ignore_index is None else target != ignore_index


def out_of_range(target: np.ndarray, n_classes: int, ignore_index: int | None) -> np.ndarray:
    """Labels outside [0, C) that are not ignore_index: canonical semantics have no value for them."""
    return valid_targets(target, n_classes, ignore_index) & ((target < 0) | (target >= n_classes))


def softmax_targets(spec: LossSpec, inputs: Inputs, dt: np.dtype, sem: Semantics = CANONICAL) -> Targets:
    """The coefficients ``a[i, c]`` (module docstring) under `sem`, and the mean's denominator D."""
    x = np.asarray(inputs.x)
    ndim, c = x.ndim, x.shape[1]
    w = np.ones(c, dt) if inputs.weight is None else np.asarray(inputs.weight).astype(dt)
    wc = class_axis(w, ndim)
    e = dt.type(spec.label_smoothing)
    elements = np.asarray(x.size // c, dt)
    sw = None if inputs.sample_weight is None else np.broadcast_to(inputs.sample_weight, x.shape[:1] + x.shape[2:])
    sw = None if sw is None else sw.astype(dt)
    if spec.target == "prob":
        t = np.asarray(inputs.target)
        if sem.targets == "normalised":
            t = t / t.sum(axis=1, keepdims=True)

        def prob(rows: slice) -> np.ndarray:
            a = t[rows].astype(dt)  # a fresh array, worked on in place
            if e:
                a *= 1 - e
                a += e / dt.type(c)
            if sem.class_weights == "targets":  # the element's loss times omega_i = t'[i] @ w
                a *= (a * wc).sum(axis=1, keepdims=True, dtype=dt)
            else:
                a *= wc
            if sw is not None:
                a *= np.expand_dims(sw[rows], 1)
            return a

        if sem.class_weights == "targets" and sem.denominator == "canonical":  # sum_i omega_i = sum_c w[c] T'[c]
            per_class = t.sum(axis=tuple(k for k in range(t.ndim) if k != 1), dtype=dt)
            return Targets(prob, np.asarray(((1 - e) * per_class + e / dt.type(c) * elements) @ w, dt))
        return Targets(prob, elements if sem.denominator != "sample_sum" or sw is None else sw.sum(dtype=dt))

    y = np.asarray(inputs.target)
    labels = read_labels(y, c, spec.ignore_index, sem.labels)
    ignored, no_class, y_safe, nan = labels.ignored, labels.no_class, labels.y, labels.nan
    # the port's w[y] times the lse (a NaN-filled gather); a zero row's NaN is its value's alone
    extra = None if nan is None or sem.labels != "nan" else np.where(nan, w[labels.read], 0).astype(dt)
    if extra is not None and sw is not None:
        extra *= sw
    unit = labels.unit
    on, off = _smoothing_shares(sem.smoothing, e, c, dt)
    w_y = np.where(no_class, 0, w[y_safe]).astype(dt)

    def index(rows: slice) -> np.ndarray:
        a = np.full(x[rows].shape, off, dt)  # the smoothing share of every class ...
        target_share = np.where(np.expand_dims(no_class[rows], 1), off, on).astype(dt)
        np.put_along_axis(a, np.expand_dims(y_safe[rows], 1), target_share, axis=1)  # ... the target's
        if sem.class_weights == "sample":
            a *= np.expand_dims(w_y[rows], 1)
        elif sem.class_weights == "targets":  # the element's loss times omega_i = a'[i] @ w
            a *= (a * wc).sum(axis=1, keepdims=True, dtype=dt)
        else:
            a *= wc
        a *= np.expand_dims(~ignored[rows], 1)  # ignored elements contribute nothing
        if sw is not None:
            a *= np.expand_dims(sw[rows], 1)
        return a

    if sem.denominator == "elements":
        d = elements
    elif sem.denominator == "count":
        d = np.asarray(np.count_nonzero(~ignored), dt)
    elif sem.denominator == "sample_sum":  # the canonical sum of w[y], each times its sample weight
        d = (w_y if sw is None else w_y * sw)[~ignored].sum(dtype=dt)
    elif sem.class_weights == "targets":  # sum_i omega_i, omega_i = on w[y_i] + off (sum_c w[c] - w[y_i])
        d = (off * w.sum(dtype=dt) + (on - off) * w_y)[~ignored].sum(dtype=dt)
    else:
        d = w_y.sum(dtype=dt)
    if sem.labels == "nan_rows":
        return Targets(index, d, None, None, unit, labels.undefined, nan)
    return Targets(index, d, nan, extra, unit, labels.undefined)


@dataclass(frozen=True, eq=False)
class Labels:
    """Index targets as a reading rule (`Semantics.labels`) reads them, element by element."""

    y: np.ndarray  # the class each element's target term goes to (0 where it has none)
    ignored: np.ndarray  # contributes nothing and is left out of the mean
    no_class: np.ndarray  # has no target class (ignored, or a label one-hot to a zero row)
    nan: np.ndarray | None  # its loss is NaN (a gather that fills)
    unit: np.ndarray | None  # its gradient assumes labels summing to 1 (a zero row through softmax_xent)
    read: np.ndarray  # the class the rule reads each label as (a NaN one's: what w[y] gathers), in [0, C)
    undefined: np.ndarray | None  # outside [0, C) and not ignore_index, read canonically: PyTorch raises


def read_labels(y: np.ndarray, c: int, ignore_index: int | None, rule: str = "ignore") -> Labels:
    """Labels equal to ignore_index dropped and labels outside [0, C) undefined (``ignore``, canonical:
    PyTorch raises on those), or both read as an API that takes any label reads them: ``zero``/``zero_row``
    (one-hot to zeros), ``clip``, ``wrap`` (mod C), ``nan`` (negative ones wrap once, those still outside
    [0, C) give NaN) or ``nan_rows`` (loss and gradient row NaN, counted in the mean); an ignore_index inside
    [0, C) is then a class like any other."""
    hit = ~valid_targets(y, c, ignore_index)  # the labels the spec ignores
    oob = ~hit & ((y < 0) | (y >= c))  # not ignored, and no class
    undefined = oob if rule == "ignore" and oob.any() else None
    if rule != "ignore":
        hit = hit | oob  # read like the ignored labels an API without ignore_index sees
    outside = hit & ((y < 0) | (y >= c))
    ignored, nan = (hit | oob if rule == "ignore" else np.zeros(y.shape, bool)), None
    if rule == "clip":
        y_read = np.clip(y, 0, c - 1)
    elif rule == "wrap":
        y_read = np.mod(y, c)
    elif rule in ("nan", "nan_value"):
        wrapped = np.where(y < 0, y + c, y)
        ignored = nan = hit & ((wrapped < 0) | (wrapped >= c))
        y_read = np.clip(wrapped, 0, c - 1)
    else:
        y_read = y
    no_class = ignored | (outside & (rule in ("zero", "zero_row", "nan_rows")))
    unit = (outside & ~ignored) if rule == "zero_row" else None
    if rule == "nan_rows":  # XLA: loss and gradient row NaN, still counted in the mean
        nan = outside & ~ignored
    read = np.clip(y_read, 0, c - 1)
    return Labels(np.where(no_class, 0, y_read), ignored, no_class, nan, unit, read, undefined)


def _smoothing_shares(rule: str, e: np.floating, c: int, dt: np.dtype) -> tuple[np.floating, np.floating]:
    """(target's share, every other class' share) of a smoothed one-hot target."""
    if rule == "others":
        return dt.type(1 - e), dt.type(e / dt.type(c - 1))
    if rule == "half":
        return dt.type(1 - e / 2), dt.type(e / 2)
    if rule == "classes":
        return dt.type(1), dt.type(1)
    return dt.type((1 - e) + e / dt.type(c)), dt.type(e / dt.type(c))


def _log_softmax_rows(xr: np.ndarray, dt: np.dtype, axis: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(log p, m, L)`` with ``log p = (x - m) - L``, ``L = log1p(sum over the non-maximal classes of
    exp(x - m))``: no cancellation for the largest logit (module docstring)."""
    m = xr.max(axis=axis, keepdims=True)
    u = np.subtract(xr, m)
    e = np.exp(u)
    np.put_along_axis(e, np.argmax(xr, axis=axis, keepdims=True), 0, axis=axis)  # one maximum left out ...
    big_l = np.log1p(e.sum(axis=axis, keepdims=True, dtype=dt))  # ... so log1p sees the others alone
    return np.subtract(u, big_l, out=u), m, big_l


def _probs_rows(xr: np.ndarray, sem: Semantics, dt: np.dtype) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``(log q, the sum divided by or None, inside)`` for probabilities read as `sem` says: renormalised
    before or after a clip to Keras' bounds; `inside` marks the elements the clip passes."""
    q, total = xr, None
    if sem.probs_renormalised == "before_clip":
        total = xr.sum(axis=1, keepdims=True, dtype=dt)
        q = xr / total
    inside = np.ones(q.shape, bool)
    if sem.probs_clip:
        lo, hi = _clip_bounds(dt, sem)
        inside = (q >= lo) & (q <= hi)  # tf.clip_by_value passes the gradient at the bounds
        q = np.clip(q, lo, hi)
    if sem.probs_renormalised == "after_clip":
        total = q.sum(axis=1, keepdims=True, dtype=dt)
        q = q / total
    return np.log(q), total, inside


def _clip_bounds(dt: np.dtype, sem: Semantics) -> tuple[np.floating, np.floating]:
    """Keras' [epsilon, 1 - epsilon], rounded to the constants' dtype (1 - 1e-7 is 1 - 2^-23 in float32)."""
    lo, hi = (dt.type(quantize(np.asarray(b), sem.constants or dt.name)) for b in (CLIP_EPSILON, 1 - CLIP_EPSILON))
    return lo, hi


def _softmax(spec: LossSpec, sem: Semantics, inputs: Inputs, dt: np.dtype, lazy: bool, scales: bool) -> Evaluation:
    """``l_i = -sum_c a[i, c] log p[i, c]`` with its gradient and error scales, reduced as `spec` says.

    Made a block of rows at a time; the gradient (and its scale) are the arrays of x's size (none with
    `lazy`: then `GradRows` that remake their rows from x, the log-sum-exp and the coefficients when read).
    A block's sums are those rows' sums over the whole array (the same additions in the same order), so
    the numbers depend neither on the block size nor on `lazy`.
    """
    x = np.asarray(inputs.x).astype(dt, copy=False)
    if spec.input == "logits" and sem.logit_floor > -math.inf:  # x - max clipped at the floor (a copy)
        x = np.maximum(x, x.max(axis=1, keepdims=True) + dt.type(sem.logit_floor))
    tg = softmax_targets(spec, inputs, dt, sem)
    out_shape = x.shape[:1] + x.shape[2:]  # the class axis summed away
    loss, scale = np.empty(out_shape, dt), np.empty(out_shape, dt)
    logits = spec.input == "logits"
    # log p = (x - shift) - big_l: both kept (one value per element) to remake gradient rows when read
    shift = np.empty((*out_shape[:1], 1, *out_shape[1:]), dt) if logits else None
    big_l = np.empty_like(shift) if logits else None
    grad = None if lazy else np.empty_like(x)
    gscale = None if (lazy or not scales) else np.empty_like(x)
    step = block_rows(x.shape)
    for i in range(0, x.shape[0], step):
        r = slice(i, i + step)
        a = tg.coefficients(r)
        xr = x[r]
        if logits:
            logp, shift[r], big_l[r] = _log_softmax_rows(xr, dt)
        elif spec.input == "log_probs":
            logp = xr
        else:
            logp = _probs_rows(xr, sem, dt)[0]
        loss[r], scale[r] = _terms(a, logp, logits, sem, dt)
        if sem.lse_once and logits:  # + (1 - sum_c a)(lse - m); big_l is lse - m
            loss[r] += (1 - a.sum(axis=1, dtype=dt)) * big_l[r][:, 0]
        if grad is not None:
            grad[r], gs = _grad_rows(spec, sem, xr, logp, a, _sums(tg, r), dt, gscale is not None)
            if gscale is not None:
                gscale[r] = gs
    if tg.nan is not None:
        loss[tg.nan] = np.nan
    # no value where PyTorch raises (or where XLA gives NaN): NaN marks those elements and gradient rows
    rows_nan = _either(tg.undefined, tg.nan_rows)
    if rows_nan is not None:
        loss[rows_nan] = scale[rows_nan] = np.nan
        if grad is not None:
            _undefine(grad, rows_nan)
            if gscale is not None:
                _undefine(gscale, rows_nan)

    def remake(r: slice, want_scale: bool) -> np.ndarray:
        with np.errstate(all="ignore"):
            xr = x[r]
            if logits:
                logp = np.subtract(xr, shift[r])
                logp -= big_l[r]
            else:
                logp = xr if spec.input == "log_probs" else _probs_rows(xr, sem, dt)[0]
            g, gs = _grad_rows(spec, sem, xr, logp, tg.coefficients(r), _sums(tg, r), dt, want_scale)
            out = gs if want_scale else g
            if rows_nan is not None:
                _undefine(out, rows_nan[r])
            return out

    if grad is None:
        grad = GradRows(x.shape, dt, lambda r: remake(r, False))
        gscale = GradRows(x.shape, dt, lambda r: remake(r, True)) if scales else None
    ev = _reduce(spec, sem, Evaluation(loss, grad, scale, gscale), tg.denominator, dt)
    return dataclasses.replace(ev, undefined=UNDEFINED) if tg.undefined is not None else ev


def _either(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return b if a is None else (a if b is None else a | b)


def _undefine(g: np.ndarray, undefined: np.ndarray) -> None:
    """NaN the gradient rows (all classes) of undefined elements, in place."""
    g[np.broadcast_to(np.expand_dims(undefined, 1), g.shape)] = np.nan


def _sums(tg: Targets, r: slice) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(extra, unit) of `Targets` for a block of rows: what changes S = sum_c a in the gradient."""
    return (None if tg.extra is None else tg.extra[r]), (None if tg.unit is None else tg.unit[r])


def _terms(
    a: np.ndarray, logp: np.ndarray, logits: bool, sem: Semantics, dt: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """The block's per-element loss ``-sum_c a log p`` and its error scale ``sum_c |a| (|log p| [+ 1])``."""
    unused = a == 0
    terms = np.abs(logp)
    if logits:
        terms += 1
    terms *= np.abs(a)
    terms[unused] = 0
    scale = terms.sum(axis=1, dtype=dt)
    np.multiply(a, logp, out=terms)
    if sem.zero_log_zero == "nan":
        terms[unused & ~np.isneginf(logp)] = 0  # 0 * -inf stays NaN
    else:
        terms[unused] = 0  # 0 log 0 = 0
    return -terms.sum(axis=1, dtype=dt), scale


def _grad_rows(
    spec: LossSpec, sem: Semantics, xr: np.ndarray, logp: np.ndarray, a: np.ndarray,
    sums: tuple[np.ndarray | None, np.ndarray | None], dt: np.dtype, want_scale: bool,
) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """The unreduced gradient of a block of rows and, if asked, its error scale (module docstring)."""
    if spec.input == "log_probs":
        g = np.negative(a)
        return g, (np.abs(a) if want_scale else None)
    if spec.input == "probs":
        _, total, inside = _probs_rows(xr, sem, dt)
        g = np.zeros_like(a)
        used = (a != 0) & inside
        np.divide(-a, xr, out=g, where=used)  # d/dx of -a log(x); x is its clipped value where inside
        gs = np.abs(g) if want_scale else None
        if total is not None:  # renormalised: the sum's share (module docstring of Semantics)
            if sem.probs_renormalised == "before_clip":  # -sum_c a log(x_c / S): + sum_c a[c] inside[c] / S
                share = np.where(used, a, 0).sum(axis=1, keepdims=True, dtype=dt) / total
            else:  # -sum_c a log(c_c / sum c): + inside[k] sum_c a[c] / sum c
                share = inside * (a.sum(axis=1, keepdims=True, dtype=dt) / total)
            g += share
            if gs is not None:
                gs += np.abs(share)
        return g, gs
    # logits
    p = np.exp(logp)
    if sem.grad == "normalised_targets":  # softmax(x) - a: what softmax_cross_entropy_with_logits computes
        s = dt.type(1)
        g = p - a
    else:
        s = a.sum(axis=1, keepdims=True, dtype=dt)
        extra, unit = sums
        if extra is not None:
            s = s + np.expand_dims(extra, 1)
        if unit is not None:
            s = np.where(np.expand_dims(unit, 1), dt.type(1), s)
        g = p * s
        g -= a
        _dominant_without_cancellation(g, a, s, logp, dt)
    gs = None
    if want_scale:
        gs = np.abs(logp)
        gs[np.isinf(gs)] = 0  # p = 0 there: no rounding to amplify
        gs += 1
        gs *= p
        gs *= np.abs(s)
        gs += np.abs(a)
    return g, gs


def _dominant_without_cancellation(g: np.ndarray, a: np.ndarray, s: np.ndarray, logp: np.ndarray, dt: np.dtype) -> None:
    """Rewrite ``g = S p - a`` of each element's dominant coefficient (a[c] > r[c] = sum of the others
    >= 0) as ``S expm1(log p) + r``, which does not cancel as p -> 1 for a one-hot target."""
    j = np.argmax(a, axis=1, keepdims=True)
    a_j = np.take_along_axis(a, j, axis=1)
    rest = a.copy()
    np.put_along_axis(rest, j, 0, axis=1)
    nonneg = (rest >= 0).all(axis=1, keepdims=True)
    rest = rest.sum(axis=1, keepdims=True, dtype=dt)
    accurate = s * np.expm1(np.take_along_axis(logp, j, axis=1)) + rest
    dominant = (a_j > rest) & nonneg
    np.put_along_axis(g, j, np.where(dominant, accurate, np.take_along_axis(g, j, axis=1)), axis=1)


def _reduce(spec: LossSpec, sem: Semantics, ev: Evaluation, denominator: np.ndarray, dt: np.dtype) -> Evaluation:
    """Reduce an unreduced evaluation as `spec` says (the mean divides by `denominator`)."""
    if spec.reduction == "none":
        return ev
    total, total_scale = ev.value.sum(dtype=dt), ev.scale.sum(dtype=dt)
    if spec.reduction == "sum":
        return Evaluation(np.asarray(total), ev.grad, np.asarray(total_scale), ev.grad_scale)
    d = np.asarray(denominator, dtype=dt)
    if d == 0:  # every element ignored or weighted 0: 0/0 as PyTorch (or 0, divide_no_nan); nothing depends on x
        value = np.asarray(0 if sem.empty_mean == "zero" else np.nan, dtype=dt)
        grad = _full_like(ev.grad, np.nan if sem.empty_mean == "nan_grad" else 0.0)
        return Evaluation(value, grad, value.copy(), None if ev.grad_scale is None else _full_like(ev.grad_scale, 0.0))
    return Evaluation(np.asarray(total / d), _divided(ev.grad, d), np.asarray(total_scale / abs(d)),
                      None if ev.grad_scale is None else _divided(ev.grad_scale, abs(d)))  # fmt: skip


def _full_like(g: np.ndarray | GradRows, fill: float) -> np.ndarray | GradRows:
    if isinstance(g, GradRows):
        shape, dtype = g.shape, g.dtype
        return GradRows(shape, dtype, lambda r: np.full((r.stop - r.start, *shape[1:]), fill, dtype))
    return np.full_like(g, fill)


def _divided(g: np.ndarray | GradRows, d: np.ndarray) -> np.ndarray | GradRows:
    if isinstance(g, GradRows):
        return g.divided(d)
    g /= d  # in place: every caller hands over an array of its own
    return g


def _other_class_axis(spec: LossSpec, inputs: Inputs, dtype: str, sem: Semantics, scales: bool) -> Evaluation:
    """The loss with the softmax over axis 0 (the batch) or with the last axis read as the classes."""
    inner_sem = dataclasses.replace(sem, class_axis=1)
    x, t = inputs.x, inputs.target
    if sem.class_axis == -1:  # the last axis is the classes for x and probability targets alike
        moved = Inputs(np.moveaxis(x, -1, 1), np.moveaxis(t, -1, 1), inputs.weight)
        ev = evaluate(spec, moved, dtype, semantics=inner_sem, scales=scales)
        back = lambda g: None if g is None else np.moveaxis(np.asarray(g), 1, -1)  # noqa: E731
        return Evaluation(ev.value, back(ev.grad), ev.scale, back(ev.grad_scale))
    # axis 0: log p over the batch, then the loss of those log-probabilities and the chain rule back
    dt = numpy_dtype(dtype)
    logp = _log_softmax_rows(np.asarray(x).astype(dt), dt, axis=0)[0]
    lp_spec = dataclasses.replace(spec, input="log_probs")
    inner = evaluate(lp_spec, Inputs(logp, t, inputs.weight), dtype, semantics=inner_sem, scales=scales)
    g = np.asarray(inner.grad)
    p = np.exp(logp)
    total = g.sum(axis=0, keepdims=True, dtype=dt)
    grad = g - p * total  # d/dx of log_softmax along axis 0: g - p sum(g)
    gscale = None
    if inner.grad_scale is not None:
        gscale = np.asarray(inner.grad_scale) + p * np.abs(g).sum(axis=0, keepdims=True, dtype=dt)
    return Evaluation(inner.value, grad, inner.scale, gscale)


def _rounded_probs(spec: LossSpec, inputs: Inputs, dtype: str, sem: Semantics, scales: bool) -> Evaluation:
    """The loss of log(round(softmax(x), k)): the log-probabilities' loss (NLL) of the rounded softmax, infinite
    where a coefficient's probability rounds to 0; its gradient is 0 (the rounded loss is piecewise constant)."""
    dt = numpy_dtype(dtype)
    logp = _log_softmax_rows(np.asarray(inputs.x).astype(dt), dt)[0]
    rounded = Inputs(np.log(np.round(np.exp(logp), sem.probs_rounded)), inputs.target, inputs.weight,
                     inputs.sample_weight)  # fmt: skip
    inner = dataclasses.replace(sem, probs_rounded=None, read="")  # x was read already: these are log-probabilities
    ev = evaluate(dataclasses.replace(spec, input="log_probs"), rounded, dtype, semantics=inner, scales=scales)
    zero = np.zeros(np.shape(inputs.x), dt)
    return Evaluation(ev.value, zero, ev.scale, zero.copy() if scales else None, ev.undefined)


def _clipped_softmax(spec: LossSpec, inputs: Inputs, dtype: str, sem: Semantics, scales: bool) -> Evaluation:
    """The loss of log(clip(softmax(x))): the probabilities' loss (clipped, `Semantics.probs_clip`) of p = softmax(x),
    and its gradient through the softmax, g = p g_p - p sum_c p_c g_p[c] (g_p = -a / p where the clip passes p, else
    0: g = p sum_c a_c [inside] - a [inside]); error scales |p g_p| + p sum_c |p_c g_p[c]|."""
    dt = numpy_dtype(dtype)
    p = np.exp(_log_softmax_rows(np.asarray(inputs.x).astype(dt), dt)[0])
    on_p = Inputs(p, inputs.target, inputs.weight, inputs.sample_weight)
    inner = dataclasses.replace(sem, read="")  # x was read already: these are probabilities
    ev = evaluate(dataclasses.replace(spec, input="probs"), on_p, dtype, semantics=inner, scales=scales)
    pg = p * np.asarray(ev.grad)
    grad = pg - p * pg.sum(axis=1, keepdims=True, dtype=dt)
    gs = np.abs(pg) + p * np.abs(pg).sum(axis=1, keepdims=True, dtype=dt) if scales else None
    return Evaluation(ev.value, grad, ev.scale, gs, ev.undefined)


def _split_smoothing(spec: LossSpec, inputs: Inputs, dtype: str, sem: Semantics, scales: bool) -> Evaluation:
    """PyTorch's order for smoothed index targets: (1-e) NLL + (e/C) sum_c -w[c] log p[c], each reduced."""
    dt = numpy_dtype(dtype)
    folded = dataclasses.replace(sem, smoothing_order="folded")
    e, c = dt.type(spec.label_smoothing), dt.type(np.asarray(inputs.x).shape[1])
    nll = evaluate(dataclasses.replace(spec, label_smoothing=0.0), inputs, dtype, semantics=folded, scales=scales)
    smooth = evaluate(spec, inputs, dtype, semantics=dataclasses.replace(folded, smoothing="classes"), scales=scales)
    a, b = 1 - e, e / c

    def mix(u: np.ndarray | None, v: np.ndarray | None) -> np.ndarray | None:
        return None if u is None else (a * np.asarray(u) + b * np.asarray(v)).astype(dt)

    return Evaluation(mix(nll.value, smooth.value), mix(nll.grad, smooth.grad), mix(nll.scale, smooth.scale),
                      mix(nll.grad_scale, smooth.grad_scale))  # fmt: skip


# -- sigmoid family -------------------------------------------------------------------------------------


def _sigmoid(spec: LossSpec, sem: Semantics, inputs: Inputs, dt: np.dtype, scales: bool) -> Evaluation:
    x = np.asarray(inputs.x).astype(dt)
    t = np.asarray(inputs.target).astype(dt)
    e = dt.type(spec.label_smoothing)
    k = dt.type(x.shape[-1] if sem.smoothing == "last_axis" else 2)
    t = (1 - e) * t + e / k
    pw = dt.type(1) if inputs.weight is None else class_axis(np.asarray(inputs.weight).astype(dt), x.ndim)
    pos, neg = pw * t, 1 - t  # coefficients of -log s(x) and -log(1 - s(x))

    if spec.input == "logits":
        ax = np.abs(x)
        log1p_term = np.log1p(np.exp(-ax))
        softplus_neg = np.maximum(-x, dt.type(0)) + log1p_term  # -log s(x)
        softplus_pos = np.maximum(x, dt.type(0)) + log1p_term  # -log(1 - s(x))
        loss = pos * softplus_neg + neg * softplus_pos
        scale = (np.abs(pos) + np.abs(neg)) * (ax + log1p_term)
        e_ax = np.exp(-ax)
        s = np.where(x >= 0, 1 / (1 + e_ax), e_ax / (1 + e_ax))  # sigmoid(x) ...
        s_neg = np.where(x >= 0, e_ax / (1 + e_ax), 1 / (1 + e_ax))  # ... and sigmoid(-x) = 1 - sigmoid(x), exactly
        if sem.sigmoid_grad == "one_minus":  # sigmoid(-x) rounded to dt, then 1 - it in dt: cancels where x << 0
            s = (dt.type(1) - (1 / (1 + np.exp(x.astype(np.float64)))).astype(dt)).astype(dt)
        grad = neg * s - pos * s_neg  # = s (pos + neg) - pos, without its cancellation as s -> 1 (t = 1)
        gscale = np.abs(s * (pos + neg)) + np.abs(pos)
    else:
        p, inside = x, np.ones(x.shape, bool)
        if sem.probs_clip:
            lo, hi = _clip_bounds(dt, sem)
            inside = (p >= lo) & (p <= hi)
            p = np.clip(p, lo, hi)
        log_p, log_q = np.log(p), np.log1p(-p)
        if sem.log_clamp:
            log_p, log_q = np.maximum(log_p, dt.type(BCE_LOG_FLOOR)), np.maximum(log_q, dt.type(BCE_LOG_FLOOR))
        pos_term = np.where(pos != 0, pos * log_p, dt.type(0))
        neg_term = np.where(neg != 0, neg * log_q, dt.type(0))
        loss = -pos_term - neg_term
        scale = np.abs(pos_term) + np.abs(neg_term)
        if sem.log_clamp and sem.log_clamp_grad == "autodiff":  # a clamped log passes 0, divided by p: 0/0 at 0, 1
            pos_grad = np.where(log_p > BCE_LOG_FLOOR, pos, dt.type(0)) / p
            neg_grad = np.where(log_q > BCE_LOG_FLOOR, neg, dt.type(0)) / (1 - p)
            grad, gscale = neg_grad - pos_grad, np.abs(pos_grad) + np.abs(neg_grad)
        elif sem.log_clamp:  # torch's BCE backward: (p - t) / max(p (1 - p), 1e-12 in the input's dtype)
            floor = dt.type(quantize(np.asarray(BCE_GRAD_FLOOR), sem.constants or dt.name))
            grad = (p - t) / np.maximum(p * (1 - p), floor)
            gscale = (np.abs(p) + np.abs(t)) / np.maximum(p * (1 - p), floor)
        else:
            pos_grad = np.where(pos != 0, pos / p, dt.type(0))
            neg_grad = np.where(neg != 0, neg / (1 - p), dt.type(0))
            grad = (neg_grad - pos_grad) * inside
            gscale = np.abs(pos_grad) + np.abs(neg_grad)
    loss = np.broadcast_to(loss, x.shape).astype(dt)
    scale = np.broadcast_to(scale, x.shape).astype(dt)
    grad, gscale = grad.astype(dt), (gscale.astype(dt) if scales else None)
    d = np.asarray(x.size, dt)
    if inputs.sample_weight is not None:  # a plain multiplier of each element's loss (BCELoss's weight=)
        sw = np.broadcast_to(inputs.sample_weight, x.shape).astype(dt)
        loss, grad = loss * sw, grad * sw
        scale, gscale = scale * np.abs(sw), (None if gscale is None else gscale * np.abs(sw))
        if sem.denominator == "sample_sum":
            d = sw.sum(dtype=dt)
    if sem.last_axis_mean and spec.reduction != "mean" and x.ndim > 1:  # Keras BinaryCrossentropy
        c = dt.type(x.shape[-1])
        if spec.reduction == "none":
            loss, scale = loss.mean(axis=-1, dtype=dt), scale.mean(axis=-1, dtype=dt)
        else:
            loss, scale = loss / c, scale / c
        grad = grad / c
        gscale = None if gscale is None else gscale / c
    return _reduce(spec, sem, Evaluation(loss, grad, scale, gscale), d, dt)


# -- a linear head ---------------------------------------------------------------------------------------------

# Logit elements per block of rows in a linear head's chain rule (8 MiB of float64): few matmuls, small temporaries.
LINEAR_BLOCK_ELEMENTS = 2**20
LINEAR_LAZY_ELEMENTS = 2**24  # logits above which G is remade per block rather than held (3 copies of z fewer)


def linear_logits(inputs: Inputs, dt: np.dtype) -> np.ndarray:
    """z = E Wᵀ + b materialised in `dt`: accumulated in float64, rounded once."""
    z = _mm(np.asarray(inputs.x, np.float64), np.asarray(inputs.classifier, np.float64).T)
    if inputs.bias is not None:
        z += np.asarray(inputs.bias, np.float64)
    return z.astype(dt, copy=False)


SMALL_PRODUCT = 2**27  # multiply-adds up to which `_mm` uses einsum's own loop


def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b. A small product by einsum's single-threaded loop: BLAS's threads spend up to seconds synchronising
    on one when the cores are busy (the parent shares them with the workers; measured 100x slower here); a
    large one by BLAS, whose work amortises that."""
    if a.shape[0] * a.shape[1] * b.shape[1] <= SMALL_PRODUCT:
        return np.einsum("ij,jk->ik", a, b)
    return a @ b


@dataclass(frozen=True, eq=False)
class HeadProducts:
    """The products every evaluation of one linear head's loss makes alike, whatever its semantics and dtype, made
    once for the many of a row's explanation (harness/judge/explain.py): the logits E Wᵀ + b accumulated in float64
    (`linear_logits` rounds them to a dtype) and A = |E| |W|ᵀ + |b| (what their rounding grows with), made a block
    of rows at a time as `_linear` makes them: the same numbers. Read-only: the evaluations share them."""

    logits: np.ndarray  # (N, C) float64
    bound: np.ndarray  # (N, C) float64: A


def head_products(inputs: Inputs) -> HeadProducts:
    """`HeadProducts` of a linear head's `inputs` (two arrays as large as its float64 logits)."""
    logits = linear_logits(inputs, np.dtype(np.float64))
    e_abs, w_abs, b_abs = _abs_parts(inputs)
    bound = np.empty_like(logits)
    for r in _row_blocks(*logits.shape):
        bound[r] = _bound(e_abs[r], w_abs, b_abs)
    for a in (logits, bound):
        a.setflags(write=False)
    return HeadProducts(logits, bound)


def _abs_parts(inputs: Inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """|E|, |W| and |b| (None without a bias), float64."""
    e, w = (np.abs(np.asarray(a, np.float64)) for a in (inputs.x, inputs.classifier))
    return e, w, None if inputs.bias is None else np.abs(np.asarray(inputs.bias, np.float64))


def _row_blocks(n: int, c: int) -> list[slice]:
    """The blocks of rows a linear head's chain rule takes at a time (`LINEAR_BLOCK_ELEMENTS` logits each)."""
    step = max(1, LINEAR_BLOCK_ELEMENTS // c)
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def _bound(e_abs: np.ndarray, w_abs: np.ndarray, b_abs: np.ndarray | None) -> np.ndarray:
    """A = |E| |W|ᵀ + |b| for a block of rows of |E|."""
    a = _mm(e_abs, w_abs.T)
    if b_abs is not None:
        a += b_abs
    return a


def head_view(spec: LossSpec, inputs: Inputs, head: HeadProducts | None = None) -> tuple[LossSpec, Inputs]:
    """A linear head's loss seen as a loss of its logits: x the logits (float64; `head`'s where given), the spec as
    it is (a variant of the head itself reads `LossSpec.linear`). Other specs as they are. What a variant's
    applicability reads (`adapters.variants`)."""
    if not spec.linear:
        return spec, inputs
    logits = linear_logits(inputs, np.dtype(np.float64)) if head is None else head.logits
    return spec, Inputs(logits, inputs.target, inputs.weight)


def _linear(
    spec: LossSpec, inputs: Inputs, dtype: str, sem: Semantics, scales: bool, value_only: bool = False,
    head: HeadProducts | None = None,
) -> Evaluation:  # fmt: skip
    """The loss of z = E Wᵀ + b and its gradients with respect to E and [W | b], with their error scales
    (module docstring), the chain rule taken a block of rows of G at a time (G is as large as the logits).
    `value_only`: the value and its scale alone (the logits' rounding carried into the loss needs G and A, not
    the chain rule), the gradients left empty. `head`: the logits and A, made already (`head_products`)."""
    dt = numpy_dtype(dtype)
    acc = np.dtype(np.float64)  # each dot product accumulated in float64, its result rounded to dt once
    e, w = np.asarray(inputs.x, acc), np.asarray(inputs.classifier, acc)
    z = linear_logits(inputs, dt) if head is None else head.logits.astype(dt)
    inner = dataclasses.replace(spec, linear=False, bias=False)
    lazy = z.size > LINEAR_LAZY_ELEMENTS  # G remade a block at a time when read: a pass per read, no copy of z
    with np.errstate(all="ignore"):
        ev = evaluate(inner, Inputs(z, inputs.target, inputs.weight), dtype, lazy=lazy, semantics=sem, scales=scales)
    n, c = z.shape
    bias = inputs.bias is not None
    if scales:  # r S of each element (module docstring): the logits' rounding moves G by r S p (δz - p·δz)
        reduced = dataclasses.replace(inner, reduction=sem.reduction or inner.reduction)
        tg = softmax_targets(reduced, Inputs(z, inputs.target, inputs.weight), np.dtype(np.float64), sem)
        d = abs(float(tg.denominator)) if reduced.reduction == "mean" else 1.0
        r_of = 0.0 if d == 0 or not np.isfinite(d) else 1.0 / d
    grad_e = np.empty(e.shape if not value_only else (0,), acc)
    grad_w = np.zeros((c, w.shape[1] + bias) if not value_only else (0,), acc)
    if scales:
        e_abs, w_abs, b_abs = _abs_parts(inputs)
        scale_e, scale_w = np.empty(e.shape), np.zeros(grad_w.shape)
        extra = np.empty(n)  # per element: sum_c |G| A, the logits' rounding carried into the loss
    seq_c, seq_n = (np.sqrt(k) / (2 + np.log2(c)) for k in (c, n))
    with np.errstate(all="ignore"):
        for r in _row_blocks(n, c):
            g = np.asarray(ev.grad[r]).astype(acc)
            if not value_only:
                grad_e[r] = _mm(g, w)
                grad_w[:, : w.shape[1]] += _mm(g.T, e[r])
                if bias:
                    grad_w[:, -1] += g.sum(axis=0, dtype=acc)
            if not scales:
                continue
            a = _bound(e_abs[r], w_abs, b_abs) if head is None else head.bound[r]  # what the logits' rounding grows by
            if value_only:
                extra[r] = (np.abs(g) * a).sum(axis=1)
                continue
            p = np.exp(_log_softmax_rows(z[r].astype(np.float64), np.dtype(np.float64))[0])
            rs = r_of * np.abs(tg.coefficients(r).sum(axis=1, keepdims=True))
            gs = np.asarray(ev.grad_scale[r], np.float64) + rs * p * (a + (p * a).sum(axis=1, keepdims=True))
            g_abs = np.abs(g)
            extra[r] = (g_abs * a).sum(axis=1)
            # dot products of C (dE) and N (dW) terms summed one after another (a matrix-vector product, a one-row
            # chunk): their rounding grows like sqrt(K), not tol's log2 C (module docstring)
            scale_e[r] = _mm(gs + g_abs * seq_c, w_abs)
            scale_w[:, : w.shape[1]] += _mm((gs + g_abs * seq_n).T, e_abs[r])
            if bias:
                scale_w[:, -1] += (gs + g_abs * seq_n).sum(axis=0)
    grad_e, grad_w = grad_e.astype(dt, copy=False), grad_w.astype(dt, copy=False)
    value, scale = ev.value, ev.scale
    if not scales:
        return Evaluation(value, grad_e, scale, None, ev.undefined, grad_w, None)
    extra_scale = extra if np.ndim(scale) else extra.sum()
    scale = np.asarray(np.asarray(scale, np.float64) + extra_scale).astype(dt)
    if value_only:
        return Evaluation(value, grad_e, scale, None, ev.undefined)
    return Evaluation(value, grad_e, scale, scale_e.astype(dt), ev.undefined, grad_w, scale_w.astype(dt))
