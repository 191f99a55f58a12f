"""JAX/optax: optax.losses softmax_cross_entropy(_with_integer_labels), safe_softmax_cross_entropy and
sigmoid_binary_cross_entropy, evaluated as ``jax.jit(jax.value_and_grad(...))``.

Layout convention (`Adapter.classes_last`): every `matched` snippet sees ``x`` (and probability targets
``y``) in optax's layout, classes LAST: (N, d1..dk, C); the base adapter moves axis 1 to the end before
the call and the gradient (and a sigmoid ``none`` loss) back, so no snippet passes ``axis=``. `native`
snippets see the arrays as a PyTorch user has them, classes on axis 1: for a K-dim input the obvious port
then takes the softmax over the last axis (or its shapes do not fit). Index targets ``y`` are int32
(N, d1..dk); ``w`` is (C,) and broadcasts along the last axis.

optax returns per-example losses and has no class weights, ignore_index or reduction of its own
(https://optax.readthedocs.io/en/latest/api/losses.html). So:

- `native` is the obvious port: ``.mean()`` / ``.sum()`` of the per-example losses, class weights as
  ``loss * w[y]`` (index targets) or ``labels * w`` (distributions), labels equal to ignore_index passed
  straight in, label smoothing through ``optax.smooth_labels`` on one-hot or probability labels.
- `matched` composes the canonical semantics (docs/DESIGN.md) in ``jax.numpy`` around the optax call:
  weighted mean over sum(w[y]) of non-ignored elements; ignored elements get a valid label in and their
  loss zeroed out (a double ``jnp.where``), so neither value nor gradient depends on what an
  out-of-range gather returns.

What optax really does where it differs (pinned in tests/adapters/test_jax_adapter.py):

- an integer label outside [0, C) is not an error: ``take_along_axis`` wraps negative labels once
  (-1 reads class C-1) and fills a label still out of range with NaN (optax#1185), while
  ``jax.nn.one_hot`` turns it into a zero row (a silent loss of 0);
- a -inf logit with target 0 gives 0 * -inf = NaN in softmax_cross_entropy, not in
  safe_softmax_cross_entropy (optax#896, optax 0.2.3+);
- ``optax.smooth_labels`` spreads ``e`` over the size of the last axis, so on element-wise binary targets
  it smooths towards 1/C, not towards 1/2.

float64 cases need ``jax_enable_x64``; the adapter turns it on in its own worker process (and in the
test process) the first time it imports jax. Every array is created with an explicit dtype so float32,
float16 and bfloat16 cases still compute in their dtype; `evaluate` raises if a result was promoted.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import numpy as np

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
)
from adapters.jax_executables import ExecutableCache
from cases.spec import Inputs, LossSpec

INTEGER = "optax.losses.softmax_cross_entropy_with_integer_labels"
SOFTMAX = "optax.losses.softmax_cross_entropy"
SAFE = "optax.losses.safe_softmax_cross_entropy"
SIGMOID = "optax.losses.sigmoid_binary_cross_entropy"
SAFE_SINCE = (0, 2, 3)  # first optax release with safe_softmax_cross_entropy (PR #898 split it out)

ONE_HOT = "jax.nn.one_hot(y, x.shape[-1], dtype=x.dtype)"  # dtype=: one_hot defaults to float64 under x64
# softmax_cross_entropy computes labels * log_softmax, which is 0 * -inf = NaN at a masked logit; `where`
# (optax 0.2.4+) leaves those classes out, which is the 0 log 0 = 0 convention (optax#896).
KEEP = "where=(labels != 0) | (x > -jnp.inf)"


BCE_LOSS = """\
@jax.custom_vjp
def bce(x, y):  # torch.nn.BCELoss: logs clamped at -100, backward (p - t) / max(p (1 - p), 1e-12)
    return -(y * jnp.maximum(jnp.log(x), -100.0) + (1 - y) * jnp.maximum(jnp.log1p(-x), -100.0))
def bce_bwd(res, dv):
    x, y = res
    return dv * (x - y) / jnp.maximum(x * (1 - x), jnp.asarray(1e-12, x.dtype)), jnp.zeros_like(y)
