"""TensorFlow: tf.nn.*_cross_entropy_with_logits and keras.losses.*Crossentropy.

Layout convention (`Adapter.classes_last`): TensorFlow and Keras put classes on the LAST axis. Every
`matched` snippet sees ``x`` as (N, d1..dk, C) (the base adapter moves axis 1 of ``x``, and of probability
targets, to the end and the gradient back); `native` snippets see the arrays as a PyTorch user has them
(for a K-dim input the obvious port then takes the softmax over the last axis, or its shapes do not fit).
Index targets ``y`` are int64 (N, d1..dk) and ``w`` is (C,) class weights or pos_weight (or None).
Snippets assign ``loss``; for ``reduction='none'`` the gradient taken is that of the sum of the elements.

What differs from the canonical (PyTorch) semantics, and so shows in the `native` rows:

- ``tf.nn.softmax_cross_entropy_with_logits`` computes its gradient as ``softmax(x) - labels``,
  which is right only when every label row sums to 1 ("If they are not, the computation of the
  gradient will be incorrect": https://www.tensorflow.org/api_docs/python/tf/nn/softmax_cross_entropy_with_logits).
  Keras' CategoricalCrossentropy(from_logits=True) calls it, so the same holds there. It also
  computes ``labels * (lse - x)``, which is 0 * inf = NaN where a logit is -inf, even for a zero
  label. The matched recipes normalise the labels (moving the row sum into a factor) and clamp
  -inf logits to the dtype's finite minimum.
- ``tf.nn.sparse_softmax_cross_entropy_with_logits`` raises for labels outside [0, C) on CPU
  (NaN on GPU): https://www.tensorflow.org/api_docs/python/tf/nn/sparse_softmax_cross_entropy_with_logits.
  None of the tf.nn functions has class weights, ignore_index or label smoothing.
- Keras losses compute in ``keras.backend.floatx()`` (float32) unless ``dtype=`` is given, reduce
  ``sum_over_batch_size`` (the sum divided by the number of elements, also with sample weights),
  clip probabilities to [1e-7, 1 - 1e-7] (``backend.epsilon()`` in
  keras/src/backend/tensorflow/nn.py), renormalise probabilities along the class axis
  (CategoricalCrossentropy, and SparseCategoricalCrossentropy through log_softmax(log x)), which
  adds ``sum(a) / sum(x)`` to the gradient, divide with divide_no_nan (0, not NaN, when every
  target is ignored), and BinaryCrossentropy averages over the last axis:
  https://keras.io/api/losses/probabilistic_losses/.

`native` rows call each API the way a port first does (no ``dtype=``, so Keras runs in float32);
`matched` rows pass ``dtype=keras.backend.result_type(x.dtype, 'float32')`` (float64 stays
float64; half-precision inputs keep Keras' float32 loss, which also keeps sparse labels exact).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from adapters.base import Adapter, Api, Recipe, Unavailable, make_function, py, unsupported
from cases.spec import Inputs, LossSpec, aligned

DISTRIBUTIONS = ("tensorflow-cpu", "tensorflow", "tensorflow-macos", "tf-nightly")
KERAS_DTYPE = "keras.backend.result_type(x.dtype, 'float32')"
CLAMP = "x = tf.maximum(x, x.dtype.min)  # a -inf logit gives 0 * inf = NaN even where its label is 0"
NAN_IF_ALL_IGNORED = "loss = tf.where(tf.reduce_any(keep), loss, float('nan'))  # PyTorch: NaN when all are ignored"


@contextlib.contextmanager
def _global_policy(keras: Any, name: str) -> Iterator[None]:
    """Keras' global dtype policy set to `name` for the block, then restored."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def load_tensorflow() -> tuple[Any, Any]:
    """``(tensorflow, keras)``, imported quietly on first use, with GPU memory growth on."""
    if "tensorflow" not in sys.modules:
        # C++ INFO/WARNING/ERROR logs, where still honoured (2.19+ logs through absl regardless: a worker's
        # stderr drops those lines, harness/runner/worker.py)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "tensorflow"  # the snippets hand Keras TensorFlow tensors
    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    if keras.backend.backend() != "tensorflow":
        raise Unavailable(f"keras runs on the {keras.backend.backend()!r} backend, not 'tensorflow'")
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            if not tf.config.experimental.get_memory_growth(gpu):
                tf.config.experimental.set_memory_growth(gpu, True)  # do not grab the whole GPU
        except RuntimeError:  # GPUs already initialised by someone else: leave them as they are
            pass
    return tf, keras


