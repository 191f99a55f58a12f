"""PaddlePaddle: paddle.nn.functional cross_entropy, nll_loss, binary_cross_entropy(_with_logits).

Layout (`Adapter.classes_last`): ``cross_entropy`` takes classes on the LAST axis (``axis=-1`` by default), so
every `matched` snippet sees ``x`` (and probability targets ``y``) as (N, d1..dk, C) and the base adapter moves
the gradient back; ``nll_loss`` takes them on axis 1 as PyTorch does, so log-probability inputs (whose matched
recipes are all ``nll_loss``) keep PyTorch's layout (`PaddleAdapter.arrange`). `native` snippets see the arrays
as a PyTorch user has them: for a K-dim input, ``cross_entropy``'s softmax then runs over the last axis (index
targets raise: their shape does not fit). Index targets ``y`` are int64; ``w`` is (C,) class weights or
pos_weight, ``s`` per-element sample weights (or None).

What differs from the canonical (PyTorch) semantics, checked on Paddle 3.3.1 and pinned in
tests/adapters/test_paddle_adapter.py (https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/functional/cross_entropy_en.html):

- ``reduction='mean'`` with ``ignore_index`` < 0 (the default -100) and no weight divides by N, ignored
  elements included (``weight_norm=N``; https://github.com/PaddlePaddle/Paddle/issues/48663: the mean's
  count branch runs only ``if ignore_index >= 0``), and a mean over no kept label is 0, not NaN
  (``empty_mean=0``: the code divides by ``count + (count == 0)``; nll_loss' kernel returns 0 as well).
- soft labels (``soft_label=True``, and every ``label_smoothing`` > 0, which turns index targets into smoothed
  one-hot rows) take class weights per sample: each element's loss times ``t' @ w``, the mean divided by the
  sum of those (``sample_weight=t@w``; with smoothing https://github.com/PaddlePaddle/Paddle/issues/47813);
  their gradient is ``softmax(x) - label``, right only for labels summing to 1
  (``grad_assumes_normalised_targets``: the docs ask for labels that sum to 1); ``reduction='none'`` returns
  (N, d1..dk, 1) (``none_shape=keepdim``).
- ``label_smoothing`` builds its one-hot targets with ``F.one_hot`` (float32) and smooths them in float32, so a
  float64 loss carries float32 targets (``computed_in=float32``), and ``one_hot`` raises on ignored labels
  (-100, or any label outside [0, C)) instead of ignoring them.
- every softmax kernel on the CPU (cross_entropy's, and F.softmax, F.log_softmax, paddle.logsumexp's gradient)
  clips ``x - max(x)`` at -64 (``ValueClip`` in paddle/phi/kernels/funcs/softmax_impl.h;
  https://github.com/PaddlePaddle/Paddle/pull/21165): a class more than 64 below the maximum gets log p ~ -64,
  so its loss is capped near 64, and a -inf (masked) logit a probability ~1e-28 and a gradient to match
  (``logits_clip=-64``).
- no float16 or bfloat16 kernel exists on the CPU for any of these losses: those rows raise.
- under ``paddle.jit.to_static`` (the compiled mode), ``tensor * 0.9`` is a scale op whose float attribute holds
  float32(0.9), in a float64 graph too: the matched snippets write such constants as ``paddle.full([], 0.9, dtype)``.
- ``nll_loss``'s CPU kernel sums 'mean' and 'sum' element by element in x's dtype: in float32 over ~1e4 elements
  (ONNX's NCd1d2d3d4d5 case) the loss drifts ~2e-5 relative, beyond a pairwise sum's rounding (unexplained rows).
- ``nll_loss`` on the CPU with ``reduction`` 'mean' or 'sum' writes ``out_data[i] = 0`` for each ignored label i
  into its one-element output (paddle/phi/kernels/cpu/nll_loss_kernel.cc, 3.3.1): a heap overflow that aborts the
  process later ("corrupted size vs. prev_size"). The snippets' ``F.nll_loss`` refuses that call (`UnsafeCall`, the
  row is `raised` with the reason) instead of corrupting the worker; ``reduction='none'`` is safe and is what the
  matched recipes use.
- importing paddle into a process that has imported tensorflow segfaults (the other order works): `setup` refuses
  (`Unavailable`); the harness runs each framework in its own worker process.

`matched` composes the canonical semantics: for logits, the log-softmax by hand (``x - max`` and
``log(sum(exp))``, which clip nothing) and the label's term or the canonical coefficients' sum, since no
Paddle softmax kernel avoids the clip; for probabilities, ``use_softmax=False`` with the coefficients as soft
labels; for log-probabilities, ``nll_loss``; every one with an explicit mean over the kept labels' weights (NaN
when none is kept, as PyTorch), smoothed targets built in x's dtype with ignored rows zeroed, and ``nll_loss``
called with ``reduction='none'``.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from adapters.base import Adapter, Api, Code, Recipe, Unavailable, kwargs_code, make_function, py, unsupported
from cases.spec import Inputs, LossSpec

CE = "paddle.nn.functional.cross_entropy"
NLL = "paddle.nn.functional.nll_loss"
BCE_LOGITS = "paddle.nn.functional.binary_cross_entropy_with_logits"
BCE = "paddle.nn.functional.binary_cross_entropy"
W, S = Code("w"), Code("s")
LOG_SOFTMAX = (
    "x = x - x.max(-1, keepdim=True).detach()  # log-softmax by hand: Paddle's softmax kernels clip x - max at -64\n"
    "logp = x - paddle.log(paddle.exp(x).sum(-1, keepdim=True))"
)
IMPORT_AFTER_TENSORFLOW = (
    "paddle cannot be imported into a process that has imported tensorflow (Paddle 3.3.1 segfaults on import): run "
    "it in its own process, as the harness's workers do, or import paddle first"
)
CONSTANTS = "constants as tensors of the dtype: to_static rounds Python floats to float32"
SMOOTHED = "in x's dtype, constants as tensors: Paddle's label_smoothing and to_static's Python floats are float32"
NAN_IF_NONE_KEPT = "loss = paddle.where(d > 0, loss, float('nan'))  # PyTorch: NaN when every label is ignored"
NLL_OVERFLOW = (
    "not run: Paddle's CPU nll_loss writes past its one-element output for each label equal to ignore_index under "
    "reduction={!r} (heap corruption; paddle/phi/kernels/cpu/nll_loss_kernel.cc); reduction='none' is safe"
)


class ToStaticError(RuntimeError):
    """What paddle.jit.to_static raised, with the framework's own error as the message (not its trace)."""