bce.defvjp(lambda x, y: (bce(x, y), (x, y)), bce_bwd)
loss = bce(x, y)"""


def _reduce_mean_over_elements(spec: LossSpec) -> list[str]:
    return {"mean": ["loss = loss.mean()"], "sum": ["loss = loss.sum()"], "none": []}[spec.reduction]


def _suffix(spec: LossSpec) -> str:
    return {"mean": ".mean()", "sum": ".sum()", "none": ""}[spec.reduction]


def _native(spec: LossSpec, expr: str, product: bool = False) -> str:
    """The obvious port's line: the per-example losses `expr` (a `product` is parenthesised), times the
    sample weights if any, reduced by the array's own mean or sum."""
    if spec.sample_weighted:
        return f"loss = ({expr} * s){_suffix(spec)}"
    return f"loss = ({expr}){_suffix(spec)}" if product else f"loss = {expr}{_suffix(spec)}"


def _weigh(spec: LossSpec) -> list[str]:
    """Sample weights multiply each element's loss; the mean's denominator stays the unweighted one."""
    return ["loss = loss * s  # sample weights: a plain multiplier of each element's loss"] * spec.sample_weighted


def _index_prologue(spec: LossSpec) -> list[str]:
    """Mask ignored elements: a valid label in (the double-where trick); `_index_epilogue` zeroes their loss."""
    if spec.ignore_index is None:
        return []
    return [
        f"valid = y != {spec.ignore_index}",
        "y = jnp.where(valid, y, 0)  # a valid label in (an out-of-range one reads NaN); zeroed below",
    ]


def _index_epilogue(spec: LossSpec) -> list[str]:
    """Zero ignored elements and reduce with PyTorch's rule: mean divides by sum(w[y]) over non-ignored."""
    lines = ["loss = jnp.where(valid, loss, 0)"] if spec.ignore_index is not None else []
    if spec.reduction != "mean":
        return lines + _reduce_mean_over_elements(spec)
    if spec.weighted:
        wy = "w[y]" if spec.ignore_index is None else "jnp.where(valid, w[y], 0)"
        return [*lines, f"loss = loss.sum() / {wy}.sum()"]
    if spec.ignore_index is not None:
        return [*lines, "loss = loss.sum() / valid.sum()"]
    return [*lines, "loss = loss.mean()"]


def _log(spec: LossSpec, safe_where: str) -> str:
    """log p of a (log-)probability input; `safe_where` is the condition under which the value is used."""
    if spec.input == "log_probs":
        return f"jnp.where({safe_where}, x, 0)"
    return f"jnp.log(jnp.where({safe_where}, x, 1))"  # 0 * log 0 = 0 with a zero (not NaN) gradient


# -- optax.losses.softmax_cross_entropy_with_integer_labels ----------------------------------------------
def _integer_labels(spec: LossSpec) -> tuple[Recipe, Recipe]:
    call = f"{INTEGER}(x, y)"
    if spec.label_smoothing:
        why = f"{INTEGER} has no label smoothing; optax.smooth_labels needs one-hot labels (see {SOFTMAX})"
        native = Recipe("native", None, why)
    elif spec.weighted:
        native = Recipe("native", _native(spec, f"{call} * w[y]", product=True))
    else:
        native = Recipe("native", _native(spec, call))

    lines = _index_prologue(spec)
    if spec.input == "logits":
        ce = call
    else:  # the optax call would apply log_softmax again: pick log p[y] directly (an NLL)
        picked = "jnp.take_along_axis(x, y[..., None], axis=-1)[..., 0]"
        ce = f"-{picked}" if spec.input == "log_probs" else f"-jnp.log({picked})"
    wy = "w[y] * " if spec.weighted else ""
    if spec.label_smoothing:  # -(1-e) w[y] log p[y] - (e/C) sum_c w[c] log p[c]
        e = py(spec.label_smoothing)
        logp = {"logits": "jax.nn.log_softmax(x)", "log_probs": "x", "probs": "jnp.log(x)"}[spec.input]
        wlogp = f"(w * {logp})" if spec.weighted else logp
        lines += [f"ce = {ce}", f"loss = (1 - {e}) * {wy}ce - {e} / x.shape[-1] * {wlogp}.sum(-1)"]
    else:
        lines.append(f"loss = {wy}{ce}")
    lines += _weigh(spec) + _index_epilogue(spec)
    canonical = spec.input == "logits" and spec.ignore_index is None and not spec.label_smoothing
    if canonical and (not spec.weighted or spec.reduction != "mean"):
        return native, Recipe("matched", native.code)  # the obvious port is already canonical
    return native, Recipe("matched", "\n".join(lines))


