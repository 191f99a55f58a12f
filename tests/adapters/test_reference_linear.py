"""A linear head's reference (adapters/reference.py, `_linear`): the loss of E Wᵀ + b and its gradients with respect
to E and [W | b], against mpmath at 50 digits (central differences of the loss written out independently), and
its error scales judged in both directions (a correct float32 computation passes, a 1% gradient error does not)."""

from __future__ import annotations

import dataclasses

import mpmath
import numpy as np
import pytest

from adapters.reference import Evaluation, _row_blocks, evaluate, head_products, head_view, linear_logits
from adapters.variants import BY_NAME, evaluate_variants
from cases.generator import default_cases
from cases.spec import Case, Inputs, LossSpec
from harness.judge.metrics import compare
from harness.judge.tolerances import tolerance

mpmath.mp.dps = 50
N, D, C = 3, 4, 5
IGNORE = -100


def small(bias: bool = False, weighted: bool = False) -> Inputs:
    rng = np.random.default_rng(3)
    target = np.array([1, IGNORE, 4])  # one ignored row: the mean's denominator and a zero gradient row
    return Inputs(
        x=rng.normal(size=(N, D)), target=target, weight=rng.uniform(0.5, 2.0, C) if weighted else None,
        classifier=rng.normal(0, 0.8, size=(C, D)), bias=rng.normal(0, 0.5, C) if bias else None,
    )  # fmt: skip


def mp_loss(spec: LossSpec, e: list, w: list, b: list | None, inputs: Inputs) -> mpmath.mpf:
    """The canonical loss of z = E Wᵀ + b, written out element by element (docs/DESIGN.md)."""
    eps = mpmath.mpf(spec.label_smoothing)
    cw = [mpmath.mpf(1)] * C if inputs.weight is None else [mpmath.mpf(float(v)) for v in inputs.weight]
    terms, denominator = [], mpmath.mpf(0)
    for i in range(N):
        y = int(inputs.target[i])
        if y == spec.ignore_index:
            terms.append(mpmath.mpf(0))
            continue
        z = [mpmath.fsum(e[i][d] * w[c][d] for d in range(D)) + (b[c] if b else 0) for c in range(C)]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z))
        a = [cw[c] * ((1 - eps) * (c == y) + eps / C) for c in range(C)]
        terms.append(-mpmath.fsum(a[c] * (z[c] - lse) for c in range(C)))
        denominator += cw[y]
    if spec.reduction == "mean":
        return mpmath.fsum(terms) / denominator
    return mpmath.fsum(terms) if spec.reduction == "sum" else terms


def mp_gradients(spec: LossSpec, inputs: Inputs) -> tuple[np.ndarray, np.ndarray]:
    """d loss / dE and d loss / d[W | b] by central differences at 50 digits (h = 1e-20: error ~h^2)."""
    e = [[mpmath.mpf(float(v)) for v in row] for row in inputs.x]
    w = [[mpmath.mpf(float(v)) for v in row] for row in inputs.classifier]
    b = None if inputs.bias is None else [mpmath.mpf(float(v)) for v in inputs.bias]
    h = mpmath.mpf("1e-20")
    summed = dataclasses.replace(spec, reduction="sum") if spec.reduction == "none" else spec

    def derivative(params: list, i: int, j: int | None) -> float:
        def at(delta: mpmath.mpf) -> mpmath.mpf:
            old = params[i][j] if j is not None else params[i]
            if j is not None:
                params[i][j] = old + delta
            else:
                params[i] = old + delta
            try:
                return mp_loss(summed, e, w, b, inputs)
            finally:
                if j is not None:
                    params[i][j] = old
                else:
                    params[i] = old

        return float((at(h) - at(-h)) / (2 * h))

    grad_e = np.array([[derivative(e, i, d) for d in range(D)] for i in range(N)])
    grad_w = np.array([[derivative(w, c, d) for d in range(D)] for c in range(C)])
    if b is not None:
        grad_w = np.concatenate([grad_w, np.array([[derivative(b, c, None)] for c in range(C)])], axis=1)
    return grad_e, grad_w