class UnsafeCall(RuntimeError):
    """A call that would corrupt the worker's memory, refused (the row is `raised` with the reason)."""


class Functional:
    """paddle.nn.functional as the snippets see it (``F``): the module itself, but for `nll_loss`, which refuses
    the CPU call that overflows the heap (module docstring) and otherwise is Paddle's."""

    def __init__(self, functional: Any) -> None:
        self._functional = functional

    def __getattr__(self, name: str) -> Any:
        return getattr(self._functional, name)

    @staticmethod
    def _on_cpu(t: Any) -> bool:
        """Whether `t` lives on the CPU (under to_static a value has no place: the current device decides)."""
        import paddle

        return t.place.is_cpu_place() if paddle.in_dynamic_mode() else paddle.device.get_device().startswith("cpu")

    def nll_loss(self, input: Any, label: Any, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 name: str | None = None) -> Any:  # fmt: skip
        if reduction != "none" and self._on_cpu(input) and bool((label == ignore_index).any()):
            raise UnsafeCall(NLL_OVERFLOW.format(reduction))
        return self._functional.nll_loss(input, label, weight, ignore_index, reduction, name)


def _constant(v: float, like: str, divided: str = "") -> str:
    """A Python float as a 0-d tensor of `like`'s dtype: under paddle.jit.to_static, ``tensor * 0.9`` becomes a
    scale op whose float attribute rounds 0.9 to float32, even in a float64 graph."""
    return f"paddle.full([], {py(v)}{divided}, {like}.dtype)"


def _suffix(spec: LossSpec) -> str:
    return {"none": "", "sum": ".sum()", "mean": ".mean()"}[spec.reduction]


def _sample_weighted_native(spec: LossSpec, call: str) -> str:
    """The obvious port of a per-element weight: the unreduced losses times ``s``, then Paddle's own mean."""
    return f"loss = {call} * s" if spec.reduction == "none" else f"loss = ({call} * s){_suffix(spec)}"


