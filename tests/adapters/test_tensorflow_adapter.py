"""The TensorFlow adapter against the float64 reference, on the default cases, on the CPU.

Every `matched` row in float64 and float32 must be `ok`. Every `native` row that differs from the
canonical semantics is pinned to the documented behaviour that explains it: the test rebuilds what
TensorFlow or Keras is documented to compute (a *variant* of the reference) and checks that it
reproduces the row, so a pinned difference cannot hide an unexplained one. Native rows that no
documented difference applies to must be `ok`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from adapters import reference
from adapters.base import Unavailable
from adapters.tensorflow_adapter import ADAPTER, load_tensorflow
from cases.generator import default_cases
from cases.spec import Case, Inputs, LossSpec, quantize
from harness.judge import metrics
from harness.judge.tolerances import tolerance

if ADAPTER.unavailable() is None:
    load_tensorflow()  # the adapter's own import: TensorFlow's logs off before importorskip touches it
tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install -e '.[tensorflow]')")

ROOT = Path(__file__).resolve().parents[2]
SOFTMAX_XENT = "tf.nn.softmax_cross_entropy_with_logits"
SPARSE_XENT = "tf.nn.sparse_softmax_cross_entropy_with_logits"
CCE = "keras.losses.CategoricalCrossentropy"
SCCE = "keras.losses.SparseCategoricalCrossentropy"
BCE = "keras.losses.BinaryCrossentropy"
KERAS = (CCE, SCCE, BCE)
ONE_HOT = (SOFTMAX_XENT, CCE)  # index targets go in as tf.one_hot(y, C); both run the same kernel
# Keras' probability clip: backend.epsilon() = 1e-7, applied in Keras' default float32.
CLIP_LO, CLIP_HI = float(np.float32(1e-7)), float(np.float32(1 - 1e-7))


def case_tolerance(case: Case, inputs: Inputs, dtype: str) -> float:
    """The harness tolerance: C classes, and x.size // C loss elements (softmax) or x.size (sigmoid)."""
    c = case.n_classes
    return tolerance(dtype, c, inputs.x.size // c if case.spec.family == "softmax" else inputs.x.size)


@dataclasses.dataclass(frozen=True, eq=False)
class Row:
    """One (case, api, recipe) result with its reference and tolerance."""

    case: Case
    inputs: Inputs
    api: str
    recipe: str
    code: str
    outcome: str
    error: str
    value: np.ndarray | None
    grad: np.ndarray | None
    ref: reference.Evaluation
    explanation: str = ""

    @property
    def keras_float32(self) -> bool:
        """Keras' native rows compute in floatx = float32 (https://keras.io/api/losses/, `dtype`)."""
        return self.recipe == "native" and self.api in KERAS

    @property
    def computed(self) -> Inputs:
        """The inputs as the framework computed with them: rounded to float32 for Keras' native rows."""
        if not self.keras_float32:
            return self.inputs
        i = self.inputs
        target = i.target if self.case.spec.target == "index" else quantize(i.target, "float32")
        weight, sw = (None if a is None else quantize(a, "float32") for a in (i.weight, i.sample_weight))
        return Inputs(quantize(i.x, "float32"), target, weight, sw)

    @property
    def computed_ref(self) -> reference.Evaluation:
        return reference.evaluate(self.case.spec, self.computed) if self.keras_float32 else self.ref

    def tol(self, dtype: str | None = None) -> float:
        return case_tolerance(self.case, self.inputs, dtype or self.case.dtype)

    def compare(self, ref: reference.Evaluation | None = None, dtype: str | None = None) -> metrics.Comparison:
        return metrics.compare(self.value, self.grad, ref or self.ref, dtype or self.case.dtype, self.tol(dtype))

    def __str__(self) -> str:
        text = f"{self.case.id} | {self.api} | {self.recipe} | {self.outcome}"
        if self.value is not None:
            c = self.compare()
            text += (
                f" | value {c.value:.10g} ref {c.ref_value:.10g} value_rel_err {c.value_rel_err:.3g}"
                f" grad_rel_err {c.grad_rel_err:.3g} tol {self.tol():.3g}"
            )
        return text + (f" | {self.error}" if self.error else "") + f"\n{self.code}"


@pytest.fixture(scope="module")
def rows(judged) -> list[Row]:
    """Every TensorFlow row of the default cases, judged as the harness judges it (the shared fixture)."""
    return [Row(j.case, j.inputs, j.api, j.recipe, j.code, j.outcome, j.error, j.value, j.grad, j.ref, j.explanation)
            for j in judged(ADAPTER, [c for c in default_cases() if c.kind != "linear"])]  # fmt: skip (linear: its own)


def select(
    rows: list[Row], recipe: str, dtypes: tuple[str, ...], pred: Callable[[Row], bool] = lambda r: True
) -> list[Row]:
    """Rows of `recipe` in `dtypes` for which `pred` holds, `unsupported` ones left out, and those of a loop over
    micro-batches (the accumulation kind: its native rows average micro-batch means, tests/adapters/test_variants.py)."""
    return [r for r in rows if r.recipe == recipe and r.case.dtype in dtypes and r.outcome != "unsupported" and pred(r)
            and not r.case.spec.micro_batches]  # fmt: skip


def fail_if(failures: list[Row] | list[str]) -> None:
    if failures:
        pytest.fail(f"{len(failures)} row(s):\n" + "\n\n".join(str(f) for f in failures), pytrace=False)


# -- variants: what TensorFlow / Keras are documented to compute ------------------------------------


def evaluation(value, grad, scale) -> reference.Evaluation:
    return reference.Evaluation(
        np.asarray(value, np.float64), np.asarray(grad, np.float64), np.asarray(scale, np.float64)
    )


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def per_element(spec: LossSpec, inputs: Inputs) -> reference.Evaluation:
    return reference.evaluate(dataclasses.replace(spec, reduction="none"), inputs)


def sample_weight_mean(row: Row) -> reference.Evaluation:
    """Class weights as Keras sample weights w[y] and the sum divided by the element count."""
    spec, inputs = row.case.spec, row.computed
    unweighted = per_element(dataclasses.replace(spec, weighted=False), dataclasses.replace(inputs, weight=None))
    sw = inputs.weight[inputs.target]
    n = sw.size
    return evaluation(
        (sw * unweighted.value).sum() / n,
        np.expand_dims(sw, 1) * unweighted.grad / n,
        (sw * unweighted.scale).sum() / n,
    )


def one_hot_zero_rows(row: Row) -> reference.Evaluation:
    """tf.one_hot of an ignore label is a zero row: loss 0 there, backprop softmax(x) - 0 there."""
    spec, inputs = row.case.spec, row.computed
    each = per_element(spec, inputs)
    ignored = np.expand_dims(inputs.target == spec.ignore_index, 1)
    grad = each.grad + np.where(ignored, softmax(inputs.x), 0.0)
    n = 1 if spec.reduction == "sum" else each.value.size
    return evaluation(each.value.sum() / n, grad / n, each.scale.sum() / n)


def clipped_bce(row: Row) -> reference.Evaluation:
    """Keras' BinaryCrossentropy on probabilities: clip to [1e-7, 1 - 1e-7], then the mean over the last axis."""
    x, t = row.computed.x, row.computed.target
    xc = np.clip(x, CLIP_LO, CLIP_HI)
    loss = -(t * np.log(xc) + (1 - t) * np.log1p(-xc))
    inside = (x >= CLIP_LO) & (x <= CLIP_HI)  # tf.clip_by_value passes the gradient inside the bounds only
    grad = np.where(inside, -t / xc + (1 - t) / (1 - xc), 0.0)
    n = x.shape[-1] if row.case.spec.reduction == "sum" else x.size
    return evaluation(loss.sum() / n, grad / n, np.abs(loss).sum() / n)


def renormalised_probabilities(row: Row) -> reference.Evaluation:
    """-sum a log(x / sum x): the gradient gains sum(a) / sum(x) on every class (unweighted index mean)."""
    x, ref = row.computed.x, row.computed_ref
    return evaluation(ref.value, ref.grad + 1.0 / (x.sum(axis=1, keepdims=True) * x.shape[0]), ref.scale)


def labels_assumed_normalised(row: Row) -> reference.Evaluation:
    """tf.nn.softmax_cross_entropy_with_logits' backprop is softmax(x) - labels (unweighted prob mean)."""
    x, t, ref = row.computed.x, row.computed.target, row.computed_ref
    return evaluation(ref.value, (softmax(x) - t) / (x.size // x.shape[1]), ref.scale)


def last_axis_classes(row: Row) -> reference.Evaluation:
    """A K-dim input passed with classes on axis 1: the softmax runs over the last axis, and the backprop is
    softmax(x) - labels there (labels that sum to 1 over axis 1, not over the last axis)."""
    x, t = row.computed.x, row.computed.target
    xm, tm = np.moveaxis(x, -1, 1), np.moveaxis(t, -1, 1)  # the last axis read as the classes
    m = xm.max(axis=1, keepdims=True)
    logp = xm - m - np.log(np.exp(xm - m).sum(axis=1, keepdims=True))
    loss = -(tm * logp).sum(axis=1)
    n = loss.size
    grad = (np.exp(logp) - tm) / n
    return evaluation(loss.sum() / n, np.moveaxis(grad, 1, -1), (np.abs(tm * logp)).sum() / n)


def assert_variant(found: list[Row], outcome: str, variant: Callable[[Row], reference.Evaluation]) -> None:
    """Each row has `outcome` against the reference and is `ok` against the documented variant."""
    assert found, "no rows: the pinned difference is no longer exercised by the default cases"
    failures = []
    for r in found:
        c = r.compare(variant(r), "float32" if r.keras_float32 else None)
        if r.outcome != outcome or c.outcome != "ok":
            failures.append(f"{r}\n  expected {outcome}; against the variant: {c}")
    fail_if(failures)


# -- rules: which native rows differ, and why ---------------------------------------------------------


def weighted_mean(r: Row) -> bool:
    s = r.case.spec
    return (
        s.family == "softmax"
        and s.target == "index"
        and s.weighted
        and s.reduction == "mean"
        and s.ignore_index is None
        and not s.sample_weighted
    )


def sample_weighted(r: Row) -> bool:
    return r.case.spec.sample_weighted and r.case.spec.reduction == "mean"


def nll_port(r: Row) -> bool:
    return r.api == SPARSE_XENT and r.case.spec.input == "log_probs"


def labels_outside(r: Row) -> bool:
    return r.case.tag == "oob"


def out_of_range_labels(r: Row) -> bool:
    s = r.case.spec
    return s.ignore_index is not None and (s.weighted or r.api == SPARSE_XENT)


def one_hot_ignore(r: Row) -> bool:
    return r.api in ONE_HOT and r.case.spec.ignore_index is not None and not r.case.spec.weighted


def all_ignored_mean(r: Row) -> bool:
    return r.api == SCCE and r.case.tag == "allignored" and r.case.spec.reduction == "mean"


def bce_last_axis(r: Row) -> bool:
    return r.api == BCE and r.case.spec.reduction in ("sum", "none")


def clipped(r: Row) -> bool:
    return r.api == BCE and r.case.spec.input == "probs" and r.case.tag in ("p01", "p01soft")


def renormalised(r: Row) -> bool:
    return r.api in (CCE, SCCE) and r.case.spec.input == "probs"


def masked_logits(r: Row) -> bool:
    return r.api in ONE_HOT and r.case.tag == "masked"


def kdim_native(r: Row) -> bool:
    """The obvious port of a K-dim loss passes classes on axis 1 (the adapter moves them for matched rows only)."""
    return r.recipe == "native" and r.case.spec.family == "softmax" and r.inputs.x.ndim > 2


def unnormalised_labels(r: Row) -> bool:
    if r.api not in ONE_HOT or r.case.spec.target != "prob":
        return False
    return float(np.abs(r.inputs.target.sum(axis=1) - 1).max()) > r.tol("float32" if r.keras_float32 else None)


RULES = (
    kdim_native,
    sample_weighted,
    nll_port,
    labels_outside,
    weighted_mean,
    out_of_range_labels,
    one_hot_ignore,
    all_ignored_mean,
    bce_last_axis,
    clipped,
    renormalised,
    masked_logits,
    unnormalised_labels,
)
FULL = ("float64", "float32")


# -- matched rows ---------------------------------------------------------------------------------

# Matched rows that cannot exist, with the reason they carry.
UNSUPPORTED_MATCHED = {
    (SPARSE_XENT, "takes class indices only"),
    (SCCE, "takes class indices only"),
    (SCCE, "has no label_smoothing argument"),
}


@pytest.mark.parametrize("dtype", FULL)
def test_matched_rows_are_ok(rows: list[Row], dtype: str, as_pytorch) -> None:
    found = select(rows, "matched", (dtype,))
    assert len(found) > 150, f"only {len(found)} matched {dtype} rows with numbers"
    bad = [r for r in found if not as_pytorch(r.case, r.outcome, r.explanation)]
    unsupported = [r for r in rows if r.recipe == "matched" and r.case.dtype == dtype and r.outcome == "unsupported"]
    bad += [r for r in unsupported if not any(r.api == api and why in r.error for api, why in UNSUPPORTED_MATCHED)]
    fail_if(bad)


def tf_mean_overflows_in_float16(r: Row) -> bool:
    # tf.reduce_mean of float16 losses is inf once their sum passes 65504 (float16's largest finite
    # value, https://www.tensorflow.org/api_docs/python/tf/dtypes); the Keras rows compute in float32.
    return (
        r.case.dtype == "float16"
        and r.case.tag in ("big", "big1e3")
        and r.api.startswith("tf.nn.")
        and r.case.spec.reduction == "mean"
    )


def test_matched_rows_in_half_precision(rows: list[Row], as_pytorch) -> None:
    found = select(rows, "matched", ("float16", "bfloat16"))
    overflow = [r for r in found if tf_mean_overflows_in_float16(r)]
    assert overflow, "no float16 overflow rows: the pinned difference is no longer exercised"
    fail_if([r for r in overflow if r.outcome != "nonfinite" or not np.isinf(r.value)])
    bad = [r for r in found if not (as_pytorch(r.case, r.outcome, r.explanation) or tf_mean_overflows_in_float16(r))]
    fail_if(bad)


# -- native rows: the documented differences -----------------------------------------------------


def test_kdim_native_ports_run_over_the_last_axis_or_raise(rows: list[Row]) -> None:
    # Classes left on axis 1 of a K-dim input: TF's ops and Keras take the LAST axis as the classes
    # (https://www.tensorflow.org/api_docs/python/tf/nn/softmax_cross_entropy_with_logits, "axis: The
    # class dimension. Defaulted to -1"): probability targets of x's shape run with the wrong softmax,
    # index targets do not fit the logits' shape and raise.
    found = select(rows, "native", FULL, lambda r: kdim_native(r) and r.case.spec.target == "prob")
    assert_variant([r for r in found if not r.case.spec.weighted], "mismatch", last_axis_classes)
    index = select(rows, "native", FULL, lambda r: kdim_native(r) and r.case.spec.target == "index")
    assert index
    # (labels equal to a negative ignore_index meet the class weights' gather first, and raise there)
    fail_if(
        [
            r
            for r in index
            if r.outcome != "raised" or not any(k in r.error for k in ("shape", "broadcastable", "GatherV2"))
        ]
    )


def keras_sample_weighted_mean(row: Row) -> reference.Evaluation:
    """Keras' 'sum_over_batch_size' (and tf.reduce_mean): sum(s w[y] l) / N, not over the class weights."""
    inputs = row.computed
    each = per_element(row.case.spec, inputs)  # s w[y] l per element (the reference applies both weights)
    n = each.value.size
    return evaluation(each.value.sum() / n, each.grad / n, each.scale.sum() / n)


def test_sample_weights_in_the_obvious_ports(rows: list[Row]) -> None:
    # Keras multiplies each sample's loss by its sample_weight and divides the sum by the batch size
    # (https://keras.io/api/losses/, `reduction`); tf.reduce_mean of s * losses does the same. Keras'
    # BinaryCrossentropy first averages over the last axis, so weights of every element cannot be applied.
    softmax = select(rows, "native", FULL, lambda r: sample_weighted(r) and r.case.spec.family == "softmax")
    assert_variant(softmax, "mismatch", keras_sample_weighted_mean)
    sigmoid = select(rows, "native", FULL, lambda r: sample_weighted(r) and r.case.spec.family == "sigmoid")
    assert sigmoid
    fail_if([r for r in sigmoid if not (r.outcome == "raised" and "Incompatible shapes" in r.error if r.api == BCE
                                        else r.outcome == "ok")])  # fmt: skip


def test_nll_ported_as_sparse_softmax_applies_log_softmax_again(rows: list[Row]) -> None:
    # The obvious port of NLLLoss: sparse_softmax_cross_entropy_with_logits on the log-probabilities, which
    # takes log_softmax of them again (https://pytorch.org/docs/stable/generated/torch.nn.NLLLoss.html).
    found = select(rows, "native", FULL, lambda r: nll_port(r) and r.case.spec.ignore_index is None)

    def as_logits(row: Row) -> reference.Evaluation:
        return reference.evaluate(dataclasses.replace(row.case.spec, input="logits"), row.computed)

    assert_variant(found, "mismatch", as_logits)


def test_labels_outside_the_classes_raise_or_say_what_they_give(rows: list[Row]) -> None:
    # PyTorch raises on a label outside [0, C); sparse_softmax_cross_entropy_with_logits too (on CPU), and
    # tf.one_hot gives a zero row: the rows say which (https://www.tensorflow.org/api_docs/python/tf/one_hot).
    found = select(rows, "native", FULL, labels_outside) + select(rows, "matched", FULL, labels_outside)
    assert found
    fail_if([r for r in found if not (r.outcome == "raised" or "label_oob=zero_row" in r.explanation)])


def test_weighted_mean_divides_by_the_element_count(rows: list[Row]) -> None:
    # Keras reduces 'sum_over_batch_size': the weighted sum over the number of elements, not over
    # the summed sample weights (https://keras.io/api/losses/, `reduction`); tf.reduce_mean of
    # w[y] * loss does the same (https://www.tensorflow.org/api_docs/python/tf/math/reduce_mean).
    # With label smoothing, Keras' sample weight w[y] also differs from PyTorch's per-class weights.
    found = select(rows, "native", FULL, lambda r: weighted_mean(r) and not kdim_native(r))
    assert_variant(found, "mismatch", sample_weight_mean)


def test_out_of_range_labels_raise_on_cpu(rows: list[Row]) -> None:
    # "Other values will raise an exception when this op is run on CPU, and return NaN for
    # corresponding loss and gradient rows on GPU":
    # https://www.tensorflow.org/api_docs/python/tf/nn/sparse_softmax_cross_entropy_with_logits
    # "on CPU, if an out of bound index is found, an error is returned" (class weights w[y]):
    # https://www.tensorflow.org/api_docs/python/tf/gather
    found = select(rows, "native", FULL, out_of_range_labels)
    assert found
    bad = [
        r
        for r in found
        if r.outcome != "raised"
        or not ("GatherV2" in r.error if r.case.spec.weighted else "Received a label value of" in r.error)
    ]
    fail_if(bad)


def test_one_hot_of_an_ignore_label_is_a_zero_row(rows: list[Row]) -> None:
    # tf.one_hot gives all off_value for an index outside [0, depth) (its example one_hot(-1)):
    # https://www.tensorflow.org/api_docs/python/tf/one_hot. The row's loss is 0 but it still counts
    # in the mean and its backprop is softmax(x) - 0 (see the labels-sum-to-1 rule below).
    found = select(rows, "native", FULL, one_hot_ignore)
    smoothed = [r for r in found if r.case.spec.label_smoothing]  # Keras smooths the zero row to e/C
    assert smoothed
    fail_if([r for r in smoothed if r.outcome != "mismatch"])
    plain = [r for r in found if not r.case.spec.label_smoothing]
    for outcome in ("mismatch", "nonfinite"):  # nonfinite: all ignored, 0 instead of PyTorch's NaN
        assert_variant([r for r in plain if r.outcome == outcome], outcome, one_hot_zero_rows)
    assert {r.outcome for r in plain} == {"mismatch", "nonfinite"}, [str(r) for r in plain]


def test_keras_gives_zero_when_every_target_is_ignored(rows: list[Row]) -> None:
    # Keras divides with divide_no_nan (keras/src/losses/loss.py, reduce_values): 0 where PyTorch's
    # mean over no targets is NaN. https://github.com/keras-team/keras/blob/master/keras/src/losses/loss.py
    found = select(rows, "native", FULL, all_ignored_mean)
    assert found
    bad = [r for r in found if r.outcome != "nonfinite" or r.value != 0 or np.any(r.grad != 0)]
    fail_if(bad)


def test_binary_crossentropy_averages_the_last_axis(rows: list[Row]) -> None:
    # "axis: The axis along which the mean is computed. Defaults to -1":
    # https://keras.io/api/losses/probabilistic_losses/#binarycrossentropy-class
    found = select(rows, "native", FULL, bce_last_axis)
    none = [r for r in found if r.case.spec.reduction == "none"]
    assert none
    fail_if(
        [r for r in none if r.outcome != "mismatch" or not np.allclose(r.value, r.ref.value.mean(axis=-1), rtol=1e-6)]
    )
    summed = [r for r in found if r.case.spec.reduction == "sum" and not clipped(r)]

    def sum_over_c(r: Row) -> reference.Evaluation:
        c, ref = r.inputs.x.shape[-1], r.computed_ref
        return evaluation(ref.value / c, ref.grad / c, ref.scale / c)

    assert_variant(summed, "mismatch", sum_over_c)


def test_keras_clips_probabilities(rows: list[Row]) -> None:
    # Keras clips probabilities to [epsilon, 1 - epsilon], epsilon = 1e-7 (keras.config.epsilon(),
    # https://keras.io/api/utils/config_utils/#epsilon-function; applied in
    # keras/src/backend/tensorflow/nn.py, binary_crossentropy): a finite loss where the exact one is
    # inf (p01soft), a zero gradient at exact 0 and 1 (p01).
    found = select(rows, "native", FULL, clipped)
    assert_variant([r for r in found if r.case.tag == "p01"], "mismatch", clipped_bce)
    assert_variant([r for r in found if r.case.tag == "p01soft"], "nonfinite", clipped_bce)


def test_keras_renormalises_probabilities(rows: list[Row]) -> None:
    # CategoricalCrossentropy divides x by its sum over the class axis before the log, and
    # SparseCategoricalCrossentropy takes log_softmax(log x), the same thing
    # (keras/src/backend/tensorflow/nn.py): the value is unchanged for normalised x, but the
    # gradient gains sum(a) / sum(x) on every class. https://github.com/keras-team/keras/blob/master/keras/src/backend/tensorflow/nn.py
    found = select(rows, "native", FULL, renormalised)
    assert_variant(found, "mismatch", renormalised_probabilities)


def test_minus_inf_logits_give_nan(rows: list[Row]) -> None:
    # The kernel computes sum(labels * (logsumexp - logits)), so a -inf logit with label 0 is
    # 0 * inf = NaN: https://github.com/tensorflow/tensorflow/blob/master/tensorflow/core/kernels/xent_op.h
    found = select(rows, "native", FULL, masked_logits)
    bad = [r for r in found if r.outcome != "nonfinite" or not np.isnan(r.value).any()]
    assert found
    fail_if(bad)


def test_softmax_xent_gradient_assumes_labels_sum_to_one(rows: list[Row]) -> None:
    # "If they are not, the computation of the gradient will be incorrect":
    # https://www.tensorflow.org/api_docs/python/tf/nn/softmax_cross_entropy_with_logits
    found = select(rows, "native", FULL, unnormalised_labels)
    assert_variant(found, "mismatch", labels_assumed_normalised)


def test_keras_computes_in_float32_unless_told(rows: list[Row]) -> None:
    # "dtype: The dtype of the loss's computations. Defaults to None, which means using
    # keras.backend.floatx()" (float32): https://keras.io/api/losses/probabilistic_losses/
    found = select(rows, "native", ("float64",), lambda r: r.api in KERAS and not any(rule(r) for rule in RULES))
    exact = [r for r in found if r.compare().value_abs_err == 0 and r.compare().grad_abs_err == 0]  # e.g. all ignored
    bad = [r for r in found if r.compare(r.computed_ref, "float32").outcome != "ok"]
    bad += [r for r in found if r.outcome != "mismatch" and r not in exact]
    assert len(exact) < len(found) / 10, [str(r) for r in exact]
    assert found
    fail_if(bad)


def test_other_native_rows_are_ok(rows: list[Row]) -> None:
    found = select(rows, "native", FULL, lambda r: not any(rule(r) for rule in RULES))
    assert len(found) > 100
    bad = [r for r in found if r.compare(r.computed_ref, "float32" if r.keras_float32 else None).outcome != "ok"]
    fail_if(bad)


def test_native_unsupported_rows_give_a_reason(rows: list[Row]) -> None:
    found = [r for r in rows if r.recipe == "native" and r.outcome == "unsupported"]
    bad = [r for r in found if "has no" not in r.error and "takes class indices only" not in r.error]
    assert found
    fail_if(bad)


# -- layout, snippets and the adapter's hooks ---------------------------------------------------------


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_class_axis_moves_for_sigmoid_inputs_with_extra_dims(reduction: str) -> None:
    # (N, C, d): pos_weight lies on axis 1 and 'none' values keep x's layout after the round trip.
    spec = LossSpec(family="sigmoid", target="prob", weighted=True, reduction=reduction)
    case = Case(kind="binary", spec=spec, shape=(3, 4, 5), dtype="float64", tag="soft")
    inputs = case.inputs()
    ref = reference.evaluate(spec, inputs)
    tol = tolerance("float64", 4, inputs.x.size)
    found = [r for r in ADAPTER.run_case(case, "cpu") if r.recipe == "matched"]
    assert len(found) == 3
    for r in found:
        c = metrics.compare(r.value, r.grad, ref, "float64", tol)
        assert c.outcome == "ok", f"{case.id} | {r.api} | {r.recipe} | {c}\n{r.recipe_code}"


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
def test_cpu_tensors_share_the_inputs_memory_and_recipes_leave_it_intact(dtype: str) -> None:
    # tf.constant would hold two copies of x: on the CPU x is the aligned array itself (DLPack)
    case = Case(kind="soft", spec=LossSpec(target="prob", weighted=True), shape=(16, 10), dtype=dtype)
    inputs = case.inputs()
    before = inputs.x.copy()
    x, *_ = ADAPTER._stage(case.spec, inputs, dtype, "cpu")
    assert x.dtype == tf.as_dtype(dtype) and np.array_equal(x.numpy().astype(np.float64), before), x
    if dtype == "float64":
        probe = inputs.x[0, 0]
        inputs.x[0, 0] = 123.0
        assert float(x[0, 0]) == 123.0, "the float64 tensor does not share the inputs' memory"
        inputs.x[0, 0] = probe
    for api in ADAPTER.apis_for(case.spec):
        for recipe in api.recipes(case.spec):
            if recipe.code is not None:
                ADAPTER.evaluate(ADAPTER.compile(recipe.code), case.spec, inputs, dtype, "cpu")
                assert np.array_equal(inputs.x, before), f"{api.name} {recipe.name} wrote into the shared inputs"


def test_snippets_call_their_api() -> None:
    # Probability inputs' matched rows compute log(x) themselves (Keras clips; see the adapter).
    specs = {c.spec for c in default_cases(dtypes=("float64",)) if not c.spec.linear}  # test_linear_heads.py
    for spec in specs:
        for api in ADAPTER.apis_for(spec):
            for recipe in api.recipes(spec):
                if recipe.code is None:
                    assert recipe.reason, (spec, api.name, recipe.name)
                elif not (recipe.name == "matched" and spec.input in ("probs", "log_probs")):  # NLL: a gather
                    assert api.name in recipe.code, (spec, api.name, recipe.name, recipe.code)


def test_module_imports_no_framework() -> None:
    code = (
        "import sys, adapters.tensorflow_adapter; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_unavailable_names_the_missing_module(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ADAPTER.unavailable() is None
    assert ADAPTER.version() == tf.__version__
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "keras" else object())
    assert "keras is not installed" in ADAPTER.unavailable()


def test_devices() -> None:
    assert ADAPTER.device("cpu") == "cpu"
    with pytest.raises(Unavailable):
        ADAPTER.device("tpu")
    if tf.config.list_physical_devices("GPU"):
        assert ADAPTER.device("gpu") == "gpu:0"
    else:
        with pytest.raises(Unavailable, match="no GPU"):
            ADAPTER.device("gpu")


def test_the_accuracy_pass_keeps_xla_programs_under_the_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """keep_compiled points XLA's persistent cache (TF_XLA_FLAGS, read when TensorFlow starts) under
    $XDG_CACHE_HOME/ce-harness, after the flags already set; a directory the user chose stays theirs."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    ADAPTER.keep_compiled()
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_persistent_cache_directory={tmp_path / 'ce-harness' / 'tf-xla'}"
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=2")
    ADAPTER.keep_compiled()
    assert os.environ["TF_XLA_FLAGS"].split() == [
        "--tf_xla_auto_jit=2", f"--tf_xla_persistent_cache_directory={tmp_path / 'ce-harness' / 'tf-xla'}"
    ]
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_persistent_cache_directory=/mine")
    ADAPTER.keep_compiled()
    assert os.environ["TF_XLA_FLAGS"] == "--tf_xla_persistent_cache_directory=/mine"
