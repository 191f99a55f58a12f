"""Judging one result into a row (harness/judge/rows.py): explanations shared by rows with the same numbers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import harness.judge.rows as rows
from adapters.base import Result
from adapters.reference import evaluate
from adapters.variants import BY_NAME, evaluate_variants
from cases.generator import default_cases
from harness.judge.rows import accuracy_row, digest

CASE = next(c for c in default_cases(("multiclass",), ("float64",)) if c.id == "multiclass-n64-c10-f64-mean-s0")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every explain() call accuracy_row makes, with its arguments."""
    made: list[dict[str, Any]] = []
    real = rows.explain

    def counted(case, value, grad, ref, registered, memo, inputs, grad_w, widen, facts) -> str:
        made.append({"registered": registered, "widen": widen})
        return real(case, value, grad, ref, registered, memo, inputs, grad_w, widen, facts)

    monkeypatch.setattr(rows, "explain", counted)
    return made


def _row(result: Result, explained: dict | None, framework: str = "torch") -> dict[str, Any]:
    inputs = CASE.inputs()
    return accuracy_row("r", CASE, framework, "v", "cpu", result, evaluate(CASE.spec, inputs), {}, inputs, {},
                        explained)  # fmt: skip


def _summed(**changes: Any) -> Result:
    """A result that sums where the case takes the mean: a mismatch `reduction=sum` explains."""
    ev = evaluate_variants((BY_NAME["reduction=sum"],), CASE.spec, CASE.inputs(), constants=CASE.dtype)
    return Result("torch.nn.functional.cross_entropy", "native", "", None, value=np.asarray(ev.value),
                  grad=np.array(ev.grad), **changes)  # fmt: skip


def test_a_row_with_an_explained_rows_numbers_gets_its_explanation(calls: list) -> None:
    """Both directions: the same numbers (another recipe, another framework with the same registered variants) are
    explained once; a gradient one ulp away, or other registered variants, are explained again, and every row gets
    the explanation explain() gives it alone."""
    explained: dict = {}
    first = _row(_summed(), explained)
    assert (first["outcome"], first["explanation"]) == ("mismatch", "reduction=sum"), first
    again = _row(dataclasses.replace(_summed(), recipe="matched"), explained)
    assert again["explanation"] == "reduction=sum" and len(calls) == 1, calls
    nudged = _summed()
    nudged.grad[0, 0] = np.nextafter(nudged.grad[0, 0], np.inf)
    assert _row(nudged, explained)["explanation"] == "reduction=sum" and len(calls) == 2, calls
    assert _row(_summed(), explained, framework="tensorflow")["explanation"] == "reduction=sum"
    assert len(calls) == 3 and calls[2]["registered"] != calls[0]["registered"], calls
    assert len(explained) == 3


def test_a_numerical_gradient_is_always_explained_with_its_allowance(calls: list) -> None:
    """A numerical gradient's row widens each variant's gradient scale by its method's error (`widen`): never taken
    from, nor kept for, another row. An autodiff row's widening would change nothing, and none is passed."""
    explained: dict = {}
    for _ in range(2):
        _row(_summed(grad_method="central-difference"), explained)
    assert len(calls) == 2 and all(callable(c["widen"]) for c in calls) and not explained, calls
    _row(_summed(), explained)
    assert calls[-1]["widen"] is None


@pytest.mark.parametrize(
    "change",
    [lambda a: a.astype(np.float32), lambda a: a.reshape(-1), lambda a: np.where(a == a.flat[0], np.nan, a)],
    ids=["dtype", "shape", "nan"],
)
def test_the_digest_tells_numbers_apart(change: Callable[[np.ndarray], np.ndarray]) -> None:
    a = np.linspace(-1, 1, 12).reshape(3, 4)
    assert digest(a, None) == digest(a.copy(), None)
    assert digest(a, None) != digest(change(a), None)
    assert digest(a, None) != digest(None, a), "which array holds the numbers matters"


def test_the_digest_tells_a_scalar_from_one_element() -> None:
    """A scalar loss where the case gives one element per row (N = 1, reduction none) is a shape mismatch of its own."""
    assert digest(np.float64(2.5)) == digest(np.array(2.5))
    assert digest(np.array(2.5)) != digest(np.array([2.5]))
