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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adapters.reference import Evaluation, evaluate
from adapters.variants import BY_NAME, VARIANTS, Variant
from cases.spec import Case, Inputs
from harness.metrics import compare
from harness.tolerances import EPS, tolerance

VARIANT_MIN_TOL = 1e-6
SEMANTIC = tuple(v for v in VARIANTS if v.dtype is None)
ROUNDING = tuple(v for v in VARIANTS if v.dtype is not None)  # "computed_in=D"
MEMO_MAX_ELEMENTS = 2**16  # x.size up to which a case's variant evaluations are kept for its other rows
REGISTRY = Path(__file__).resolve().parent.parent / "adapters" / "known_differences.csv"


Memo = dict[tuple[str, str], Evaluation | None]


def _variant(v: Variant, case: Case, inputs: Inputs, dtype: str, memo: Memo | None) -> Evaluation | None:
    """The variant's evaluation of the case as `dtype` sees it; kept in `memo` (one case's) if given."""
    if memo is None:
        return v.fn(case.spec, inputs, dtype)
    if (v.name, dtype) not in memo:
        memo[(v.name, dtype)] = v.fn(case.spec, inputs, dtype)
    return memo[(v.name, dtype)]


def _candidates(
    case: Case, registered: tuple[str, ...] = (), inputs: Inputs | None = None, memo: Memo | None = None,
    variants: tuple[Variant, ...] = VARIANTS,
) -> Iterator[tuple[Variant, Evaluation]]:  # fmt: skip
    """Those of `variants` that apply to the case with their evaluations, those in `registered` first
    (a documented behaviour of the framework wins where two variants produce the same numbers).

    Evaluated one at a time as the caller asks: on a 32000-class case each is as large as the logits.
    """
    inputs = case.inputs() if inputs is None else inputs
    for v in sorted(variants, key=lambda v: v.name not in registered):
        if v.dtype is not None and EPS[v.dtype] < EPS[case.dtype]:
            continue  # computing in more precision than the input is not a way to lose accuracy
        ev = _variant(v, case, inputs, case.dtype, memo)
        if ev is not None:
            yield v, ev
        del ev  # before the next one is computed: on a large case one evaluation at a time


def _errors(value: np.ndarray, grad: np.ndarray, against: Evaluation, dtype: str) -> tuple[float, float]:
    c = compare(value, grad, against, dtype, 0.0)
    return c.value_rel_err, c.grad_rel_err


def explain(
    case: Case, value: np.ndarray, grad: np.ndarray, ref: Evaluation, registered: tuple[str, ...] = (),
    memo: Memo | None = None, inputs: Inputs | None = None,
) -> str:  # fmt: skip
    """The name of the variant that reproduces (value, grad), or '' if none does.

    `memo`, one per case, keeps the variants' evaluations for the case's other rows (the same
    variants explain several APIs' rows; evaluating them was most of the parent's work). `inputs`
    are the case's (made again if not given: pass those `ref` was made from, not a second copy).

    Semantic variants first; then rounding ("computed_in=D": only when the row is about as far from
    the exact answer as that rounding is, since a loose half-precision tolerance would otherwise
    absorb anything); then a semantic variant computed in float32 ("V+computed_in=float32", Keras'
    float32 dtype policy on float64 inputs). Anything else stays unexplained.
    """
    tol = tolerance(case.dtype, case.n_classes, case.n_elements)
    inputs = case.inputs() if inputs is None else inputs
    if math.prod(case.shape) > MEMO_MAX_ELEMENTS:
        memo = None  # a large case's evaluations would hold many times its logits; recompute them
    semantic: list[Variant] = []  # those that apply to the case, for the float32 pairing below

    def distinct(ev: Evaluation, t: float) -> bool:
        return compare(ev.value, ev.grad, ref, case.dtype, t).outcome != "ok"

    def reproduces(target: Evaluation | None, t: float) -> bool:
        if target is None or not distinct(target, tol):
            return False
        return compare(value, grad, target, case.dtype, t).outcome == "ok"

    for v, ev in _candidates(case, registered, inputs, memo, SEMANTIC):
        semantic.append(v)
        if reproduces(ev, max(tol, VARIANT_MIN_TOL)):
            return v.name
        del ev  # one evaluation alive at a time (the next is being computed while `ev` is bound)
        # a float32 compute policy (Keras) on half-precision inputs sets the variant's constants
        if case.dtype in ("float16", "bfloat16") and reproduces(_variant(v, case, inputs, "float32", memo), tol):
            return v.name
    for r in sorted(ROUNDING, key=lambda v: (EPS[v.dtype], v.name not in registered)):
        if EPS[r.dtype] < EPS[case.dtype] or (rev := _variant(r, case, inputs, case.dtype, memo)) is None:
            continue
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
        del rev
        if r.dtype != "float32":
            continue  # the one documented pairing: a float32 policy on float64 inputs (Keras)
        for v in semantic:
            ev = _variant(v, case, inputs, r.dtype, memo)  # the variant as that precision sees it (clip bounds)
            if ev is not None and distinct(ev, rtol) and near(ev):
                return f"{v.name}+{r.name}"
            del ev
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