def _tf_device(device: str) -> str:
    """TensorFlow's name for a harness device (``cpu``, ``cuda:0``)."""
    return "/CPU:0" if device == "cpu" else "/GPU:" + device.partition(":")[2]


def _join(*lines: str | None) -> str:
    """The snippet's lines; ``l = X`` followed by ``loss = f(l)`` becomes ``loss = f(X)``."""
    kept = "\n".join(line for line in lines if line).split("\n")
    if len(kept) > 1 and kept[-2].startswith("l = ") and "#" not in kept[-2]:
        last = re.fullmatch(r"loss = (tf\.reduce_(?:sum|mean)\()?l(\)?)", kept[-1])
        if last and bool(last.group(1)) == bool(last.group(2)):
            kept[-2:] = [f"loss = {last.group(1) or ''}{kept[-2][4:]}{last.group(2) or ''}"]
    return "\n".join(kept)


# -- shared pieces -------------------------------------------------------------------------------


def _reduce(spec: LossSpec, cast: bool = False) -> str:
    """Canonical reduction of the per-element loss ``l`` (ignored elements already 0 in it), sample weights
    first: a plain multiplier of each element's loss, the denominator unchanged. `cast`: the denominator
    in l's dtype (Keras' float32 losses of half-precision inputs)."""
    if spec.sample_weighted:
        rest = _reduce(dataclasses.replace(spec, sample_weighted=False), cast=True)
        return "l = l * tf.cast(s, l.dtype)  # sample weights\n" + rest
    if spec.reduction == "none":
        return "loss = l"
    if spec.reduction == "sum":
        return "loss = tf.reduce_sum(l)"
    if spec.family == "sigmoid" or spec.target == "prob" or not (spec.weighted or spec.ignore_index is not None):
        return "loss = tf.reduce_mean(l)"
    # Index targets: divide by the summed weight of the kept targets. tf.where (not a 0/1 mask)
    # keeps the gradient 0, not inf * 0, when that sum is 0 and the value is 0/0 = NaN.
    if spec.weighted:
        d = "tf.gather(w, y)" if spec.ignore_index is None else "tf.where(keep, tf.gather(w, y), 0)"
    else:
        d = "tf.cast(keep, l.dtype)"
    d = f"tf.cast({d}, l.dtype)" if cast and not d.startswith("tf.cast") else d
    return f"loss = tf.reduce_sum(l) / tf.reduce_sum({d})"


def _native_reduce(spec: LossSpec, expr: str) -> str:
    """The tf.nn port: the framework's own mean (tf.reduce_mean of the per-example losses, times s if any)."""
    expr = f"s * {expr}" if spec.sample_weighted else expr
    return {"none": f"loss = {expr}", "sum": f"loss = tf.reduce_sum({expr})", "mean": f"loss = tf.reduce_mean({expr})"}[
        spec.reduction
    ]


def _keep(spec: LossSpec) -> str | None:
    if spec.ignore_index is None:
        return None
    return f"keep = y != {spec.ignore_index}\ny = tf.where(keep, y, 0)  # labels outside [0, C) raise on CPU"


def _smooth_sigmoid(spec: LossSpec) -> str | None:
    e = spec.label_smoothing
    return f"y = y * {py(1 - e)} + {py(e / 2)}" if e else None


