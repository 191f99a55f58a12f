"""The reference is known-good: mpmath at 50 digits, central finite differences, hand-computed values."""

from __future__ import annotations

import dataclasses
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
SMOOTH = [c for c in SMALL if c.tag not in ("masked", "p01", "p01soft", "big", "oob")]


def mp_evaluate(spec: LossSpec, inputs: Inputs) -> tuple[list, np.ndarray]:
    """The canonical loss and its gradient written out independently, element by element, in mpmath:
    the reduced values (a list; the elements for 'none', in x's order with classes moved last) and the
    gradient of the reduced loss (an object array of mpf in x's layout; of the sum for 'none')."""
    x_all = inputs.x
    moved = np.moveaxis(x_all, 1, -1) if x_all.ndim > 1 else x_all[:, None]
    c = moved.shape[-1]
    x = moved.reshape(-1, c)
    w = [mpmath.mpf(1)] * c if inputs.weight is None else [mpmath.mpf(float(v)) for v in inputs.weight]
    e = mpmath.mpf(spec.label_smoothing)
    terms, grads, denominator = [], [], mpmath.mpf(0)
    elements = x_all.shape if spec.family == "sigmoid" else x_all.shape[:1] + x_all.shape[2:]
    sw = np.ones(elements) if inputs.sample_weight is None else np.broadcast_to(inputs.sample_weight, elements)
    sw = (np.moveaxis(sw, 1, -1) if spec.family == "sigmoid" and sw.ndim > 1 else sw).reshape(-1)
    undefined = False
    if spec.family == "sigmoid":
        tm = np.moveaxis(inputs.target, 1, -1) if inputs.target.ndim > 1 else inputs.target[:, None]
        for row, trow in zip(x, tm.reshape(-1, c), strict=True):
            for k, (v, t) in enumerate(zip(row, trow, strict=True)):
                t = (1 - e) * mpmath.mpf(float(t)) + e / 2
                v = mpmath.mpf(float(v))
                pos, neg = w[k] * t, 1 - t
                if spec.input == "logits":  # -log s(v) and -log(1 - s(v)), exact at any magnitude
                    nls, nlq = mpmath.log1p(mpmath.exp(-v)), mpmath.log1p(mpmath.exp(v))
                    # s (pos + neg) - pos, as neg s(v) - pos s(-v): at 50 digits 1 - s(337) is 0
                    grads.append(neg / (1 + mpmath.exp(-v)) - pos / (1 + mpmath.exp(v)))
                else:
                    nls, nlq = -mpmath.log(v), -mpmath.log(1 - v)
                    grads.append((-pos / v if pos else 0) + (neg / (1 - v) if neg else 0))
                s = mpmath.mpf(float(sw[len(terms)]))  # a plain multiplier of the element's loss
                grads[-1] *= s
                terms.append(s * ((pos * nls if pos else 0) + (neg * nlq if neg else 0)))
                denominator += 1
    else:
        ys = inputs.target.reshape(-1) if spec.target == "index" else None
        ts = None if ys is not None else np.moveaxis(inputs.target, 1, -1).reshape(-1, c)
        for i, row in enumerate(x):
            row = [mpmath.mpf(float(v)) for v in row]
            s = mpmath.mpf(float(sw[i]))
            if spec.target == "index":
                y = int(ys[i])
                if spec.ignore_index is not None and y == spec.ignore_index:
                    terms.append(mpmath.mpf(0))
                    grads.append([mpmath.mpf(0)] * c)
                    continue
                if not 0 <= y < c:  # PyTorch raises: no value, NaN marks it
                    undefined = True
                    terms.append(mpmath.nan)
                    grads.append([mpmath.nan] * c)
                    continue
                a = [s * w[k] * ((1 - e) * (k == y) + e / c) for k in range(c)]
                denominator += w[y]
            else:
                a = [s * w[k] * ((1 - e) * mpmath.mpf(float(ts[i, k])) + e / c) for k in range(c)]
                denominator += 1
            if spec.input == "logits":
                lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in row))
                logp = [v - lse for v in row]
                p = [mpmath.exp(lp) for lp in logp]
                total = mpmath.fsum(a)
                g = [total * pk - ak for pk, ak in zip(p, a, strict=True)]
                j = max(range(c), key=lambda k: a[k])  # S p - a cancels even at 50 digits as p[j] -> 1: use
                g[j] = -total * mpmath.fsum(p[:j] + p[j + 1 :]) + mpmath.fsum(a[:j] + a[j + 1 :])  # S (p - 1) + r
                grads.append(g)
            elif spec.input == "log_probs":
                logp = row
                grads.append([-ak for ak in a])
            else:
                logp = [mpmath.log(v) if v else -mpmath.inf for v in row]
                grads.append([-ak / v if ak else mpmath.mpf(0) for ak, v in zip(a, row, strict=True)])
            terms.append(-mpmath.fsum(a[k] * logp[k] for k in range(c) if a[k]))
    grad = np.array(grads, dtype=object).reshape(moved.shape)
    grad = np.moveaxis(grad, -1, 1) if x_all.ndim > 1 else grad[:, 0]
    if spec.reduction == "none":
        return terms, grad
    total = mpmath.fsum(terms)
    if spec.reduction == "sum":
        return [total], grad
    if not denominator or undefined:
        return [mpmath.nan], (grad / denominator if undefined else grad * 0)
    return [total / denominator], grad / denominator


