from __future__ import annotations

import numpy as np
import pytest

from cases.names import UsageError, choose, choose_many
from cases.spec import ALIGN_BYTES, Case, LossSpec, aligned, quantize


def test_case_id_is_readable_and_stable() -> None:
    case = Case("multiclass", LossSpec(weighted=True, ignore_index=-100), (64, 10), "float32", seed=0)
    assert case.id == "multiclass-n64-c10-f32-w-iim100-mean-s0"
    kdim = Case("smoothed", LossSpec(label_smoothing=0.1), (4, 10, 4, 3), "bfloat16", seed=3)
    assert kdim.id == "smoothed-n4-c10-d4x3-bf16-ls0.1-mean-s3"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reduction": "meen"}, "Expected reduction in {none, sum, mean}. Received: reduction='meen'"),
        ({"label_smoothing": 1.5}, "Expected label_smoothing in [0, 1]. Received: label_smoothing=1.5"),
        ({"label_smoothing": -0.1}, "Received: label_smoothing=-0.1"),
        ({"label_smoothing": float("nan")}, "Received: label_smoothing=nan"),
        ({"family": "sigmoid"}, "Expected target='prob' for family='sigmoid'"),
        ({"target": "prob", "ignore_index": 3}, "Expected ignore_index=None for target='prob'"),
    ],
)
def test_spec_rejects_bad_fields_with_one_line(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError) as e:
        LossSpec(**kwargs)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_names_accept_aliases_and_list_valid_ones() -> None:
    assert choose_many("f32,bf16,half", ("float64", "float32", "float16", "bfloat16"), "dtype") == (
        "float32", "bfloat16", "float16",
    )  # fmt: skip
    with pytest.raises(UsageError, match=r"Expected framework in \{numpy, torch\}. Received: framework='pytorc'"):
        choose("pytorc", ("numpy", "torch"), "framework")


def test_quantize_rounds_to_nearest_even() -> None:
    # 1 + 2^-8 is halfway between bfloat16 neighbours 1 and 1 + 2^-7: ties go to the even one (1).
    assert quantize(np.array([1 + 2**-8]), "bfloat16")[0] == 1.0
    assert quantize(np.array([1 + 3 * 2**-8]), "bfloat16")[0] == 1 + 2**-6
    # bfloat16 keeps float32's range: 1e30 survives (float16 would overflow)
    assert abs(quantize(np.array([1e30]), "bfloat16")[0] / 1e30 - 1) < 2**-8
    assert quantize(np.array([1e30]), "float16")[0] == np.inf
    assert quantize(np.array([-np.inf]), "bfloat16")[0] == -np.inf
    x = np.array([0.1, 1 / 3])
    assert np.array_equal(quantize(x, "float32"), x.astype(np.float32).astype(np.float64))


def test_bfloat16_quantize_agrees_with_ml_dtypes() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes gives an independent bfloat16 rounding")
    x = np.random.default_rng(1).normal(0, 100, size=10_000)
    want = x.astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)
    assert np.array_equal(quantize(x, "bfloat16"), want)


def test_aligned_gives_the_same_values_at_an_aligned_address_copying_only_when_needed() -> None:
    a = np.arange(60.0).reshape(3, 4, 5)[:, 1:]  # a view: not contiguous
    for src, dtype in ((a, None), (a, np.float32), (np.ascontiguousarray(a), np.float16)):
        out = aligned(src, dtype)
        assert out.ctypes.data % ALIGN_BYTES == 0 and out.flags.c_contiguous, (out.ctypes.data, out.flags)
        assert out.dtype == (src.dtype if dtype is None else dtype) and np.array_equal(out, src), (out, src)
    once = aligned(a)
    assert aligned(once) is once, "an aligned C-ordered array of the dtype is returned as it is"


def test_case_inputs_are_aligned_for_sharing() -> None:
    spec = LossSpec(target="prob")
    inputs = Case(kind="soft", spec=spec, shape=(7, 33), dtype="float16").inputs()
    for name in ("x", "target"):
        a = getattr(inputs, name)
        assert a.ctypes.data % ALIGN_BYTES == 0 and a.flags.c_contiguous, f"inputs.{name} at {a.ctypes.data:#x}"
