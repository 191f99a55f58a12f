"""Keras' cross-entropy recipes, written once for every Keras backend (TensorFlow, JAX, PyTorch).

``keras.losses.CategoricalCrossentropy``, ``SparseCategoricalCrossentropy`` and ``BinaryCrossentropy`` take
the same arguments on every backend; only the tensor operations around them are spelled differently: the
TensorFlow adapter's snippets use ``tf.*`` (as they always have), the Keras 3 adapters on JAX and PyTorch use
the backend-neutral ``keras.ops`` (``ops``). A `KerasRecipes` is one such spelling plus what its backend needs
(`TF`, `OPS_JAX`, `OPS_TORCH`); its `apis` are the three losses' native and matched recipes. The layout is
TensorFlow's: classes LAST for matched snippets (`Adapter.classes_last`), index targets ``y`` of (N, d1..dk),
``w`` (C,) class weights or pos_weight (or None), ``s`` per-element sample weights (or None).

Where the backends' Keras computes differently, and so the matched recipes differ:

- TensorFlow's ``softmax_cross_entropy_with_logits`` (behind CategoricalCrossentropy) takes the gradient as
  ``softmax(x) - labels``, right only where each label row sums to 1: its matched recipe normalises the
  labels and moves the row sum into a sample weight (`KerasRecipes.normalise_targets`). JAX's and PyTorch's
  Keras take ``-sum(labels * log_softmax(x))`` (keras/src/backend/{jax,torch}/nn.py), exact for any labels.
- Keras' type promotion maps 64-bit types to 32-bit on every backend but TensorFlow
  (``BIT64_TO_BIT32_DTYPE``, keras/src/backend/common/dtypes.py; keras-team/keras#23223):
  ``keras.backend.result_type(float64, 'float32')`` is float32 there, so the JAX and PyTorch recipes name
  float64 themselves; ``ops.mean`` computes float64 in float32 (the recipes take a sum over a count), and so
  does BinaryCrossentropy's mean over the last axis (the matched recipe calls ``ops.binary_crossentropy``,
  Keras' element-wise loss, `KerasRecipes.bce_mean`); on PyTorch ``ops.maximum``, ``ops.clip`` and
  ``ops.divide_no_nan``, and so every Keras mean reduction, return float32 too, so its matched recipes reduce
  Keras' per-element losses themselves (`KerasRecipes.keras_mean`).
- JAX's SparseCategoricalCrossentropy is ``one_hot(y) * log_softmax(x)``: -inf logits need the clamp there
  (`KerasRecipes.sparse_one_hot`); TensorFlow's and PyTorch's pick the target's log-probability.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from adapters.base import Api, Recipe, py, unsupported
from cases.spec import LossSpec

CCE = "keras.losses.CategoricalCrossentropy"
SCCE = "keras.losses.SparseCategoricalCrossentropy"
BCE = "keras.losses.BinaryCrossentropy"

BCE_LOSS_TF = """\
@tf.custom_gradient
def bce(x):  # torch.nn.BCELoss: logs clamped at -100, backward (p - t) / max(p (1 - p), 1e-12)
    v = -(y * tf.maximum(tf.math.log(x), -100.0) + (1 - y) * tf.maximum(tf.math.log1p(-x), -100.0))
    return v, lambda dv: dv * (x - y) / tf.maximum(x * (1 - x), tf.constant(1e-12, x.dtype))
l = bce(x)"""

# where, not ops.maximum or ops.clip: those compute float64 in float32 on PyTorch (keras-team/keras#23223)
BCE_LOSS_OPS = """\
@ops.custom_gradient
def bce(x):  # torch.nn.BCELoss: logs clamped at -100, backward (p - t) / max(p (1 - p), 1e-12)
    lp, lq = ops.log(x), ops.log1p(-x)
    v = -(y * ops.where(lp > -100.0, lp, -100.0) + (1 - y) * ops.where(lq > -100.0, lq, -100.0))
    def grad(*args, upstream=None):  # JAX passes the upstream gradient by position, PyTorch by keyword
        upstream = args[0] if upstream is None else upstream
        pq = x * (1 - x)
        return upstream * (x - y) / ops.where(pq > 1e-12, pq, 1e-12)
    return v, grad
l = bce(x)"""


@contextlib.contextmanager
def global_policy(keras: Any, name: str) -> Iterator[None]:
    """Keras' global dtype policy set to `name` for the block, then restored (what a model built under a
    mixed-precision policy hands its loss; the same on every backend)."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def keras_args(**kwargs: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in kwargs.items() if v is not None)


