from __future__ import annotations

import numpy as np
import pytest

from adapters.base import Unavailable
from adapters.numpy_adapter import ADAPTER, REFERENCE_API
from adapters.reference import evaluate
from cases.generator import default_cases


def _reference_rows(case):
    """The reference API's rows (the hand-written losses are tests/adapters/test_handwritten.py's)."""
    return [r for r in ADAPTER.run_case(case, "cpu") if r.api == REFERENCE_API.name]


def test_float64_rows_are_the_reference_itself() -> None:
    for case in default_cases(kinds=("multiclass", "binary"), dtypes=("float64",)):
        ref = evaluate(case.spec, case.inputs())
        for r in _reference_rows(case):
            assert r.outcome is None, (case.id, r.error)
            assert np.array_equal(r.value, ref.value, equal_nan=True), case.id


def test_lower_dtypes_round_every_operation() -> None:
    case = default_cases(kinds=("multiclass",), dtypes=("float16",))[0]
    (r, _) = _reference_rows(case)
    ref = evaluate(case.spec, case.inputs())
    assert r.value != ref.value and abs(r.value - ref.value) / ref.value < 1e-2


def test_bfloat16_uses_ml_dtypes() -> None:
    pytest.importorskip("ml_dtypes", reason="NumPy has no bfloat16 without ml_dtypes")
    case = default_cases(kinds=("multiclass",), dtypes=("bfloat16",))[0]
    (r, _) = _reference_rows(case)
    assert r.outcome is None, r.error


def test_no_gpu() -> None:
    with pytest.raises(Unavailable, match="CPU only"):
        ADAPTER.device("gpu")
