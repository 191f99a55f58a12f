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
from dataclasses import dataclass

import numpy as np

from adapters.reference import LINEAR_LAZY_ELEMENTS, Evaluation, HeadProducts, head_products, head_view
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
Key = tuple[tuple[str, ...], str, str]  # (variant names, dtype computed in, dtype of the constants)
Memo = dict[Key, Evaluation | None]
FACT_MAX_VALUES = 4096  # value elements up to which a `Fact` keeps the evaluation's value stage
FACT_MAX_GRAD = 1024  # gradient elements up to which it keeps the gradient too (n64-c10 and the linear heads' d/dE)


@dataclass(frozen=True)
class Fact:
    """What explain() learned of one variant evaluation on a case, kept for the case's other rows and frameworks
    (`Facts`; small, unlike the evaluation): whether it exists and differs from the reference at the case's
    tolerance, and a stage of it (value and scale; the gradient with respect to x and its scale too where made
    and small), with which a row the stage does not reproduce is turned down without making the evaluation again.
    A row the stage cannot turn down is compared in full, so a fact changes no explanation, only what it costs."""

    distinct: bool
    stage: Evaluation | None = None  # value, scale, undefined; grad and grad_scale or an empty grad (None: too large)

    @classmethod
    def of(cls, ev: Evaluation | None, distinct: bool) -> Fact:
        if ev is None or not distinct or np.size(ev.value) > FACT_MAX_VALUES:
            return cls(distinct)
        value, scale = np.asarray(ev.value), np.asarray(ev.scale)
        grad, grad_scale = ev.grad, ev.grad_scale  # a linear head's grad_w is not kept: as large as its classifier
        if isinstance(grad, np.ndarray) and 0 < grad.size <= FACT_MAX_GRAD and isinstance(grad_scale, np.ndarray):
            return cls(True, Evaluation(value, grad, scale, grad_scale, undefined=ev.undefined))
        return cls(True, Evaluation(value, np.zeros(0), scale, undefined=ev.undefined))

    def rules_out(self, value: np.ndarray, grad: np.ndarray | None, dtype: str, tol: float) -> bool:
        """A row (`value`, `grad`: None to judge the value alone) cannot pass `compare` against the evaluation at `tol`:
        the test of its stage (shape, non-finite places, scaled errors, an undefined loss) fails, and a full comparison
        needs every part of it passed."""
        if not self.distinct:
            return True
        if self.stage is None:
            return False
        grad = grad if self.stage.grad.size else None
        return differs(value, grad, self.stage, dtype, tol)


def differs(
    value: np.ndarray, grad: np.ndarray | None, target: Evaluation, dtype: str, tol: float,
    grad_w: np.ndarray | None = None,
) -> bool:  # fmt: skip
    """``compare(...).outcome != "ok"``, the value judged alone first: a value beyond tolerance, non-finite where
    the target's is not (or the reverse) or of an undefined loss fails the whole comparison too, and costs far
    less to find than a gradient's errors. Most variants differ in the value."""
    if compare(value, None, target, dtype, tol).outcome != "ok":
        return True
    return (grad is not None or grad_w is not None) and compare(value, grad, target, dtype, tol, grad_w).outcome != "ok"


Facts = dict[Key, Fact]  # one case's, shared by every framework's rows of it (harness/judge/rows.py RowJudge)


def _key(combo: Combo, case: Case, dtype: str, constants: str) -> Key:
    return tuple(v.name for v in combo), dtype, constants or case.dtype


def combo_name(combo: Sequence[Variant]) -> str:
    """``a+b`` in the table's order (one name for a combination, whichever order it was found in)."""
    return "+".join(sorted((v.name for v in combo), key=ORDER.__getitem__))


