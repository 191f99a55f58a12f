"""The one fixture every adapter's tests judge their rows with: the harness's own judge (accuracy_row,
the rows of a run), so an adapter test and a run cannot disagree on a verdict."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from adapters.base import Adapter, Result
from adapters.reference import Evaluation, evaluate
from cases.spec import Case, Inputs
from harness.judge.rows import accuracy_row


@dataclass(frozen=True, eq=False)
class JudgedRow:
    """One (case, api, recipe) result with its reference and the row a run writes for it."""

    case: Case
    inputs: Inputs
    ref: Evaluation
    result: Result = field(repr=False)
    row: dict[str, Any]

    def __getattr__(self, name: str) -> Any:  # the row's columns as attributes: r.outcome, r.value_rel_err
        row = self.__dict__.get("row", {})
        if name in row:
            return row[name]
        raise AttributeError(name)

    @property
    def value(self) -> np.ndarray | None:
        return self.result.value

    @property
    def grad(self) -> np.ndarray | None:
        return self.result.grad

    @property
    def code(self) -> str:
        return self.result.recipe_code


# Where a matched recipe, reproducing PyTorch, is not the exact answer (pinned in test_torch_adapter.py):
# BCELoss clamps its logs at -100 and divides its gradient by max(p (1 - p), 1e-12)
# (https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html), so probabilities of exactly 0 and 1
# give PyTorch's numbers, not the exact ones; and on labels outside [0, C) PyTorch raises, which no other
# framework does (each row then names what it does instead).
PYTORCH_DEPARTS = {"p01": "prob_clamp=log>=-100", "p01soft": "prob_clamp=log>=-100"}


def matched_as_pytorch(case: Case, outcome: str, explanation: str) -> bool:
    """A matched row that is not `ok` only where reproducing PyTorch departs from the exact answer."""
    if outcome == "ok":
        return True
    if case.tag == "oob":
        return outcome in ("raised", "nonfinite", "mismatch") and (outcome == "raised" or "label_oob=" in explanation)
    want = PYTORCH_DEPARTS.get(case.tag)
    return want is not None and case.spec.input == "probs" and explanation == want


def judge_adapter(
    adapter: Adapter, cases: Sequence[Case], device: str = "cpu", plan: Sequence[tuple[str, str]] | None = None,
    repeats: int = 1,
) -> list[JudgedRow]:  # fmt: skip
    """Every supported (api, recipe) of `adapter` on `cases` (in each (mode, policy) of `plan`, each called `repeats`
    times), judged as `python -m harness run` judges it."""
    out = []
    for case in cases:
        inputs = case.inputs()
        ref = evaluate(case.spec, inputs)
        memo: dict = {}
        for r in adapter.run_case(case, device, plan=plan, repeats=repeats):
            row = accuracy_row("test", case, adapter.name, adapter.version(), device, r, ref, memo, inputs)
            out.append(JudgedRow(case, inputs, ref, r, row))
    return out


@pytest.fixture(scope="session")
def judged() -> Callable[..., list[JudgedRow]]:
    return judge_adapter


@pytest.fixture(scope="session")
def as_pytorch() -> Callable[[Case, str, str], bool]:
    return matched_as_pytorch
