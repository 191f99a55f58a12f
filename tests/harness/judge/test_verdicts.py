"""The judge in both directions on the input real models produce: confident predictions.

A trained model's logits put the true class 8 to 14 above the rest: its loss is ~1e-5 and the target's
gradient p - 1 ~ -1e-5, a difference of terms of size 1. Every framework's own correct loss must read
`ok` there, in float64 and float32 (the frameworks run for real, in their workers), and every semantic
variant applied to the same inputs must not (decided at float64: harness/judge/semantics.py carries that
verdict to the lower precisions).
"""

from __future__ import annotations

import numpy as np
import pytest

from adapters.reference import evaluate
from adapters.variants import SEMANTIC, evaluate_variants
from cases.spec import Case, LossSpec
from harness.api.check import make_case
from harness.judge.metrics import compare
from harness.judge.rows import RowJudge, accuracy_frame
from harness.judge.tolerances import tolerance
from harness.runner.accuracy import run_accuracy
from harness.runner.options import RunOptions


def confident_case(spec: LossSpec, shape: tuple[int, ...], dtype: str, seed: int = 11) -> Case:
    return Case("multiclass", spec, shape, dtype, seed, tag="confident")


CONFIDENT = [
    confident_case(LossSpec(), (256, 100), "float64"),
    confident_case(LossSpec(), (256, 100), "float32"),
    confident_case(LossSpec(weighted=True), (8, 10, 16), "float32"),
    confident_case(LossSpec(weighted=True, ignore_index=-100, reduction="sum"), (64, 10), "float32"),
    confident_case(LossSpec(label_smoothing=0.1), (64, 10), "float64"),
    confident_case(LossSpec(weighted=True, ignore_index=-100, label_smoothing=0.1), (64, 10), "float64"),
]


@pytest.fixture(scope="module")
def confident_rows():
    """Every framework's rows on confident inputs, and on the issue's own example [[10, 0, 0]], class 0."""
    example = [make_case(np.array([[10.0, 0.0, 0.0]], dtype), np.array([0])) for dtype in ("float64", "float32")]
    # the user cases share an id; a run keys rows by case id, so each gets its own run
    frames = []
    for cases in (CONFIDENT, example[:1], example[1:]):
        rows: list[dict] = []
        options = RunOptions(frameworks=("numpy", "torch", "tensorflow", "jax"), quiet=True)
        run_accuracy(cases, options, RowJudge("t"), rows.extend)
        frames.append(accuracy_frame(rows, cases))
    return frames


def test_every_correct_implementation_is_ok_on_confident_predictions(confident_rows) -> None:
    for df in confident_rows:
        matched = df[(df["recipe"] == "matched") & (df["outcome"] != "unsupported")]
        assert set(matched["framework"]) == {"numpy", "torch", "tensorflow", "jax"}, set(df["framework"])
        bad = matched[matched["outcome"] != "ok"]
        assert bad.empty, bad[["case_id", "api", "outcome", "value_scaled_err", "grad_scaled_err", "tol"]].to_string()


def test_the_issues_example_is_judged_on_the_terms_not_on_the_tiny_result(confident_rows) -> None:
    """torch's gradient on [[10, 0, 0]] is p - 1 ~ -9e-5 from terms of size 1: a relative error of 1e-12
    against the gradient's size is 1e-16 against its terms."""
    for df in confident_rows[1:]:
        torch = df[(df["framework"] == "torch")].iloc[0]
        assert torch.outcome == "ok" and torch.grad_scaled_err <= torch.tol, torch.to_dict()


@pytest.mark.parametrize("case", [c for c in CONFIDENT if c.dtype == "float64"], ids=lambda c: c.id)
def test_every_semantic_variant_fails_on_the_same_confident_inputs(case: Case) -> None:
    inputs = case.inputs()
    ref = evaluate(case.spec, inputs)
    tol = tolerance(case.dtype, case.n_classes, case.n_elements)
    tried = []
    for v in SEMANTIC:
        ev = evaluate_variants((v,), case.spec, inputs)
        if ev is None:
            continue
        tried.append(v.name)
        same = compare(ev.value, ev.grad, ref, case.dtype, tol)
        if v.name in ("0*log(0)=nan", "soft_targets_renormalised", "grad_assumes_normalised_targets"):
            continue  # nothing for them to change here (no -inf logit, no probability targets)
        assert same.outcome != "ok", f"{v.name} reads ok on {case.id}: {same}"
    assert len(tried) >= 3, tried