def _evaluation(
    combo: Combo, case: Case, inputs: Inputs, memo: Memo | None, dtype: str = "float64", constants: str = "",
    head: HeadProducts | None = None,
) -> Evaluation | None:  # fmt: skip
    """The combination's loss computed in `dtype` with constants (clip bounds) rounded to `constants`
    (default: the case's dtype); kept in `memo` (one case's) if given; `head`: a linear head's products."""
    constants = constants or case.dtype
    key = _key(combo, case, dtype, constants)
    if memo is not None and key in memo:
        return memo[key]
    ev = evaluate_variants(combo, case.spec, inputs, dtype, constants=constants, head=head)
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
    widen: Callable[[Evaluation, float], Evaluation] | None = None, facts: Facts | None = None,
) -> str:  # fmt: skip
    """The variants that reproduce (value, grad), ``+``-joined, or '' if none do.

    `memo`, one per case, keeps the variants' evaluations for the case's other rows (the same
    variants explain several APIs' rows). `inputs` are the case's (made again if not given: pass those
    `ref` was made from, not a second copy). `grad_w`: a linear head's classifier gradient, reproduced too; a
    variant applies to a linear head where it applies to its logits (`reference.head_view`). `widen(target, t)`:
    a numerical gradient's allowance added to the variant's gradient scale at tolerance t (rows.with_numerical_slack).
    `facts`, one per case, shared by its rows of every framework: what is known of each evaluation (`Fact`).
    """
    tol = tolerance(case.dtype, case.n_classes, case.n_elements)
    inputs = case.inputs() if inputs is None else inputs
    small = math.prod(case.shape) <= MEMO_MAX_ELEMENTS
    if not small:
        memo = None  # a large case's evaluations would hold many times its logits; recompute them
    facts = {} if facts is None else facts
    vtol = max(tol, VARIANT_MIN_TOL)
    # a linear head's logits and A, made once for its variants' evaluations (not where those are made lazily)
    head = head_products(inputs) if case.spec.linear and math.prod(case.shape) <= LINEAR_LAZY_ELEMENTS else None

    def learn(combo: Combo, dtype: str = "float64", constants: str = "") -> tuple[Fact, Evaluation | None]:
        """What is known of the combination's evaluation, and the evaluation where it had to be made to know it."""
        key = _key(combo, case, dtype, constants)
        known = facts.get(key)
        if known is not None:
            return known, None
        if case.spec.linear:  # a value that differs is enough to know: no chain rule (four matrix products) needed
            stage = evaluate_variants(combo, case.spec, inputs, dtype, constants or case.dtype, True, head)
            if stage is None or compare(stage.value, None, ref, case.dtype, tol).outcome != "ok":
                facts[key] = known = Fact.of(stage, stage is not None)
                return known, None
        ev = _evaluation(combo, case, inputs, memo, dtype, constants, head)
        distinct = ev is not None and differs(ev.value, ev.grad, ref, case.dtype, tol, ev.grad_w)
        facts[key] = known = Fact.of(ev, distinct)
        return known, ev

    def made(combo: Combo, known: Fact, ev: Evaluation | None, dtype: str, constants: str) -> Evaluation:
        """The combination's evaluation (`ev`, or made again), its gradient added to a value-only fact (a linear
        head's first stage): the case's later rows that gradient cannot reproduce are turned down without it."""
        if ev is None:
            ev = _evaluation(combo, case, inputs, memo, dtype, constants, head)
            if known.stage is not None and not known.stage.grad.size:
                facts[_key(combo, case, dtype, constants)] = Fact.of(ev, known.distinct)
        return ev

    def reproduces(combo: Combo, t: float, dtype: str = "float64", constants: str = "") -> bool:
        """The combination differs from the reference and reproduces the row at `t`."""
        known, ev = learn(combo, dtype, constants)
        if known.rules_out(value, grad if widen is None else None, case.dtype, t):  # widen: the gradient's allowance
            return False
        target = made(combo, known, ev, dtype, constants)
        judged = target if widen is None else widen(target, t)
        return not differs(value, grad, judged, case.dtype, t, grad_w)

    def semantic(combo: Combo) -> bool:
        """The combination (as the case's dtype, or as a float32 policy sees half-precision inputs) reproduces."""
        if reproduces(combo, vtol):
            return True
        half = case.dtype in ("float16", "bfloat16")
        return half and reproduces(combo, tol, "float32", "float32")

    order = sorted(SEMANTIC, key=lambda v: (not v.first, v.name not in registered))
    view = head_view(case.spec, inputs, head)  # a linear head's logits
    applicable = [v for v in order if v.applies(*view) and (v.name in registered or not v.registered_only)]
    del view
    singles: list[Variant] = []  # those that differ on their own
    for v in applicable:
        if not learn((v,))[0].distinct:  # (the evaluation is dropped: one alive at a time, each as large as x)
            continue
        singles.append(v)
        if semantic((v,)):
            return v.name
    tried: list[Combo] = [(v,) for v in singles]
    for combo in _combinations(applicable, singles, registered, MAX_COMBINATIONS[small]):
        if not learn(combo)[0].distinct:
            continue
        tried.append(combo)
        if semantic(combo):
            return combo_name(combo)
    # a gradient-accumulation loop's rule on top of a triple of the API's registered variants: a fourth part
    loop = next((v for v in singles if "accumulation" in v.changes), None)
    known_parts = [v for v in applicable if v.name in registered and v is not loop] if loop is not None else []
    for combo in itertools.combinations(known_parts, MAX_PARTS):
        if not any(a.conflicts(b) for a, b in itertools.combinations((loop, *combo), 2)) and semantic((loop, *combo)):
            return combo_name((loop, *combo))
    return _rounding(case, value, grad, ref, registered, tried, grad_w, learn, made)


