"""The seed articles' hand-written losses (adapters/handwritten.py), run by the NumPy adapter and judged as a run
judges them: each native row's value is the article's formula computed here by hand, its difference from PyTorch
is named by the variant that models it, and each matched row (the article's code with the fix) is ok.
"""

from __future__ import annotations

import numpy as np
import pytest

from adapters.handwritten import SEED000, SEED002, SEED004
from adapters.numpy_adapter import ADAPTER, GRADIENT_MAX_ELEMENTS
from adapters.reference import Semantics, evaluate
from adapters.variants import BY_NAME
from cases.documented import documented_cases
from cases.generator import default_cases
from cases.spec import Inputs, LossSpec
from harness.judge.explain import explain

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _cases(kinds: tuple[str, ...], dtypes: tuple[str, ...] = ("float64",), **spec: object) -> list:
    out = [
        c for c in default_cases(kinds=kinds, dtypes=dtypes) if all(getattr(c.spec, k) == v for k, v in spec.items())
    ]
    return out


def _rows(judged, cases, api: str) -> list:
    return [r for r in judged(ADAPTER, cases) if r.api == api]


def test_seed002_clips_and_sums_as_the_article_writes(judged) -> None:
    """Seed 002: p = clip(p, eps, 1 - eps), eps = 1e-7, loss = -sum(t log p + (1 - t) log(1 - p)); its
    gradient (complex step) is the clipped loss' derivative, -(t/p - (1 - t)/(1 - p)) where the clip passes p."""
    cases = _cases(("binary",), family="sigmoid", input="probs", sample_weighted=False)
    rows = _rows(judged, cases, SEED002)
    native = {r.case.id: r for r in rows if r.recipe == "native"}
    assert len(native) == 4, sorted(native)
    for r in native.values():
        p, t = r.inputs.x, r.inputs.target
        q = np.clip(p, 1e-7, 1 - 1e-7)
        assert r.value == pytest.approx(-np.sum(t * np.log(q) + (1 - t) * np.log(1 - q)), rel=1e-14)
        inside = (p >= 1e-7) & (p <= 1 - 1e-7)
        assert np.allclose(r.grad, -(t / q - (1 - t) / (1 - q)) * inside, rtol=1e-12, atol=0)
        assert r.row["grad_method"] == "complex-step"
    by_tag = {(r.case.tag, r.case.spec.reduction): r.row["explanation"] for r in native.values()}
    assert by_tag == {
        ("hard", "mean"): "reduction=sum",  # nothing below 1e-7: the clip changes nothing, the sum does
        ("p01", "mean"): "reduction=sum+prob_clip=1e-7",  # exact 0s and 1s read as 1e-7 and 1 - 1e-7
        ("p01", "sum"): "prob_clip=1e-7",
        ("p01soft", "mean"): "reduction=sum+prob_clip=1e-7",  # the exact loss is inf; the clipped one is not
    }, by_tag
    matched = [r for r in rows if r.recipe == "matched"]
    assert {r.outcome for r in matched} == {"ok"}, [(r.case.id, r.outcome, r.error) for r in matched]
    inf = next(r for r in matched if r.case.tag == "p01soft")
    assert inf.row["grad_method"] == "none" and "not finite" in inf.result.error  # inf - inf: nothing to difference


def test_seed000_sums_over_the_batch(judged) -> None:
    """Seeds 000/001: -sum_k p_k log q_k as one np.sum: the batch's sum, N times PyTorch's mean."""
    cases = [*_cases(("multiclass",), ("float64", "float32"), input="probs"), *documented_cases()]
    rows = _rows(judged, cases, SEED000)
    native = [r for r in rows if r.recipe == "native"]
    assert len(native) == 4
    for r in native:
        n = r.case.shape[0]
        if r.case.dtype == "float64":
            assert r.value == pytest.approx(n * float(r.ref.value), rel=1e-13)
        assert r.row["explanation"] == ("" if n == 1 else "reduction=sum"), r.case.id  # seed001: one sample
        assert r.outcome == ("ok" if n == 1 else "mismatch")
    assert {r.outcome for r in rows if r.recipe == "matched"} == {"ok"}


def _rounded_loss(x: np.ndarray, y: np.ndarray) -> float:
    """Seed 004's loss, here in NumPy: the softmax rounded to 3 decimals, its log, the mean NLL."""
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = np.round(e / e.sum(axis=1, keepdims=True), 3)
    with np.errstate(divide="ignore"):
        return float(-np.log(p[np.arange(len(y)), y]).mean())