def keras_reduction(spec: LossSpec) -> str:
    return {"none": "'none'", "sum": "'sum'", "mean": "'sum_over_batch_size'"}[spec.reduction]


def smooth_sigmoid(spec: LossSpec) -> str | None:
    e = spec.label_smoothing
    return f"y = y * {py(1 - e)} + {py(e / 2)}" if e else None


@dataclass(frozen=True)
class KerasRecipes:
    """The Keras losses' recipes in one backend's spelling.

    Attributes:
      backend: Keras' backend name (its nn.py is what the snippets' comments cite).
      sum, any, gather, where, cast, one_hot, divide_no_nan: the names of those operations.
      mean: the mean of all the elements of ``{}`` (``ops.mean`` computes float64 in float32 off TensorFlow).
      clamp: the line that replaces -inf logits by the dtype's lowest finite value.
      keep_note: why ignored labels are replaced by 0 before a gather.
      keras_dtype: the ``dtype=`` of matched Keras losses: float64 stays float64, lower precisions float32.
      normalise_targets: CategoricalCrossentropy's gradient assumes labels that sum to 1 (TensorFlow).
      keras_mean: Keras' mean reductions keep the loss' dtype (not PyTorch's, module docstring).
      where_mask: per-element losses of ignored targets are zeroed with where, not with a zero sample weight
        (whose gradient is 0 * inf = NaN in a mean over no targets).
      bce_mean: BinaryCrossentropy's mean over the last axis keeps float64 (TensorFlow): its matched recipe calls it.
      sparse_one_hot: SparseCategoricalCrossentropy multiplies a one-hot by log_softmax (JAX): -inf logits need `clamp`.
      nll_port: SparseCategoricalCrossentropy also stands for NLLLoss' port (log-probability inputs); TensorFlow's
        adapter has tf.nn.sparse_softmax_cross_entropy_with_logits for that.
      xlogy, xlog1py: TensorFlow's functions, or None (``a * log(where(a != 0, x, 1))`` instead).
      bce_loss: PyTorch's BCELoss as a custom-gradient function of ``x`` assigning ``l``.
    """

    backend: str
    sum: str
    mean: str
    any: str
    gather: str
    where: str
    cast: str
    one_hot: str
    divide_no_nan: str
    clamp: str
    keep_note: str
    keras_dtype: str
    normalise_targets: bool
    keras_mean: bool
    where_mask: bool
    bce_mean: bool
    sparse_one_hot: bool
    nll_port: bool
    xlogy: str | None
    xlog1py: str | None
    bce_loss: str

    # -- shared pieces -------------------------------------------------------------------------------

    def join(self, *lines: str | None) -> str:
        """The snippet's lines; ``l = X`` followed by ``loss = f(l)`` becomes ``loss = f(X)``."""
        kept = "\n".join(line for line in lines if line).split("\n")
        if len(kept) > 1 and kept[-2].startswith("l = ") and "#" not in kept[-2]:
            reduce = "|".join(re.escape(f) for f in (self.sum, self.mean_call) if f)
            last = re.fullmatch(rf"loss = ((?:{reduce})\()?l(\)?)", kept[-1])
            if last and bool(last.group(1)) == bool(last.group(2)):
                kept[-2:] = [f"loss = {last.group(1) or ''}{kept[-2][4:]}{last.group(2) or ''}"]
        return "\n".join(kept)

    @property
    def mean_call(self) -> str | None:
        """The mean's function name where the mean is one call (TensorFlow's tf.reduce_mean)."""
        name, call, rest = self.mean.partition("({})")
        return name if call and not rest else None

    def reduce(self, spec: LossSpec, cast: bool = False) -> str:
        """Canonical reduction of the per-element loss ``l`` (ignored elements already 0 in it), sample weights
        first: a plain multiplier of each element's loss, the denominator unchanged. `cast`: the denominator
        in l's dtype (Keras' float32 losses of half-precision inputs)."""
        if spec.sample_weighted:
            rest = self.reduce(dataclasses.replace(spec, sample_weighted=False), cast=True)
            return f"l = l * {self.cast}(s, l.dtype)  # sample weights\n" + rest
        if spec.reduction == "none":
            return "loss = l"
        if spec.reduction == "sum":
            return f"loss = {self.sum}(l)"
        if spec.family == "sigmoid" or spec.target == "prob" or not (spec.weighted or spec.ignore_index is not None):
            return "loss = " + self.mean.format("l")
        # Index targets: divide by the summed weight of the kept targets. where (not a 0/1 mask)
        # keeps the gradient 0, not inf * 0, when that sum is 0 and the value is 0/0 = NaN.
        if spec.weighted:
            d = f"{self.gather}(w, y)" if spec.ignore_index is None else f"{self.where}(keep, {self.gather}(w, y), 0)"
        else:
            d = f"{self.cast}(keep, l.dtype)"
        d = f"{self.cast}({d}, l.dtype)" if cast and not d.startswith(f"{self.cast}(") else d
        return f"loss = {self.sum}(l) / {self.sum}({d})"

    def keep(self, spec: LossSpec) -> str | None:
        if spec.ignore_index is None:
            return None
        return f"keep = y != {spec.ignore_index}\ny = {self.where}(keep, y, 0)  # {self.keep_note}"

    def soft_labels(self, spec: LossSpec) -> tuple[str | None, str, str | None]:
        """Lines building the softmax labels, the labels expression, and the per-element factor.

        Where labels must sum to 1 for the gradient (`normalise_targets`) and may not (probability targets,
        or class weights with smoothing), the coefficients ``a`` are normalised and their row sum becomes the
        per-element factor; elsewhere the coefficients are the labels.
        """
        e = spec.label_smoothing
        smooth = f" * {py(1 - e)} + {py(e)} / x.shape[-1]" if e else ""
        if spec.target == "index":
            onehot = f"{self.one_hot}(y, x.shape[-1], dtype=x.dtype)"
            if not (spec.weighted and e):
                return f"t = {onehot}{smooth}", "t", (f"{self.gather}(w, y)" if spec.weighted else None)
            a = f"a = ({onehot}{smooth}) * w"
        else:
            if not (e or spec.weighted):
                if not self.normalise_targets:
                    return None, "y", None
                return self._sum_to_one("y"), f"{self.divide_no_nan}(y, z)", "z[..., 0]"
            t = f"(y{smooth})" if e and spec.weighted else f"y{smooth}"
            a = f"a = {t} * w" if spec.weighted else f"a = {t}"
        if not self.normalise_targets:
            return a, "a", None
        return a + "\n" + self._sum_to_one("a"), f"{self.divide_no_nan}(a, z)", "z[..., 0]"

    def _sum_to_one(self, a: str) -> str:
        return f"z = {self.sum}({a}, axis=-1, keepdims=True)  # labels must sum to 1 for a correct gradient"

    def nan_if_all_ignored(self) -> str:
        return f"loss = {self.where}({self.any}(keep), loss, float('nan'))  # PyTorch: NaN when all are ignored"

    def _clip_note(self, what: str) -> str:
        return f"# Keras clips x to [1e-7, 1 - 1e-7]{what} (keras/src/backend/{self.backend}/nn.py)"

    def xlogy_softmax(self, spec: LossSpec) -> str:
        """Probability inputs, computed from x itself: Keras clips and renormalises (module docstring).

        xlogy (or a * log(where(a != 0, x, 1))) is 0 where the coefficient is 0 (also at x = 0) and so is its
        gradient a / x there.
        """
        e = spec.label_smoothing
        smooth = f" * {py(1 - e)} + {py(e)} / x.shape[-1]" if e else ""
        t = f"{self.one_hot}(y, x.shape[-1], dtype=x.dtype)" if spec.target == "index" else "y"
        a = f"({t}{smooth}) * w" if spec.weighted else f"{t}{smooth}"
        if self.xlogy:
            terms = [f"l = -{self.sum}({self.xlogy}({a}, x), axis=-1)"]
        else:
            terms = [f"a = {a}", f"l = -{self.sum}(a * ops.log({self.where}(a != 0, x, 1)), axis=-1)"]
        return self.join(
            self._clip_note(" and renormalises it") + ": use log(x)",
            self.keep(spec),
            *terms,
            f"l = {self.where}(keep, l, 0)" if spec.ignore_index is not None else None,
            self.reduce(spec),
        )

    def xlogy_sigmoid(self, spec: LossSpec) -> str:
        """Probabilities: Keras clips them, so compute from x itself; as PyTorch's BCELoss does where it can
        (no pos_weight), with its log clamp and its gradient, departures from the exact loss included."""
        if not spec.weighted:
            terms = self.bce_loss
        elif self.xlogy:
            terms = f"l = -({self.xlogy}(w * y, x) + {self.xlog1py}(1 - y, -x))"
        else:
            pos, neg = f"ops.log({self.where}(pos != 0, x, 1))", f"ops.log1p(-{self.where}(neg != 0, x, 0))"
            terms = f"pos, neg = w * y, 1 - y\nl = -(pos * {pos} + neg * {neg})"
        return self.join(
            self._clip_note("") + ": use log(x), log1p(-x)", smooth_sigmoid(spec), terms, self.reduce(spec)
        )

    def native_sample_weight(self, spec: LossSpec) -> str:
        """Keras' one sample_weight argument in the obvious port: the class weights w[y], the sample weights s."""
        sw = [w for w, on in ((f"{self.gather}(w, y)", spec.weighted and spec.target == "index"),
                              ("s", spec.sample_weighted)) if on]  # fmt: skip
        return f", sample_weight={' * '.join(sw)}" if sw else ""

    def _per_element(self, spec: LossSpec) -> bool:
        """Whether a matched recipe takes Keras' per-element losses and reduces them itself: sample weights (a
        plain multiplier, the canonical denominator), or a mean Keras would not compute in the loss' dtype."""
        return spec.sample_weighted or (spec.reduction == "mean" and not self.keras_mean)

    # -- the losses ------------------------------------------------------------------------------------

    def categorical(self, spec: LossSpec) -> tuple[Recipe, Recipe]:
        api = CCE
        logits = spec.input == "logits"
        e = spec.label_smoothing
        if spec.target == "prob" and spec.weighted:
            native = Recipe("native", None, f"{api} has no class-weight argument (sample_weight weights whole samples)")
        else:
            y = f"{self.one_hot}(y, x.shape[-1])" if spec.target == "index" else "y"
            args = keras_args(from_logits=logits, label_smoothing=py(e) if e else None, reduction=keras_reduction(spec))
            native = Recipe("native", f"loss = {api}({args})({y}, x{self.native_sample_weight(spec)})")
        if not logits:
            return native, Recipe("matched", self.xlogy_softmax(spec))

        # Matched: Keras smooths one-hot labels as the reference does; class weights become sample
        # weights (per-element factor), and the mean divides by the kept targets' summed weight.
        lines = [self.clamp, self.keep(spec)]
        ii = spec.ignore_index is not None
        if spec.target == "index" and not (spec.weighted and e):
            labels, smoothing = f"{self.one_hot}(y, x.shape[-1])", (py(e) if e else None)
            sw = f"{self.gather}(w, y)" if spec.weighted else None
        else:
            prep, labels, sw = self.soft_labels(spec)
            lines.append(prep)
            smoothing = None
        if self._per_element(spec):  # per-element losses (class weights in), then the canonical reduction
            if ii and not self.where_mask:
                sw = f"{self.where}(keep, {sw}, 0)" if sw else f"{self.cast}(keep, x.dtype)"
            args = keras_args(from_logits=True, label_smoothing=smoothing, reduction="'none'", dtype=self.keras_dtype)
            weights = f", sample_weight={sw}" if sw else ""
            masked = f"l = {self.where}(keep, l, 0)  # where, not a 0 weight: 0 * inf is NaN in an empty mean's grad"
            lines += [f"l = {api}({args})({labels}, x{weights})", masked if ii and self.where_mask else None,
                      self.reduce(spec)]  # fmt: skip
            return native, Recipe("matched", self.join(*lines))
        if ii:
            sw = f"{self.where}(keep, {sw}, 0)" if sw else f"{self.cast}(keep, x.dtype)"
        reduction = keras_reduction(spec)
        divide = False
        if spec.reduction == "mean" and spec.target == "index" and (spec.weighted or ii):
            if spec.weighted and e:  # the sample weights are row sums of w * t', not w[y]: divide by hand
                d = f"{self.where}(keep, {self.gather}(w, y), 0)" if ii else f"{self.gather}(w, y)"
                lines.append(f"d = {self.sum}({d})")
                reduction, divide = "'sum'", sw is None  # no sample weight to divide (unnormalised labels)
                sw = f"{self.divide_no_nan}({sw}, d)" if sw else None
            else:
                reduction = "'mean_with_sample_weight'"  # sum(w[y] * l) / sum(w[y]), PyTorch's weighted mean
        args = keras_args(from_logits=True, label_smoothing=smoothing, reduction=reduction, dtype=self.keras_dtype)
        weights = f", sample_weight={sw}" if sw else ""
        lines.append(f"loss = {api}({args})({labels}, x{weights}){' / d' if divide else ''}")
        if ii and spec.reduction == "mean":
            lines.append(self.nan_if_all_ignored())
        return native, Recipe("matched", self.join(*lines))

    def sparse_categorical(self, spec: LossSpec) -> tuple[Recipe, Recipe]:
        api = SCCE
        if spec.target != "index":
            return unsupported(f"{api} takes class indices only")
        if spec.label_smoothing:
            return unsupported(
                f"{api} has no label_smoothing argument; smoothing needs every class: "
                f"CategoricalCrossentropy(label_smoothing=...) on {self.one_hot}(y, C)"
            )
        logits = spec.input != "probs"  # NLLLoss' obvious port passes log-probabilities as logits
        ii = spec.ignore_index
        args = keras_args(from_logits=logits, ignore_class=ii, reduction=keras_reduction(spec))
        native = f"loss = {api}({args})(y, x{self.native_sample_weight(spec)})"
        if spec.input == "probs":
            return Recipe("native", native), Recipe("matched", self.xlogy_softmax(spec))
        if spec.input == "log_probs":
            return Recipe("native", native), Recipe("matched", self.nll(spec))

        # Keras masks ignore_class itself (loss and sample weight 0); only the weights' gather needs
        # labels in [0, C), and 'mean_with_sample_weight' divides by the summed weight of the kept.
        lines = [self.clamp] if self.sparse_one_hot else []
        sw = None
        if spec.weighted:
            sw = f"{self.gather}(w, y)" if ii is None else f"{self.gather}(w, {self.where}(y != {ii}, y, 0))"
        weights = f", sample_weight={sw}" if sw else ""
        if self._per_element(spec):  # per-element losses (ignored ones 0, class weights in), the canonical reduction
            args = keras_args(from_logits=True, ignore_class=ii, reduction="'none'", dtype=self.keras_dtype)
            lines += [f"l = {api}({args})(y, x{weights})", self.keep(spec), self.reduce(spec)]
            return Recipe("native", native), Recipe("matched", self.join(*lines))
        reduction = keras_reduction(spec)
        if spec.reduction == "mean" and spec.weighted:
            reduction = "'mean_with_sample_weight'"
        args = keras_args(from_logits=True, ignore_class=ii, reduction=reduction, dtype=self.keras_dtype)
        lines.append(f"loss = {api}({args})(y, x{weights})")
        if ii is not None and spec.reduction == "mean":
            lines += [f"keep = y != {ii}", self.nan_if_all_ignored()]
        return Recipe("native", native), Recipe("matched", self.join(*lines))

    def nll(self, spec: LossSpec) -> str:
        """NLLLoss on any scores: -x[y] picked (from_logits=True would take log_softmax of them again)."""
        picked = "-ops.take_along_axis(x, y[..., None], axis=-1)[..., 0]  # NLLLoss: -x[y], whatever the scores"
        return self.join(
            self.keep(spec),
            f"l = {picked}",
            f"l = {self.gather}(w, y) * l" if spec.weighted else None,
            f"l = {self.where}(keep, l, 0)" if spec.ignore_index is not None else None,
            self.reduce(spec),
        )

    def binary(self, spec: LossSpec) -> tuple[Recipe, Recipe]:
        api = BCE
        logits = spec.input == "logits"
        e = spec.label_smoothing
        if spec.weighted:
            native = Recipe("native", None, f"{api} has no pos_weight argument (sample_weight scales both terms)")
        else:
            args = keras_args(from_logits=logits, label_smoothing=py(e) if e else None, reduction=keras_reduction(spec))
            native = Recipe("native", f"loss = {api}({args})(y, x{self.native_sample_weight(spec)})")
        if not logits:
            return native, Recipe("matched", self.xlogy_sigmoid(spec))

        if not self.bce_mean:
            return native, Recipe("matched", self._binary_ops(spec))
        # BinaryCrossentropy averages over the last axis: a trailing axis of 1 keeps every element; with sample
        # weights the per-element losses are reduced by hand (the canonical reduction, sample weights first)
        per_element = self._per_element(spec)
        reduction = "'none'" if per_element else keras_reduction(spec)
        out = "l" if per_element else "loss"
        if not spec.weighted:
            args = keras_args(
                from_logits=True, label_smoothing=py(e) if e else None, reduction=reduction, dtype=self.keras_dtype
            )
            line = f"{out} = {api}({args})(y[..., None], x[..., None])"
            return native, Recipe("matched", self.join(line, self.reduce(spec) if per_element else None))
        args = keras_args(from_logits=True, reduction=reduction, dtype=self.keras_dtype)
        matched = self.join(
            smooth_sigmoid(spec),
            "k = w * y + 1 - y  # pos_weight w: k * bce(w * y / k) = w * y * softplus(-x) + (1 - y) * softplus(x)",
            f"{out} = {api}({args})((w * y / k)[..., None], x[..., None], sample_weight=k)",
            self.reduce(spec) if per_element else None,
        )
        return native, Recipe("matched", matched)

    def _binary_ops(self, spec: LossSpec) -> str:
        """Logits where BinaryCrossentropy's mean over the last axis (ops.mean) would round each float64 loss to
        float32: keras.ops.binary_crossentropy, Keras' element-wise loss without that mean, reduced here."""
        call = "ops.binary_crossentropy({}, x, from_logits=True)"
        if spec.weighted:
            k = "k = w * y + 1 - y  # pos_weight w: k * bce(w * y / k) = w * y * softplus(-x) + (1 - y) * softplus(x)"
            lines = [k, "l = k * " + call.format("w * y / k")]
        else:
            lines = ["l = " + call.format("y")]
        note = "# not BinaryCrossentropy: its mean over the last axis is float32 for float64 x (keras-team/keras#23223)"
        return self.join(note, smooth_sigmoid(spec), *lines, self.reduce(spec))

    @property
    def apis(self) -> tuple[Api, ...]:
        """The three Keras losses, each for the specs it is meant for."""
        return (
            Api(CCE, softmax_input("logits", "probs"), self.categorical),
            Api(SCCE, softmax_input("logits", "probs", *(("log_probs",) * self.nll_port)), self.sparse_categorical),
            Api(BCE, sigmoid_input("logits", "probs"), self.binary),
        )