_SUM_TO_ONE = "z = tf.reduce_sum({a}, axis=-1, keepdims=True)  # labels must sum to 1 for a correct gradient"


def _soft_labels(spec: LossSpec) -> tuple[str | None, str, str | None]:
    """Lines building the softmax labels, the labels expression, and the per-element factor.

    Labels must sum to 1 for tf.nn.softmax_cross_entropy_with_logits' gradient, so where they may
    not (probability targets, or class weights with smoothing) the coefficients ``a`` are
    normalised and their row sum becomes the per-element factor.
    """
    e = spec.label_smoothing
    smooth = f" * {py(1 - e)} + {py(e)} / x.shape[-1]" if e else ""
    if spec.target == "index":
        onehot = "tf.one_hot(y, x.shape[-1], dtype=x.dtype)"
        if not (spec.weighted and e):
            return f"t = {onehot}{smooth}", "t", ("tf.gather(w, y)" if spec.weighted else None)
        a = f"a = ({onehot}{smooth}) * w"
    else:
        if not (e or spec.weighted):
            return _SUM_TO_ONE.format(a="y"), "tf.math.divide_no_nan(y, z)", "z[..., 0]"
        t = f"(y{smooth})" if e and spec.weighted else f"y{smooth}"
        a = f"a = {t} * w" if spec.weighted else f"a = {t}"
    return a + "\n" + _SUM_TO_ONE.format(a="a"), "tf.math.divide_no_nan(a, z)", "z[..., 0]"


def _xlogy_softmax(spec: LossSpec) -> str:
    """Probability inputs, computed from x itself: Keras clips and renormalises (module docstring).

    tf.math.xlogy is 0 where the coefficient is 0 (also at x = 0) and its gradient a / x is 0 there.
    """
    e = spec.label_smoothing
    smooth = f" * {py(1 - e)} + {py(e)} / x.shape[-1]" if e else ""
    t = "tf.one_hot(y, x.shape[-1], dtype=x.dtype)" if spec.target == "index" else "y"
    a = f"({t}{smooth}) * w" if spec.weighted else f"{t}{smooth}"
    return _join(
        "# Keras clips x to [1e-7, 1 - 1e-7] and renormalises it (keras/src/backend/tensorflow/nn.py): use log(x)",
        _keep(spec),
        f"l = -tf.reduce_sum(tf.math.xlogy({a}, x), axis=-1)",
        "l = tf.where(keep, l, 0)" if spec.ignore_index is not None else None,
        _reduce(spec),
    )


BCE_LOSS = """\
@tf.custom_gradient
def bce(x):  # torch.nn.BCELoss: logs clamped at -100, backward (p - t) / max(p (1 - p), 1e-12)
    v = -(y * tf.maximum(tf.math.log(x), -100.0) + (1 - y) * tf.maximum(tf.math.log1p(-x), -100.0))
    return v, lambda dv: dv * (x - y) / tf.maximum(x * (1 - x), tf.constant(1e-12, x.dtype))
l = bce(x)"""


def _xlogy_sigmoid(spec: LossSpec) -> str:
    """Probabilities: Keras clips them, so compute from x itself; as PyTorch's BCELoss does where it can
    (no pos_weight), with its log clamp and its gradient, departures from the exact loss included."""
    pos = "w * y" if spec.weighted else "y"
    return _join(
        "# Keras clips x to [1e-7, 1 - 1e-7] (keras/src/backend/tensorflow/nn.py): use log(x), log1p(-x)",
        _smooth_sigmoid(spec),
        f"l = -(tf.math.xlogy({pos}, x) + tf.math.xlog1py(1 - y, -x))" if spec.weighted else BCE_LOSS,
        _reduce(spec),
    )


def _native_sample_weight(spec: LossSpec) -> str:
    """Keras' one sample_weight argument in the obvious port: the class weights w[y], the sample weights s."""
    sw = [w for w, on in (("tf.gather(w, y)", spec.weighted and spec.target == "index"), ("s", spec.sample_weighted))
          if on]  # fmt: skip
    return f", sample_weight={' * '.join(sw)}" if sw else ""