def test_seed004_rounds_its_softmax(judged) -> None:
    cases = [*_cases(("multiclass", "edge"), ("float64", "float32"), ignore_index=None, weighted=False,
                     sample_weighted=False), *documented_cases()]  # fmt: skip
    rows = _rows(judged, cases, SEED004)
    native = [r for r in rows if r.recipe == "native" and r.outcome != "unsupported"]
    two_d = [r for r in native if r.case.spec.reduction == "mean" and r.inputs.x.ndim == 2 and r.case.tag != "oob"]
    for r in two_d:
        if r.case.tag in ("big", "big1e3"):  # math.exp overflows past 709
            assert r.outcome == "raised" and r.error.startswith("OverflowError"), (r.case.id, r.error)
            continue
        want = _rounded_loss(r.inputs.x, r.inputs.target)
        assert r.value == pytest.approx(want, rel=1e-12) or (np.isinf(r.value) and np.isinf(want)), r.case.id
        assert r.row["grad_method"] == "none" and "piecewise constant" in r.result.error  # why: the row's note
        assert r.outcome in ("mismatch", "nonfinite") and r.row["explanation"] == "probs_rounded=3", r.case.id
    assert any(np.isinf(r.value) for r in two_d if r.outcome == "nonfinite"), "a probability rounded to 0: inf"
    summed = [r for r in native if r.case.spec.reduction == "sum"]
    for r in summed:  # the article averages; an infinite mean is an infinite sum: then rounding alone names it
        want = "probs_rounded=3" if np.isinf(r.value) else "reduction=mean+probs_rounded=3"
        assert r.row["explanation"] == want, (r.case.id, r.row["explanation"])
    assert summed
    matched = [r for r in rows if r.recipe == "matched" and r.case.tag != "oob"]
    assert {r.outcome for r in matched} == {"ok"}, [
        (r.case.id, r.outcome, r.error) for r in matched if r.outcome != "ok"
    ]
    assert {r.row["grad_method"] for r in matched if r.inputs.x.size <= 1280} == {"complex-step"}
    confident = [r for r in matched if r.case.tag == "confident"]
    assert confident and all(f"over the {GRADIENT_MAX_ELEMENTS['run']} it is taken for here" in r.result.error for r in confident)
    oob = [r for r in rows if r.case.tag == "oob"]
    assert {r.outcome for r in oob} == {"raised"}  # labels outside [0, C): IndexError, as PyTorch raises


def test_lower_dtypes_judge_the_value_and_bfloat16_is_left_out(judged) -> None:
    cases = _cases(("multiclass",), ("float16", "bfloat16"), ignore_index=None, weighted=False, reduction="mean",
                   sample_weighted=False, input="logits")[:2]  # fmt: skip
    rows = _rows(judged, cases, SEED004)
    f16 = [r for r in rows if r.case.dtype == "float16"]
    assert {r.row["grad_method"] for r in f16} == {"none"}
    assert all(r.result.error.startswith("float16") for r in f16 if r.recipe == "matched")
    loss_dtypes = {r.recipe: r.result.loss_dtype for r in f16}
    assert loss_dtypes == {"native": "float64", "matched": "float16"}  # the article's math.exp: Python floats
    assert {r.outcome for r in rows if r.case.dtype == "bfloat16"} == {"unsupported"}


def test_probs_rounded_is_named_only_where_registered() -> None:
    """The variant models seed 004's rounding; for an API the registry does not list it for it is not tried (an
    infinite value-only row, a float16 overflow, would otherwise be read as a rounded softmax)."""
    case = _cases(("multiclass",), ignore_index=None, weighted=False, reduction="mean", sample_weighted=False,
                  input="logits")[0]  # fmt: skip
    inputs = case.inputs()
    ref = evaluate(case.spec, inputs)
    value = np.asarray(_rounded_loss(inputs.x, inputs.target))
    assert explain(case, value, None, ref, ("probs_rounded=3",), inputs=inputs) == "probs_rounded=3"
    assert explain(case, value, None, ref, (), inputs=inputs) == ""
    assert BY_NAME["probs_rounded=3"].registered_only


def test_a_clipped_softmax_is_prob_clip_on_logits() -> None:
    """prob_clip=1e-7 on logits: softmax(x) clipped, then logged; its gradient through the softmax equals the
    complex-step derivative of a NumPy implementation of exactly that (weights and smoothing included)."""
    from adapters.numerical import complex_step

    rng = np.random.default_rng(1)
    x, y, w = rng.uniform(-30, 30, (16, 10)), rng.integers(0, 10, 16), rng.uniform(0.5, 2, 10)
    a = (0.9 * np.eye(10)[y] + 0.01) * w

    def clipped(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return -(a * np.log(np.clip(e / e.sum(axis=1, keepdims=True), 1e-7, 1 - 1e-7))).sum() / w[y].sum()

    ev = evaluate(LossSpec(weighted=True, label_smoothing=0.1), Inputs(x, y, w), semantics=Semantics(probs_clip=True))
    assert float(ev.value) == pytest.approx(float(clipped(x)), rel=1e-14)
    assert np.abs(np.asarray(ev.grad) - complex_step(clipped, x)).max() < 1e-15
    assert BY_NAME["prob_clip=1e-7"].applies(LossSpec(), Inputs(x, y))