def _reduce(spec: LossSpec, replaced: bool = False) -> list[str]:
    """The canonical reduction of the per-element losses ``l`` (ignored elements 0, sample weights in): index
    targets' mean divides by the kept labels' summed weight (``keep`` made before; `replaced`: ignored labels
    already replaced by a class), NaN if that is 0."""
    if spec.reduction != "mean":
        return [f"loss = l{_suffix(spec)}"]
    if spec.target != "index" or not (spec.weighted or spec.ignore_index is not None):
        return ["loss = l.mean()"]
    if spec.ignore_index is None:
        return ["loss = l.sum() / w[y].sum()"]
    wy = "w[y]" if replaced else "w[paddle.where(keep, y, 0)]"
    d = f"paddle.where(keep, {wy}, 0.0)" if spec.weighted else "keep.astype(l.dtype)"
    return [f"d = {d}.sum()", "loss = l.sum() / paddle.where(d > 0, d, 1.0)", NAN_IF_NONE_KEPT]


def _keep(spec: LossSpec, replace: bool = False) -> list[str]:
    """``keep`` (labels not ignored) for index targets with ignore_index; with `replace`, ignored labels replaced
    by class 0 (for a gather or one_hot: their loss is zeroed after)."""
    if spec.ignore_index is None or spec.target != "index":
        return []
    replaced = "y = paddle.where(keep, y, 0)  # a class to read for ignored labels: their loss is zeroed"
    return [f"keep = y != {spec.ignore_index}", *[replaced] * replace]


# -- paddle.nn.functional.cross_entropy ------------------------------------------------------------------


def _ce_args(spec: LossSpec, reduction: str | None = None, smoothing: bool = True) -> str:
    """The arguments of the same names, in the signature's order; soft_label for probability targets and
    use_softmax=False for probabilities are how Paddle reads those inputs."""
    return kwargs_code(
        weight=W if spec.weighted else None,
        ignore_index=spec.ignore_index,
        reduction=reduction or spec.reduction,
        soft_label=True if spec.target == "prob" else None,
        use_softmax=False if spec.input == "probs" else None,
        label_smoothing=spec.label_smoothing if (smoothing and spec.label_smoothing) else None,
    )


def _ce_native(spec: LossSpec) -> Recipe:
    if spec.sample_weighted:
        return Recipe("native", _sample_weighted_native(spec, f"F.cross_entropy(x, y, {_ce_args(spec, 'none')})"))
    return Recipe("native", f"loss = F.cross_entropy(x, y, {_ce_args(spec)})")


def _ce_hard(spec: LossSpec, native: Recipe) -> Recipe:
    """Probabilities (use_softmax=False) with index targets: Paddle's own call, with the canonical mean where
    Paddle's differs (ignore_index: N or 0 as its denominator) and for sample weights."""
    if not spec.sample_weighted and (spec.ignore_index is None or spec.reduction != "mean"):
        return Recipe("matched", native.code)
    call = f"F.cross_entropy(x, y, {_ce_args(spec, 'none')})"
    return Recipe("matched", "\n".join([*_keep(spec), f"l = {call}" + (" * s" if spec.sample_weighted else ""),
                                        *_reduce(spec)]))  # fmt: skip


def _coefficients(spec: LossSpec) -> str:
    """``a = ...``: the canonical coefficients of -log p (smoothed in x's dtype, class weights, ignored rows 0);
    index targets have had ignored labels replaced by a class (``_keep(spec, replace=True)``)."""
    e = spec.label_smoothing
    t = "F.one_hot(y, x.shape[-1]).astype(x.dtype)" if spec.target == "index" else "y"
    factors = ["w"] * spec.weighted + ["keep.astype(x.dtype).unsqueeze(-1)"] * (spec.ignore_index is not None)
    if not e:
        return f"a = {' * '.join([t, *factors])}"
    name = "t" if factors else "a"
    lines = [f"{name} = {t}"] if spec.target == "index" else []
    smoothed = f"{name if lines else t} * {_constant(1 - e, 'x')} + {_constant(e, 'x', ' / x.shape[-1]')}"
    lines.append(f"{name} = {smoothed}  # {SMOOTHED}")
    return "\n".join(lines + ([f"a = {' * '.join([name, *factors])}"] if factors else []))


