"""The adapter contract (docs/DESIGN.md, "Adapters"; docs/ADAPTERS.md).

An adapter is one framework: a name, its version, the devices it can use here, and a tuple of
APIs. An API is one public callable; for a spec it offers a `native` and a `matched` recipe, each a
short code snippet over ``x`` (input), ``y`` (target) and ``w`` (class weights or pos_weight, or
None) that assigns ``loss``. The snippet *is* what runs (it is compiled into a function), so the
code in a report row is exactly the code that produced its numbers.

What differs between frameworks is only `compile` (the namespace a snippet sees) and `evaluate`
(conversion, device, differentiation). Everything else lives here, once.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib.metadata
import importlib.util
import itertools
import os
import re
import textwrap
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from cases.spec import Case, Inputs, LossSpec

if TYPE_CHECKING:
    from adapters.user import UserLoss

MODES = ("eager", "compiled")
# How a row's gradient was taken: the framework's automatic differentiation, the reference's analytic formula,
# a numerical method in float64 (a hand-written NumPy loss has no other), or none (the value is judged alone).
GRAD_METHODS = ("autodiff", "analytic", "complex-step", "central-difference", "none")
PASSES = ("forward", "forward_backward")


class Unavailable(Exception):
    """The framework, device or dtype cannot run here; the message is the row's reason."""


@dataclass(frozen=True)
class Recipe:
    """One way of calling an API for a spec: ``code`` assigns ``loss``, or is None with a ``reason``."""

    name: str
    code: str | None
    reason: str = ""


@dataclass(frozen=True)
class Api:
    """One public callable of a framework.

    Attributes:
      name: its public dotted name, e.g. ``torch.nn.functional.cross_entropy``.
      supports: whether the API is meant for a spec at all (family and input kind); rows exist
        only for specs it supports. Fields it cannot express give `unsupported` recipes instead.
      recipes: the native and matched recipes for a spec (a verified user function has one: ``user``).
      linear: the API takes a linear head's hidden states and classifier (`LossSpec.linear`: snippets see ``W``
        and ``b`` too); only such APIs have rows for a linear spec, and only on linear specs.
    """

    name: str
    supports: Callable[[LossSpec], bool]
    recipes: Callable[[LossSpec], tuple[Recipe, ...]]
    linear: bool = False

    def __repr__(self) -> str:
        return f"Api({self.name})"


@dataclass(frozen=True, eq=False)
class Result:
    """What an adapter produced for one (case, api, recipe): numbers, or why there are none."""

    api: str
    recipe: str
    recipe_code: str
    outcome: str | None = None  # None: numbers present, judge them; else 'unsupported' or 'raised'
    error: str = ""
    value: np.ndarray | None = field(default=None, repr=False)
    grad: np.ndarray | None = field(default=None, repr=False)
    mode: str = "eager"  # how the loss ran (cases.names.MODES)
    policy: str = "none"  # under which mixed-precision policy (cases.names.POLICIES)
    deterministic: bool | None = None  # repeated calls gave the same bits (None: no numbers)
    loss_dtype: str = ""  # the dtype the framework returned the loss in
    grad_method: str = "autodiff"  # how `grad` was taken (GRAD_METHODS); "none": no gradient, value judged alone
    grad_w: np.ndarray | None = field(default=None, repr=False)  # a linear head's d/d[W | b] (`LinearGrad`)


@dataclass(frozen=True)
class MemoryCounters:
    """Bytes in use as something counts them (`Adapter.memory_counters`; harness/runner/peak.py measures a call's
    peak with them): `reset` starts a new peak, `peak` is the most in use since, `current` what is in use now."""

    source: str  # what counts: ``torch.cuda.max_memory_allocated``, ``VmHWM`` (the resident set's peak)
    reset: Callable[[], None]
    peak: Callable[[], int]
    current: Callable[[], int]


class LinearGrad(NamedTuple):
    """The gradient `Adapter.evaluate` returns for a linear head (`LossSpec.linear`): d/dx (N, D) and d/d[W | b]
    (C, D+1 with a bias, its gradient the last column: b is W's column for a constant input 1; else (C, D))."""

    x: Any
    w: Any

    @classmethod
    def of(cls, x: Any, w: Any, b: Any = None) -> LinearGrad:
        """From NumPy-convertible gradients of x, W and b (or None)."""
        w = np.asarray(w, np.float64)
        return cls(x, w if b is None else np.concatenate([w, np.asarray(b, np.float64)[:, None]], axis=1))