def _keras_reduction(spec: LossSpec) -> str:
    return {"none": "'none'", "sum": "'sum'", "mean": "'sum_over_batch_size'"}[spec.reduction]


# -- tf.nn ---------------------------------------------------------------------------------------


def _softmax_xent(spec: LossSpec) -> tuple[Recipe, Recipe]:
    api = "tf.nn.softmax_cross_entropy_with_logits"
    if spec.label_smoothing:
        native = Recipe("native", None, f"{api} has no label_smoothing argument")
    elif spec.target == "prob" and spec.weighted:
        native = Recipe("native", None, f"{api} has no class-weight argument")
    elif spec.target == "prob":
        native = Recipe("native", _native_reduce(spec, f"{api}(labels=y, logits=x)"))
    else:  # the usual port of index targets: one-hot labels, class weights per example
        call = f"{api}(labels=tf.one_hot(y, x.shape[-1], dtype=x.dtype), logits=x)"
        native = Recipe("native", _native_reduce(spec, f"tf.gather(w, y) * {call}" if spec.weighted else call))

    prep, labels, factor = _soft_labels(spec)
    call = f"{api}(labels={labels}, logits=x)"
    matched = _join(
        CLAMP,
        _keep(spec),
        prep,
        f"l = {factor} * {call}" if factor else f"l = {call}",
        "l = tf.where(keep, l, 0)" if spec.ignore_index is not None else None,
        _reduce(spec),
    )
    return native, Recipe("matched", matched)


def _sparse_xent(spec: LossSpec) -> tuple[Recipe, Recipe]:
    api = "tf.nn.sparse_softmax_cross_entropy_with_logits"
    if spec.target != "index":
        return unsupported(f"{api} takes class indices only")
    call = f"{api}(labels=y, logits=x)"
    if spec.label_smoothing:
        native = Recipe("native", None, f"{api} has no label_smoothing argument")
    else:  # ignore_index has no argument either: the labels go in as they are (and raise on CPU)
        native = Recipe("native", _native_reduce(spec, f"tf.gather(w, y) * {call}" if spec.weighted else call))

    nll = spec.input == "log_probs"  # any real scores: the NLL picks -x[y] (log_softmax would renormalise)
    picked = "-tf.gather(x, y, batch_dims=len(y.shape))" if nll else call
    term = f"tf.gather(w, y) * {picked}" if spec.weighted else picked
    e = spec.label_smoothing
    if e:  # smoothing spreads e over every class: the sparse term plus e/C times the class sum
        logp = "x" if nll else "tf.nn.log_softmax(x)"
        logp = f"w * {logp}" if spec.weighted else logp
        term = f"{py(1 - e)} * {term} - {py(e)} / x.shape[-1] * tf.reduce_sum({logp}, axis=-1)"
    matched = _join(
        _keep(spec),
        f"l = {term}",
        "l = tf.where(keep, l, 0)" if spec.ignore_index is not None else None,
        _reduce(spec),
    )
    return native, Recipe("matched", matched)


def _sigmoid_xent(spec: LossSpec) -> tuple[Recipe, Recipe]:
    api = "tf.nn.sigmoid_cross_entropy_with_logits"
    call = f"{api}(labels=y, logits=x)"
    if spec.weighted:
        native = Recipe("native", None, f"{api} has no pos_weight argument (weighted_cross_entropy_with_logits has)")
    elif spec.label_smoothing:
        native = Recipe("native", None, f"{api} has no label_smoothing argument")
    else:
        native = Recipe("native", _native_reduce(spec, call))
    matched = _join(
        _smooth_sigmoid(spec),
        f"l = {call}",
        "l = l + (w - 1) * y * tf.math.softplus(-x)  # pos_weight w scales the -log(sigmoid(x)) term"
        if spec.weighted
        else None,
        _reduce(spec),
    )
    return native, Recipe("matched", matched)


