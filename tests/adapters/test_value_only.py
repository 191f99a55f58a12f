"""An adapter without gradients (an inference runtime): rows judge the value alone and say why."""

from __future__ import annotations

from typing import Any

import numpy as np

from adapters import reference
from adapters.base import Adapter, Api, Recipe
from cases.generator import default_cases
from cases.spec import Inputs, LossSpec

WHY = "this runtime has no gradients"


class ValueOnly(Adapter):
    name = "valueonly"
    modules = distributions = ("numpy",)
    no_gradient = WHY
    apis = (Api("valueonly.loss", lambda s: s.family == "softmax",
                lambda s: (Recipe("native", "loss = x"), Recipe("matched", "loss = x + 0"))),)  # fmt: skip

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale  # 1: the exact value; else a value off by that factor

    def setup(self) -> dict[str, Any]:
        return {}

    def evaluate(self, fn, spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode="eager", policy="none"):
        return reference.evaluate(spec, inputs).value * self.scale, None, "float64"


def test_rows_without_gradient_are_judged_on_their_value(judged) -> None:
    case = next(c for c in default_cases() if c.spec.family == "softmax" and c.dtype == "float64")
    right = judged(ValueOnly(1.0), [case])
    assert {r.row["outcome"] for r in right} == {"ok"}, [r.row for r in right]
    assert all(r.row["grad_method"] == "none" and r.row["error"] == WHY for r in right)
    assert all(np.isnan(r.row["grad_rel_err"]) for r in right)
    wrong = judged(ValueOnly(1.01), [case])
    assert {r.row["outcome"] for r in wrong} == {"mismatch"}, [r.row for r in wrong]