def py(v: Any) -> str:
    """A Python literal for a snippet (repr, but floats without noise: 0.1 not 0.1000000001)."""
    if isinstance(v, float):
        short = f"{v:g}"
        return short if float(short) == v else repr(v)
    return repr(v)


def kwargs_code(**kwargs: Any) -> str:
    """``a=1, b='mean'`` for the arguments that are not None."""
    return ", ".join(f"{k}={py(v) if not isinstance(v, Code) else v}" for k, v in kwargs.items() if v is not None)


class Code(str):
    """A string that goes into a snippet as code (a variable name), not as a quoted literal."""


def accumulated(api: Api, mean_code: Callable[[LossSpec], str]) -> Api:
    """`api` called over a spec's micro-batches (`LossSpec.micro_batches`), as a gradient-accumulation loop
    does: `native` averages each micro-batch's mean (the naive loop: ``loss / accumulation_steps``), `matched`
    sums each micro-batch's summed loss and divides once by the whole batch's denominator (`mean_code`), which
    is the batch's loss. A recipe the API lacks for the spec stays absent, for the same reason."""

    def recipes(spec: LossSpec) -> tuple[Recipe, ...]:
        one = dataclasses.replace(spec, micro_batches=())
        native = api.recipes(one)[0]
        matched = api.recipes(dataclasses.replace(one, reduction="sum"))[1]
        bounds = tuple(itertools.pairwise(itertools.accumulate(spec.micro_batches, initial=0)))
        loop = f"total = sum(micro(x[a:b], y[a:b], w, None if s is None else s[a:b]) for a, b in {bounds})"
        try:
            divide = mean_code(one)
        except Unavailable as e:
            divide = None
            matched = Recipe(matched.name, None, str(e))
        out = []
        for recipe, last in ((native, f"loss = total / {len(bounds)}  # each micro-batch's mean, averaged"),
                             (matched, divide)):  # fmt: skip
            if recipe.code is None or last is None:
                out.append(recipe)
                continue
            micro = "def micro(x, y, w, s):\n" + textwrap.indent(recipe.code.rstrip(), "    ") + "\n    return loss\n"
            out.append(Recipe(recipe.name, f"{micro}{loop}\n{last}"))
        return tuple(out)

    return Api(api.name, api.supports, recipes)


def cache_home() -> str:
    """Where the accuracy pass keeps compiled programs for the next run: ``$XDG_CACHE_HOME/ce-harness``, by default
    ``~/.cache/ce-harness`` (`Adapter.keep_compiled`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ce-harness")


def make_function(code: str, namespace: Mapping[str, Any]) -> Callable[..., Any]:
    """Compile a snippet that assigns ``loss`` into ``f(x, y, w, s, W=None, b=None) -> loss`` (a linear head's
    classifier ``W`` and bias ``b``: `LossSpec.linear`).

    A real function (not exec per call) so it can be jit-compiled and timed without overhead.
    """
    src = "def _loss(x, y, w, s, W=None, b=None):\n" + textwrap.indent(code, "    ") + "\n    return loss\n"
    scope: dict[str, Any] = dict(namespace)
    exec(compile(src, "<recipe>", "exec"), scope)
    return scope["_loss"]


def is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError, torch.cuda.OutOfMemoryError, TensorFlow's ResourceExhaustedError, XLA's RESOURCE_EXHAUSTED."""
    text = f"{type(exc).__name__}: {exc}"
    return isinstance(exc, MemoryError) or any(
        k in text for k in ("OutOfMemory", "out of memory", "ResourceExhausted", "RESOURCE_EXHAUSTED")
    )


def unsupported(why: str) -> tuple[Recipe, Recipe]:
    """Neither recipe exists for a spec, for the same reason."""
    return Recipe("native", None, why), Recipe("matched", None, why)


