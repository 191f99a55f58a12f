"""The tables summary.md and report.html open with (issue 17): the top surprises and the configuration x
framework matrix, on hand-made rows (conftest.py), both ways: what must appear and what must not."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import pytest

from adapters.variants import BY_NAME, SEMANTIC
from harness.render.tables import (
    cause_of,
    config_label,
    config_matrix,
    essential_line,
    fix_text,
    surprise_classes,
    to_markdown,
    tolerance_ratio,
    top_surprises,
)

Frame = Callable[..., pd.DataFrame]
KERAS = "keras.losses.CategoricalCrossentropy"
NATIVE = "loss = keras.losses.CategoricalCrossentropy()(y, x, sample_weight=w[y])"
MATCHED = (
    "l = keras.losses.CategoricalCrossentropy(reduction='none')(y, x, sample_weight=w[y])\nloss = l.sum() / w[y].sum()"
)


def weighted_pair(dtype: str, rel: float, **native: object) -> list[dict[str, object]]:
    """A Keras native row that differs by weight_norm=N and its matched row, which is ok."""
    case = f"multiclass-n64-c10-{dtype}-w-mean-s0"
    base = {"case_id": case, "dtype": dtype, "weighted": True, "api": KERAS}
    return [
        {**base, "recipe_code": NATIVE, "outcome": "mismatch", "explanation": "weight_norm=N",
         "value_rel_err": rel, "grad_rel_err": rel, **native},
        {**base, "recipe": "matched", "recipe_code": MATCHED},
    ]  # fmt: skip


def differing(cause: str, dtype: str = "float64", rel: float = 0.1, n: int = 1, **more: object) -> list[dict]:
    return [
        {"case_id": f"{cause}-{i}-{dtype}", "dtype": dtype, "outcome": "mismatch", "explanation": cause,
         "value_rel_err": rel, "grad_rel_err": rel, **more}
        for i in range(n)
    ]  # fmt: skip


# -- top surprises ----------------------------------------------------------------------------------


def test_a_native_difference_is_a_class_with_its_size_cause_and_fix(frame: Frame) -> None:
    df = frame(*weighted_pair("float64", 0.2), *weighted_pair("float32", 0.1))
    [c] = surprise_classes(df).to_dict("records")
    assert c["cause"] == "weight_norm=N" and c["apis"] == {"tensorflow": ["CategoricalCrossentropy"]}
    assert (c["rows"], c["configs"], c["nonfinite"], c["dtypes"]) == (2, 1, 0, ["float64", "float32"])
    assert c["value_worst"] == 0.2 and c["value_typical"] == pytest.approx(0.15) and c["at_float64"]
    top, rest = top_surprises(df)
    assert rest == 0 and len(top) == 1
    row = top.iloc[0]
    assert row["cause"] == "`weight_norm=N`" and row["value rel err: worst (typical)"] == "0.2 (0.15)"
    assert BY_NAME["weight_norm=N"].summary in row["why"]
    fix = row["fix (matched recipe)"]
    assert fix.startswith("tensorflow.CategoricalCrossentropy: `loss = l.sum() / w[y].sum()`"), fix
    assert "+1 line: PORTING.md, multiclass · softmax logits index, w, mean" in fix


def test_no_class_without_a_native_difference(frame: Frame) -> None:
    df = frame(
        {"recipe": "native"},  # ok
        {"recipe": "native", "outcome": "raised", "error": "ValueError: shapes"},  # raised is not a difference
        {"recipe": "matched", "outcome": "mismatch", "explanation": "prob_clamp=log>=-100"},  # matched: PyTorch's
    )
    assert surprise_classes(df).empty
    top, rest = top_surprises(df)
    assert top.empty and rest == 0


def test_most_surprising_first(frame: Frame) -> None:
    df = frame(
        *differing("weight_norm=N", rel=0.1, n=4),  # float64, typical 0.1
        *differing("computed_in=float16", dtype="float16", rel=0.5, n=3),  # rounding only: last
        *differing("probs_passed_as_logits", rel=0.9),  # the same decade as weight_norm=N, fewer rows
        *differing("label_oob=nan", rel=0.0, n=2, outcome="nonfinite"),  # mostly NaN: first
        *differing("log_probs_passed_as_logits", rel=8.0),  # a larger decade
    )
    order = list(surprise_classes(df)["cause"])
    assert order == ["label_oob=nan", "log_probs_passed_as_logits", "weight_norm=N", "probs_passed_as_logits",
                     "computed_in=float16"]  # fmt: skip


def test_a_lower_dtype_rounding_on_top_of_a_cause_is_the_same_class(frame: Frame) -> None:
    df = frame(
        *differing("prob_clip=1e-7+computed_in=float32", dtype="float64"),
        *differing("prob_clip=1e-7", dtype="float32"),
    )
    [c] = surprise_classes(df).to_dict("records")
    assert c["cause"] == "prob_clip=1e-7" and c["rows"] == 2 and c["also"] == ["computed_in=float32"]
    assert "some rows also `computed_in=float32`" in top_surprises(df)[0].iloc[0]["why"]
    assert cause_of("computed_in=float16") == "computed_in=float16" and cause_of(None) == "(unexplained)"


def test_the_table_is_capped_and_the_rest_counted(frame: Frame) -> None:
    causes = [v.name for v in SEMANTIC][:17]
    df = frame(*(r for cause in causes for r in differing(cause)))
    top, rest = top_surprises(df)
    assert len(top) == 15 and rest == 2 and list(top["#"]) == list(range(1, 16))
    assert top_surprises(df, limit=20)[1] == 0


def test_the_essential_line_of_a_fix() -> None:
    custom = "\n".join([
        "@tf.custom_gradient", "def bce(x):  # a note", "    v = -tf.math.log(x)", "    return v, lambda dv: dv",
        "loss = tf.reduce_mean(bce(x))",
    ])  # fmt: skip
    assert essential_line(custom, "loss = keras.losses.BinaryCrossentropy()(y, x)") == (
        "@tf.custom_gradient def bce(x):",
        3,
    )
    two = "loss = -jnp.log(jnp.take_along_axis(x, y[..., None], axis=-1)[..., 0])\nloss = loss.mean()"
    assert essential_line(two, "loss = optax.f(x, y).mean()")[0].startswith("loss = -jnp.log("), "a bare mean is not it"
    assert essential_line("loss = f(x)  # same", "loss = f(x)") == ("", 0)


def test_a_fix_where_matched_is_the_same_call() -> None:
    assert "PyTorch's own behaviour" in fix_text("torch", "0*log(0)=nan", "loss = F.f(x)", "loss = F.f(x)", None, "")
    assert "np.moveaxis(x, 1, -1)" in fix_text("jax", "class_axis=-1", "loss = o(x)", "loss = o(x)", None, "")
    assert fix_text("jax", "label_oob=nan", math.nan, "loss = o(x)", "no call", "") == "no matched recipe: no call"
    assert "PyTorch raises" in fix_text("jax", "label_oob=nan", "loss = o(x)", "loss = o(x)", "PyTorch raises", "")


# -- the configuration x framework matrix -----------------------------------------------------------


def test_configuration_labels() -> None:
    c = {"family": "softmax", "input": "logits", "target": "index", "weighted": True, "sample_weighted": False,
         "ignore_index": -100, "label_smoothing": 0.1, "reduction": "mean"}  # fmt: skip
    assert config_label(c) == "softmax logits index, w, ignore=-100, ls=0.1, mean"
    plain = {**c, "family": "sigmoid", "target": "prob", "ignore_index": None, "label_smoothing": 0.0}
    assert config_label(plain) == "sigmoid logits prob, pos_weight, mean"
    assert config_label({**plain, "weighted": False, "sample_weighted": True, "reduction": "sum"}) == (
        "sigmoid logits prob, sample weights, sum"
    )


def test_a_cell_names_native_and_matched_verdicts_with_causes(frame: Frame) -> None:
    df = frame(*weighted_pair("float64", 0.2), *weighted_pair("float32", 0.1))
    m = config_matrix(df)
    assert list(m.columns) == ["configuration", "tensorflow"]
    assert m.to_dict("records") == [
        {"configuration": "softmax logits index, w, mean", "tensorflow": "native ✗ weight_norm=N · matched ✓"}
    ]


def test_a_cell_says_which_dtypes_differ_when_not_all(frame: Frame) -> None:
    df = frame(
        {"dtype": "float64", "outcome": "mismatch", "explanation": "computed_in=float32"},
        {"dtype": "float32"},
        {"dtype": "float64", "recipe": "matched"},
        {"dtype": "float32", "recipe": "matched"},
    )
    cell = config_matrix(df).iloc[0]["tensorflow"]
    assert cell == "native ✗ computed_in=float32 (float64); 1/2 rows · matched ✓"


def test_apis_with_the_same_verdicts_share_a_line(frame: Frame) -> None:
    sparse, tfnn = "keras.losses.SparseCategoricalCrossentropy", "tf.nn.sparse_softmax_cross_entropy_with_logits"
    df = frame(
        *({"api": api, "recipe": recipe} for api in (KERAS, sparse) for recipe in ("native", "matched")),
        {"api": tfnn, "outcome": "raised", "error": "InvalidArgumentError"},
        {"api": tfnn, "recipe": "matched"},
        {"api": "tf.nn.weighted_cross_entropy_with_logits", "outcome": "unsupported"},  # not expressible: left out
        {"api": "tf.nn.weighted_cross_entropy_with_logits", "recipe": "matched", "outcome": "unsupported"},
    )
    cell = config_matrix(df).iloc[0]["tensorflow"]
    assert cell.split("\n") == [
        "`CategoricalCrossentropy`, `SparseCategoricalCrossentropy`: native ✓ · matched ✓",
        "`sparse_softmax_cross_entropy_with_logits`: native raises · matched ✓",
    ]
    assert "<br>" in to_markdown(config_matrix(df)), "lines of a cell on GitHub"


def test_configurations_in_order_and_a_framework_per_column(frame: Frame) -> None:
    df = frame(
        {"reduction": "none", "case_id": "a"},
        {"reduction": "sum", "case_id": "b"},
        {"weighted": True, "case_id": "c"},
        {"case_id": "d"},
        {"case_id": "d", "framework": "jax", "api": "optax.losses.softmax_cross_entropy_with_integer_labels"},
        {"case_id": "d", "framework": "torch", "api": "torch.nn.functional.cross_entropy", "outcome": "unsupported"},
        {"case_id": "b", "reduction": "sum", "framework": "torch", "api": "torch.nn.functional.cross_entropy"},
    )
    m = config_matrix(df)
    assert list(m["configuration"]) == [
        "softmax logits index, mean", "softmax logits index, sum", "softmax logits index, none",
        "softmax logits index, w, mean",
    ]  # fmt: skip
    assert list(m.columns) == ["configuration", "torch", "tensorflow", "jax"], "registry order, those that ran"
    first = m.iloc[0]
    assert first["torch"] == "n/a" and first["jax"].startswith("native ✓") and m.iloc[1]["jax"] == ""
    assert "torch" not in config_matrix(df.iloc[:-1]).columns, "a framework none of whose rows ran has no column"
    assert config_matrix(frame({"outcome": "unsupported"})).empty


def test_tolerance_ratio_is_the_judges_test(frame: Frame) -> None:
    df = frame({"value_scaled_err": 0.5, "grad_scaled_err": 3.0, "tol": 2.0}, {"value_scaled_err": None,
               "grad_scaled_err": None, "outcome": "raised"})  # fmt: skip
    ratio = tolerance_ratio(df)
    assert ratio[0] == 1.5 and math.isnan(ratio[1])
    assert tolerance_ratio(df, "value")[0] == 0.25 and tolerance_ratio(df, "grad")[0] == 1.5


def test_a_linear_heads_rows_are_a_configuration_of_their_own(frame: Frame) -> None:
    """A linear head (kind `linear`: the loss of E Wᵀ, its own APIs) with the same options as a logits case is not
    folded into that case's configuration: its row comes after, named; the logits' row keeps only its own APIs."""
    linear = {"case_id": "linear-n32-c32000-h16-f64-lin-mean-s0", "kind": "linear", "api": "keras.losses.X:linear",
              "outcome": "mismatch", "explanation": "computed_in=float32"}  # fmt: skip
    m = config_matrix(frame({}, {"recipe": "matched"}, linear, {**linear, "recipe": "matched", "outcome": "ok",
                                                                 "explanation": ""}))  # fmt: skip
    assert m["configuration"].tolist() == ["softmax logits index, mean", "linear head: softmax logits index, mean"]
    assert m["tensorflow"].tolist() == ["native ✓ · matched ✓", "native ✗ computed_in=float32 · matched ✓"]
