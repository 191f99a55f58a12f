"""Name every cause of a discrepancy (adapters/variants.py), and tell known from new.

A row that is not `ok` is explained by the first variant, or combination of variants, that (a) differs
from the canonical semantics on this case by more than the row's tolerance, so the name means something
here, and (b) reproduces the framework's value and gradient within the variant tolerance: the row's, but
at least 1e-6 relative, since a variant models a semantic choice, not the framework's rounding (BCELoss's
clamped gradient divides by p(1-p), which cancels near p=1). Single variants first, then pairs, then
triples of variants that each differ on their own (registered ones first); then rounding
(``computed_in=D``), alone or after such a combination. An empty explanation is a genuine numerical or
unexplained difference; the summary lists those first.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from adapters.reference import Evaluation, head_view
from adapters.variants import ROUNDING, SEMANTIC, VARIANTS, Variant, evaluate_variants
from cases.spec import Case, Inputs
from harness.judge.metrics import compare
from harness.judge.tolerances import EPS, tolerance

VARIANT_MIN_TOL = 1e-6
MEMO_MAX_ELEMENTS = 2**16  # x.size up to which a case's variant evaluations are kept for its other rows
MAX_PARTS = 3  # variants an explanation may combine
MAX_COMBINATIONS = {True: 256, False: 32}  # combinations tried per row: small cases, large ones
ORDER = {v.name: k for k, v in enumerate(VARIANTS)}

Combo = tuple[Variant, ...]
# The orders in which frameworks compute a smoothed loss: the same in exact arithmetic, so both are
# `computed_in=D` (PyTorch's split order overflows float16 where the folded one does not); and a sigmoid
# gradient taken as 1 - sigmoid(-x) (MLX's logaddexp VJP), which cancels in half precision where x << 0.
_ORDERS: tuple[Combo, ...] = ((), (Variant("smoothing_order=split", "", "", lambda s, i: True,
                                           {"smoothing_order": "split"}),))  # fmt: skip
_SIGMOID_ORDER: Combo = (Variant("sigmoid_grad=one_minus", "", "", lambda s, i: True, {"sigmoid_grad": "one_minus"}),)
Memo = dict[tuple[tuple[str, ...], str, str], Evaluation | None]


def combo_name(combo: Sequence[Variant]) -> str:
    """``a+b`` in the table's order (one name for a combination, whichever order it was found in)."""
    return "+".join(sorted((v.name for v in combo), key=ORDER.__getitem__))


def _evaluation(
    combo: Combo, case: Case, inputs: Inputs, memo: Memo | None, dtype: str = "float64", constants: str = ""
) -> Evaluation | None:
    """The combination's loss computed in `dtype` with constants (clip bounds) rounded to `constants`
    (default: the case's dtype); kept in `memo` (one case's) if given."""
    constants = constants or case.dtype
    key = (tuple(v.name for v in combo), dtype, constants)
    if memo is not None and key in memo:
        return memo[key]
    ev = evaluate_variants(combo, case.spec, inputs, dtype, constants=constants)
    if memo is not None:
        memo[key] = ev
    return ev


def _combinations(
    applicable: Sequence[Variant], distinct: Sequence[Variant], registered: tuple[str, ...], limit: int
) -> Iterator[Combo]:
    """Pairs, then triples, of the `applicable` variants that do not conflict: first those whose parts each
    differ on their own (`distinct`), then those with fewer unregistered parts. A part that changes
    nothing alone can matter in company (a NaN label's gradient shows only once the mean divides by N)."""
    n = 0
    for size in range(2, MAX_PARTS + 1):
        combos = [c for c in itertools.combinations(applicable, size) if not any(
            a.conflicts(b) for a, b in itertools.combinations(c, 2))]  # fmt: skip
        for combo in sorted(combos, key=lambda c: (sum(v not in distinct for v in c),
                                                   sum(v.name not in registered for v in c))):  # fmt: skip
            if n >= limit:
                return
            n += 1
            yield combo


