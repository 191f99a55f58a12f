"""Numerical gradients (adapters/numerical.py) and the judge's allowance for them (tolerances.numerical_gradient_slack).

Both directions: a correct hand-written loss' numerical gradient is within the allowance of the exact gradient
(the reference's analytic one, itself checked against mpmath in test_reference.py) on typical, confident and
probability inputs; a gradient off by 1e-6 relative is not.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from adapters import numerical
from adapters.reference import evaluate
from cases.spec import Inputs, LossSpec
from harness.judge.tolerances import COMPLEX_STEP_FLOOR, numerical_gradient_slack, tolerance

RNG = np.random.default_rng(0)


def _ce(y: np.ndarray):
    """A stable NumPy cross-entropy (mean over N) of index targets y."""

    def f(x: np.ndarray):
        m = x.max(axis=1, keepdims=True)
        logp = x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))
        return -np.take_along_axis(logp, y[:, None], axis=1).mean()

    return f


def _logits(kind: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = RNG.normal(0, 2, (16, 10)), RNG.integers(0, 10, 16)
    if kind == "confident":  # the target 8 to 14 above the others: p_y = 1 - 1e-5, other classes' p down to 1e-8
        x[np.arange(16), y] = x.max(axis=1) + RNG.uniform(8, 14, 16)
    return x, y


def _within(grad: np.ndarray, method: str, spec: LossSpec, inputs: Inputs, scale: float = 1.0) -> bool:
    """The judge's test for a numerical gradient: |g - gr| <= tol gs + slack, element by element (float64)."""
    ref = evaluate(spec, inputs)
    n, c = inputs.x.shape[0], inputs.x.shape[1]
    tol = tolerance("float64", c, n)
    gs = np.asarray(ref.grad_scale)
    slack = numerical_gradient_slack(method, gs, float(np.sum(ref.scale)), inputs.x, spec.input, c, n)
    return bool(np.all(np.abs(grad * scale - np.asarray(ref.grad)) <= tol * gs + slack))


@pytest.mark.parametrize("kind", ["typical", "confident"])
def test_complex_step_is_exact_to_float64_rounding(kind: str) -> None:
    x, y = _logits(kind)
    grad, method = numerical.gradient(_ce(y), x)
    assert method == "complex-step"
    inputs = Inputs(x, y)
    assert _within(grad, method, LossSpec(), inputs), "a correct loss' complex-step gradient is within the allowance"
    assert not _within(grad, method, LossSpec(), inputs, scale=1 + 1e-6), "1e-6 off is caught"
    assert COMPLEX_STEP_FLOOR < 1e-220


@pytest.mark.parametrize("kind", ["typical", "confident"])
def test_central_differences_stay_within_the_derived_bound(kind: str) -> None:
    x, y = _logits(kind)
    grad = numerical.central_differences(_ce(y), x)
    inputs = Inputs(x, y)
    ref = np.asarray(evaluate(LossSpec(), inputs).grad)
    assert np.abs(grad - ref).max() < 1e-9  # eps^(2/3) of terms of size 1 over N
    assert _within(grad, "central-difference", LossSpec(), inputs)
    # the rounding term is absolute (eps S_F / h): on a confident prediction, whose gradients are ~1e-6 beside a
    # loss scale of 1, central differences resolve 1% of them, not 1e-6 (the complex step resolves both)
    caught = 1e-6 if kind == "typical" else 1e-2
    assert not _within(grad, "central-difference", LossSpec(), inputs, scale=1 + caught)


def test_central_differences_on_probabilities_step_inside_zero_one() -> None:
    """BCE on probabilities with exact 0s and 1s (hard targets agreeing): relative steps inside (0, 1), a
    one-sided three-point formula at 0 and 1; the gradient there is (1 - t)/(1 - p) - t/p, 1 or -1."""
    t = RNG.integers(0, 2, (16, 4)).astype(float)
    p = RNG.uniform(0.001, 0.999, (16, 4))
    p.flat[::4] = t.flat[::4]  # saturated, agreeing with the target: the exact loss is finite

    def bce(x: np.ndarray):
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 log 0: the branch np.where discards
            pos = np.where(t != 0, t * np.log(x), 0)
            neg = np.where(t != 1, (1 - t) * np.log(1 - x), 0)
        return -(pos + neg).mean()

    spec, inputs = LossSpec(family="sigmoid", input="probs", target="prob"), Inputs(p, t)
    for method in ("complex-step", "central-difference"):
        grad, used = numerical.gradient(bce, p, "probs", method)
        assert used == method and _within(grad, used, spec, inputs), method
        assert not _within(grad, used, spec, inputs, scale=1 + 1e-6), method
    at_zero = p.flat[::4] == 0
    grad = numerical.central_differences(bce, p, "probs")
    assert np.allclose(grad.flat[::4][at_zero] * p.size, 1.0, rtol=1e-8)


def test_complex_step_is_used_only_where_the_function_is_analytic() -> None:
    x, y = _logits("typical")

    def clipped(z):  # np.clip orders complex numbers by their real part: the clipped function's derivative
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return -np.log(np.clip(e / e.sum(axis=1, keepdims=True), 1e-7, 1 - 1e-7))[np.arange(16), y].mean()

    def plain(z):  # math drops the imaginary part (ComplexWarning) or raises
        return sum(-math.log(math.exp(r[k]) / sum(math.exp(v) for v in r)) for r, k in zip(z, y, strict=True)) / 16

    def with_abs(z):  # |z| is not analytic: a softplus written with abs
        return (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))).sum()

    def cast(z):
        return _ce(y)(np.asarray(z).astype(np.float64))

    def rounded(z):
        return -np.log(np.round(np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), 3) + 1)[np.arange(16), y].mean()

    assert numerical.choose_method(_ce(y), x) == "complex-step"
    assert numerical.choose_method(clipped, x) == "complex-step"
    for f in (plain, with_abs, cast):
        assert numerical.choose_method(f, x) == "central-difference", f.__name__
    # np.round rounds the imaginary part away too: the probe sees a derivative of 0 where central differences
    # see 0 as well (a piecewise-constant function), so either is the function's derivative
    assert numerical.choose_method(rounded, x) in ("complex-step", "central-difference")
    softplus = numerical.gradient(with_abs, x)[0]
    assert np.allclose(softplus, 1 / (1 + np.exp(-x)), rtol=1e-8), "central differences see the abs"
