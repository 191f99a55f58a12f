"""The linear kind (a language model's head): its spec's rules, its cases' ids and arrays."""

from __future__ import annotations

import numpy as np
import pytest

from cases.generator import VOCABULARIES, default_cases, linear_timing_cases, timing_plan
from cases.names import UsageError
from cases.spec import Case, LossSpec


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"linear": True, "input": "probs"}, "Expected a softmax of logits with index targets for linear=True"),
        ({"linear": True, "target": "prob"}, "Expected a softmax of logits with index targets for linear=True"),
        ({"linear": True, "sample_weighted": True}, "Expected no sample weights or micro-batches for linear=True"),
        ({"bias": True}, "Expected bias=True only with linear=True"),
    ],
)
def test_a_linear_spec_rejects_what_a_head_cannot_be(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        LossSpec(**kwargs)


def test_a_linear_case_needs_its_hidden_size_and_names_it() -> None:
    spec = LossSpec(linear=True, bias=True, ignore_index=-100)
    case = Case("linear", spec, (64, 32000), "bfloat16", hidden=32)
    assert case.id == "linear-n64-c32000-h32-bf16-linb-iim100-mean-s0"
    assert case.shape_str == "64x32 @ 32000x32" and case.n_classes == 32000 and case.n_elements == 64
    with pytest.raises(UsageError, match="Expected hidden > 0"):
        Case("linear", spec, (64, 32000))
    with pytest.raises(UsageError, match="Expected hidden > 0"):
        Case("multiclass", LossSpec(), (64, 10), hidden=8)


def test_a_linear_cases_arrays_are_a_head_rounded_to_its_dtype() -> None:
    case = Case("linear", LossSpec(linear=True, bias=True, weighted=True, ignore_index=-100), (64, 1000), "bfloat16",
                hidden=16)  # fmt: skip
    a, b = case.inputs(), case.inputs()
    assert a.x.shape == (64, 16) and a.classifier.shape == (1000, 16) and a.bias.shape == (1000,)
    assert a.weight.shape == (1000,) and a.target.shape == (64,)
    assert np.array_equal(a.classifier, b.classifier) and np.array_equal(a.target, b.target)
    f32 = a.classifier.astype(np.float32).view(np.uint32)
    assert not (f32 & 0xFFFF).any(), "W holds bfloat16 values"
    kept = a.target[a.target != -100]
    assert ((kept >= 0) & (kept < 1000)).all() and (a.target == -100).any()
    z = a.x @ a.classifier.T
    assert 1.0 < z.std() < 4.0, "logits at the standard cases' scale"


def test_the_default_run_covers_the_three_vocabularies_in_float32_and_bfloat16() -> None:
    cases = default_cases(kinds=("linear",))
    assert all(c.spec.linear and c.hidden for c in cases)
    for c in VOCABULARIES:
        assert {x.dtype for x in cases if x.n_classes == c} == {"float64", "float32", "bfloat16"}
    specs = {x.spec for x in cases}
    assert {s.reduction for s in specs} == {"mean", "sum", "none"}
    assert any(s.bias for s in specs) and any(s.weighted and s.label_smoothing for s in specs)
    assert not default_cases(kinds=("multiclass",), dtypes=("float32",))[0].spec.linear


def test_the_large_heads_are_timed_with_timing_full_only() -> None:
    assert not any(c.hidden for c in timing_plan("default")["cpu"])
    full = [c for c in timing_plan("full")["cpu"] if c.hidden]
    assert {c.n_classes for c in full} == set(VOCABULARIES)
    assert {c.n_classes for c in linear_timing_cases("gpu")} == set(VOCABULARIES)