def _weighted_xent(spec: LossSpec) -> tuple[Recipe, Recipe]:
    api = "tf.nn.weighted_cross_entropy_with_logits"
    call = f"{api}(labels=y, logits=x, pos_weight={'w' if spec.weighted else '1.0'})"
    if spec.label_smoothing:
        native = Recipe("native", None, f"{api} has no label_smoothing argument")
    else:
        native = Recipe("native", _native_reduce(spec, call))
    return native, Recipe("matched", _join(_smooth_sigmoid(spec), f"l = {call}", _reduce(spec)))


# -- Keras ---------------------------------------------------------------------------------------


def _keras_args(**kwargs: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in kwargs.items() if v is not None)


def _categorical(spec: LossSpec) -> tuple[Recipe, Recipe]:
    api = "keras.losses.CategoricalCrossentropy"
    logits = spec.input == "logits"
    e = spec.label_smoothing
    if spec.target == "prob" and spec.weighted:
        native = Recipe("native", None, f"{api} has no class-weight argument (sample_weight weights whole samples)")
    else:
        y = "tf.one_hot(y, x.shape[-1])" if spec.target == "index" else "y"
        args = _keras_args(from_logits=logits, label_smoothing=py(e) if e else None, reduction=_keras_reduction(spec))
        native = Recipe("native", f"loss = {api}({args})({y}, x{_native_sample_weight(spec)})")
    if not logits:
        return native, Recipe("matched", _xlogy_softmax(spec))

    # Matched: Keras smooths one-hot labels as the reference does; class weights become sample
    # weights (per-element factor), and the mean divides by the kept targets' summed weight.
    lines = [CLAMP, _keep(spec)]
    ii = spec.ignore_index is not None
    if spec.target == "index" and not (spec.weighted and e):
        labels, smoothing = "tf.one_hot(y, x.shape[-1])", (py(e) if e else None)
        sw = "tf.gather(w, y)" if spec.weighted else None
    else:
        prep, labels, sw = _soft_labels(spec)
        lines.append(prep)
        smoothing = None
    if ii:
        sw = f"tf.where(keep, {sw}, 0)" if sw else "tf.cast(keep, x.dtype)"
    reduction = _keras_reduction(spec)
    if spec.sample_weighted:  # per-element losses (class weights in), then the canonical reduction
        args = _keras_args(from_logits=True, label_smoothing=smoothing, reduction="'none'", dtype=KERAS_DTYPE)
        lines += [f"l = {api}({args})({labels}, x{', sample_weight=' + sw if sw else ''})", _reduce(spec)]
        return native, Recipe("matched", _join(*lines))
    if spec.reduction == "mean" and spec.target == "index" and (spec.weighted or ii):
        if spec.weighted and e:  # the sample weights are row sums of w * t', not w[y]: divide by hand
            d = "tf.where(keep, tf.gather(w, y), 0)" if ii else "tf.gather(w, y)"
            lines.append(f"d = tf.reduce_sum({d})")
            sw, reduction = f"tf.math.divide_no_nan({sw}, d)", "'sum'"
        else:
            reduction = "'mean_with_sample_weight'"  # sum(w[y] * l) / sum(w[y]), PyTorch's weighted mean
    args = _keras_args(from_logits=True, label_smoothing=smoothing, reduction=reduction, dtype=KERAS_DTYPE)
    lines.append(f"loss = {api}({args})({labels}, x{', sample_weight=' + sw if sw else ''})")
    if ii and spec.reduction == "mean":
        lines.append(NAN_IF_ALL_IGNORED)
    return native, Recipe("matched", _join(*lines))