def explain(
    case: Case, value: np.ndarray, grad: np.ndarray, ref: Evaluation, registered: tuple[str, ...] = (),
    memo: Memo | None = None, inputs: Inputs | None = None, grad_w: np.ndarray | None = None,
    widen: Callable[[Evaluation, float], Evaluation] | None = None,
) -> str:  # fmt: skip
    """The variants that reproduce (value, grad), ``+``-joined, or '' if none do.

    `memo`, one per case, keeps the variants' evaluations for the case's other rows (the same
    variants explain several APIs' rows). `inputs` are the case's (made again if not given: pass those
    `ref` was made from, not a second copy). `grad_w`: a linear head's classifier gradient, reproduced too; a
    variant applies to a linear head where it applies to its logits (`reference.head_view`). `widen(target, t)`:
    a numerical gradient's allowance added to the variant's gradient scale at tolerance t (rows.with_numerical_slack).
    """
    tol = tolerance(case.dtype, case.n_classes, case.n_elements)
    inputs = case.inputs() if inputs is None else inputs
    small = math.prod(case.shape) <= MEMO_MAX_ELEMENTS
    if not small:
        memo = None  # a large case's evaluations would hold many times its logits; recompute them
    vtol = max(tol, VARIANT_MIN_TOL)

    def distinct(ev: Evaluation, t: float) -> bool:
        return compare(ev.value, ev.grad, ref, case.dtype, t, ev.grad_w).outcome != "ok"

    def reproduces(target: Evaluation | None, t: float) -> bool:
        if target is None or not distinct(target, tol):
            return False
        judged = target if widen is None else widen(target, t)
        return compare(value, grad, judged, case.dtype, t, grad_w).outcome == "ok"

    def semantic(combo: Combo) -> bool:
        """The combination (as the case's dtype, or as a float32 policy sees half-precision inputs) reproduces."""
        if reproduces(_evaluation(combo, case, inputs, memo), vtol):
            return True
        half = case.dtype in ("float16", "bfloat16")
        return half and reproduces(_evaluation(combo, case, inputs, memo, "float32", "float32"), tol)

    order = sorted(SEMANTIC, key=lambda v: (not v.first, v.name not in registered))
    view = head_view(case.spec, inputs)  # a linear head's logits
    applicable = [v for v in order if v.applies(*view) and (v.name in registered or not v.registered_only)]
    del view
    singles: list[Variant] = []  # those that differ on their own
    for v in applicable:
        ev = _evaluation((v,), case, inputs, memo)
        if ev is None or not distinct(ev, tol):
            continue
        singles.append(v)
        del ev  # one evaluation alive at a time (on a large case each is as large as the logits)
        if semantic((v,)):
            return v.name
    tried: list[Combo] = [(v,) for v in singles]
    for combo in _combinations(applicable, singles, registered, MAX_COMBINATIONS[small]):
        ev = _evaluation(combo, case, inputs, memo)
        if ev is None or not distinct(ev, tol):
            continue
        tried.append(combo)
        del ev
        if semantic(combo):
            return combo_name(combo)
    # a gradient-accumulation loop's rule on top of a triple of the API's registered variants: a fourth part
    loop = next((v for v in singles if "accumulation" in v.changes), None)
    known = [v for v in applicable if v.name in registered and v is not loop] if loop is not None else []
    for combo in itertools.combinations(known, MAX_PARTS):
        if not any(a.conflicts(b) for a, b in itertools.combinations((loop, *combo), 2)) and semantic((loop, *combo)):
            return combo_name((loop, *combo))
    return _rounding(case, value, grad, ref, registered, memo, inputs, tried, grad_w)


def _rounding(
    case: Case, value: np.ndarray, grad: np.ndarray, ref: Evaluation, registered: tuple[str, ...],
    memo: Memo | None, inputs: Inputs, semantic: Sequence[Combo], grad_w: np.ndarray | None = None,
) -> str:  # fmt: skip
    """``computed_in=D``: the row is within D's tolerance of the canonical loss computed in D (inputs
    rounded to D, so an ill-conditioned loss carries the same amplified input rounding), and not much
    closer to the exact answer than that computation is (then a finer precision explains it); finer
    dtypes first. A non-finite row matches D's overflow (or NaN) the same way. Or a semantic combination
    computed in float32 (``V+computed_in=float32``: Keras' float32 dtype policy on float64 inputs)."""
    tol = tolerance(case.dtype, case.n_classes, case.n_elements)

    def scaled_err(v: np.ndarray, g: np.ndarray, gw: np.ndarray | None) -> float | None:
        c = compare(v, g, ref, case.dtype, 0.0, gw)
        errors = [c.value_scaled_err, c.grad_scaled_err, c.grad_w_scaled_err]
        return None if c.outcome == "nonfinite" else float(np.nanmax(errors))

    def rounded_to(target: Evaluation | None, dtype: str, rtol: float) -> bool:
        if target is None or compare(target.value, target.grad, ref, case.dtype, tol, target.grad_w).outcome == "ok":
            return False  # the rounding must be visible here for its name to mean something
        return compare(value, grad, target, dtype, rtol, grad_w).outcome == "ok"  # dtype: D's underflow floor

    own = scaled_err(value, grad, grad_w)
    for r in sorted(ROUNDING, key=lambda v: (EPS[v.dtype], v.name not in registered)):
        if EPS[r.dtype] < EPS[case.dtype]:
            continue  # computing in more precision than the input is not a way to lose accuracy
        rtol = tolerance(r.dtype, case.n_classes, case.n_elements)
        orders = _ORDERS if (case.spec.label_smoothing and case.spec.target == "index") else _ORDERS[:1]
        if case.spec.family == "sigmoid" and case.spec.input == "logits":
            orders = (*orders, _SIGMOID_ORDER)
        for order in orders:
            rev = _evaluation(order, case, inputs, memo, r.dtype, r.dtype)
            if rounded_to(rev, r.dtype, rtol):
                budget = scaled_err(rev.value, rev.grad, rev.grad_w)
                if own is None or budget is None or own >= budget / 16:
                    return r.name
            del rev
        if r.dtype != "float32":
            continue  # the one documented pairing: a float32 policy on float64 inputs (Keras)
        for combo in semantic:
            if rounded_to(_evaluation(combo, case, inputs, memo, r.dtype, r.dtype), r.dtype, rtol):
                return f"{combo_name(combo)}+{r.name}"
    return ""