# -- optax.losses.softmax_cross_entropy and safe_softmax_cross_entropy --------------------------------------
def _labels_native(spec: LossSpec) -> str:
    labels = ONE_HOT if spec.target == "index" else "y"
    if spec.label_smoothing:
        labels = f"optax.smooth_labels({labels}, {py(spec.label_smoothing)})"
    return labels


def _distribution(api: str, spec: LossSpec) -> tuple[Recipe, Recipe]:
    labels = _labels_native(spec)
    if spec.weighted:
        labels = f"{labels} * w"
    native = Recipe("native", _native(spec, f"{api}(x, {labels})"))

    lines = _index_prologue(spec) if spec.target == "index" else []
    lines.append(f"labels = {_labels_native(spec)}" + (" * w" if spec.weighted else ""))
    if spec.input != "logits":  # the optax call would apply log_softmax again: -sum labels * log p
        lines.append(f"loss = -(labels * {_log(spec, 'labels != 0')}).sum(-1)")
    elif api == SOFTMAX:
        lines.append(f"loss = {api}(x, labels, {KEEP})")
    else:
        lines.append(f"loss = {api}(x, labels)")
    lines += _weigh(spec)
    if spec.target == "index":
        lines += _index_epilogue(spec)
    else:
        lines += _reduce_mean_over_elements(spec)  # distributions: the mean is over elements
    if api == SAFE and spec.input == "logits" and spec.target == "prob":
        return native, Recipe("matched", native.code)  # the obvious port is already canonical
    return native, Recipe("matched", "\n".join(lines))


# -- optax.losses.sigmoid_binary_cross_entropy ----------------------------------------------------------------
def _sigmoid(spec: LossSpec) -> tuple[Recipe, Recipe]:
    if spec.weighted:
        native = Recipe("native", None, f"{SIGMOID} has no pos_weight argument")
    else:
        labels = f"optax.smooth_labels(y, {py(spec.label_smoothing)})" if spec.label_smoothing else "y"
        native = Recipe("native", _native(spec, f"{SIGMOID}(x, {labels})"))

    lines = []
    if spec.label_smoothing:
        e = py(spec.label_smoothing)
        lines.append(f"y = (1 - {e}) * y + {e} / 2  # towards 1/2: optax.smooth_labels would use {e} / C")
    if spec.input == "probs" and not spec.weighted:  # no optax API takes probabilities: PyTorch's BCELoss
        lines.append(BCE_LOSS)
    elif spec.input == "probs":  # pos_weight: no PyTorch API to follow; log(x) and log(1 - x), unclipped
        lines += [
            "pos, neg = w * y, 1 - y",
            "loss = -(pos * jnp.log(jnp.where(pos != 0, x, 1)) + neg * jnp.log1p(-jnp.where(neg != 0, x, 0)))",
        ]
    elif spec.weighted:  # optax's own formula with pos_weight on the positive term
        lines.append("loss = -(w * y * jax.nn.log_sigmoid(x) + (1 - y) * jax.nn.log_sigmoid(-x))")
    else:
        lines.append(f"loss = {SIGMOID}(x, y)")
    lines += _weigh(spec) + _reduce_mean_over_elements(spec)
    if spec.input == "logits" and not spec.weighted and not spec.label_smoothing:
        return native, Recipe("matched", native.code)  # the obvious port is already canonical
    return native, Recipe("matched", "\n".join(lines))


# -- a linear head (LossSpec.linear): x holds hidden states E (N, D), W the classifier (C, D), b its bias -------------
# optax has no chunked loss: `native` is the obvious port (the N x C logits, then the optax call); `matched` is what
# a JAX user writes to never hold them: lax.map over chunks of rows, each chunk's loss under jax.checkpoint so the
# backward pass recomputes its logits instead of keeping them (scan's transpose sums dW over the chunks).
LINEAR = f"{INTEGER}:linear"
CHUNK = "rows = max(8, x.shape[0] * x.shape[1] // W.shape[0])  # a chunk's logits as large as x, 8 rows at least"