def _sparse_categorical(spec: LossSpec) -> tuple[Recipe, Recipe]:
    api = "keras.losses.SparseCategoricalCrossentropy"
    if spec.target != "index":
        return unsupported(f"{api} takes class indices only")
    if spec.label_smoothing:
        return unsupported(
            f"{api} has no label_smoothing argument; smoothing needs every class: "
            "CategoricalCrossentropy(label_smoothing=...) on tf.one_hot(y, C)"
        )
    logits = spec.input == "logits"
    ii = spec.ignore_index
    args = _keras_args(from_logits=logits, ignore_class=ii, reduction=_keras_reduction(spec))
    native = f"loss = {api}({args})(y, x{_native_sample_weight(spec)})"
    if not logits:
        return Recipe("native", native), Recipe("matched", _xlogy_softmax(spec))

    # Keras masks ignore_class itself (loss and sample weight 0); only the weights' gather needs
    # labels in [0, C), and 'mean_with_sample_weight' divides by the summed weight of the kept.
    lines = []
    sw = None
    if spec.weighted:
        sw = "tf.gather(w, y)" if ii is None else f"tf.gather(w, tf.where(y != {ii}, y, 0))"
    if spec.sample_weighted:  # per-element losses (ignored ones 0, class weights in), the canonical reduction
        args = _keras_args(from_logits=True, ignore_class=ii, reduction="'none'", dtype=KERAS_DTYPE)
        lines += [f"l = {api}({args})(y, x{', sample_weight=' + sw if sw else ''})", _keep(spec), _reduce(spec)]
        return Recipe("native", native), Recipe("matched", _join(*lines))
    reduction = _keras_reduction(spec)
    if spec.reduction == "mean" and spec.weighted:
        reduction = "'mean_with_sample_weight'"
    args = _keras_args(from_logits=True, ignore_class=ii, reduction=reduction, dtype=KERAS_DTYPE)
    lines.append(f"loss = {api}({args})(y, x{', sample_weight=' + sw if sw else ''})")
    if ii is not None and spec.reduction == "mean":
        lines += [f"keep = y != {ii}", NAN_IF_ALL_IGNORED]
    return Recipe("native", native), Recipe("matched", _join(*lines))


def _binary(spec: LossSpec) -> tuple[Recipe, Recipe]:
    api = "keras.losses.BinaryCrossentropy"
    logits = spec.input == "logits"
    e = spec.label_smoothing
    if spec.weighted:
        native = Recipe("native", None, f"{api} has no pos_weight argument (sample_weight scales both terms)")
    else:
        args = _keras_args(from_logits=logits, label_smoothing=py(e) if e else None, reduction=_keras_reduction(spec))
        native = Recipe("native", f"loss = {api}({args})(y, x{_native_sample_weight(spec)})")
    if not logits:
        return native, Recipe("matched", _xlogy_sigmoid(spec))

    # BinaryCrossentropy averages over the last axis: a trailing axis of 1 keeps every element; with sample
    # weights the per-element losses are reduced by hand (the canonical reduction, sample weights first)
    reduction = "'none'" if spec.sample_weighted else _keras_reduction(spec)
    out = "l" if spec.sample_weighted else "loss"
    if not spec.weighted:
        args = _keras_args(
            from_logits=True, label_smoothing=py(e) if e else None, reduction=reduction, dtype=KERAS_DTYPE
        )
        line = f"{out} = {api}({args})(y[..., None], x[..., None])"
        return native, Recipe("matched", _join(line, _reduce(spec) if spec.sample_weighted else None))
    args = _keras_args(from_logits=True, reduction=reduction, dtype=KERAS_DTYPE)
    matched = _join(
        _smooth_sigmoid(spec),
        "k = w * y + 1 - y  # pos_weight w: k * bce(w * y / k) = w * y * softplus(-x) + (1 - y) * softplus(x)",
        f"{out} = {api}({args})((w * y / k)[..., None], x[..., None], sample_weight=k)",
        _reduce(spec) if spec.sample_weighted else None,
    )
    return native, Recipe("matched", matched)


def _softmax_input(*inputs: str) -> Callable[[LossSpec], bool]:
    return lambda s: s.family == "softmax" and s.input in inputs