def _ce_logits(spec: LossSpec) -> Recipe:
    """Logits: the log-softmax by hand (Paddle's softmax kernels clip x - max(x) at -64: module docstring), then
    the label's term (index targets) or the sum over the canonical coefficients, and the canonical reduction."""
    lines = [*_keep(spec, replace=True), LOG_SOFTMAX]
    if spec.target == "index" and not spec.label_smoothing:
        picked = "-paddle.take_along_axis(logp, y.unsqueeze(-1), axis=-1).squeeze(-1)"
        lines.append(f"l = {picked} * w[y]" if spec.weighted else f"l = {picked}")
        if spec.ignore_index is not None:
            lines.append("l = paddle.where(keep, l, 0.0)")
    else:
        a = _coefficients(spec)
        lines += [a] * (a != "a = y")
        a = "a" if a != "a = y" else "y"
        lines.append(f"l = -paddle.where({a} != 0, {a} * logp, 0.0).sum(-1)  # 0 log 0 = 0 at -inf logits")
    if spec.sample_weighted:
        lines.append("l = l * s")
    return Recipe("matched", "\n".join(lines + _reduce(spec, replaced=True)))


def _ce_soft_probs(spec: LossSpec) -> Recipe:
    """Probabilities with probability targets or smoothing: the canonical coefficients as soft labels, without
    Paddle's per-sample weighting (``a @ w``) and in x's dtype; -a / x is the gradient whatever a sums to."""
    lines = [*_keep(spec, replace=True)]
    if spec.target == "index" or spec.label_smoothing or spec.weighted:
        lines.append(_coefficients(spec))
    a = "a" if len(lines) > len(_keep(spec, replace=True)) else "y"
    call = f"F.cross_entropy(x, {a}, soft_label=True, use_softmax=False, reduction={{}})"
    if not (spec.sample_weighted or spec.reduction == "none" or spec.ignore_index is not None):
        return Recipe("matched", "\n".join([*lines, "loss = " + call.format(repr(spec.reduction))]))
    lines.append("l = " + call.format("'none'") + ".squeeze(-1)")
    if spec.sample_weighted:
        lines.append("l = l * s")
    return Recipe("matched", "\n".join(lines + _reduce(spec, replaced=True)))


def _cross_entropy(spec: LossSpec) -> tuple[Recipe, Recipe]:
    native = _ce_native(spec)
    if spec.input == "log_probs":  # cross_entropy applies softmax itself: nll_loss is the match
        if spec.target != "index" or spec.label_smoothing:
            why = "no matched composition for log-probability inputs with probability targets or label smoothing"
            return native, Recipe("matched", None, why)
        return native, _nll(spec)[1]
    if spec.input == "logits":
        return native, _ce_logits(spec)
    if spec.target == "index" and not spec.label_smoothing:
        return native, _ce_hard(spec, native)
    return native, _ce_soft_probs(spec)


# -- paddle.nn.functional.nll_loss -----------------------------------------------------------------------


def _nll(spec: LossSpec) -> tuple[Recipe, Recipe]:
    if spec.target != "index":
        return unsupported("nll_loss takes class indices only")
    if spec.label_smoothing:
        return unsupported("nll_loss has no label_smoothing argument")
    args = kwargs_code(weight=W if spec.weighted else None, ignore_index=spec.ignore_index, reduction=spec.reduction)
    none = kwargs_code(weight=W if spec.weighted else None, ignore_index=spec.ignore_index, reduction="none")
    if spec.sample_weighted:
        native = Recipe("native", _sample_weighted_native(spec, f"F.nll_loss(x, y, {none})"))
    else:
        native = Recipe("native", f"loss = F.nll_loss(x, y, {args})")
    if not spec.sample_weighted and spec.reduction == "none":
        return native, Recipe("matched", native.code)
    # reduction='none' and the reduction by hand: Paddle's CPU mean and sum add element by element in x's dtype
    # (float32 drifts ~sqrt(M) eps), overflow the heap on ignored labels, and give 0 when every label is ignored
    call = f"l = F.nll_loss(x, y, {none})" + (" * s" if spec.sample_weighted else "")
    lines = [*_keep(spec), call, *_reduce(spec)]
    return native, Recipe("matched", "\n".join(lines))


# -- binary cross-entropy ----------------------------------------------------------------------------------


