"""Version to version: one framework's rows from two installs side by side (``jax`` and ``jax@new``, run by
another interpreter: `--python jax@new=...`), what changed in value, gradient, outcome and speed.

Rows pair on everything but the framework: (case, api, recipe, mode, policy, device). A value change is
|v_B - v_A| / |ref| (the reference scales both), a gradient change the difference of their grad_rel_err.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from adapters.registry import base_name

PAIR_KEYS = ["case_id", "api", "recipe", "mode", "policy", "device"]
TIME_KEYS = ["case_id", "api", "device", "mode", "pass"]
VERSIONS_NOTE = (
    "The same framework from two installs (`--python FW@LABEL=...`), paired row by row (case, API, recipe, mode, "
    "policy). **value change**: the largest |value_B - value_A| / |exact|; **grad change**: grad_rel_err_B - "
    "grad_rel_err_A at its largest in absolute value; **outcomes changed**: rows whose verdict differs, with an "
    "example; **time B/A**: median of the per-case ratios of median times."
)


def version_pairs(frameworks: pd.Series) -> list[tuple[str, str]]:
    """(A, B) for each install B (``jax@new``) whose framework A (``jax``) is also in the rows."""
    names = set(frameworks.dropna().astype(str))
    return sorted((base_name(b), b) for b in names if "@" in b and base_name(b) in names)


def versions_frame(df: pd.DataFrame, timing: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (A, B) pair: versions, rows paired, outcomes changed (and one example), the largest value and
    gradient changes, and B's time over A's."""
    out = []
    for a, b in version_pairs(df["framework"]):
        left, right = df[df["framework"] == a], df[df["framework"] == b]
        both = left.merge(right, on=PAIR_KEYS, suffixes=("_a", "_b"))
        if both.empty:
            continue
        changed = both[both["outcome_a"] != both["outcome_b"]]
        with np.errstate(all="ignore"):
            dv = (both["value_b"] - both["value_a"]).abs() / both["ref_value_a"].abs()
            dg = both["grad_rel_err_b"] - both["grad_rel_err_a"]
        example = ""
        if len(changed):
            r = changed.iloc[0]
            example = f"{r['case_id']} {r['api']} {r['recipe']}: {r['outcome_a']} -> {r['outcome_b']}"
        out.append({
            "A": f"{a} {_version(left)}", "B": f"{b} {_version(right)}", "rows": len(both),
            "outcomes changed": len(changed), "example": example,
            "value change": _largest(dv), "grad change": _largest(dg, signed=True),
            "time B/A": _time_ratio(timing, a, b),
        })  # fmt: skip
    return pd.DataFrame(out)


def _version(rows: pd.DataFrame) -> str:
    return ", ".join(sorted({str(v) for v in rows["framework_version"].dropna() if str(v)})) or "?"


def _largest(s: pd.Series, signed: bool = False) -> float:
    s = s.replace([np.inf, -np.inf], np.nan).dropna()
    if s.empty:
        return float("nan")
    return float(s.loc[s.abs().idxmax()]) if signed else float(s.max())


def _time_ratio(timing: pd.DataFrame | None, a: str, b: str) -> float:
    if timing is None or timing.empty:
        return float("nan")
    ta, tb = timing[timing["framework"] == a], timing[timing["framework"] == b]
    both = ta.merge(tb, on=TIME_KEYS, suffixes=("_a", "_b"))
    return float((both["median_s_b"] / both["median_s_a"]).median()) if len(both) else float("nan")
