"""Numbers a source printed (a seed article, a user's `check --claimed`): do they agree with the exact
value, and if not, which variant produces them? Judged when a run is made, stored in its `claims` table,
so a report renders them without recomputing anything."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from adapters.reference import evaluate
from adapters.variants import BY_NAME, VARIANTS, evaluate_variants
from cases.spec import Case

CLAIM_COLUMNS = ("case_id", "label", "claimed", "exact", "agrees", "variants")


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
    inputs = case.inputs()
    exact = float(np.asarray(evaluate(case.spec, inputs).value).ravel()[0])
    agrees = math.isclose(exact, claimed, abs_tol=tol + 1e-9 * abs(claimed))
    hits = []
    for v in VARIANTS:
        ev = evaluate_variants((v,), case.spec, inputs, v.dtype or "float64")
        if ev is None:
            continue
        got = float(np.asarray(ev.value).ravel()[0])
        if math.isfinite(got) and abs(got - claimed) <= tol + 1e-9 * abs(claimed) and abs(got - exact) > tol:
            hits.append(v.name)
    return ClaimVerdict(claimed, exact, agrees, tuple(dict.fromkeys(hits)))


def claims_frame(cases: Sequence[Case]) -> pd.DataFrame:
    """One row per number a case's source printed (`Case.claimed`): the `claims` table of a run."""
    rows = []
    for case in cases:
        for label, claimed in case.claimed:
            v = explain_claim(case, claimed, claim_tolerance(repr(claimed)))
            rows.append({"case_id": case.id, "label": label, "claimed": claimed, "exact": v.exact, "agrees": v.agrees,
                         "variants": " or ".join(v.variants)})  # fmt: skip
    return pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))
