"""Numerical gradients, in float64, of a loss computed by hand (NumPy or plain Python): NumPy has no autodiff.

The gradient is of the loss' sum (of the loss itself when it is reduced), with respect to ``x``, one input
element at a time: ``x.size`` evaluations of the loss (twice that for central differences).

Complex step (Squire & Trapp, SIAM Review 40, 1998; Martins, Sturdza & Alonso, ACM TOMS 29, 2003)::

    f'(x_j) = Im f(x + i h e_j) / h + O(h^2),   h = COMPLEX_STEP = 1e-100

No difference is taken, so nothing cancels: the result has the accuracy of f's own float64 evaluation (a
few ulps of the terms the derivative is made of, as forward-mode autodiff), and the O(h^2) term is far
below it at h = 1e-100. It holds where f is complex-analytic in what it does: arithmetic, exp, log,
log1p, sums, gathers, and NumPy's max / maximum / clip / where (which order complex numbers by their real
part, so a clipped element gets a derivative of 0, as the clipped function has). It does not hold where f
casts to a real dtype, rounds, takes ``abs``, or calls ``math`` functions (those drop the imaginary part
with a ComplexWarning): `complex_step_allowed` checks that on a probe before it is used.

Central differences, otherwise::

    f'(x_j) ~ (f(x + h_j e_j) - f(x - h_j e_j)) / (2 h_j)

with the error (Taylor; e_f the absolute error of one float64 evaluation of f)::

    |error_j| <= h_j^2 / 6 |f'''(x_j)| + e_f / h_j

The rounding term grows as h shrinks, the truncation term as it grows; h ~ eps^(1/3) balances them
(`STEP`, H = eps^(1/3) = 6.06e-6). The step is `central_step`: H for logits and log-probabilities (the
softmax' curvature does not grow with |x|); H min(x, 1 - x) for probabilities, so that x +- h stays inside
(0, 1) and the truncation term stays relative to the gradient where it grows like 1/x^3; at a probability
of exactly 0 (1) the three-point one-sided formula (-3 f(x) + 4 f(x + h) - f(x + 2h)) / (2h) with h = H
(away from 1: -h), error h^2/3 |f'''| + 4 e_f / h. Steps are the representable differences
(x + h) - x, so the division is by the step actually taken. The judge's allowance for these errors is
`harness.judge.tolerances.numerical_gradient_budget`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

COMPLEX_STEP = 1e-100
STEP = float(np.finfo(np.float64).eps) ** (1 / 3)  # H = eps^(1/3)
# A probe's complex-step directional derivative must agree with central differences this closely (relative to
# the larger of the two and of the loss): an ``abs`` or a cast that drops the imaginary part is off by O(1).
PROBE_RTOL = 1e-5

Loss = Callable[[np.ndarray], object]  # x (float64 or complex128, x's shape) -> the loss (any shape)


def _total(value: object) -> complex:
    """The sum of a loss' elements (the gradient of ``none`` is that of the sum), as a Python complex."""
    return complex(np.sum(np.asarray(value)))


def central_step(x: np.ndarray, input: str = "logits") -> np.ndarray:
    """The central-difference step h_j for each element of `x` (module docstring): H for logits and
    log-probabilities, H min(x, 1 - x) for probabilities inside (0, 1), H at 0 and 1 and outside (one-sided)."""
    x = np.asarray(x, np.float64)
    h = np.full(x.shape, STEP)
    if input == "probs":
        inside = (x > 0) & (x < 1)
        h[inside] = STEP * np.minimum(x[inside], 1 - x[inside])
    return h


def one_sided(x: np.ndarray, input: str = "logits") -> np.ndarray:
    """Where central differences take the one-sided three-point formula: probabilities at (or beyond) 0 and 1."""
    x = np.asarray(x, np.float64)
    return (x <= 0) | (x >= 1) if input == "probs" else np.zeros(x.shape, bool)


