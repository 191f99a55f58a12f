from __future__ import annotations

import numpy as np

from adapters.reference import Evaluation
from harness.judge.metrics import compare
from harness.judge.tolerances import tolerance, ulp


def ev(value, grad, scale=None) -> Evaluation:
    value = np.asarray(value, float)
    return Evaluation(value, np.asarray(grad, float), np.abs(value) if scale is None else np.asarray(scale, float))


def test_ulp_matches_numpy_spacing() -> None:
    for v, dt in [(1.0, "float32"), (3.0, "float16"), (1e-3, "float64"), (1e-45, "float32")]:
        assert ulp(v, dt) == float(np.spacing(np.array(v, dtype=dt))), (v, dt)


def test_ok_within_tolerance_and_mismatch_beyond() -> None:
    ref = ev(1.0, [0.5, -0.5])
    tol = tolerance("float32", 10, 64)
    c = compare(np.array(1.0 + 2**-23), np.array([0.5, -0.5]), ref, "float32", tol)
    assert c.outcome == "ok" and c.value_ulp_err == 1.0, c
    c = compare(np.array(1.001), np.array([0.5, -0.5]), ref, "float32", tol)
    assert c.outcome == "mismatch" and abs(c.value_rel_err - 1e-3) < 1e-12, c
    c = compare(np.array(1.0), np.array([0.5, -0.4]), ref, "float32", tol)
    assert c.outcome == "mismatch" and abs(c.grad_rel_err - 0.2) < 1e-12, c


def test_nonfinite_is_its_own_outcome_and_equal_nans_are_ok() -> None:
    ref = ev(np.nan, [0.0, 0.0], np.nan)
    assert compare(np.array(np.nan), np.zeros(2), ref, "float64", 1e-14).outcome == "ok"
    c = compare(np.array(100.0), np.zeros(2), ev(np.inf, [0.0, 0.0]), "float64", 1e-14)
    assert c.outcome == "nonfinite" and "reference 1" in c.error
    assert compare(np.array(np.nan), np.zeros(2), ev(np.inf, [0, 0]), "float64", 1e-14).outcome == "nonfinite"


def test_scale_keeps_cancelled_losses_meaningful() -> None:
    # a loss that cancels to 1e-10 from terms of size 10: an error of 1e-15 is rounding, not a bug
    ref = ev(1e-10, [0.0], 10.0)
    assert compare(np.array(1e-10 + 1e-15), np.zeros(1), ref, "float64", tolerance("float64", 10, 1)).outcome == "ok"


def test_shape_mismatch_is_reported() -> None:
    c = compare(np.zeros(3), np.zeros(2), ev(np.zeros(2), np.zeros(2)), "float64", 1e-14)
    assert c.outcome == "mismatch" and "shape" in c.error


def test_gradient_maxima_in_blocks_equal_the_whole_array() -> None:
    """compare() takes |g - gr| a block of rows at a time, in float64 for a float32 gradient."""
    import harness.judge.metrics as metrics

    rng = np.random.default_rng(1)
    gr = rng.standard_normal((300, 700))
    g = (gr + 1e-3 * rng.standard_normal(gr.shape)).astype(np.float32)
    g[5, 7], gr[9, 1], g[200, 3], gr[200, 3] = np.nan, np.inf, np.inf, np.inf  # skipped where either is not finite
    f = np.isfinite(g) & np.isfinite(gr)
    d, m = np.abs(g[f].astype(np.float64) - gr[f]).max(), np.abs(gr[f]).max()
    want = metrics.GradErrors(d, m, False, 2, 2, d / m)  # no scale given: the norm-wise error
    assert metrics.block_rows(g.shape) < len(g), "the case must span several blocks"
    got = metrics._grad_maxima(g, gr)
    assert got == want, f"{got} != {want} [_grad_maxima(300x700)]"
    g[9, 1], gr[5, 7] = np.inf, np.nan  # now the same in every block
    got = metrics._grad_maxima(g, gr)
    assert got.same_nonfinite and got.nonfinite == got.ref_nonfinite == 3, f"{got} [_grad_maxima, same non-finite]"


def test_a_lazy_reference_gradient_judges_as_the_array() -> None:
    """The run's reference remakes its gradient per block (GradRows): every figure of a comparison,
    the non-finite check included, is the one the whole array gives."""
    from adapters.reference import GradRows, evaluate
    from cases.spec import Case, LossSpec

    case = Case("edge", LossSpec(weighted=True), (40, 900), "float64", 0)
    inputs = case.inputs()
    eager, lazy = evaluate(case.spec, inputs), evaluate(case.spec, inputs, lazy=True)
    assert isinstance(lazy.grad, GradRows) and lazy.grad.shape == eager.grad.shape
    grad = eager.grad * (1 + 1e-9)
    grad[3, 5] = np.nan
    for value, g in ((eager.value, eager.grad), (eager.value * 1.001, grad), (eager.value, grad.astype(np.float32))):
        want, got = compare(value, g, eager, "float64", 1e-12), compare(value, g, lazy, "float64", 1e-12)
        assert got == want, f"{got} != {want} [compare(..., GradRows reference)]"


def test_without_a_gradient_the_value_alone_is_judged() -> None:
    """An inference runtime returns no gradient: a right value is ok, a wrong one still a mismatch."""
    ref = ev(1.0, [0.5, -0.5])
    tol = tolerance("float32", 10, 64)
    c = compare(np.array(1.0 + 2**-23), None, ref, "float32", tol)
    assert c.outcome == "ok" and np.isnan(c.grad_rel_err) and np.isnan(c.grad_scaled_err), c
    c = compare(np.array(1.001), None, ref, "float32", tol)
    assert c.outcome == "mismatch" and abs(c.value_rel_err - 1e-3) < 1e-12, c
    c = compare(np.array(np.inf), None, ref, "float32", tol)
    assert c.outcome == "nonfinite" and "grad" not in c.error, c