def mp_loss(spec: LossSpec, inputs: Inputs) -> list:
    return mp_evaluate(spec, inputs)[0]


def confident(shape: tuple[int, ...], spec: LossSpec = LossSpec(), seed: int = 7) -> Case:  # noqa: B008
    return Case("multiclass", spec, shape, "float64", seed, tag="confident")


# Inputs where the reference's forms matter: a trained model's confident predictions (the loss ~1e-5 and
# the target's gradient p - 1 ~ -1e-5 are what the naive forms cancel), weighted, K-dim, smoothed, extreme.
ACCURACY = [
    confident((6, 10)),
    confident((6, 10), LossSpec(weighted=True)),
    confident((3, 5, 4), LossSpec(weighted=True, reduction="sum")),
    confident((6, 10), LossSpec(label_smoothing=0.1)),
    confident((6, 10), LossSpec(weighted=True, ignore_index=-100, reduction="none")),
    Case("edge", LossSpec(), (6, 10), "float64", 2, tag="big"),
    Case("edge", LossSpec(), (6, 10), "float64", 2, tag="masked"),
    Case("binary", LossSpec(family="sigmoid", target="prob", weighted=True), (6, 4), "float64", 2, tag="big"),
    Case("binary", LossSpec(family="sigmoid", target="prob"), (6, 4), "float64", 2, tag="hard"),
]
EPS64 = 2.0**-52


def _no_cancellation(case: Case) -> bool:
    """The exact gradient is not a difference of two nearly equal terms (a one-hot target, or a binary one)."""
    s = case.spec
    hard = s.family == "softmax" and s.target == "index" and (not s.label_smoothing or case.tag == "confident")
    return hard or (s.family == "sigmoid" and case.tag in ("hard", "big") and not s.label_smoothing)


@pytest.mark.parametrize("case", ACCURACY + [c for c in SMALL if c.tag != "p01soft"], ids=lambda c: c.id)
def test_value_and_gradient_match_mpmath_element_by_element(case: Case) -> None:
    """Values within 16 eps of the exact ones; gradient elements within 8 eps (1 + |log p|) of themselves
    where the exact gradient does not cancel (exp of a rounded log-probability is as good as that gets),
    and within 8 eps of the terms S p + a that make them where it does (a smoothed target near the
    prediction: reference.py's docstring)."""
    inputs = case.inputs()
    ref = evaluate(case.spec, inputs)
    values, grad = mp_evaluate(case.spec, inputs)
    for k, (v, want) in enumerate(zip(np.atleast_1d(ref.value).reshape(-1), values, strict=True)):
        if mpmath.isnan(want) or mpmath.isinf(want):
            assert float(want) == v or (math.isnan(v) and mpmath.isnan(want)), f"value[{k}]={v} [{case.id}]"
            continue
        err = abs(mpmath.mpf(float(v)) - want)
        assert err <= 16 * EPS64 * abs(want), (
            f"value[{k}]={v!r}, mpmath {mpmath.nstr(want, 20)}: rel err {float(err / abs(want)):.3g} [{case.id}]"
        )
    g = np.asarray(ref.grad)
    scale = np.asarray(evaluate(case.spec, inputs).grad_scale)
    strict = _no_cancellation(case)
    logp = _log_p(case, inputs)
    for idx in np.ndindex(g.shape):
        want = grad[idx]
        if mpmath.isnan(want):  # no value where PyTorch raises: the reference marks it NaN too
            assert math.isnan(g[idx]), f"grad{idx}={g[idx]!r}, but should be NaN [{case.id}]"
            continue
        err = abs(mpmath.mpf(float(g[idx])) - want)
        bound = 8 * EPS64 * ((1 + abs(logp[idx])) * abs(float(want)) + (0.0 if strict else float(scale[idx])))
        assert float(err) <= bound + 1e-300, (
            f"grad{idx}={g[idx]!r}, mpmath {mpmath.nstr(want, 20)}: err {float(err):.3g} > {bound:.3g} [{case.id}]"
        )