def _smooth_binary(spec: LossSpec) -> str:
    e = spec.label_smoothing
    return f"y = y * {_constant(1 - e, 'y')} + {_constant(e / 2, 'y')}  # {CONSTANTS}\n" if e else ""


def _binary(api: str, spec: LossSpec) -> tuple[Recipe, Recipe]:
    name = api.rsplit(".", 1)[1]
    if spec.weighted and api == BCE:
        return unsupported(f"{name} has a per-element weight but no pos_weight")
    args = kwargs_code(
        weight=S if spec.sample_weighted else None,
        pos_weight=W if spec.weighted else None,
        reduction=spec.reduction,
    )
    call = f"loss = F.{name}(x, y, {args})"
    native = Recipe("native", None, f"{name} has no label_smoothing argument") if spec.label_smoothing else (
        Recipe("native", call))  # fmt: skip
    return native, Recipe("matched", _smooth_binary(spec) + call)


APIS = (
    Api(CE, lambda s: s.family == "softmax", _cross_entropy),
    Api(NLL, lambda s: s.family == "softmax" and s.input == "log_probs", _nll),
    Api(BCE_LOGITS, lambda s: s.family == "sigmoid" and s.input == "logits", lambda s: _binary(BCE_LOGITS, s)),
    Api(BCE, lambda s: s.family == "sigmoid" and s.input == "probs", lambda s: _binary(BCE, s)),
)


