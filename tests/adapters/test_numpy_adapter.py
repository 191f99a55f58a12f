from __future__ import annotations

import numpy as np
import pytest

from adapters.base import Unavailable
from adapters.numpy_adapter import ADAPTER
from adapters.reference import evaluate
from cases.generator import default_cases


def test_float64_rows_are_the_reference_itself() -> None:
    for case in default_cases(kinds=("multiclass", "binary"), dtypes=("float64",)):
        ref = evaluate(case.spec, case.inputs())
        for r in ADAPTER.run_case(case, "cpu"):
            assert r.outcome is None, (case.id, r.error)
            assert np.array_equal(r.value, ref.value, equal_nan=True), case.id


def test_lower_dtypes_round_every_operation() -> None:
    case = default_cases(kinds=("multiclass",), dtypes=("float16",))[0]
    (r, _) = ADAPTER.run_case(case, "cpu")
    ref = evaluate(case.spec, case.inputs())
    assert r.value != ref.value and abs(r.value - ref.value) / ref.value < 1e-2


def test_bfloat16_uses_ml_dtypes() -> None:
    pytest.importorskip("ml_dtypes", reason="NumPy has no bfloat16 without ml_dtypes")
    case = default_cases(kinds=("multiclass",), dtypes=("bfloat16",))[0]
    (r, _) = ADAPTER.run_case(case, "cpu")
    assert r.outcome is None, r.error


def test_no_gpu() -> None:
    with pytest.raises(Unavailable, match="CPU only"):
        ADAPTER.device("gpu")
