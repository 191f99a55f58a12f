"""Semantic variants: the documented ways frameworks depart from the canonical semantics, one table.

Each variant is one departure: a name (stable: the known-differences registry and the porting guide use
it), what it does in one line, the documentation or issue that describes it, when it can matter for a
case, and the `Semantics` fields it sets. The reference (`adapters.reference.evaluate`) computes the
loss under any combination of them, so an explanation can name every cause of a difference
(``label_oob=zero+weight_norm=N``). `computed_in=D` variants compute the canonical loss in a lower dtype.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adapters.reference import (
    CANONICAL,
    Evaluation,
    HeadProducts,
    Semantics,
    evaluate,
    head_view,
    out_of_range,
    softmax_targets,
)
from cases.spec import Inputs, LossSpec

F64 = np.dtype(np.float64)
Applies = Callable[[LossSpec, Inputs], bool]


@dataclass(frozen=True)
class Variant:
    """One documented departure from the canonical semantics.

    Attributes:
      name: stable id, ``field=value`` style.
      summary: what the framework does, in one line (the summary and the porting guide show it).
      source: where that behaviour is documented.
      applies: whether the departure can change anything on a case (cheap; no evaluation).
      changes: the `Semantics` fields it sets.
      dtype: for ``computed_in=D``: the dtype the canonical loss is computed in.
      first: tried before the others (registered ones included) where it applies: it names the rule at work
        where others give the same numbers by accident.
      registered_only: tried only for the APIs the known-differences registry lists it for (a departure only
        hand-written code makes: elsewhere it would only name a coincidence, as an infinite value-only row).
    """

    name: str
    summary: str
    source: str
    applies: Applies
    changes: Mapping[str, Any] = field(default_factory=dict)
    dtype: str | None = None
    first: bool = False
    registered_only: bool = False

    def conflicts(self, other: Variant) -> bool:
        """Both set the same field (to different values): they cannot combine."""
        return any(k in other.changes and other.changes[k] != v for k, v in self.changes.items())


def semantics_of(variants: Iterable[Variant], base: Semantics = CANONICAL) -> Semantics:
    """The semantics with every variant's fields set."""
    changes: dict[str, Any] = {}
    for v in variants:
        changes.update(v.changes)
    return dataclasses.replace(base, **changes)


def evaluate_variants(
    variants: tuple[Variant, ...], spec: LossSpec, inputs: Inputs, dtype: str = "float64", constants: str = "",
    value_only: bool = False, head: HeadProducts | None = None,
) -> Evaluation | None:  # fmt: skip
    """The loss as the combined `variants` compute it, in `dtype` (None if one does not apply or two
    conflict); `constants`: the dtype the variants' constants are rounded to (clip bounds), if not `dtype`;
    `value_only`, `head`: a linear head's value and its scale alone, its products made already (`reference.evaluate`).
    A variant applies to a linear head where it applies to its logits (`head_view`)."""
    if variants:
        view = head_view(spec, inputs, head)  # a linear head's logits: made once, not once per variant
        if not all(v.applies(*view) for v in variants):
            return None
        del view
    if any(a.conflicts(b) for i, a in enumerate(variants) for b in variants[i + 1 :]):
        return None
    try:
        sem = semantics_of(variants, Semantics(constants=constants))
        return evaluate(spec, inputs, dtype, semantics=sem, value_only=value_only, head=head)
    except TypeError:  # no bfloat16 without ml_dtypes
        return None


# -- when a departure can matter --------------------------------------------------------------------


def _softmax(s: LossSpec, i: Inputs) -> bool:
    return s.family == "softmax"


def _index(s: LossSpec, i: Inputs) -> bool:
    return s.family == "softmax" and s.target == "index"


def _canonical_denominator(s: LossSpec, i: Inputs) -> float:
    return float(softmax_targets(s, i, F64).denominator)


def _labels_outside(s: LossSpec, i: Inputs) -> bool:
    """Index targets with labels outside [0, C) that are not ignore_index (PyTorch raises on them)."""
    return s.target == "index" and bool(out_of_range(np.asarray(i.target), i.x.shape[1], s.ignore_index).any())


def _masked_mean(s: LossSpec, i: Inputs) -> bool:
    """A weighted or masked mean over index targets (labels outside [0, C) mask as ignored ones do)."""
    if not (_index(s, i) and s.reduction == "mean"):
        return False
    return s.weighted or s.ignore_index is not None or _labels_outside(s, i)