def _sigmoid_input(*inputs: str) -> Callable[[LossSpec], bool]:
    return lambda s: s.family == "sigmoid" and s.input in inputs


APIS = (
    Api("tf.nn.softmax_cross_entropy_with_logits", _softmax_input("logits"), _softmax_xent),
    # NLLLoss ported to tf.nn: the obvious port applies log_softmax to the scores again
    Api("tf.nn.sparse_softmax_cross_entropy_with_logits", _softmax_input("logits", "log_probs"), _sparse_xent),
    Api("tf.nn.sigmoid_cross_entropy_with_logits", _sigmoid_input("logits"), _sigmoid_xent),
    Api("tf.nn.weighted_cross_entropy_with_logits", _sigmoid_input("logits"), _weighted_xent),
    Api("keras.losses.CategoricalCrossentropy", _softmax_input("logits", "probs"), _categorical),
    Api("keras.losses.SparseCategoricalCrossentropy", _softmax_input("logits", "probs"), _sparse_categorical),
    Api("keras.losses.BinaryCrossentropy", _sigmoid_input("logits", "probs"), _binary),
)


class TensorflowAdapter(Adapter):
    name = "tensorflow"
    modules = ("tensorflow", "keras")
    distributions = DISTRIBUTIONS
    also = ("keras",)
    install_hint = "pip install -e '.[tensorflow]' -c constraints.txt"
    apis = APIS
    classes_last = True
    modes = ("eager", "compiled")
    policies = ("mixed_bfloat16", "mixed_float16")

    def __init__(self) -> None:
        super().__init__()
        self._steps: dict[tuple[Callable[..., Any], bool], Callable[..., Any]] = {}  # (recipe, compiled) -> step

    def isa(self, device: str) -> str | None:
        tf, _ = load_tensorflow()
        if device != "cpu":
            details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
            return f"{details.get('device_name', 'GPU')} (compute capability {details.get('compute_capability')})"
        try:
            from tensorflow.python.util import _pywrap_util_port

            onednn = "oneDNN on" if _pywrap_util_port.IsMklEnabled() else "oneDNN off"
        except ImportError:
            onednn = "oneDNN unknown"
        limit = os.environ.get("ONEDNN_MAX_CPU_ISA")
        return f"{onednn} (kernels pick their ISA at run time{', ONEDNN_MAX_CPU_ISA=' + limit if limit else ''})"

    def setup(self) -> dict[str, Any]:
        tf, keras = load_tensorflow()
        return {"tf": tf, "keras": keras}

    def accumulated_mean(self, spec: LossSpec) -> str:
        keep = "tf.ones_like(y, tf.bool)" if spec.ignore_index is None else f"tf.not_equal(y, {spec.ignore_index})"
        weight = "tf.gather(w, tf.where(keep, y, 0))" if spec.weighted else "tf.ones_like(y)"
        kept = f"tf.where(keep, tf.cast({weight}, total.dtype), tf.zeros([], total.dtype))"
        return f"keep = {keep}\nloss = total / tf.reduce_sum({kept})"

    def no_gpu(self) -> str | None:
        tf = self.namespace()["tf"]
        return None if tf.config.list_physical_devices("GPU") else "tf.config.list_physical_devices('GPU') is empty"

    def _stage(self, spec: LossSpec, inputs: Inputs, dtype: str, device: str) -> tuple[Any, Any, Any]:
        """x, y, w as TensorFlow tensors on `device`."""
        tf, _ = load_tensorflow()
        tdt = tf.as_dtype(dtype)

        def tensor(a: np.ndarray) -> Any:
            # Values are representable in `dtype`, so every cast here is exact.
            if device != "cpu":
                return tf.cast(tf.constant(a, tf.float64), tdt)
            # On the CPU the tensor is the (aligned) array's own memory, through DLPack: tf.constant
            # would hold two copies of x. NumPy has no bfloat16: that goes through float32.
            shared = aligned(a, np.float32 if tdt == tf.bfloat16 else tdt.as_numpy_dtype)
            return tf.cast(tf.experimental.dlpack.from_dlpack(shared.__dlpack__()), tdt)

        with tf.device(_tf_device(device)):
            x = tensor(inputs.x)
            y = tf.constant(inputs.target, tf.int64) if spec.target == "index" else tensor(inputs.target)
            w = None if inputs.weight is None else tf.cast(tf.constant(inputs.weight, tf.float64), tdt)
            s = None if inputs.sample_weight is None else tf.cast(tf.constant(inputs.sample_weight, tf.float64), tdt)
        return x, y, w, s

    def evaluate(
        self, fn: Callable[..., Any], spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str = "eager",
        policy: str = "none",
    ) -> tuple[np.ndarray, np.ndarray, str]:  # fmt: skip
        """Eager, or in a tf.function(jit_compile=True) (XLA), optionally under a Keras mixed-precision policy
        (the global policy, set for the call: what a model built under it hands its loss)."""
        tf, keras = load_tensorflow()
        x, y, w, s = self._stage(spec, inputs, dtype, device)
        step = self._step(fn, mode == "compiled")
        with tf.device(_tf_device(device)), self._policy(keras, policy):
            loss, grad = step(x, y, w, s)
            value = tf.cast(loss, tf.float64).numpy()
            grad = np.zeros(tuple(x.shape)) if grad is None else tf.cast(tf.convert_to_tensor(grad), tf.float64).numpy()
        return value, grad, loss.dtype.name

    def _step(self, fn: Callable[..., Any], compiled: bool) -> Callable[..., Any]:
        """(loss, d loss / dx) of `fn` (of the sum of the elements for reduction='none'), eager or XLA-compiled
        (one tf.function per recipe: it traces each new shape and dtype)."""
        key = (fn, compiled)
        if key not in self._steps:
            tf, _ = load_tensorflow()

            def step(x: Any, y: Any, w: Any, s: Any) -> tuple[Any, Any]:
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    loss = fn(x, y, w, s)
                return loss, tape.gradient(loss, x)

            self._steps[key] = tf.function(step, jit_compile=True) if compiled else step
        return self._steps[key]

    def _policy(self, keras: Any, policy: str) -> contextlib.AbstractContextManager[Any]:
        if policy == "none":
            return contextlib.nullcontext()
        if policy not in self.policies:
            raise Unavailable(f"tensorflow has no policy {policy!r}")
        return _global_policy(keras, policy)

    def timer(
        self, code: str, spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str, pass_: str
    ) -> tuple[Callable[[], Any], Callable[[Any], None]]:
        tf, _ = load_tensorflow()
        fn = make_function(code, self.namespace())  # a fresh function: a compiler cache keyed by it starts empty
        x, y, w, s = self._stage(spec, inputs, dtype, device)
        if pass_ == "forward":

            def step() -> Any:
                return fn(x, y, w, s)
        else:

            def step() -> Any:
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    loss = fn(x, y, w, s)
                return tape.gradient(loss, x)

        if mode == "compiled":
            step = tf.function(step, jit_compile=True)

        def call() -> Any:
            with tf.device(_tf_device(device)):
                return step()

        sync_devices = getattr(getattr(tf.test, "experimental", None), "sync_devices", None)
        if device != "cpu" and sync_devices is not None:
            return call, lambda result: sync_devices()
        return call, lambda result: None  # CPU ops have finished when they return

    def bandwidth_gbps(self, device: str) -> float | None:
        tf, _ = load_tensorflow()
        if device == "cpu":
            return None
        import time

        with tf.device(_tf_device(device)):
            src = tf.ones([2**28 // 4])
            best = float("inf")
            for _ in range(5):
                t0 = time.perf_counter()
                dst = tf.identity(src + 0.0)  # one read, one write
                _ = dst[0].numpy()
                best = min(best, time.perf_counter() - t0)
        return 2 * 2**28 / best / 1e9


ADAPTER = TensorflowAdapter()
