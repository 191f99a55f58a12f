"""Hand-made accuracy rows for the render tests: one dict of overrides per row, every other column a
plain float64 `ok` row of a softmax / logits / index / mean configuration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

DEFAULTS: dict[str, Any] = {
    "run_id": "r1", "case_id": "multiclass-n64-c10-f64-mean-s0", "kind": "multiclass", "family": "softmax",
    "input": "logits", "target": "index", "weighted": False, "sample_weighted": False, "ignore_index": None,
    "label_smoothing": 0.0, "reduction": "mean", "shape": "64x10", "dtype": "float64", "framework": "tensorflow",
    "framework_version": "2.21.0", "api": "keras.losses.CategoricalCrossentropy", "recipe": "native",
    "recipe_code": "loss = keras.losses.CategoricalCrossentropy()(y, x)", "device": "cpu", "outcome": "ok",
    "error": None, "value": 1.0, "ref_value": 1.0, "value_abs_err": 0.0, "value_rel_err": 1e-16,
    "value_ulp_err": 1.0, "grad_abs_err": 0.0, "grad_rel_err": 1e-16, "grad_ulp_err": 1.0,
    "value_scaled_err": 1e-17, "grad_scaled_err": 1e-17, "tol": 1e-14, "explanation": "",
}  # fmt: skip


def make_frame(*rows: dict[str, Any]) -> pd.DataFrame:
    """Rows of the accuracy schema: DEFAULTS with each dict's overrides."""
    return pd.DataFrame([{**DEFAULTS, **r} for r in rows])


@pytest.fixture()
def frame() -> Callable[..., pd.DataFrame]:
    return make_frame