def _ignored_labels(*outside: tuple[int, int]) -> Applies:
    """Labels an API without ignore_index reads as labels: ignore_index ones present (outside [lo*C, hi*C)
    for each given range, if any), or labels outside [0, C) that are not ignore_index (PyTorch raises)."""

    def applies(s: LossSpec, i: Inputs) -> bool:
        if not _index(s, i):
            return False
        y, c = np.asarray(i.target), i.x.shape[1]
        ignored = s.ignore_index is not None and (y == s.ignore_index).any()
        if ignored and all(not (lo * c <= s.ignore_index < hi * c) for lo, hi in outside):
            return True
        return _labels_outside(s, i)

    return applies


def _smoothed_index(s: LossSpec, i: Inputs) -> bool:
    return _index(s, i) and s.label_smoothing > 0


def _probs(s: LossSpec, i: Inputs) -> bool:
    return s.input == "probs"


def _softmax_probs(s: LossSpec, i: Inputs) -> bool:
    return _softmax(s, i) and s.input == "probs"


def _clipped_softmax(s: LossSpec, i: Inputs) -> bool:
    """Logits whose softmax a clip to [1e-7, 1 - 1e-7] changes where it counts: a probability outside the bounds
    (smoothing and probability targets weigh every class), or, for one-hot targets, the target's own."""
    if not (_softmax(s, i) and s.input == "logits"):
        return False
    x = np.asarray(i.x, np.float64)
    with np.errstate(all="ignore"):
        m = x.max(axis=1, keepdims=True)
        logp = x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))
        outside = (logp < np.log(1e-7)) | (np.log1p(-np.exp(logp)) < np.log(1e-7))
    if s.target == "prob" or s.label_smoothing:
        return bool(outside.any())
    y = np.asarray(i.target)
    kept = (y >= 0) & (y < x.shape[1]) & ((y != s.ignore_index) if s.ignore_index is not None else True)
    at_y = np.take_along_axis(outside, np.expand_dims(np.where(kept, y, 0), 1), axis=1)[:, 0]
    return bool((at_y & kept).any())


def _all(*conditions: Applies) -> Applies:
    return lambda s, i: all(c(s, i) for c in conditions)


SOURCES = {
    "torch_ce": "https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html",
    "torch_nll": "https://pytorch.org/docs/stable/generated/torch.nn.NLLLoss.html",
    "torch_bce": "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html",
    "torch_softmax": "https://pytorch.org/docs/stable/generated/torch.nn.Softmax.html",
    "keras_losses": "https://keras.io/api/losses/",
    "keras_bce": "https://keras.io/api/losses/probabilistic_losses/#binarycrossentropy-class",
    "keras_nn": "https://github.com/keras-team/keras/blob/master/keras/src/backend/tensorflow/nn.py",
    "keras_epsilon": "https://keras.io/api/utils/config_utils/#epsilon-function",
    "keras_reduce": "https://github.com/keras-team/keras/blob/master/keras/src/losses/loss.py",
    "tf_xla_oob": "https://github.com/tensorflow/tensorflow/issues/126005",
    "hf_accumulation": "https://github.com/huggingface/transformers/issues/34191",
    "jax_where_nan": "https://docs.jax.dev/en/latest/faq.html#gradients-contain-nan-where-using-where",
    "tf_xent": "https://www.tensorflow.org/api_docs/python/tf/nn/softmax_cross_entropy_with_logits",
    "tf_sparse": "https://www.tensorflow.org/api_docs/python/tf/nn/sparse_softmax_cross_entropy_with_logits",
    "tf_one_hot": "https://www.tensorflow.org/api_docs/python/tf/one_hot",
    "tf_nn": "https://www.tensorflow.org/api_docs/python/tf/nn",
    "optax_losses": "https://optax.readthedocs.io/en/latest/api/losses.html",
    "optax_smooth": "https://optax.readthedocs.io/en/latest/api/losses.html#optax.smooth_labels",
    "optax_896": "https://github.com/google-deepmind/optax/issues/896",
    "optax_1185": "https://github.com/google-deepmind/optax/issues/1185",
    "jax_one_hot": "https://docs.jax.dev/en/latest/_autosummary/jax.nn.one_hot.html",
    "jax_oob": "https://docs.jax.dev/en/latest/notebooks/Common_Gotchas_in_JAX.html#out-of-bounds-indexing",
    "jax_take": "https://docs.jax.dev/en/latest/_autosummary/jax.numpy.take.html",
    "numpy_indexing": "https://numpy.org/doc/stable/user/basics.indexing.html",
    "amp": "https://pytorch.org/docs/stable/notes/amp_examples.html",
    "mlx_ce": "https://ml-explore.github.io/mlx/build/html/python/nn/_autosummary_functions/mlx.nn.losses.cross_entropy.html",
    "mlx_bce": "https://ml-explore.github.io/mlx/build/html/python/nn/_autosummary_functions/mlx.nn.losses.binary_cross_entropy.html",
    "mlx_losses": "https://github.com/ml-explore/mlx/blob/main/python/mlx/nn/losses.py",
    "paddle_ce": "https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/functional/cross_entropy_en.html",
    "paddle_clip": "https://github.com/PaddlePaddle/Paddle/pull/21165",  # ValueClip, phi/kernels/funcs/softmax_impl.h
    "round": "https://docs.python.org/3/library/functions.html#round",  # seed 004's round(i / sum_z_exp, 3)
}

