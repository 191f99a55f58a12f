"""The reference is known-good: mpmath at 50 digits, central finite differences, hand-computed values."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from adapters.reference import evaluate
from cases.generator import default_cases
from cases.spec import Case, Inputs, LossSpec

mpmath.mp.dps = 50

SMALL = [c for c in default_cases(dtypes=("float64",)) if math.prod(c.shape) <= 1024]
# Finite differences need a smooth neighbourhood: no -inf entries, no probabilities at 0 or 1.
SMOOTH = [c for c in SMALL if c.tag not in ("masked", "p01", "p01soft", "big")]


def mp_loss(spec: LossSpec, inputs: Inputs) -> list:
    """The canonical loss written out independently, element by element, in mpmath."""
    x = np.moveaxis(inputs.x, 1, -1).reshape(-1, inputs.x.shape[1]) if inputs.x.ndim > 1 else inputs.x[:, None]
    c = x.shape[1]
    w = [mpmath.mpf(1)] * c if inputs.weight is None else [mpmath.mpf(float(v)) for v in inputs.weight]
    e = mpmath.mpf(spec.label_smoothing)
    terms, denominator = [], mpmath.mpf(0)
    if spec.family == "sigmoid":
        t_all = np.moveaxis(inputs.target, 1, -1).reshape(-1, c) if inputs.target.ndim > 1 else inputs.target[:, None]
        for row, trow in zip(x, t_all, strict=True):
            for k, (v, t) in enumerate(zip(row, trow, strict=True)):
                t = (1 - e) * mpmath.mpf(float(t)) + e / 2
                v = mpmath.mpf(float(v))
                if spec.input == "logits":  # -log s(v) and -log(1 - s(v)), exact at any magnitude
                    nls, nlq = mpmath.log1p(mpmath.exp(-v)), mpmath.log1p(mpmath.exp(v))
                else:
                    nls, nlq = -mpmath.log(v), -mpmath.log(1 - v)
                pos = w[k] * t * nls if t else 0
                neg = (1 - t) * nlq if t != 1 else 0
                terms.append(pos + neg)
                denominator += 1
    else:
        if spec.target == "index":
            ys = inputs.target.reshape(-1)
        else:
            ts = np.moveaxis(inputs.target, 1, -1).reshape(-1, c)
        for i, row in enumerate(x):
            row = [mpmath.mpf(float(v)) for v in row]
            if spec.input == "logits":
                lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in row))
                logp = [v - lse for v in row]
            elif spec.input == "log_probs":
                logp = row
            else:
                logp = [mpmath.log(v) for v in row]
            if spec.target == "index":
                y = int(ys[i])
                if spec.ignore_index is not None and y == spec.ignore_index:
                    terms.append(mpmath.mpf(0))
                    continue
                a = [w[k] * ((1 - e) * (k == y) + e / c) for k in range(c)]
                denominator += w[y]
            else:
                a = [w[k] * ((1 - e) * mpmath.mpf(float(ts[i, k])) + e / c) for k in range(c)]
                denominator += 1
            terms.append(-mpmath.fsum(a[k] * logp[k] for k in range(c) if a[k]))
    if spec.reduction == "none":
        return terms
    total = mpmath.fsum(terms)
    if spec.reduction == "sum":
        return [total]
    return [total / denominator if denominator else mpmath.nan]


@pytest.mark.parametrize("case", [c for c in SMALL if c.tag not in ("p01soft",)], ids=lambda c: c.id)
def test_value_matches_mpmath(case: Case) -> None:
    ref = evaluate(case.spec, case.inputs())
    # 'none' values (N, d1..) flatten in the order of x with classes moved last, as mp_loss walks them
    got = np.atleast_1d(ref.value).reshape(-1)
    want = mp_loss(case.spec, case.inputs())
    assert len(got) == len(want), f"{len(got)} elements, but mpmath has {len(want)} [{case.id}]"
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        if mpmath.isnan(w):
            assert math.isnan(g), f"value[{k}]={g}, but should be NaN [{case.id}]"
            continue
        err = abs(mpmath.mpf(float(g)) - w) / max(abs(w), mpmath.mpf("1e-300"))
        assert err <= 1e-12, (
            f"value[{k}]={g!r}, but mpmath gives {mpmath.nstr(w, 17)} (rel err {float(err):.3g}) [{case.id}]"
        )


def test_p01soft_is_infinite() -> None:
    """Probabilities of exactly 0 under a positive target: the exact loss is +inf, not PyTorch's clamped 100."""
    case = next(c for c in SMALL if c.tag == "p01soft")
    assert evaluate(case.spec, case.inputs()).value == np.inf


@pytest.mark.parametrize("case", SMOOTH, ids=lambda c: c.id)
def test_gradient_matches_central_differences(case: Case) -> None:
    inputs = case.inputs()
    ref = evaluate(case.spec, inputs)

    def f(x: np.ndarray) -> float:
        return float(np.sum(evaluate(case.spec, Inputs(x, inputs.target, inputs.weight)).value))

    x = inputs.x
    fd = np.zeros_like(x)
    for k in range(x.size):
        # for probabilities a step relative to the distance from 0 and 1 (log p and log(1-p) curve
        # sharply there), else relative to max(1, |x|)
        v = x.flat[k]
        h = 1e-5 * min(v, 1 - v) if case.spec.input == "probs" else 1e-6 * max(1.0, abs(v))
        xp, xm = x.copy(), x.copy()
        xp.flat[k] += h
        xm.flat[k] -= h
        fd.flat[k] = (f(xp) - f(xm)) / (2 * h)
    if np.isnan(ref.value).all():  # every element ignored: nothing depends on x
        assert not ref.grad.any(), f"grad={ref.grad.ravel()[:4]}, but should be 0 [{case.id}]"
        return
    scale = max(np.abs(ref.grad).max(), 1e-12)
    err = np.abs(fd - ref.grad).max() / scale
    assert err < 1e-6, f"max |fd - grad| / max|grad| = {err:.3g} [{case.id}]"