LINEAR = LossSpec(linear=True, ignore_index=IGNORE)
SPECS = {
    "mean": LINEAR,
    "bias": dataclasses.replace(LINEAR, bias=True),
    "weighted-smoothed": dataclasses.replace(LINEAR, weighted=True, label_smoothing=0.1),
    "sum": dataclasses.replace(LINEAR, reduction="sum"),
    "none-bias": dataclasses.replace(LINEAR, reduction="none", bias=True),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_value_and_both_gradients_match_mpmath(name: str) -> None:
    spec = SPECS[name]
    inputs = small(bias=spec.bias, weighted=spec.weighted)
    ev = evaluate(spec, inputs)
    e = [[mpmath.mpf(float(v)) for v in row] for row in inputs.x]
    w = [[mpmath.mpf(float(v)) for v in row] for row in inputs.classifier]
    b = None if inputs.bias is None else [mpmath.mpf(float(v)) for v in inputs.bias]
    value = mp_loss(spec, e, w, b, inputs)
    want = np.array([float(v) for v in value]) if isinstance(value, list) else float(value)
    np.testing.assert_allclose(ev.value, want, rtol=1e-14, atol=1e-15)
    grad_e, grad_w = mp_gradients(spec, inputs)
    assert ev.grad.shape == (N, D) and ev.grad_w.shape == (C, D + spec.bias)
    np.testing.assert_allclose(ev.grad, grad_e, rtol=0, atol=1e-14 * np.abs(grad_e).max())
    np.testing.assert_allclose(ev.grad_w, grad_w, rtol=0, atol=1e-14 * np.abs(grad_w).max())
    assert not ev.grad[1].any(), "the ignored row's hidden state gets no gradient"


def test_the_logits_are_materialised_in_the_computing_dtype() -> None:
    inputs = small(bias=True)
    z32 = linear_logits(inputs, np.dtype(np.float32))
    assert z32.dtype == np.float32
    exact = inputs.x @ inputs.classifier.T + inputs.bias
    assert np.abs(z32 - exact).max() <= 1e-6 * np.abs(exact).max()
    spec, view = head_view(LossSpec(linear=True, bias=True), inputs)  # what variants' applicability reads
    assert spec.linear and view.x.shape == (N, C) and np.allclose(view.x, exact, rtol=1e-15)


def judged(spec: LossSpec, case: Case, value: np.ndarray, grad: np.ndarray, grad_w: np.ndarray) -> object:
    inputs = case.inputs()
    tol = tolerance(case.dtype, case.n_classes, case.n_elements)
    return compare(value, grad, evaluate(spec, inputs), case.dtype, tol, grad_w)


def test_a_correct_float32_head_passes_and_a_one_percent_gradient_error_does_not() -> None:
    """The scales in both directions: the reference computed in float32 (logits materialised in float32, the chain
    rule in float32) is within tol of the float64 one; 1% more on one row of dW, or on one row of dE, is not."""
    spec = LossSpec(linear=True, ignore_index=IGNORE)
    case = Case("linear", spec, (64, 32000), "float32", hidden=32)
    f32 = evaluate(spec, case.inputs(), "float32")
    ok = judged(spec, case, f32.value, f32.grad, f32.grad_w)
    assert ok.outcome == "ok", ok
    assert ok.grad_w_scaled_err > 0 and ok.grad_scaled_err > 0
    for part in ("grad", "grad_w"):
        g, gw = np.array(f32.grad, np.float64), np.array(f32.grad_w, np.float64)
        target = g if part == "grad" else gw
        row = int(np.argmax(np.abs(target).sum(axis=1)))
        target[row] *= 1.01
        bad = judged(spec, case, f32.value, g, gw)
        assert bad.outcome == "mismatch", (part, bad)
        assert getattr(bad, f"{part}_scaled_err") > case_tol(case) > bad.value_scaled_err


def case_tol(case: Case) -> float:
    return tolerance(case.dtype, case.n_classes, case.n_elements)


def test_logits_specs_have_no_classifier_gradient() -> None:
    x = np.random.default_rng(0).normal(size=(4, 3))
    ev = evaluate(LossSpec(), Inputs(x, np.array([0, 1, 2, 0])))
    assert ev.grad_w is None and ev.grad_w_scale is None


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("dtype", ["float64", "bfloat16"])
def test_value_only_is_the_same_value_and_scale_without_the_chain_rule(name: str, dtype: str) -> None:
    """What explain() tests a linear variant with first: the full evaluation's value and value scale, bit for bit
    (the logits' rounding carried into the loss needs G and A, not the gradients), and no gradients."""
    spec = SPECS[name]
    inputs = small(bias=spec.bias, weighted=spec.weighted)
    full, stage = evaluate(spec, inputs, dtype), evaluate(spec, inputs, dtype, value_only=True)
    np.testing.assert_array_equal(stage.value, full.value)
    np.testing.assert_array_equal(stage.scale, full.scale)
    assert stage.grad.size == 0 and stage.grad_w is None and stage.grad_scale is None
    assert stage.undefined == full.undefined


def _assert_same(got: Evaluation | None, want: Evaluation | None, what: str) -> None:
    assert (got is None) == (want is None), f"{got} vs {want} [{what}]"  # a variant that does not apply: None
    for f in [] if want is None else dataclasses.fields(Evaluation):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if isinstance(b, np.ndarray) or isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=f"{f.name} [{what}]")  # NaNs in the same places too
            assert np.asarray(a).dtype == np.asarray(b).dtype, f"{f.name} dtype [{what}]"
        else:
            assert a == b, f"{f.name}: {a!r} != {b!r} [{what}]"


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
def test_head_products_made_once_change_no_number(name: str, dtype: str) -> None:
    """explain() makes a head's logits and A once for its many variant evaluations (`head_products`): each evaluation
    with them is the one without, bit for bit, whole or value only, canonical or a variant's; they are read-only."""
    spec = SPECS[name]
    inputs = small(bias=spec.bias, weighted=spec.weighted)
    head = head_products(inputs)
    assert not head.logits.flags.writeable and not head.bound.flags.writeable, "shared: never written"
    np.testing.assert_array_equal(head.logits, linear_logits(inputs, np.dtype(np.float64)))
    for variants in ((), (BY_NAME["reduction=sum"],), (BY_NAME["class_axis=0"],)):
        for value_only in (False, True):
            what = f"{name} {dtype} {[v.name for v in variants]} value_only={value_only}"
            got = evaluate_variants(variants, spec, inputs, dtype, value_only=value_only, head=head)
            _assert_same(got, evaluate_variants(variants, spec, inputs, dtype, value_only=value_only), what)


def test_head_products_of_a_head_taken_in_several_blocks() -> None:
    """A 256000-class head's chain rule takes its rows a block at a time: A made whole for the blocks is each block's."""
    case = next(c for c in default_cases(("linear",), ("bfloat16",)) if "c256000" in c.id)
    inputs = case.inputs()
    assert len(_row_blocks(*case.shape)) > 1, case.shape
    head = head_products(inputs)
    _assert_same(evaluate(case.spec, inputs, case.dtype, head=head), evaluate(case.spec, inputs, case.dtype), case.id)