VARIANTS: tuple[Variant, ...] = (
    # input kinds
    Variant("probs_passed_as_logits",
            "probabilities are passed where logits are expected (or logits read as probabilities)",
            SOURCES["torch_ce"],
            lambda s, i: s.input == "probs" or (s.input == "logits" and bool(np.all((i.x >= 0) & (i.x <= 1)))),
            {"read": "probs<->logits"}),
    Variant("log_probs_passed_as_logits",
            "log-probabilities are passed where logits are expected (or raw scores read as log-probabilities)",
            SOURCES["torch_nll"], lambda s, i: _softmax(s, i) and s.input in ("log_probs", "logits"),
            {"read": "log_probs<->logits"}),
    Variant("class_axis=0", "softmax over axis 0 (the batch) instead of the class axis", SOURCES["torch_softmax"],
            lambda s, i: _softmax(s, i) and s.input == "logits" and i.x.ndim == 2 and i.x.shape[0] > 1,
            {"class_axis": 0}),
    Variant("class_axis=-1",
            "classes left on axis 1 of a K-dim input: the API's softmax runs over the last axis instead",
            SOURCES["tf_xent"],
            lambda s, i: _softmax(s, i) and i.x.ndim > 2 and s.target == "prob" and not s.weighted,
            {"class_axis": -1}),
    # reductions and weights
    Variant("empty_mean=0", "a mean over no elements (every target ignored) is 0, not NaN (divide_no_nan)",
            SOURCES["keras_reduce"],  # first: over nothing, weight_norm=N's 0/N is 0 as well
            lambda s, i: _index(s, i) and s.reduction == "mean" and _canonical_denominator(s, i) == 0,
            {"empty_mean": "zero"}, first=True),
    Variant("accumulation=mean_of_means",
            "gradient accumulation averaging each micro-batch's mean: micro-batches with fewer kept labels weigh more",
            SOURCES["hf_accumulation"], lambda s, i: bool(s.micro_batches) and s.reduction == "mean",
            {"accumulation": "mean_of_means"}, first=True),
    Variant("empty_mean=nan_grad",
            "a mean over no elements gives 0/0 in the gradient too: every entry NaN, where PyTorch's gradient is 0",
            SOURCES["jax_where_nan"],
            lambda s, i: _index(s, i) and s.reduction == "mean" and _canonical_denominator(s, i) == 0,
            {"empty_mean": "nan_grad"}, first=True),
    Variant("weight_norm=N",
            "weighted (or masked) mean divided by the number of elements, not by the sum of the targets' weights",
            SOURCES["keras_losses"], _masked_mean, {"denominator": "elements"}),
    Variant("weight_norm=count", "weighted mean divided by the count of non-ignored elements",
            SOURCES["keras_losses"], _all(_masked_mean, lambda s, i: s.weighted), {"denominator": "count"}),
    Variant("sample_weight=w[y]", "class weights applied per sample: w[y] scales the whole smoothed loss",
            SOURCES["keras_losses"], _all(_smoothed_index, lambda s, i: s.weighted), {"class_weights": "sample"}),
    Variant("sample_weight=t@w",
            "class weights applied per sample: each element's loss times t'@w (its smoothed target's weights), "
            "the mean divided by the sum of those",
            SOURCES["paddle_ce"],  # "loss_j = loss_j * sum_i(weight[label_i] * ...)"; with smoothing: Paddle#47813
            lambda s, i: _softmax(s, i) and s.weighted and (s.target == "prob" or s.label_smoothing > 0),
            {"class_weights": "targets"}),
    Variant("sample_weight_norm=sum",
            "a sample-weighted mean divided by the sum of the weights applied (sample weights times w[y])",
            SOURCES["keras_losses"], lambda s, i: s.sample_weighted and s.reduction == "mean",
            {"denominator": "sample_sum"}),
    Variant("reduction=sum", "summed instead of averaged", SOURCES["tf_nn"], lambda s, i: s.reduction == "mean",
            {"reduction": "sum"}),
    Variant("reduction=mean", "averaged instead of summed", SOURCES["keras_losses"],
            lambda s, i: s.reduction == "sum", {"reduction": "mean"}),
    Variant("reduction=none", "the per-element losses where a reduced loss was expected (a default reduction='none')",
            SOURCES["mlx_ce"], lambda s, i: s.reduction != "none", {"reduction": "none"}),
    Variant("none_shape=keepdim", "reduction='none' keeps a size-1 class axis: (N, 1), not (N,)", SOURCES["paddle_ce"],
            lambda s, i: _softmax(s, i) and s.reduction == "none", {"keep_class_axis": True}),
    Variant("mean_over_last_axis",
            "averaged over the last (class) axis first: 'none' gives (N,), 'sum' is divided by C",
            SOURCES["keras_bce"], lambda s, i: s.family == "sigmoid" and s.reduction != "mean" and i.x.ndim > 1,
            {"last_axis_mean": True}),
    # label smoothing and targets
    Variant("smoothing=C-1", "label smoothing spread over the C-1 other classes", SOURCES["torch_ce"],
            _smoothed_index, {"smoothing": "others"}),
    Variant("smoothing=0.5", "binary smoothing towards 0.5 applied to a multiclass target", SOURCES["keras_bce"],
            _smoothed_index, {"smoothing": "half"}),
    Variant("smoothing=last_axis", "binary targets smoothed towards 1/K (K = size of the last axis), not 1/2",
            SOURCES["optax_smooth"],
            lambda s, i: s.family == "sigmoid" and s.label_smoothing > 0 and i.x.ndim > 1,
            {"smoothing": "last_axis"}),
    Variant("soft_targets_renormalised", "probability targets rescaled to sum to 1", SOURCES["tf_xent"],
            lambda s, i: _softmax(s, i) and s.target == "prob", {"targets": "normalised"}),
    Variant("targets_sum_to_one",
            "logsumexp(x - max) - sum_c t_c (x_c - max), the max held constant: off by (1 - sum t)(lse - max) where "
            "the targets do not sum to 1, gradient softmax(x) - t",
            SOURCES["mlx_losses"], lambda s, i: _softmax(s, i) and s.target == "prob" and s.input == "logits",
            {"lse_once": True, "grad": "normalised_targets"}),
    Variant("grad_assumes_normalised_targets",
            "the gradient softmax(x) - t, which is right only where the targets sum to 1", SOURCES["tf_xent"],
            lambda s, i: _softmax(s, i) and s.target == "prob" and s.input == "logits",
            {"grad": "normalised_targets"}),
    # probabilities near 0 and 1
    Variant("prob_clamp=log>=-100", "log(p) and log(1-p) clamped at -100, gradient (p-t)/max(p(1-p), 1e-12)",
            SOURCES["torch_bce"], lambda s, i: s.family == "sigmoid" and s.input == "probs" and not s.weighted,
            {"log_clamp": True}),
    Variant("prob_clamp=nan_grad",
            "log(p) and log(1-p) clipped at -100 and differentiated through the clip: NaN gradient at p = 0 or 1 (0/0)",
            SOURCES["mlx_bce"], lambda s, i: s.family == "sigmoid" and s.input == "probs" and not s.weighted,
            {"log_clamp": True, "log_clamp_grad": "autodiff"}),
    Variant("probs_renormalised", "predicted probabilities divided by their sum over the classes (then clipped)",
            SOURCES["keras_nn"], _softmax_probs, {"probs_renormalised": "before_clip"}),
    Variant("probs_renormalised=after_clip",
            "predicted probabilities clipped, then divided by their sum (log_softmax of their log)",
            SOURCES["keras_nn"], _softmax_probs, {"probs_renormalised": "after_clip"}),
    Variant("prob_clip=1e-7", "probabilities clipped to [1e-7, 1-1e-7] before the log", SOURCES["keras_epsilon"],
            lambda s, i: _probs(s, i) or _clipped_softmax(s, i),  # logits: softmax(x), clipped
            {"probs_clip": True}),
    Variant("logits_clip=-64",
            "x - max(x) clipped at -64 before the softmax: a class more than 64 below the maximum gets log p ~ -64 "
            "(the loss is capped) and a -inf logit a probability ~1e-28",
            SOURCES["paddle_clip"],
            lambda s, i: _softmax(s, i) and s.input == "logits" and bool(
                (np.max(i.x, axis=1) - np.min(i.x, axis=1) > 64).any()),
            {"logit_floor": -64.0}),
    Variant("0*log(0)=nan", "target * log_softmax(x) with a -inf logit: 0 * -inf = NaN", SOURCES["optax_896"],
            lambda s, i: _softmax(s, i) and s.input == "logits" and bool(np.isneginf(i.x).any()),
            {"zero_log_zero": "nan"}),
    Variant("probs_rounded=3",
            "the softmax rounded to 3 decimals before its log (as printed): a probability under 0.0005 becomes 0 and "
            "its loss infinite; the loss is piecewise constant (gradient 0)",
            SOURCES["round"], lambda s, i: _softmax(s, i) and s.input == "logits", {"probs_rounded": 3},
            registered_only=True),
    # labels equal to ignore_index read by an API without ignore_index
    Variant("label_oob=zero_row",
            "out-of-range labels one-hot to zero rows through softmax_cross_entropy_with_logits: loss 0, gradient "
            "softmax(x)",
            SOURCES["tf_one_hot"], _ignored_labels((0, 1)), {"labels": "zero_row"}),
    Variant("label_oob=zero", "out-of-range labels one-hot to zero rows (only label smoothing's share remains)",
            SOURCES["jax_one_hot"],
            _all(_ignored_labels((0, 1)), lambda s, i: s.label_smoothing > 0 or _labels_outside(s, i)),
            {"labels": "zero"}),
    Variant("label_oob=nan", "out-of-range labels give a NaN loss (a gather that fills)", SOURCES["optax_1185"],
            _all(_ignored_labels((-1, 1)), lambda s, i: not s.label_smoothing), {"labels": "nan"}),
    Variant("label_oob=nan_value",
            "out-of-range labels read NaN class weights (a gather that fills) that reach the loss' value only: the "
            "API masks their elements, so the gradient stays finite",
            SOURCES["jax_take"], _all(_ignored_labels((-1, 1)), lambda s, i: s.weighted), {"labels": "nan_value"}),
    Variant("label_oob=nan_rows",
            "out-of-range labels give a NaN loss and a NaN gradient row, and still count in the mean: XLA's "
            "sparse softmax cross-entropy (TensorFlow under jit_compile=True), where eager raises; a NaN-filled "
            "class-weight gather (Keras on JAX: ops.take)",
            SOURCES["tf_xla_oob"], _ignored_labels(), {"labels": "nan_rows"}),
    Variant("label_oob=clip", "out-of-range labels clamped into [0, C-1]", SOURCES["jax_oob"], _ignored_labels(),
            {"labels": "clip"}),
    Variant("label_oob=wrap", "out-of-range labels wrap around (y mod C)", SOURCES["numpy_indexing"],
            _ignored_labels(), {"labels": "wrap"}),
    # precision
    *(
        Variant(f"computed_in={d}", f"the loss computed (and accumulated) in {d}, below the input's precision",
                SOURCES["amp"], lambda s, i: True, dtype=d)
        for d in ("float32", "bfloat16", "float16")
    ),
)  # fmt: skip

BY_NAME = {v.name: v for v in VARIANTS}
SEMANTIC = tuple(v for v in VARIANTS if v.dtype is None)
ROUNDING = tuple(v for v in VARIANTS if v.dtype is not None)  # "computed_in=D"


def describe(explanation: str) -> str:
    """Each cause of an explanation (``A+B``) with what it does, ``; ``-joined:
    ``weight_norm=N (weighted mean divided by N ...)``; '' for no explanation."""
    parts = []
    for name in (p for p in explanation.split("+") if p):
        v = BY_NAME.get(name)
        parts.append(f"{name} ({v.summary})" if v else name)
    return "; ".join(parts)