class PaddleAdapter(Adapter):
    """PaddlePaddle's dynamic graph (eager) and ``paddle.jit.to_static`` (compiled), differentiated with
    ``paddle.grad``."""

    name = "paddle"
    modules = ("paddle",)
    distributions = ("paddlepaddle", "paddlepaddle-gpu")
    install_hint = "pip install paddlepaddle==3.3.1"
    apis = APIS
    classes_last = True
    # to_static traces a recipe in ~0.2-0.5 s on the CPU here (a new shape retraces), so it runs on the mode
    # cases like torch.compile
    modes = ("eager", "compiled")
    layout = (
        "classes LAST (axis=-1 by default): pass np.moveaxis(x, 1, -1) (and probability targets likewise), or "
        "axis=1; nll_loss takes classes on axis 1, as PyTorch"
    )
    names = "`paddle`, `F` (paddle.nn.functional)"

    def __init__(self) -> None:
        super().__init__()
        self._static: dict[Callable[..., Any], Callable[..., Any]] = {}  # recipe -> paddle.jit.to_static(recipe)

    def setup(self) -> dict[str, Any]:
        """paddle and paddle.nn.functional, imported quietly (glog off; no ccache warning from the C++
        extension helper it imports)."""
        if "paddle" not in sys.modules and "tensorflow" in sys.modules:
            raise Unavailable(IMPORT_AFTER_TENSORFLOW)
        os.environ.setdefault("GLOG_minloglevel", "3")
        os.environ.setdefault("GLOG_v", "0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import paddle
        # to_static's tracer asks traced values for their place (inside Paddle's own functions too)
        warnings.filterwarnings("ignore", message="Tensor do not have 'place' interface", category=UserWarning)
        paddle.disable_signal_handler()  # a worker's own signals stay Python's
        return {"paddle": paddle, "F": Functional(paddle.nn.functional)}

    def arrange(self, recipe: str, spec: LossSpec, inputs: Inputs) -> tuple[Inputs, bool]:
        """Log-probabilities stay in PyTorch's layout: their matched recipes are nll_loss, which takes classes on
        axis 1 (a verified user function gets them where it says)."""
        if self.user is None and spec.input == "log_probs":
            return inputs, False
        return super().arrange(recipe, spec, inputs)

    def accumulated_mean(self, spec: LossSpec) -> str:
        if spec.family == "sigmoid":
            return "loss = total / x.size"
        if spec.target != "index":
            return "loss = total / (x.size // x.shape[-1])"
        keep = "paddle.ones_like(y, dtype='bool')" if spec.ignore_index is None else f"y != {spec.ignore_index}"
        d = "paddle.where(keep, w[paddle.where(keep, y, 0)], 0.0)" if spec.weighted else "keep.astype(total.dtype)"
        return f"keep = {keep}\nloss = total / {d}.sum()"

    def no_gpu(self) -> str | None:
        paddle = self.namespace()["paddle"]
        if not paddle.device.is_compiled_with_cuda():
            return "paddle.device.is_compiled_with_cuda() is False (the paddlepaddle wheel is CPU-only)"
        return None if paddle.device.cuda.device_count() > 0 else "paddle.device.cuda.device_count() is 0"

    def _place(self, device: str) -> Any:
        paddle = self.namespace()["paddle"]
        return paddle.CPUPlace() if device == "cpu" else paddle.CUDAPlace(int(device.partition(":")[2] or 0))

    def _stage(self, spec: LossSpec, inputs: Inputs, dtype: str, device: str, grad: bool) -> tuple[Any, ...]:
        """x, y, w, s as Paddle tensors in `dtype` (exact: the inputs are representable in it) on `device`."""
        paddle = self.namespace()["paddle"]
        place = self._place(device)

        def put(a: np.ndarray | None, dt: str) -> Any:
            return None if a is None else paddle.to_tensor(a, dtype=dt, place=place)

        x = put(inputs.x, dtype)
        x.stop_gradient = not grad
        y = put(inputs.target, "int64" if spec.target == "index" else dtype)
        return x, y, put(inputs.weight, dtype), put(inputs.sample_weight, dtype)

    def _compiled(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if fn not in self._static:
            self._static[fn] = self.namespace()["paddle"].jit.to_static(fn)
        return self._static[fn]

    @staticmethod
    def _call_static(fn: Callable[..., Any], *args: Any) -> Any:
        """A to_static function called, with the framework's own error as the message of what it raises (to_static's
        first line is "In user code:" or "In simulate execution:")."""
        try:
            return fn(*args)
        except Exception as e:
            lines = [line.strip() for line in str(e).splitlines() if line.strip()]
            if lines and lines[0].rstrip(":") in ("In user code", "In simulate execution"):
                errors = [line for line in lines if re.match(r"^\w*(Error|Exception)\b", line)]
                cause = errors[-1] if errors else lines[-1]
                raise ToStaticError(f"{type(e).__name__}: {cause}") from e
            raise

    def evaluate(
        self, fn: Callable[..., Any], spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str = "eager",
        policy: str = "none",
    ) -> tuple[np.ndarray, np.ndarray, str]:  # fmt: skip
        """Eager (the dynamic graph), or through paddle.jit.to_static; d(loss)/dx by paddle.grad (of the sum for
        ``none``). A loss that comes back in another dtype than x's raises (a promotion in the recipe)."""
        if policy != "none":
            raise Unavailable(f"paddle has no policy {policy!r}")
        paddle = self.namespace()["paddle"]
        x, y, w, s = self._stage(spec, inputs, dtype, device, grad=True)
        loss = self._call_static(self._compiled(fn), x, y, w, s) if mode == "compiled" else fn(x, y, w, s)
        (grad,) = paddle.grad(loss.sum() if loss.ndim else loss, x, allow_unused=True)
        grad = paddle.zeros_like(x) if grad is None else grad
        got = str(loss.dtype).removeprefix("paddle.")
        if got != dtype or grad.dtype != x.dtype:
            raise RuntimeError(f"computed in {got}/{grad.dtype}, not {dtype}: a promotion in the recipe")
        as64 = lambda t: t.astype("float64").cpu().numpy()  # noqa: E731 (exact from every dtype here)
        return as64(loss.detach()), as64(grad), got

    def timer(
        self, code: str, spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str, pass_: str
    ) -> tuple[Callable[[], Any], Callable[[Any], None]]:
        """Eager op-by-op dispatch, or paddle.jit.to_static freshly wrapped (its first call traces, and is
        reported as compile time)."""
        paddle = self.namespace()["paddle"]
        fn = make_function(code, self.namespace())  # not the cached one: to_static anew
        if mode == "compiled":
            fn = paddle.jit.to_static(fn)
        x, y, w, s = self._stage(spec, inputs, dtype, device, grad=pass_ == "forward_backward")
        if pass_ == "forward":

            def call() -> Any:
                with paddle.no_grad():
                    return fn(x, y, w, s)
        else:

            def call() -> Any:
                loss = fn(x, y, w, s)
                return paddle.grad(loss.sum() if loss.ndim else loss, x)[0]  # x.grad untouched

        if device.startswith("cuda"):
            return call, lambda result: paddle.device.synchronize()
        return call, lambda result: None  # CPU kernels have finished when they return


ADAPTER = PaddleAdapter()
