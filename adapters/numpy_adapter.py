"""NumPy: the canonical formulas of `adapters.reference`, evaluated in the case's dtype.

In float64 these rows are the reference itself (a sanity check of the pipeline); in float32,
float16 and bfloat16 they show what the textbook stable formulas give when every operation rounds
to that dtype, a baseline for the frameworks' own low-precision kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from adapters import reference
from adapters.base import Adapter, Api, Recipe, Unavailable
from cases.spec import Inputs, LossSpec

CODE = "loss, grad = adapters.reference.evaluate(spec, Inputs(x, y, w), dtype)"

APIS = (
    Api(
        "adapters.reference.evaluate",
        lambda s: True,
        lambda s: (Recipe("native", CODE), Recipe("matched", CODE)),
    ),
)


class NumpyAdapter(Adapter):
    name = "numpy"
    modules = distributions = ("numpy",)
    apis = APIS
    differentiates = False  # its gradients are the reference's analytic ones

    def isa(self, device: str) -> str | None:
        try:  # NumPy's SIMD dispatch: the baseline it was built for, and the targets this CPU enables
            from numpy._core._multiarray_umath import __cpu_baseline__, __cpu_dispatch__, __cpu_features__
        except ImportError:
            return None
        enabled = [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]
        return f"baseline {' '.join(__cpu_baseline__)}; dispatch {' '.join(enabled) or 'none'}"

    def setup(self) -> dict[str, Any]:
        return {"adapters": __import__("adapters.reference"), "Inputs": Inputs, "np": np}

    def apis_for(self, spec: LossSpec) -> tuple[Api, ...]:
        return self.apis  # the reference computes a spec over micro-batches as the full batch's loss, itself

    def compile(self, code: str) -> Callable[..., Any]:
        return reference.evaluate  # the snippet documents this call; gradients are analytic

    def evaluate(
        self, fn: Callable[..., Any], spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str = "eager",
        policy: str = "none",
    ) -> tuple[np.ndarray, np.ndarray, str]:  # fmt: skip
        if (mode, policy) != ("eager", "none"):
            raise Unavailable(f"numpy runs eagerly without a policy, not {mode}/{policy}")
        try:
            result = fn(spec, inputs, dtype, scales=False)
        except TypeError as e:  # no bfloat16 without ml_dtypes
            raise Unavailable(str(e)) from e
        if result.undefined:  # the canonical loss raises there, as PyTorch does
            raise ValueError(result.undefined)
        value = result.value
        return value.astype(np.float64, copy=False), result.grad.astype(np.float64, copy=False), value.dtype.name


ADAPTER = NumpyAdapter()
