"""Per-dtype tolerances and the rule a row is judged by: the one place they are defined.

The rule (`harness.judge.metrics.compare`). Every element's error is divided by the size of the terms that
make that element (the reference's error scales, `adapters.reference`), and the largest such ratio must
be at most ``tol``:

    |v - r| <= tol * scale(value element)        scale = sum_c |a| (|log p| + 1), reduced like the loss
    |g - gr| <= tol * scale(gradient element)    scale = |S| p (1 + |log p|) + |a|  (softmax of logits)

because that is what a correct implementation's rounding grows with. A trained model's confident
prediction has a loss of ~1e-5 (a log of 1 + 1e-5) and a target gradient p - 1 ~ -1e-5: both are
differences of terms of size 1, so every correct float32 implementation is off by ~1e-7 absolute there,
1e-2 relative to the result itself. Judged against max |result| (as before), PyTorch's gradient on
[[10, 0, 0]] read `mismatch` at 1.2e-12 against 3.2e-15; judged against its terms it is `ok`, while a
semantic difference (a weighted mean over N instead of sum w[y]: 11% of the loss) still exceeds the
float64 tolerance by nine orders of magnitude. A scale is at least `scale_floor(dtype)`: below the
normal range nothing keeps relative precision (subnormals, flush-to-zero).

Precision is judged per dtype; semantics are not: whether a recipe departs from the canonical loss is
decided by the float64 row of its configuration and carried to every dtype (`harness.judge.semantics`), since a
half-precision tolerance (0.35 at bfloat16) would hide an 11% difference.

``tol`` is the dtype's machine epsilon times a factor that grows with log2(C) (the log-sum-exp adds C
terms; pairwise or blocked summation keeps the error growth logarithmic) and with log2 of the number of
loss elements (the reduction):

    tol(dtype, C, M) = 4 * eps(dtype) * (2 + log2(C) + log2(M))

| dtype    | eps       | tol at C=10, M=64 | tol at C=32000, M=8 |
|----------|-----------|-------------------|---------------------|
| float64  | 2.2e-16   | 1.0e-14           | 1.8e-14             |
| float32  | 1.2e-7    | 5.4e-6            | 9.5e-6              |
| float16  | 9.8e-4    | 0.044             | 0.078               |
| bfloat16 | 7.8e-3    | 0.35              | 0.62                |

The factor 4 leaves room for the few roundings per term (exp, log, subtract, multiply by a weight);
semantic differences are errors of order 1e-3 to 1 of the terms, far above the float64 tolerance.
"""

from __future__ import annotations

import math

import numpy as np

from adapters.numerical import COMPLEX_STEP, STEP, central_step, one_sided

EPS = {"float64": 2.0**-52, "float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}
MANTISSA_BITS = {"float64": 52, "float32": 23, "float16": 10, "bfloat16": 7}
MIN_EXPONENT = {"float64": -1022, "float32": -126, "float16": -14, "bfloat16": -126}


def scale_floor(dtype: str) -> float:
    """The least scale an element is judged against: the dtype's smallest normal number over its epsilon.

    Below the normal range a result keeps no relative precision (subnormals; flush-to-zero on many
    devices), so an error up to ~tol/eps smallest normals (~50 of them) is rounding there, not a bug.
    """
    return 2.0 ** MIN_EXPONENT[dtype] / EPS[dtype]


def tolerance(dtype: str, n_classes: int, n_elements: int) -> float:
    """Relative tolerance for a loss over `n_classes` classes and `n_elements` loss elements."""
    return 4 * EPS[dtype] * (2 + math.log2(max(n_classes, 1)) + math.log2(max(n_elements, 1)))


# -- numerical gradients (adapters/numerical.py: a hand-written NumPy loss has no autodiff) ---------------------
NUMERICAL = ("complex-step", "central-difference")  # the rows' grad_method values whose gradient is numerical
# Complex step, h = COMPLEX_STEP: Im f(x + ih) / h takes no difference, so it has f's own float64 accuracy (the
# row's tol covers it: a numerical gradient is taken in float64, and tol(float64) is the least tol), except that
# h f'_j below float64's normal range keeps no relative precision: an absolute error up to a few subnormal
# spacings over h, 16 * 2^-1074 / h (8e-223 at h = 1e-100).
COMPLEX_STEP_FLOOR = 16 * 2.0**-1074 / COMPLEX_STEP


def numerical_gradient_slack(
    method: str, grad_scale: np.ndarray, value_scale: float, x: np.ndarray, input: str, n_classes: int,
    n_elements: int,
) -> np.ndarray | float:  # fmt: skip
    """What a numerical gradient's method adds to the error of gradient element j, absolute, beyond the row's
    ``tol * grad_scale[j]`` (0 for autodiff).

    Central differences (adapters/numerical.py) with step h_j (`central_step`: H = eps^(1/3) for logits and
    log-probabilities, H min(x, 1 - x) for probabilities) are off by truncation plus rounding (Taylor),

        |error_j| <= h_j^2 / 6 |f3_j| + e_f / h_j      (one-sided at p = 0 or 1: h^2 / 3 |f3_j| + 4 e_f / h)

    with f3_j the third derivative along x_j and e_f = tol(float64, C, M) S_F a bound on the error of one
    float64 evaluation of the loss (S_F: its error scale `value_scale`, summed over the elements of a `none`
    loss, whose sum is differentiated). A correct loss' third derivative is bounded by its gradient's error
    scale gs_j (logits: |S p (1 - p)(1 - 2p)| <= S p <= gs_j; probabilities: 2 |a| / x^3 = 2 gs_j / x^2 with
    h_j proportional to min(x, 1 - x); log-probabilities: 0), so with these steps truncation is at most
    (2/3) H^2 gs_j (2.4e-11 gs_j) and rounding at most k e_f / h_j (k = 1, or 4 one-sided):

        slack_j = (2/3) H^2 gs_j + k tol(float64, C, M) S_F / h_j

    The rounding term is absolute: where gs_j is far below the loss' scale (a confident prediction's other
    classes) no step does better. Complex step: `COMPLEX_STEP_FLOOR`.
    """
    if method == "complex-step":
        return COMPLEX_STEP_FLOOR
    if method != "central-difference":
        return 0.0
    e_f = tolerance("float64", n_classes, n_elements) * value_scale
    k = np.where(one_sided(x, input), 4.0, 1.0)
    return (2 / 3) * STEP**2 * np.abs(grad_scale) + k * e_f / central_step(x, input)


def ulp(a: np.ndarray | float, dtype: str) -> np.ndarray:
    """The spacing of `dtype` numbers at ``|a|`` (the smallest subnormal at 0), as float64."""
    a = np.abs(np.asarray(a, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log2(np.where(a > 0, a, 1.0)))
    exponent = np.where(a > 0, np.maximum(exponent, MIN_EXPONENT[dtype]), MIN_EXPONENT[dtype])
    return np.exp2(exponent - MANTISSA_BITS[dtype])