def softmax_input(*inputs: str) -> Callable[[LossSpec], bool]:
    return lambda s: s.family == "softmax" and s.input in inputs


def sigmoid_input(*inputs: str) -> Callable[[LossSpec], bool]:
    return lambda s: s.family == "sigmoid" and s.input in inputs


TF = KerasRecipes(
    backend="tensorflow", sum="tf.reduce_sum", mean="tf.reduce_mean({})", any="tf.reduce_any", gather="tf.gather",
    where="tf.where", cast="tf.cast", one_hot="tf.one_hot", divide_no_nan="tf.math.divide_no_nan",
    clamp="x = tf.maximum(x, x.dtype.min)  # a -inf logit gives 0 * inf = NaN even where its label is 0",
    keep_note="labels outside [0, C) raise on CPU", keras_dtype="keras.backend.result_type(x.dtype, 'float32')",
    normalise_targets=True, keras_mean=True, where_mask=False, bce_mean=True, sparse_one_hot=False, nll_port=False,
    xlogy="tf.math.xlogy", xlog1py="tf.math.xlog1py", bce_loss=BCE_LOSS_TF,
)  # fmt: skip

# keras.ops: nan_to_num with nan kept turns -inf into the dtype's lowest value (ops.maximum is float32 on PyTorch);
# the mean is a sum over a count (ops.mean computes float64 in float32 on JAX and PyTorch, keras-team/keras#23223)
_OPS = dict(
    sum="ops.sum", mean="ops.sum({0}) / ops.size({0})", any="ops.any", gather="ops.take", where="ops.where",
    cast="ops.cast", one_hot="ops.one_hot", divide_no_nan="ops.divide_no_nan",
    clamp="x = ops.nan_to_num(x, nan=float('nan'))  # a -inf logit gives 0 * inf = NaN even where its label is 0",
    keras_dtype="'float64' if ops.dtype(x) == 'float64' else 'float32'",  # result_type(float64, 'float32') is float32
    normalise_targets=False, where_mask=True, bce_mean=False, nll_port=True, xlogy=None, xlog1py=None,
    bce_loss=BCE_LOSS_OPS,
)  # fmt: skip
OPS_JAX = KerasRecipes(
    backend="jax", keep_note="ops.take reads NaN outside [-C, C)", keras_mean=True, sparse_one_hot=True, **_OPS
)
OPS_TORCH = KerasRecipes(
    backend="torch", keep_note="labels outside [0, C) raise on CPU", keras_mean=False, sparse_one_hot=False, **_OPS
)
