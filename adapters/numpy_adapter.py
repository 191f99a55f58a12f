"""NumPy: the canonical formulas of `adapters.reference`, evaluated in the case's dtype; the seed articles'
hand-written losses (`adapters.handwritten`); and a user's own NumPy loss (`harness.verify`).

In float64 the reference rows are the reference itself (a sanity check of the pipeline); in float32,
float16 and bfloat16 they show what the textbook stable formulas give when every operation rounds
to that dtype, a baseline for the frameworks' own low-precision kernels. Their gradients are the
reference's analytic ones.

A hand-written loss (an article's, or a user's ``fn(x, y, w)``) runs as written, on x in the case's dtype;
NumPy has no autodiff, so its gradient is numerical, in float64 (`adapters.numerical`): the complex step
where the function allows it, central differences otherwise (the rows' ``grad_method``). The gradient
costs one or two calls of the loss per element of x, so its cost grows as the square of x's size: above
`GRADIENT_MAX_ELEMENTS` (a run's hand-written rows, a user's verification) the row judges the value alone
and says why. The limit is a count, not a measured time, so the same case gets the same row on any machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from adapters import handwritten, numerical, reference
from adapters.base import Adapter, Api, LinearGrad, Recipe, Unavailable
from cases.spec import Inputs, LossSpec

CODE = "loss, grad = adapters.reference.evaluate(spec, Inputs(x, y, w), dtype)"

REFERENCE_API = Api(
    "adapters.reference.evaluate",
    lambda s: True,
    lambda s: (Recipe("native", CODE), Recipe("matched", CODE)),
)
APIS = (REFERENCE_API, *handwritten.APIS)

# Elements of x a numerical gradient is taken for (one or two loss calls per element): a run's hand-written rows
# are a small part of a default run (seed 004's per-element math.exp makes 1280 elements ~1 s); a user who
# verifies a function waits for its gradient.
GRADIENT_MAX_ELEMENTS = {"run": 1280, "verify": 16384}
# Hand-written NumPy code runs in the dtypes NumPy has; bfloat16 is ml_dtypes' extension type, whose
# promotion rules (a clip to Python floats returns float32) no article's code is written for.
HAND_DTYPES = ("float64", "float32", "float16")
# The numerical gradient is the float64 derivative of the code whatever x's dtype: the float64 and float32 rows
# judge it; a float16 row would repeat it at the cost of x.size more calls.
FLOAT16_VALUE_ONLY = "float16: the value alone is judged (the numerical gradient, in float64, is on the other rows)"


class NumpyAdapter(Adapter):
    name = "numpy"
    modules = distributions = ("numpy",)
    apis = APIS
    differentiates = True  # numerically, in float64 (adapters.numerical)

    def __init__(self) -> None:
        super().__init__()
        self._methods: dict[Callable[..., Any], str] = {}  # hand-written fn -> how its last gradient was taken
        self._no_grad: dict[Callable[..., Any], str] = {}  # hand-written fn -> why its last row has no gradient
        self._codes: dict[Callable[..., Any], str] = {}  # hand-written fn -> its snippet

    def isa(self, device: str) -> str | None:
        try:  # NumPy's SIMD dispatch: the baseline it was built for, and the targets this CPU enables
            from numpy._core._multiarray_umath import __cpu_baseline__, __cpu_dispatch__, __cpu_features__
        except ImportError:
            return None
        enabled = [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]
        return f"baseline {' '.join(__cpu_baseline__)}; dispatch {' '.join(enabled) or 'none'}"

    def setup(self) -> dict[str, Any]:
        import math

        return {"adapters": __import__("adapters.reference"), "Inputs": Inputs, "np": np, "math": math}

    def apis_for(self, spec: LossSpec) -> tuple[Api, ...]:
        # the reference computes a spec over micro-batches as the full batch's loss, itself; the hand-written
        # losses have no gradient-accumulation loop (they do not support such specs)
        return tuple(api for api in self.apis if api.supports(spec))

    def compile(self, code: str) -> Callable[..., Any]:
        if code == CODE:
            return reference.evaluate  # the snippet documents this call; gradients are analytic
        fn = super().compile(code)
        self._codes[fn] = code
        return fn

    def gradient_method(self, fn: Callable[..., Any]) -> str:
        return self._methods.get(fn, "analytic")  # the reference's: its formulas (adapters/reference.py)

    def gradient_note(self, fn: Callable[..., Any]) -> str:
        return self._no_grad.get(fn, "")

    def evaluate(
        self, fn: Callable[..., Any], spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str = "eager",
        policy: str = "none",
    ) -> tuple[np.ndarray, np.ndarray | None, str]:  # fmt: skip
        if (mode, policy) != ("eager", "none"):
            raise Unavailable(f"numpy runs eagerly without a policy, not {mode}/{policy}")
        if fn is not reference.evaluate:
            return self._by_hand(fn, spec, inputs, dtype)
        try:
            result = fn(spec, inputs, dtype, scales=False)
        except TypeError as e:  # no bfloat16 without ml_dtypes
            raise Unavailable(str(e)) from e
        if result.undefined:  # the canonical loss raises there, as PyTorch does
            raise ValueError(result.undefined)
        value, grad = result.value, result.grad.astype(np.float64, copy=False)
        if result.grad_w is not None:  # a linear head's (LossSpec.linear): d/dE and d/d[W | b]
            grad = LinearGrad(grad, result.grad_w.astype(np.float64))
        return value.astype(np.float64, copy=False), grad, value.dtype.name

    def _by_hand(
        self, fn: Callable[..., Any], spec: LossSpec, inputs: Inputs, dtype: str
    ) -> tuple[np.ndarray, np.ndarray | None, str]:
        """A hand-written loss: its value on x in `dtype`, its gradient numerically in float64 (or None, why kept)."""
        if dtype not in HAND_DTYPES:
            raise Unavailable(f"hand-written NumPy code runs in {', '.join(HAND_DTYPES)}, not {dtype}")
        dt = np.dtype(dtype)

        def staged(a: np.ndarray | None, to: np.dtype) -> np.ndarray | None:
            return None if a is None else np.asarray(a).astype(to)

        index = spec.target == "index"
        y = np.asarray(inputs.target).astype(np.int64 if index else dt)
        with np.errstate(all="ignore"):
            value = np.asarray(fn(staged(inputs.x, dt), y, staged(inputs.weight, dt), staged(inputs.sample_weight, dt)))
        self._methods.pop(fn, None)
        self._no_grad.pop(fn, None)
        why = handwritten.VALUE_ONLY.get(self._codes.get(fn, ""), "") or FLOAT16_VALUE_ONLY * (dtype == "float16")
        if why:
            self._no_grad[fn] = why
            return value.astype(np.float64), None, value.dtype.name
        y64 = y if index else y.astype(np.float64)
        w64, s64 = staged(inputs.weight, np.dtype(np.float64)), staged(inputs.sample_weight, np.dtype(np.float64))

        def loss(z: np.ndarray) -> object:
            return fn(z, y64, w64, s64)

        x64 = np.asarray(inputs.x, np.float64)
        with np.errstate(all="ignore"):
            if not np.isfinite(np.asarray(loss(x64))).all():  # inf - inf: there is no difference to take
                self._no_grad[fn] = "the loss is not finite here in float64: its value alone is judged"
                return value.astype(np.float64), None, value.dtype.name
            limit = GRADIENT_MAX_ELEMENTS["verify" if self.user is not None else "run"]
            if x64.size > limit:
                self._no_grad[fn] = (f"a numerical gradient takes a loss call per element: {x64.size} elements is over "
                                     f"the {limit} it is taken for here; the value alone is judged")  # fmt: skip
                return value.astype(np.float64), None, value.dtype.name
            grad, method = numerical.gradient(loss, x64, spec.input)
        self._methods[fn] = method
        return value.astype(np.float64), grad, value.dtype.name


ADAPTER = NumpyAdapter()