def _rounding(
    case: Case, value: np.ndarray, grad: np.ndarray, ref: Evaluation, registered: tuple[str, ...],
    semantic: Sequence[Combo], grad_w: np.ndarray | None,
    learn: Callable[[Combo, str, str], tuple[Fact, Evaluation | None]],
    made: Callable[[Combo, Fact, Evaluation | None, str, str], Evaluation],
) -> str:  # fmt: skip
    """``computed_in=D``: the row is within D's tolerance of the canonical loss computed in D (inputs
    rounded to D, so an ill-conditioned loss carries the same amplified input rounding), and not much
    closer to the exact answer than that computation is (then a finer precision explains it); finer
    dtypes first. A non-finite row matches D's overflow (or NaN) the same way. Or a semantic combination
    computed in float32 (``V+computed_in=float32``: Keras' float32 dtype policy on float64 inputs).
    `learn(combo, dtype, constants)`: explain()'s, the fact (and the evaluation where made) of a combination;
    `made(combo, fact, evaluation, dtype, constants)`: explain()'s, the evaluation in full."""

    def scaled_err(v: np.ndarray, g: np.ndarray, gw: np.ndarray | None) -> float | None:
        c = compare(v, g, ref, case.dtype, 0.0, gw)
        errors = [c.value_scaled_err, c.grad_scaled_err, c.grad_w_scaled_err]
        return None if c.outcome == "nonfinite" else float(np.nanmax(errors))

    def rounded_to(combo: Combo, dtype: str, rtol: float) -> Evaluation | None:
        """The combination computed in `dtype`, where that rounding is visible here (differs from the reference,
        so its name means something) and reproduces the row at D's tolerance (`dtype`: D's underflow floor)."""
        known, ev = learn(combo, dtype, dtype)
        if known.rules_out(value, grad, dtype, rtol):
            return None
        target = made(combo, known, ev, dtype, dtype)
        return None if differs(value, grad, target, dtype, rtol, grad_w) else target

    own = scaled_err(value, grad, grad_w)
    for r in sorted(ROUNDING, key=lambda v: (EPS[v.dtype], v.name not in registered)):
        if EPS[r.dtype] < EPS[case.dtype]:
            continue  # computing in more precision than the input is not a way to lose accuracy
        rtol = tolerance(r.dtype, case.n_classes, case.n_elements)
        orders = _ORDERS if (case.spec.label_smoothing and case.spec.target == "index") else _ORDERS[:1]
        if case.spec.family == "sigmoid" and case.spec.input == "logits":
            orders = (*orders, _SIGMOID_ORDER)
        for order in orders:
            rev = rounded_to(order, r.dtype, rtol)
            if rev is not None:
                budget = scaled_err(rev.value, rev.grad, rev.grad_w)
                if own is None or budget is None or own >= budget / 16:
                    return r.name
            del rev
        if r.dtype != "float32":
            continue  # the one documented pairing: a float32 policy on float64 inputs (Keras)
        for combo in semantic:
            if rounded_to(combo, r.dtype, rtol) is not None:
                return f"{combo_name(combo)}+{r.name}"
    return ""