def _linear(spec: LossSpec) -> tuple[Recipe, Recipe]:
    head = "x @ W.T + b" if spec.bias else "x @ W.T"
    native = _integer_labels(dataclasses.replace(spec, linear=False, bias=False))[0]
    if native.code is not None:
        native = Recipe("native", f"x = {head}  # the logits, all N x C of them\n{native.code}")
    logits = head.replace("x @", "e @")
    lines = [*_index_prologue(spec), CHUNK,
             "@jax.checkpoint  # the backward pass recomputes a chunk's logits: they are never all alive",
             "def row_loss(e, t):  # one row's loss; lax.map runs it on `rows` rows at a time (vmapped)"]  # fmt: skip
    if spec.label_smoothing:  # -(1-e) w[y] log p[y] - (e/C) sum_c w[c] log p[c]
        e, wt = py(spec.label_smoothing), "w[t] * " if spec.weighted else ""
        wlogp = "(w * logp)" if spec.weighted else "logp"
        lines += [f"    logp = jax.nn.log_softmax({logits})",
                  f"    return -(1 - {e}) * {wt}logp[t] - {e} / logp.shape[-1] * {wlogp}.sum()"]  # fmt: skip
    else:
        lines.append(f"    return {INTEGER}({logits}, t)")
    lines.append("loss = jax.lax.map(lambda a: row_loss(*a), (x, y), batch_size=rows)")
    if spec.weighted and not spec.label_smoothing:
        lines.append("loss = w[y] * loss")
    return native, Recipe("matched", "\n".join(lines + _index_epilogue(spec)))


APIS = (
    Api(INTEGER, lambda s: s.family == "softmax" and s.target == "index", _integer_labels),
    # Distributions; index targets only where optax needs one-hot labels anyway: label smoothing.
    Api(
        SOFTMAX,
        lambda s: s.family == "softmax" and (s.target == "prob" or s.label_smoothing > 0),
        lambda s: _distribution(SOFTMAX, s),
    ),
    Api(SAFE, lambda s: s.family == "softmax" and s.target == "prob", lambda s: _distribution(SAFE, s)),
    Api(SIGMOID, lambda s: s.family == "sigmoid" and s.input in ("logits", "probs"), _sigmoid),
    Api(LINEAR, lambda s: s.family == "softmax", _linear, linear=True),
)