def _installed(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


# What a framework's message carries besides the reason: TensorFlow's op-wrapper prefix and name suffix, a
# dump of every label after the one that is wrong.
_ERROR_NOISE = (
    (re.compile(r"\{\{function_node [^}]*\}\}\s*"), ""),
    (re.compile(r"\s+name:\s*$"), ""),
    (re.compile(r"(Label values:(?: \S+){4})(?: (?!\[Op:)\S+)+"), r"\1 ..."),
    # a compiled kernel's source file: its cache directory and content hash differ between checkouts and machines
    (re.compile(r"(?:/[^\s,:]+)?/[0-9a-z]{2}/c[0-9a-z]{51}\.main\.cpp"), "<inductor kernel>.cpp"),
)


def error_text(exc: BaseException) -> str:
    """``Type: first line of the message``, as the `error` column holds it (the reason, without noise)."""
    lines = str(exc).strip().splitlines()
    msg = lines[0] if lines else ""
    for pattern, repl in _ERROR_NOISE:
        msg = pattern.sub(repl, msg)
    return f"{type(exc).__name__}: {msg.strip()}"[:500]


def classes_last(spec: LossSpec, inputs: Inputs) -> Inputs:
    """`inputs` with the class axis (1) of x, and of probability targets, moved last (N, d1..dk, C)."""
    if inputs.x.ndim <= 2:
        return inputs  # (N, C): already last
    target = inputs.target if spec.target == "index" else np.moveaxis(inputs.target, 1, -1)
    s = inputs.sample_weight  # per loss element: (N, d1..dk), or x's shape for the element-wise sigmoid
    s = np.moveaxis(s, 1, -1) if s is not None and spec.family == "sigmoid" else s
    return Inputs(np.moveaxis(inputs.x, 1, -1), target, inputs.weight, s)


def classes_back(spec: LossSpec, value: np.ndarray, grad: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """A classes-last result in PyTorch's layout: the gradient, and an element-wise (sigmoid) ``none`` loss."""
    if grad is None:
        keep = spec.family == "sigmoid" and value.ndim > 2
        return (np.moveaxis(value, -1, 1) if keep else value), None
    if grad.ndim <= 2:
        return value, grad
    if spec.family == "sigmoid" and value.ndim == grad.ndim:
        value = np.moveaxis(value, -1, 1)
    return value, np.moveaxis(grad, -1, 1)


class Adapter(ABC):
    """One framework: its recipes (`apis`) and a short runtime (`setup`, `evaluate`, `timer`).

    What every framework shares lives here, once: the declared modules and distributions (`version`,
    `versions`, `unavailable`, without importing anything), the lazy import (`namespace`), the snippet
    compiler, the device names (``cpu``, ``cuda:0``: every framework's rows name a GPU alike), the class
    axis' move for classes-last frameworks (`arrange`), and the driver that runs a case (`iter_case`).
    docs/ADAPTERS.md walks through adding one.
    """

    name: str
    modules: tuple[str, ...] = ()  # import names the adapter needs (checked with find_spec, never imported early)
    distributions: tuple[str, ...] = ()  # alternatives; the first one installed is the rows' framework_version
    also: tuple[str, ...] = ()  # further distributions whose versions env.json records
    install_hint: str = ""
    apis: tuple[Api, ...] = ()
    # The framework's losses take classes on the LAST axis: matched recipes get x (and probability targets)
    # moved there and their gradient moved back; native recipes get the arrays as a PyTorch user has them
    # (the obvious port passes them as they are: for a K-dim input the API's softmax then runs over the
    # last axis, or its shapes do not fit).
    classes_last: bool = False
    # Accuracy work that splits well across processes (per-case compilation): the runner gives such a
    # framework one worker per --jobs slot, each with a share of the cases.
    compile_bound: bool = False
    # Whether `evaluate` differentiates any function of the framework's tensors (a user's own, too).
    differentiates: bool = True
    # How it can run a loss (cases.names.MODES); the first is how its users run one, and every case runs so.
    modes: tuple[str, ...] = ("eager",)
    # Mixed-precision policies besides ``none`` (cases.names.POLICIES), each for inputs in its dtype.
    policies: tuple[str, ...] = ()
    user: UserLoss | None = None  # set on a verifying copy (`verifying`)
    # Why `evaluate` returns no gradient (an inference runtime), or "" where it differentiates.
    no_gradient: str = ""
    # The porting guide's conventions: where the framework's losses take classes, and the names its snippets use.
    layout: str = "classes on axis 1 (PyTorch's layout)"
    names: str = ""
    float64_note: str = ""  # what a float64 port must do first (JAX: enable x64), said where float64 rows are

    def __init__(self) -> None:
        self._namespace: dict[str, Any] | None = None
        self._functions: dict[str, Callable[..., Any]] = {}  # snippet code -> function (stable for jit caches)

    def verifying(self, user: UserLoss) -> Adapter:
        """A copy of this adapter whose one API is the user's function (`harness.verify`): its recipe gets x
        with classes where the function takes them (``user.class_axis``), and is compiled with the function
        as ``user_loss``. The adapter itself is left as it was."""
        twin = copy.copy(self)
        twin.user = user
        reason = None if self.differentiates else f"{self.name} cannot differentiate a function of its arrays"
        twin.apis = (user.api(reason),)
        twin.classes_last = user.class_axis == -1
        twin._functions = {}
        return twin

    # -- what is installed (never imports the framework) ------------------------------------------
    def version(self) -> str | None:
        """The first installed of `distributions` (e.g. tensorflow-cpu or tensorflow)."""
        return next((v for v in map(_installed, self.distributions) if v), None)

    def versions(self) -> dict[str, str | None]:
        """Every distribution the rows depend on (recorded in env.json)."""
        main = next((d for d in self.distributions if _installed(d)), self.distributions[0])
        return {d: _installed(d) for d in (main, *self.also)}

    def unavailable(self) -> str | None:
        """Why this framework cannot run here, or None. Never imports the framework."""
        missing = [m for m in self.modules if importlib.util.find_spec(m) is None]
        if missing:
            hint = self.install_hint or f"pip install {' '.join(missing)}"
            return f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed ({hint})"
        return None

    # -- the framework, imported once, and its snippets ---------------------------------------------
    def namespace(self) -> dict[str, Any]:
        """The names a snippet sees (``torch``, ``F``; ``tf``, ``keras``; ...), importing the framework
        on first use (`setup`)."""
        if self._namespace is None:
            self._namespace = self.setup()
        return self._namespace

    @abstractmethod
    def setup(self) -> dict[str, Any]:
        """Import and configure the framework (quiet logs, float64 on, no whole-GPU allocation); return
        the snippets' namespace. Called once per process."""

    def keep_compiled(self) -> None:
        """Let this process keep the programs its framework compiles on disk (under `cache_home`) and load them in the
        next run: a loaded program is the same program, so the same numbers. Called in accuracy workers before the
        framework is imported, never in timing workers (their compile times are real compiles). Default: nothing;
        JAX turns its cache on in `evaluate`, since its configuration may change at any time."""
        return None

    def compile(self, code: str) -> Callable[..., Any]:
        """The snippet as a function of framework tensors ``(x, y, w, s) -> loss`` (one per code: a jit
        cache keyed by the function then serves every shape and dtype)."""
        if code not in self._functions:
            names = self.namespace()
            if self.user is not None:  # loaded here, after `setup` configured the framework it imports
                names = {**names, "user_loss": self.user.load()}
            self._functions[code] = make_function(code, names)
        return self._functions[code]

    def code_of(self, fn: Callable[..., Any]) -> str | None:
        """The snippet `compile` made `fn` from (None: it did not)."""
        return next((code for code, made in self._functions.items() if made is fn), None)

    def device(self, kind: str) -> str:
        """The concrete device for a device kind: ``cpu``, or ``cuda:0`` for any framework's first GPU
        (one name in every row, so the frameworks line up in the cross-framework matrix); raises
        `Unavailable` with the reason where there is none."""
        self.namespace()  # a framework that fails to import says so here, once
        if kind == "cpu":
            return "cpu"
        if kind != "gpu":
            raise Unavailable(f"Expected device kind in {{cpu, gpu}}. Received: {kind!r}")
        reason = self.no_gpu()
        if reason:
            raise Unavailable(f"no GPU: {reason}")
        return "cuda:0"

    def no_gpu(self) -> str | None:
        """Why the framework sees no GPU here (None: it sees one)."""
        return f"{self.name} runs on the CPU only"

    def gradient_method(self, fn: Callable[..., Any]) -> str:
        """How `evaluate` differentiates `fn` (one of GRAD_METHODS): the framework's autodiff unless it has
        none (`no_gradient`); an adapter that differentiates numerically says which method it picked."""
        return "none" if self.no_gradient else "autodiff"

    def gradient_note(self, fn: Callable[..., Any]) -> str:
        """Why `evaluate` returned no gradient for `fn` (the row's `error`): `no_gradient` unless the adapter
        knows better (a numerical gradient left out for one function or case)."""
        return self.no_gradient

    def threads(self) -> int | None:
        """Intra-op threads the framework uses here (recorded in env.json), if it says."""
        return None

    def isa(self, device: str) -> str | None:
        """The instruction set (or accelerator) the framework's kernels use on `device` here, as the
        framework says (recorded in env.json and the reports: float32 results depend on it)."""
        return None

    def apis_for(self, spec: LossSpec) -> tuple[Api, ...]:
        """The APIs meant for `spec`; for a spec over micro-batches, each as a gradient-accumulation loop
        calls it (`accumulated`). A linear head's spec gets the APIs that take one (`Api.linear`), and only it."""
        apis = tuple(api for api in self.apis if api.linear == spec.linear and api.supports(spec))
        return tuple(accumulated(api, self.accumulated_mean) for api in apis) if spec.micro_batches else apis

    def accumulated_mean(self, spec: LossSpec) -> str:
        """Code that assigns ``loss``: ``total`` (the micro-batches' summed losses) over the whole batch's
        mean denominator (the sum of w[y] over the kept labels, `LossSpec` mean): what a loop that knows the
        batch's count before it starts divides by (transformers' ``num_items_in_batch``)."""
        raise Unavailable(f"{self.name} has no gradient-accumulation recipe")

    def arrange(self, recipe: str, spec: LossSpec, inputs: Inputs) -> tuple[Inputs, bool]:
        """The inputs a recipe is called with, and whether their class axis was moved (last): a native
        recipe gets them as a PyTorch user has them, the others where the framework takes them."""
        if self.classes_last and recipe != "native" and inputs.x.ndim > 2:
            return classes_last(spec, inputs), True
        return inputs, False

    # -- framework hooks -------------------------------------------------------------------------
    @abstractmethod
    def evaluate(
        self, fn: Callable[..., Any], spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str = "eager",
        policy: str = "none",
    ) -> tuple[np.ndarray, np.ndarray, str]:  # fmt: skip
        """Run ``fn`` on the inputs (arranged as `arrange` says) in `dtype` on `device`, in `mode` (one of
        `modes`) under `policy` (``none`` or one of `policies`); return (value, d value/dx) as float64 in the
        same arrangement, and the dtype the framework returned the loss in.

        For ``reduction='none'`` the gradient is that of the sum of the elements. A mode or policy the
        framework lacks raises `Unavailable`. A framework without gradients (`no_gradient`) returns None
        for it: its rows judge the value alone. For a linear head (`LossSpec.linear`: ``fn(x, y, w, s, W, b)``
        with `Inputs.classifier` and `Inputs.bias`) the gradient is a `LinearGrad` (d/dx and d/d[W | b]).
        """

    def timer(
        self, code: str, spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str, pass_: str
    ) -> tuple[Callable[[], Any], Callable[[Any], None]]:
        """``(call, sync)`` for timing one recipe: `call` runs the loss once (``forward``) or the loss
        and its gradient with respect to x (``forward_backward``, without accumulating into x.grad)
        on inputs staged on `device` beforehand, eagerly or compiled (`mode`); `sync` waits for the
        device to finish the work behind a result of `call`."""
        raise Unavailable(f"{self.name} has no timing hook")

    def bandwidth_gbps(self, device: str) -> float | None:
        """Copy bandwidth of an accelerator (bytes read plus written); None for the host CPU, which
        the harness measures once for everyone."""
        return None

    def memory_counters(self, device: str) -> MemoryCounters | None:
        """The framework's own count of the bytes the call `timer` last made holds on `device` (torch.cuda's
        allocator, XLA's compiled memory analysis), where it keeps one; None elsewhere: the harness then reads the
        worker's resident set (harness/runner/peak.py)."""
        return None

    # -- shared driver ---------------------------------------------------------------------------
    def default_plan(self) -> tuple[tuple[str, str], ...]:
        """How a case runs unless told otherwise: in the framework's own mode, without a policy."""
        return ((self.modes[0], "none"),)

    def run_case(
        self, case: Case, device: str, debug: bool = False, plan: Sequence[tuple[str, str]] | None = None,
        repeats: int = 1,
    ) -> list[Result]:  # fmt: skip
        """Every supported (api, recipe) of this framework on one case (`iter_case`, collected)."""
        return list(self.iter_case(case, device, debug, plan, repeats))

    def iter_case(
        self, case: Case, device: str, debug: bool = False, plan: Sequence[tuple[str, str]] | None = None,
        repeats: int = 1,
    ) -> Iterator[Result]:  # fmt: skip
        """Every supported (api, recipe) of this framework on one case, in each (mode, policy) of `plan`
        (`default_plan` if None), one result at a time, so that a worker holds one API's arrays at once.
        With `repeats` > 1 each is called that many times and its `deterministic` says whether the bits agree.

        A matched recipe whose code and arrangement (`arrange`) equal its API's native one's is evaluated
        once and reported under both names (for PyTorch, native and matched are often the same call).
        """
        inputs = case.inputs()
        for api in self.apis_for(case.spec):
            for mode, policy in plan or self.default_plan():
                last: tuple[tuple[str, bool], Result] | None = None  # native and matched share it when equal
                for recipe in api.recipes(case.spec):
                    if recipe.code is None:
                        yield Result(api.name, recipe.name, "", "unsupported", recipe.reason, mode=mode, policy=policy)
                        continue
                    how = (recipe.code, self.arrange(recipe.name, case.spec, inputs)[1])
                    if last is None or last[0] != how:
                        last = None  # the previous result's arrays go before the next are made
                        run = (mode, policy, repeats)
                        last = (how, self._run_one(api.name, recipe, case, inputs, device, debug, *run))
                    yield dataclasses.replace(last[1], recipe=recipe.name)

    def _run_one(
        self, api: str, recipe: Recipe, case: Case, inputs: Inputs, device: str, debug: bool, mode: str, policy: str,
        repeats: int,
    ) -> Result:  # fmt: skip
        """One recipe evaluated `repeats` times (fresh inputs and outputs each time): its numbers, whether
        the repeats agree bit for bit (None for one call), or what the framework raised."""
        made = functools.partial(Result, api, recipe.name, recipe.code, mode=mode, policy=policy)
        try:
            fn = self.compile(recipe.code)
            arranged, moved = self.arrange(recipe.name, case.spec, inputs)
            value, grad, loss_dtype = self.evaluate(fn, case.spec, arranged, case.dtype, device, mode, policy)
            grad, grad_w = _split(grad)
            same = True
            for _ in range(repeats - 1):
                again = self.evaluate(fn, case.spec, arranged, case.dtype, device, mode, policy)
                again_x, again_w = _split(again[1])
                same = same and _same_bits(value, again[0]) and _same_bits(grad, again_x)
                same = same and _same_bits(grad_w, again_w)
                del again, again_x, again_w
            method = self.gradient_method(fn) if grad is not None else "none"
        except Unavailable as e:
            return made("unsupported", str(e))
        except Exception as e:  # the framework raised: that is a finding, recorded as such
            if debug:
                traceback.print_exc()
            if is_out_of_memory(e):  # too large for this device: a limit of the machine, not of the API
                return made("unsupported", f"out of memory: {error_text(e)}")
            return made("raised", error_text(e))
        value = np.asarray(value, np.float64)
        grad = None if grad is None else np.asarray(grad, np.float64)
        if moved:
            value, grad = classes_back(case.spec, value, grad)
        note = self.gradient_note(fn) if grad is None else ""  # the value is judged alone: the row says why
        grad_w = None if grad_w is None else np.asarray(grad_w, np.float64)
        return made(None, note, value, grad, deterministic=same if repeats > 1 else None, loss_dtype=loss_dtype,
                    grad_method=method, grad_w=grad_w)  # fmt: skip


def _split(grad: Any) -> tuple[Any, Any]:
    """(d/dx, d/d[W | b] or None) of what `evaluate` returned as the gradient."""
    return (grad.x, grad.w) if isinstance(grad, LinearGrad) else (grad, None)


def _same_bits(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Bit-identical (NaN payloads included), as a repeated call must be to be reproducible."""
    if a is None or b is None:
        return a is b
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
