"""Name the semantic variant behind a discrepancy (adapters/variants.py), and tell known from new.

A row that is not `ok` is explained by the first variant that (a) differs from the canonical
semantics on this case by more than the row's tolerance, so the name means something here, and
(b) reproduces the framework's value and gradient within the variant tolerance: the row's, but at
least 1e-6 relative, since a variant models a semantic choice, not the framework's rounding (BCELoss's
clamped gradient divides by p(1-p), which cancels near p=1). An empty explanation is a
genuine numerical or unexplained difference; the summary lists those first.
"""

from __future__ import annotations

import csv
import fnmatch
import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adapters.reference import Evaluation, evaluate
from adapters.variants import BY_NAME, VARIANTS, Variant
from cases.spec import Case, Inputs
from harness.metrics import compare
from harness.tolerances import EPS, tolerance

VARIANT_MIN_TOL = 1e-6
REGISTRY = Path(__file__).resolve().parent.parent / "adapters" / "known_differences.csv"


def _candidates(
    case: Case, registered: tuple[str, ...] = (), inputs: Inputs | None = None
) -> list[tuple[Variant, Evaluation]]:
    """Variants that apply to the case, those in `registered` first (a documented behaviour of the
    framework wins where two variants produce the same numbers)."""
    inputs = case.inputs() if inputs is None else inputs
    order = sorted(VARIANTS, key=lambda v: v.name not in registered)
    out = []
    for v in order:
        if v.dtype is not None and EPS[v.dtype] < EPS[case.dtype]:
            continue  # computing in more precision than the input is not a way to lose accuracy
        ev = v.fn(case.spec, inputs, case.dtype)
        if ev is not None:
            out.append((v, ev))
    return out


def _errors(value: np.ndarray, grad: np.ndarray, against: Evaluation, dtype: str) -> tuple[float, float]:
    c = compare(value, grad, against, dtype, 0.0)
    return c.value_rel_err, c.grad_rel_err


def explain(case: Case, value: np.ndarray, grad: np.ndarray, ref: Evaluation, registered: tuple[str, ...] = ()) -> str:
    """The name of the variant that reproduces (value, grad), or '' if none does.

    Semantic variants first; then rounding ("computed_in=D": only when the row is about as far from
    the exact answer as that rounding is, since a loose half-precision tolerance would otherwise
    absorb anything); then a semantic variant computed in float32 ("V+computed_in=float32", Keras'
    float32 dtype policy on float64 inputs). Anything else stays unexplained.
    """
    tol = tolerance(case.dtype, case.n_classes, case.n_elements)
    inputs = case.inputs()
    candidates = _candidates(case, registered, inputs)
    semantic = [(v, ev) for v, ev in candidates if v.dtype is None]
    rounding = [(v, ev) for v, ev in candidates if v.dtype is not None]

    def distinct(ev: Evaluation, t: float) -> bool:
        return compare(ev.value, ev.grad, ref, case.dtype, t).outcome != "ok"

    for v, ev in semantic:
        if distinct(ev, tol) and compare(value, grad, ev, case.dtype, max(tol, VARIANT_MIN_TOL)).outcome == "ok":
            return v.name
        if case.dtype in ("float16", "bfloat16"):  # a float32 compute policy (Keras) sets the variant's constants
            ev32 = v.fn(case.spec, inputs, "float32")
            if ev32 is not None and distinct(ev32, tol) and compare(value, grad, ev32, case.dtype, tol).outcome == "ok":
                return v.name
    for r, rev in sorted(rounding, key=lambda p: EPS[p[0].dtype]):
        rtol = tolerance(r.dtype, case.n_classes, case.n_elements)
        budget = _errors(rev.value, rev.grad, ref, case.dtype)

        # the row must be about as far from the exact answer as this rounding is: not much further
        # (then it is something else), not much closer (then a finer precision explains it)
        def near(target: Evaluation, budget=budget, rtol=rtol) -> bool:
            if compare(value, grad, target, case.dtype, rtol).outcome != "ok":
                return False
            if compare(target.value, target.grad, ref, case.dtype, tol).outcome == "nonfinite":
                return True  # the rounding's signature is the overflow (or NaN) itself, and the row has it
            err = [e for e in _errors(value, grad, ref, case.dtype) if not math.isnan(e)]
            b = [e for e in budget if not math.isnan(e)]
            return not err or not b or max(b) / 16 <= max(err) <= 4 * max(b) + tol

        if distinct(rev, tol) and near(rev):
            return r.name
        if r.dtype != "float32":
            continue  # the one documented pairing: a float32 policy on float64 inputs (Keras)
        for v, _ in semantic:
            ev = v.fn(case.spec, inputs, r.dtype)  # the variant as that precision sees it (clip bounds)
            if ev is not None and distinct(ev, rtol) and near(ev):
                return f"{v.name}+{r.name}"
    return ""