class JaxAdapter(Adapter):
    """JAX with optax's losses.

    The version the rows record is JAX's (the framework whose kernels compute them); env.json records
    jaxlib's and optax's beside it. optax's release decides which APIs exist (safe_softmax_cross_entropy
    0.2.3+, the ``where`` argument 0.2.4+) and their documented semantics.
    """

    name = "jax"
    layout = "classes LAST: pass np.moveaxis(x, 1, -1) (and probability targets likewise); int32 index targets"
    float64_note = (
        'In float64, run `jax.config.update("jax_enable_x64", True)` first (at start-up, before any array is '
        "made): without it JAX silently computes in float32."
    )
    names = "`jax`, `jnp`, `optax`"
    modules = ("jax", "jaxlib", "optax")
    distributions = ("jax",)
    also = ("jaxlib", "optax")
    compile_bound = True  # every (recipe, shape, dtype) is an XLA compile of ~0.3 s here
    install_hint = "pip install -e '.[jax]' -c constraints.txt"
    apis = APIS
    classes_last = True
    modes = ("compiled", "eager")  # jax.jit is how JAX runs a loss; eager is op by op

    def __init__(self) -> None:
        super().__init__()
        self._jitted: dict[Callable[..., Any], Callable[..., Any]] = {}  # function -> jitted value_and_grad
        self._executables: ExecutableCache | None = None  # the accuracy pass' compiled programs, kept between runs

    def apis_for(self, spec: LossSpec) -> tuple[Api, ...]:
        apis = super().apis_for(spec)
        version = self.versions().get("optax")
        if version is not None and _release(version) < SAFE_SINCE:
            apis = tuple(a for a in apis if a.name != SAFE)
        return apis

    def setup(self) -> dict[str, Any]:
        """jax, jax.numpy and optax, configured: no whole-GPU preallocation, float64 enabled."""
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # read at the first jax import
        import jax
        import jax.numpy as jnp
        import optax

        jax.config.update("jax_enable_x64", True)  # float64 cases; this worker's process only
        return {"jax": jax, "jnp": jnp, "optax": optax}

    def accumulated_mean(self, spec: LossSpec) -> str:
        keep = "jnp.ones(y.shape, bool)" if spec.ignore_index is None else f"y != {spec.ignore_index}"
        weight = "w[jnp.where(keep, y, 0)]" if spec.weighted else "1"
        return f"keep = {keep}\nloss = total / jnp.where(keep, {weight}, 0).sum().astype(total.dtype)"

    def _import(self) -> tuple[Any, Any, Any]:
        ns = self.namespace()
        return ns["jax"], ns["jnp"], ns["optax"]

    # -- framework hooks -------------------------------------------------------------------------
    def isa(self, device: str) -> str | None:
        jax, _, _ = self._import()
        if device != "cpu":
            return jax.devices("gpu")[0].device_kind
        flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "isa" in f or "cpu" in f]
        return "XLA CPU: the host's features (LLVM)" + (f", {' '.join(flags)}" if flags else "")

    def no_gpu(self) -> str | None:
        jax, _, _ = self._import()
        try:
            jax.devices("gpu")
        except RuntimeError as e:
            return str(e).splitlines()[0]
        return None

    def _value_and_grad(self, fn: Callable[..., Any], head: int = 0) -> Callable[..., Any]:
        """jit(value_and_grad) of `fn` (with respect to x and a linear head's `head` arrays W, b), kept so that
        jit's own cache serves later shapes and dtypes."""
        if (fn, head) not in self._jitted:
            jax, _, _ = self._import()
            self._jitted[(fn, head)] = jax.jit(jax.value_and_grad(_summed(fn), _argnums(head), has_aux=True))
        return self._jitted[(fn, head)]

    def _compiled(self, fn: Callable[..., Any], args: tuple[Any, ...], head: int) -> tuple[Any, Any]:
        """`_value_and_grad`'s ((sum, loss), gradient) on `args`, by the executable a run before compiled for the same
        recipe code, shapes and dtypes (adapters/jax_executables.py: no trace, no lowering). A function not made
        from a snippet here (`Adapter.compile`), or a user's loss, is jitted as usual."""
        jitted = self._value_and_grad(fn, head)
        code = self.code_of(fn)
        if code is None or self.user is not None:
            return jitted(*args)
        if self._executables is None:
            jax, _, _ = self._import()
            wrappers = (make_function, _summed, _argnums, JaxAdapter._value_and_grad)
            self._executables = ExecutableCache(jax, self.modules, wrappers)
        return self._executables.call(("value_and_grad", code, head), jitted, args)

    def _head(self, inputs: Inputs, dtype: str, device: str) -> tuple[Any, ...]:
        """A linear head's (W,) or (W, b) on the device (`LossSpec.linear`); () for a loss of logits."""
        if inputs.classifier is None:
            return ()
        arrays = (inputs.classifier, inputs.bias) if inputs.bias is not None else (inputs.classifier,)
        return tuple(self._stage(LossSpec(), Inputs(a, inputs.target), dtype, device)[0] for a in arrays)

    def _stage(self, spec: LossSpec, inputs: Inputs, dtype: str, device: str) -> tuple[Any, Any, Any]:
        """x, y, w on the JAX device."""
        jax, jnp, _ = self._import()
        dt = jnp.dtype(getattr(jnp, dtype))
        platform, _, index = device.partition(":")  # what device() returned: cpu, cuda:0
        found = [d for d in jax.devices("cpu" if platform == "cpu" else "gpu") if d.id == int(index or 0)]
        if not found:
            raise Unavailable(f"no JAX device {device!r} here")
        dev = found[0]

        def put(a: np.ndarray, adt: Any) -> Any:
            # exact: inputs are representable in dtype; copy=False: no host copy when it already is dtype
            return jax.device_put(np.asarray(a).astype(adt, copy=False), dev)

        x = put(inputs.x, dt)
        y = put(inputs.target, np.int32) if spec.target == "index" else put(inputs.target, dt)
        w = None if inputs.weight is None else put(inputs.weight, dt)
        s = None if inputs.sample_weight is None else put(inputs.sample_weight, dt)
        return x, y, w, s

    def _enable_compilation_cache(self) -> None:
        """Keep XLA executables on disk for the accuracy pass: ~320 compiles of ~0.3 s each dominate it,
        and a cached executable is the same program (same numbers). Timing workers never call this, so
        their compile times are real compiles. JAX_COMPILATION_CACHE_DIR, if set, wins."""
        jax, _, _ = self._import()
        if jax.config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
            return
        jax.config.update("jax_compilation_cache_dir", os.path.join(cache_home(), "xla"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # ours take ~0.3 s, under the default 1 s

    def evaluate(
        self, fn: Callable[..., Any], spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str = "compiled",
        policy: str = "none",
    ) -> tuple[np.ndarray, np.ndarray, str]:  # fmt: skip
        """jax.jit of value_and_grad (``compiled``, how JAX runs), or op by op under jax.disable_jit (``eager``)."""
        if policy != "none":
            raise Unavailable(f"jax has no policy {policy!r}")
        self._enable_compilation_cache()
        jax, jnp, _ = self._import()
        dt = jnp.dtype(getattr(jnp, dtype))
        x, y, w, s = self._stage(spec, inputs, dtype, device)
        head = self._head(inputs, dtype, device)
        if mode == "compiled":
            (_, loss), grad = self._compiled(fn, (x, y, w, s, *head), len(head))
        else:
            with jax.disable_jit():
                (_, loss), grad = jax.value_and_grad(_summed(fn), _argnums(len(head)), has_aux=True)(x, y, w, s, *head)
        grads = grad if head else (grad,)
        if loss.dtype != dt or any(g.dtype != dt for g in grads):
            got = "/".join(str(a.dtype) for a in (loss, *grads))
            raise RuntimeError(f"computed in {got}, not {dtype}: a promotion in the recipe")
        value = np.asarray(loss).astype(np.float64, copy=False)
        grad, *params = (np.asarray(g).astype(np.float64, copy=False) for g in grads)
        return value, (LinearGrad.of(grad, *params) if head else grad), str(loss.dtype)

    def timer(
        self, code: str, spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str, pass_: str
    ) -> tuple[Callable[[], Any], Callable[[Any], None]]:
        """Eager is op-by-op dispatch (no jit); compiled is jax.jit, freshly wrapped so that its first
        call compiles (and is reported as compile time)."""
        jax, jnp, optax = self._import()
        fn = make_function(code, {"jax": jax, "jnp": jnp, "optax": optax})  # not the cached one: jit anew
        x, y, w, s = self._stage(spec, inputs, dtype, device)
        head = self._head(inputs, dtype, device)  # a linear head's W, b: differentiated too
        if pass_ == "forward":
            step = fn
        else:

            def total(x: Any, y: Any, w: Any, s: Any, *head: Any) -> Any:
                loss = fn(x, y, w, s, *head)
                return loss.sum() if loss.ndim else loss

            step = jax.grad(total, _argnums(len(head)))
        if mode == "compiled":
            step = jax.jit(step)
        self._compiled_step = (step, (x, y, w, s, *head)) if mode == "compiled" else None
        return (lambda: step(x, y, w, s, *head)), jax.block_until_ready

    def memory_counters(self, device: str) -> MemoryCounters | None:
        """For a jitted call (`timer`'s last): the bytes XLA's compiled program allocates beside its arguments,
        temporaries and outputs (``memory_analysis``; XLA keeps its buffers between calls, so the resident set
        would not show them). None for an eager one (the resident set, which may not show them either)."""
        if getattr(self, "_compiled_step", None) is None:
            return None
        step, args = self._compiled_step

        def peak() -> int:
            stats = step.lower(*args).compile().memory_analysis()
            return int(stats.temp_size_in_bytes + stats.output_size_in_bytes)

        return MemoryCounters("XLA memory_analysis (temp + output)", lambda: None, peak, lambda: 0)


def _summed(fn: Callable[..., Any]) -> Callable[..., tuple[Any, Any]]:
    """`fn` as (the value to differentiate, the loss): for `none`, the gradient of the sum."""

    def total(x: Any, y: Any, w: Any, s: Any, *head: Any) -> tuple[Any, Any]:
        loss = fn(x, y, w, s, *head)
        return (loss.sum() if loss.ndim else loss), loss

    return total


def _argnums(head: int) -> int | tuple[int, ...]:
    """What to differentiate: x, and a linear head's `head` arrays (W, b) after (x, y, w, s)."""
    return (0, *range(4, 4 + head)) if head else 0


def _release(version: str) -> tuple[int, ...]:
    """(0, 2, 3) from '0.2.3' or '0.2.3.dev0'."""
    parts = []
    for p in version.split(".")[:3]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


ADAPTER = JaxAdapter()