def _log_p(case: Case, inputs: Inputs) -> np.ndarray:
    """|log p| per element of x, the amplification of a rounded log-probability in p (0 where it is not used)."""
    if case.spec.family != "softmax" or case.spec.input != "logits":
        return np.zeros(inputs.x.shape)
    x = inputs.x
    with np.errstate(all="ignore"):
        lp = (
            x
            - x.max(axis=1, keepdims=True)
            - np.log(np.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True))
        )
    return np.where(np.isfinite(lp), lp, 0.0)


def test_the_naive_forms_would_fail_this_test() -> None:
    """The mpmath check can fail: lse - x[y] and S p - a, the forms the reference replaced, miss it by far."""
    case = confident((6, 10))
    x, y = case.inputs().x, case.inputs().target
    lse = np.log(np.exp(x - x.max(1, keepdims=True)).sum(1)) + x.max(1)
    naive_value = float((lse - x[np.arange(6), y]).mean())
    p = np.exp(x - lse[:, None])
    naive_target_grad = (p[np.arange(6), y] - 1) / 6
    values, grad = mp_evaluate(case.spec, case.inputs())
    assert abs(naive_value - float(values[0])) > 1000 * EPS64 * abs(float(values[0]))
    want = np.array([float(grad[i, y[i]]) for i in range(6)])
    assert (np.abs(naive_target_grad - want) > 1000 * EPS64 * np.abs(want)).any()


def test_a_smoothed_target_at_the_prediction_keeps_the_documented_bound() -> None:
    """p = t' exactly: the gradient is ~0 from terms of size ~t'. Its error stays within eps (S p + a)."""
    e, c = 0.1, 5
    t = np.full(c, e / c)
    t[2] += 1 - e
    x = np.tile(np.log(t), (3, 1)) + np.array([[0.0], [3.0], [-7.0]])  # softmax(x) = t' in every row
    case = Case("user", LossSpec(label_smoothing=e), x.shape, "float64", data=Inputs(x, np.array([2, 2, 2])))
    ref = evaluate(case.spec, case.inputs())
    _, grad = mp_evaluate(case.spec, case.inputs())
    err = np.abs(np.asarray(ref.grad) - grad.astype(float))
    assert (np.abs(grad.astype(float)) < 1e-15).all()  # the exact gradient cancels to (almost) nothing
    assert (err <= 8 * EPS64 * np.asarray(ref.grad_scale)).all(), err.max()


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
        return float(np.sum(evaluate(case.spec, dataclasses.replace(inputs, x=x)).value))

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


def test_a_label_outside_the_classes_has_no_value() -> None:
    """PyTorch raises on it: the canonical loss is undefined there (NaN marks the element and its gradient
    row), and the evaluation says why; its other elements keep their values."""
    ev = evaluate(LossSpec(reduction="none"), Inputs(np.zeros((2, 3)), np.array([3, 1])))
    assert "PyTorch raises on labels outside [0, C)" in ev.undefined
    assert np.isnan(ev.value[0]) and ev.value[1] == pytest.approx(math.log(3)) and np.isnan(ev.grad[0]).all()
    assert not evaluate(LossSpec(), Inputs(np.zeros((1, 3)), np.array([2]))).undefined


def test_seed_golden_values() -> None:
    """The seed articles' worked examples (seeds 000 and 003, cases/documented.py) to the digits they printed."""
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
