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
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from adapters import keras_recipes
from adapters.base import (
    Adapter,
    Api,
    LinearGrad,
    MemoryCounters,
    Recipe,
    Unavailable,
    cache_home,
    make_function,
    py,
    unsupported,
)
from adapters.keras_recipes import TF, sigmoid_input, smooth_sigmoid, softmax_input
from cases.spec import Inputs, LossSpec, aligned

DISTRIBUTIONS = ("tensorflow-cpu", "tensorflow", "tensorflow-macos", "tf-nightly")
CLAMP = TF.clamp
# The pieces the tf.nn recipes share with the Keras ones (adapters/keras_recipes.py, in tf.* spelling)
_join, _reduce, _keep, _soft_labels = TF.join, TF.reduce, TF.keep, TF.soft_labels
_smooth_sigmoid = smooth_sigmoid


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


def _native_reduce(spec: LossSpec, expr: str) -> str:
    """The tf.nn port: the framework's own mean (tf.reduce_mean of the per-example losses, times s if any)."""
    expr = f"s * {expr}" if spec.sample_weighted else expr
    return {"none": f"loss = {expr}", "sum": f"loss = tf.reduce_sum({expr})", "mean": f"loss = tf.reduce_mean({expr})"}[
        spec.reduction
    ]


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


def _keras_linear(spec: LossSpec) -> tuple[Recipe, Recipe]:
    """A linear head (LossSpec.linear), Keras' naive composition: all N x C logits (tf.matmul), then
    SparseCategoricalCrossentropy's own recipes of them."""
    head = "x = tf.matmul(x, W, transpose_b=True)" + (" + b" if spec.bias else "") + "  # the logits, all N x C"
    inner = dataclasses.replace(spec, linear=False, bias=False)
    native, matched = TF.sparse_categorical(inner)
    if spec.label_smoothing:  # smoothing needs every class: CategoricalCrossentropy of one-hot labels matches
        matched = TF.categorical(inner)[1]
    return tuple(r if r.code is None else Recipe(r.name, f"{head}\n{r.code}") for r in (native, matched))


APIS = (
    Api("tf.nn.softmax_cross_entropy_with_logits", softmax_input("logits"), _softmax_xent),
    # NLLLoss ported to tf.nn: the obvious port applies log_softmax to the scores again
    Api("tf.nn.sparse_softmax_cross_entropy_with_logits", softmax_input("logits", "log_probs"), _sparse_xent),
    Api("tf.nn.sigmoid_cross_entropy_with_logits", sigmoid_input("logits"), _sigmoid_xent),
    Api("tf.nn.weighted_cross_entropy_with_logits", sigmoid_input("logits"), _weighted_xent),
    *TF.apis,  # keras.losses.CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy
    Api("keras.losses.SparseCategoricalCrossentropy:linear", lambda s: s.family == "softmax", _keras_linear,
        linear=True),
)


class TensorflowAdapter(Adapter):
    name = "tensorflow"
    layout = "classes LAST: pass np.moveaxis(x, 1, -1) (and probability targets likewise)"
    names = "`tf`, `keras`"
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

    def keep_compiled(self) -> None:
        """XLA's persistent cache for tf.function(jit_compile=True) (``--tf_xla_persistent_cache_directory``, read from
        TF_XLA_FLAGS when TensorFlow starts): ~0.1 s a compiled row here otherwise. A directory the user set wins."""
        flags = os.environ.get("TF_XLA_FLAGS", "")
        if "tf_xla_persistent_cache_directory" not in flags:
            where = os.path.join(cache_home(), "tf-xla")
            os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_persistent_cache_directory={where}".strip()

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
        head = self._head(inputs, dtype, device)  # a linear head's W, b: differentiated too
        step = self._step(fn, mode == "compiled")
        with tf.device(_tf_device(device)), self._policy(keras, policy):
            loss, grads = step(x, y, w, s, *head)
            value = tf.cast(loss, tf.float64).numpy()
            grads = [np.zeros(tuple(t.shape)) if g is None else tf.cast(tf.convert_to_tensor(g), tf.float64).numpy()
                     for g, t in zip(grads, (x, *head), strict=True)]  # fmt: skip
        return value, (LinearGrad.of(*grads) if head else grads[0]), loss.dtype.name

    def _head(self, inputs: Inputs, dtype: str, device: str) -> tuple[Any, ...]:
        """A linear head's (W,) or (W, b) on `device` (LossSpec.linear); () for a loss of logits."""
        tf, _ = load_tensorflow()
        arrays = () if inputs.classifier is None else (inputs.classifier, inputs.bias)
        with tf.device(_tf_device(device)):
            return tuple(tf.cast(tf.constant(a, tf.float64), tf.as_dtype(dtype)) for a in arrays if a is not None)

    def _step(self, fn: Callable[..., Any], compiled: bool) -> Callable[..., Any]:
        """(loss, d loss / dx) of `fn` (of the sum of the elements for reduction='none'), eager or XLA-compiled
        (one tf.function per recipe: it traces each new shape and dtype)."""
        key = (fn, compiled)
        if key not in self._steps:
            tf, _ = load_tensorflow()

            def step(x: Any, y: Any, w: Any, s: Any, *head: Any) -> tuple[Any, Any]:
                with tf.GradientTape() as tape:
                    tape.watch([x, *head])
                    loss = fn(x, y, w, s, *head)
                return loss, tape.gradient(loss, [x, *head])

            self._steps[key] = tf.function(step, jit_compile=True) if compiled else step
        return self._steps[key]

    def _policy(self, keras: Any, policy: str) -> contextlib.AbstractContextManager[Any]:
        if policy == "none":
            return contextlib.nullcontext()
        if policy not in self.policies:
            raise Unavailable(f"tensorflow has no policy {policy!r}")
        return keras_recipes.global_policy(keras, policy)

    def timer(
        self, code: str, spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str, pass_: str
    ) -> tuple[Callable[[], Any], Callable[[Any], None]]:
        tf, _ = load_tensorflow()
        fn = make_function(code, self.namespace())  # a fresh function: a compiler cache keyed by it starts empty
        x, y, w, s = self._stage(spec, inputs, dtype, device)
        head = self._head(inputs, dtype, device)  # and W, b for a linear head
        if pass_ == "forward":

            def step() -> Any:
                return fn(x, y, w, s, *head)
        else:

            def step() -> Any:
                with tf.GradientTape() as tape:
                    tape.watch([x, *head])
                    loss = fn(x, y, w, s, *head)
                return tape.gradient(loss, [x, *head])

        if mode == "compiled":
            step = tf.function(step, jit_compile=True)

        def call() -> Any:
            with tf.device(_tf_device(device)):
                return step()

        sync_devices = getattr(getattr(tf.test, "experimental", None), "sync_devices", None)
        if device != "cpu" and sync_devices is not None:
            return call, lambda result: sync_devices()
        return call, lambda result: None  # CPU ops have finished when they return

    def memory_counters(self, device: str) -> MemoryCounters | None:
        """TensorFlow's allocator count on the device (its pool keeps freed memory: the resident set would not see
        a call reuse it)."""
        tf, _ = load_tensorflow()
        name = "CPU:0" if device == "cpu" else f"GPU:{device.partition(':')[2] or 0}"
        info, reset = tf.config.experimental.get_memory_info, tf.config.experimental.reset_memory_stats
        return MemoryCounters("tf.config.experimental.get_memory_info", lambda: reset(name),
                              lambda: info(name)["peak"], lambda: info(name)["current"])  # fmt: skip

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
