"""Semantics decided once (harness/judge/semantics.py): a configuration's float64 verdict holds at every dtype."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.judge.semantics import decide_once, float64_sibling, semantic_parts


def row(case_id: str, dtype: str, outcome: str, explanation: str = "", api: str = "keras.losses.X") -> dict:
    return {"case_id": case_id, "dtype": dtype, "framework": "tensorflow", "api": api, "recipe": "native",
            "device": "cpu", "mode": "eager", "policy": "none", "outcome": outcome, "explanation": explanation,
            "error": ""}  # fmt: skip


def test_the_float64_sibling_replaces_the_dtype_tag_only() -> None:
    assert float64_sibling("multiclass-n64-c10-bf16-w-mean-s0", "bfloat16") == "multiclass-n64-c10-f64-w-mean-s0"
    assert float64_sibling("documented-seed003b-n2-c2-f32-pt-mean-s0", "float32") == (
        "documented-seed003b-n2-c2-f64-pt-mean-s0"
    )
    with pytest.raises(ValueError, match="Expected a case id with the dtype tag 'f16'"):
        float64_sibling("multiclass-n64-c10-f32-mean-s0", "float16")


def test_semantic_parts_leave_rounding_out() -> None:
    assert semantic_parts("weight_norm=N+label_oob=zero+computed_in=float32") == ["weight_norm=N", "label_oob=zero"]
    assert semantic_parts("computed_in=float16") == [] and semantic_parts("") == []


def test_a_half_precision_row_of_a_semantic_difference_is_never_plain_ok() -> None:
    """bfloat16's tolerance (0.35) hides an 11% weighted-mean difference that float64 shows and names."""
    df = pd.DataFrame([
        row("multiclass-n64-c10-f64-w-mean-s0", "float64", "mismatch", "weight_norm=N+computed_in=float32"),
        row("multiclass-n64-c10-bf16-w-mean-s0", "bfloat16", "ok"),
        row("multiclass-n64-c10-f16-w-mean-s0", "float16", "mismatch", "computed_in=float16"),
        row("multiclass-n64-c10-f32-w-mean-s0", "float32", "mismatch", "reduction=sum"),
    ])  # fmt: skip
    out = decide_once(df).set_index("dtype")
    assert out.loc["bfloat16", "outcome"] == "mismatch" and out.loc["bfloat16", "explanation"] == "weight_norm=N"
    assert "within the bfloat16 tolerance" in out.loc["bfloat16", "error"]
    assert "weight_norm=N+computed_in=float32" in out.loc["bfloat16", "error"]
    assert out.loc["float16", "explanation"] == "weight_norm=N+computed_in=float16"  # its own rounding stays
    assert out.loc["float32", "explanation"] == "weight_norm=N"  # a semantic guess at float32 gives way
    assert decide_once(decide_once(df)).equals(decide_once(df)), "applied twice it changes nothing more"


def test_rounding_verdicts_stay_per_dtype() -> None:
    """float64 ok, or different by rounding alone (Keras' float32 policy): nothing semantic to carry."""
    df = pd.DataFrame([
        row("multiclass-n64-c10-f64-mean-s0", "float64", "mismatch", "computed_in=float32"),
        row("multiclass-n64-c10-bf16-mean-s0", "bfloat16", "ok"),
        row("multiclass-n64-c10-f16-mean-s0", "float16", "nonfinite", "computed_in=float16"),
        row("edge-n64-c10-f64-mean-s0", "float64", "ok"),
        row("edge-n64-c10-f32-mean-s0", "float32", "mismatch", "computed_in=bfloat16"),
    ])  # fmt: skip
    assert decide_once(df).equals(df)


def test_an_unexplained_float64_difference_keeps_lower_precisions_from_reading_ok() -> None:
    df = pd.DataFrame([row("soft-n64-c10-f64-pt-mean-s0", "float64", "mismatch"),
                       row("soft-n64-c10-f32-pt-mean-s0", "float32", "ok")])  # fmt: skip
    out = decide_once(df).iloc[1]
    assert out.outcome == "mismatch" and out.explanation == "" and "no variant explains" in out.error


def test_rows_pair_by_framework_api_recipe_and_device() -> None:
    other = row("multiclass-n64-c10-bf16-w-mean-s0", "bfloat16", "ok", api="keras.losses.Y")
    df = pd.DataFrame([row("multiclass-n64-c10-f64-w-mean-s0", "float64", "mismatch", "weight_norm=N"), other,
                       {**other, "api": "keras.losses.X", "outcome": "raised"}])  # fmt: skip
    assert decide_once(df).equals(df), "another API's (or a raised) row takes nothing from this one"


def test_a_compiled_or_policy_row_takes_the_semantics_of_its_mode_else_of_the_recipe() -> None:
    """A bf16 row under a policy has no float64 sibling under that policy (a policy applies to its dtype only): the
    recipe's float64 row without a policy decides; a compiled row takes the compiled float64 row where one ran."""
    f64 = [
        {
            **row("multiclass-n64-c10-f64-w-mean-s0", "float64", "mismatch", "weight_norm=N"),
            "mode": "eager",
            "policy": "none",
        },
        {
            **row("multiclass-n64-c10-f64-w-mean-s0", "float64", "mismatch", "label_oob=nan_rows"),
            "mode": "compiled",
            "policy": "none",
        },
    ]
    low = [
        {**row("multiclass-n64-c10-bf16-w-mean-s0", "bfloat16", "ok"), "mode": "eager", "policy": "mixed_bfloat16"},
        {**row("multiclass-n64-c10-bf16-w-mean-s0", "bfloat16", "ok"), "mode": "compiled", "policy": "none"},
    ]
    out = decide_once(pd.DataFrame(f64 + low))
    assert out["outcome"].tolist()[2:] == ["mismatch", "mismatch"]
    assert out["explanation"].tolist()[2:] == ["weight_norm=N", "label_oob=nan_rows"]