def complex_step_allowed(f: Loss, x: np.ndarray, input: str = "logits", seed: int = 0) -> bool:
    """Whether f takes complex input analytically: it accepts complex128 without a ComplexWarning, returns a
    complex result, and along a random direction its complex-step derivative agrees with central differences
    (within PROBE_RTOL), which an ``abs``, a cast or a rounding would not."""
    x = np.asarray(x, np.float64)
    rng = np.random.default_rng(seed)
    v = rng.choice((-1.0, 1.0), size=x.shape) * central_step(x, input) / STEP  # inside (0, 1) for probabilities
    v[one_sided(x, input)] = 0  # a one-sided element is left out of the probe
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        try:
            out = np.asarray(f(x + 1j * COMPLEX_STEP * v))
        except Exception:  # TypeError (round, math on complex), ComplexWarning, ...
            return False
    if not np.iscomplexobj(out):
        return False
    cs = _total(out).imag / COMPLEX_STEP
    try:
        up, down, f0 = (_total(f(x + k * STEP * v)).real for k in (1, -1, 0))
    except Exception:
        return False
    cd = (up - down) / (2 * STEP)
    if not all(np.isfinite((cs, cd, f0))):
        return bool(np.isfinite(cs) or not np.isfinite(cd))  # nothing to compare: trust what ran
    return abs(cs - cd) <= PROBE_RTOL * max(abs(cs), abs(cd), abs(f0), 1e-300) + 1e-6 * STEP


def complex_step(f: Loss, x: np.ndarray) -> np.ndarray:
    """d sum(f) / dx by the complex step, one element at a time (x.size evaluations)."""
    z = np.array(x, np.complex128)
    flat, g = z.reshape(-1), np.empty(z.size)
    for j in range(z.size):
        flat[j] += 1j * COMPLEX_STEP
        g[j] = _total(f(z)).imag / COMPLEX_STEP
        flat[j] = flat[j].real
    return g.reshape(z.shape)


def central_differences(f: Loss, x: np.ndarray, input: str = "logits") -> np.ndarray:
    """d sum(f) / dx by central differences with `central_step` (one-sided at probabilities of 0 and 1),
    2 (or 3) evaluations per element."""
    x = np.array(x, np.float64)
    h, edge = central_step(x, input).reshape(-1), one_sided(x, input).reshape(-1)
    flat, g = x.reshape(-1), np.empty(x.size)
    f0 = None
    for j in range(x.size):
        xj = flat[j]
        if not edge[j]:
            flat[j] = xj + h[j]
            up = _total(f(x)).real
            step_up = flat[j] - xj
            flat[j] = xj - h[j]
            down = _total(f(x)).real
            step = step_up + (xj - flat[j])  # the steps taken, exactly
            g[j] = (up - down) / step if np.isfinite(step) and step else (up - down) / (2 * h[j])
        else:  # (-3 f(x) + 4 f(x + s) - f(x + 2s)) / (2s), s pointing into (0, 1)
            s = h[j] if xj <= 0 else -h[j]
            f0 = _total(f(x)).real if f0 is None else f0
            flat[j] = xj + s
            one = _total(f(x)).real
            flat[j] = xj + 2 * s
            two = _total(f(x)).real
            g[j] = (-3 * f0 + 4 * one - two) / (2 * s)
        flat[j] = xj
    return g.reshape(x.shape)


def gradient(f: Loss, x: np.ndarray, input: str = "logits", method: str = "auto") -> tuple[np.ndarray, str]:
    """(d sum(f) / dx in float64, the method used): the complex step where `f` allows it
    (`complex_step_allowed`), central differences otherwise, or the `method` given."""
    if method == "auto":
        method = choose_method(f, x, input)
    if method == "complex-step":
        return complex_step(f, x), method
    return central_differences(f, x, input), "central-difference"


def choose_method(f: Loss, x: np.ndarray, input: str = "logits") -> str:
    """``complex-step`` where `f` allows it, else ``central-difference``."""
    return "complex-step" if complex_step_allowed(f, x, input) else "central-difference"