def test_hand_computed_values() -> None:
    """Small examples worked out by hand (not by the reference's formulas)."""
    x = np.array([[0.0, math.log(3.0)]])  # p = [1/4, 3/4]
    spec = LossSpec()
    assert evaluate(spec, Inputs(x, np.array([1]))).value == pytest.approx(-math.log(0.75), rel=1e-15)
    # label smoothing 0.2 over C=2: t' = [0.1, 0.9]
    want = -(0.1 * math.log(0.25) + 0.9 * math.log(0.75))
    assert evaluate(LossSpec(label_smoothing=0.2), Inputs(x, np.array([1]))).value == pytest.approx(want, rel=1e-15)
    # weighted mean divides by the sum of the targets' weights: (2*l0 + 3*l1) / 5
    xs = np.array([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
    got = evaluate(LossSpec(weighted=True), Inputs(xs, np.array([0, 1]), np.array([2.0, 3.0]))).value
    assert got == pytest.approx((2 * -math.log(0.25) + 3 * -math.log(0.75)) / 5, rel=1e-15)
    # ignored element contributes nothing; the mean is over the rest
    got = evaluate(LossSpec(ignore_index=-100), Inputs(xs, np.array([-100, 1]))).value
    assert got == pytest.approx(-math.log(0.75), rel=1e-15)
    # sigmoid with pos_weight 2 at x=0: 2 * t * log 2 + (1 - t) log 2 with t = 1
    got = evaluate(LossSpec(family="sigmoid", target="prob", weighted=True),
                   Inputs(np.array([[0.0]]), np.array([[1.0]]), np.array([2.0]))).value  # fmt: skip
    assert got == pytest.approx(2 * math.log(2.0), rel=1e-15)


def test_gradient_of_all_ignored_mean_is_zero_and_value_nan() -> None:
    spec = LossSpec(ignore_index=-100)
    ref = evaluate(spec, Inputs(np.ones((2, 3)), np.array([-100, -100])))
    assert math.isnan(ref.value) and not ref.grad.any()


def test_out_of_range_label_is_an_error() -> None:
    with pytest.raises(ValueError, match="Received: target value 3"):
        evaluate(LossSpec(), Inputs(np.zeros((1, 3)), np.array([3])))


def test_seed_golden_values() -> None:
    """The seeds' worked examples (shared/seeds/000 and 003) to the digits the articles printed."""
    from cases.documented import documented_cases

    got = {c.name: float(evaluate(c.spec, c.inputs()).value) for c in documented_cases(("float64",))}
    assert round(got["seed000"], 4) == 0.1269
    assert round(got["seed003a"], 4) == 0.5556
    assert round(got["seed003b"], 4) == 1.0322
    assert round(got["seed003c"], 4) == 1.0302
    assert round(got["seed001intended"], 4) == 0.9163  # -log(0.4)
    assert round(got["seed004nll"], 4) == -0.1399
    # The two wrong claims: what CrossEntropyLoss really gives on those inputs.
    assert got["seed001"] == pytest.approx(math.log(2 * math.exp(0.3) + math.exp(0.4)) - 0.4, rel=1e-14)
    x = np.array([[1.1879, 1.0780, 0.5312], [-0.3499, -1.9253, -1.5725], [-0.6578, -0.0987, 1.1570]])
    by_hand = np.mean([math.log(np.exp(r).sum()) - r[i] for i, r in enumerate(x)])
    assert got["seed004"] == pytest.approx(by_hand, rel=1e-14)


SOFTMAX_KINDS = [c for c in default_cases() if c.spec.family == "softmax"]


@pytest.mark.parametrize("case", SOFTMAX_KINDS[::3], ids=lambda c: c.id)
def test_blocks_of_rows_change_no_bit(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference works a block of rows at a time (memory); a row's sums do not depend on the
    block, so one row per block gives the same bits as one block, and so does a lazy gradient."""
    import adapters.reference as reference

    monkeypatch.setattr(reference, "BLOCK_ELEMENTS", 2**40)
    whole = evaluate(case.spec, case.inputs(), case.dtype)
    monkeypatch.setattr(reference, "BLOCK_ELEMENTS", 1)
    rows = evaluate(case.spec, case.inputs(), case.dtype)
    lazy = evaluate(case.spec, case.inputs(), case.dtype, lazy=True)
    for name, how in (("value", ""), ("grad", ""), ("scale", ""), ("grad", "lazy=True, ")):
        a, b = getattr(whole, name), np.asarray(getattr(lazy if how else rows, name))
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), (
            f"{name} differs by up to {np.nanmax(np.abs(a - b)):.3g} [evaluate({case.id}, {how}) with BLOCK_ELEMENTS=1]"
        )