def claim_tolerance(text: str) -> float:
    """Half a unit in the last printed digit of a number as a source printed it ('0.9163' -> 5e-5)."""
    m = re.fullmatch(r"\s*[-+]?\d*(?:\.(\d*))?(?:[eE]([-+]?\d+))?\s*", text)
    if m is None:
        raise ValueError(text)
    decimals = len(m.group(1) or "")
    exponent = int(m.group(2) or 0)
    return 0.5 * 10.0 ** (exponent - decimals)


@dataclass(frozen=True)
class ClaimVerdict:
    claimed: float
    exact: float
    agrees: bool
    variants: tuple[str, ...]  # the variants whose value rounds to the claim

    def sentence(self) -> str:
        if self.agrees:
            return f"{self.claimed:g} agrees with the exact value {self.exact:.6g}."
        if self.variants:
            what = " or ".join(f"{BY_NAME[n].summary} ({n})" for n in self.variants)
            return f"your {self.claimed:g} is not the exact value {self.exact:.6g}; it is what you get when {what}."
        return f"{self.claimed:g} is not the exact value {self.exact:.6g}, and no known variant produces it."


def explain_claim(case: Case, claimed: float, tol: float) -> ClaimVerdict:
    """Which semantics produce a number a user saw elsewhere (`check --claimed`)."""
    exact = float(np.asarray(evaluate(case.spec, case.inputs()).value).ravel()[0])
    agrees = math.isclose(exact, claimed, abs_tol=tol + 1e-9 * abs(claimed))
    hits = []
    for v, ev in _candidates(case):
        got = float(np.asarray(ev.value).ravel()[0])
        if math.isfinite(got) and abs(got - claimed) <= tol + 1e-9 * abs(claimed) and abs(got - exact) > tol:
            hits.append(v.name)
    return ClaimVerdict(claimed, exact, agrees, tuple(dict.fromkeys(hits)))


@dataclass(frozen=True)
class KnownDifference:
    framework: str
    api: str  # fnmatch pattern on the API's dotted name
    variant: str
    condition: str
    source: str


def known_differences(path: Path = REGISTRY) -> tuple[KnownDifference, ...]:
    if not path.exists():
        return ()
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if not r["framework"].startswith("#")]
    return tuple(KnownDifference(**{k: (v or "").strip() for k, v in r.items()}) for r in rows)


def is_known(framework: str, api: str, variant: str, registry: tuple[KnownDifference, ...]) -> bool:
    """Every part of the explanation ("V" or "V+computed_in=D") is registered for this framework API."""
    return bool(variant) and all(
        any(k.framework == framework and fnmatch.fnmatch(api, k.api) and k.variant == part for k in registry)
        for part in variant.split("+")
    )


@functools.cache
def registered_variants(framework: str, api: str) -> tuple[str, ...]:
    """Variant names the registry lists for this framework API (read once per process)."""
    registry = known_differences()
    return tuple(k.variant for k in registry if k.framework == framework and fnmatch.fnmatch(api, k.api))
