"""Semantics decided once: a configuration's float64 row says whether a recipe differs from the canonical
loss, and that verdict holds for the same configuration at every dtype.

A semantic difference (a weighted mean divided by N: 11% off) can sit inside a half-precision
tolerance (bfloat16's is 0.35), where the row alone would read `ok`. At float64 the same recipe on the
same configuration shows it under a tight tolerance, with its explanation. So each lower-precision row
takes its float64 sibling's semantic causes: a row within its own tolerance becomes `mismatch` (the
`error` says why), and every difference carries those causes, followed by its own rounding cause
(``computed_in=D``). Rounding verdicts stay per dtype. A pure function of the rows: applied twice, it
changes nothing more.
"""

from __future__ import annotations

import pandas as pd

from cases.names import DTYPE_TAGS, MODES

DIFFERENT = ("mismatch", "nonfinite")
ROUNDING_PREFIX = "computed_in="
SIBLING_KEY = ("case_id", "framework", "api", "recipe", "device", "mode", "policy")


def float64_sibling(case_id: str, dtype: str) -> str:
    """The id of the same configuration's float64 case (the dtype tag is the last such token of an id)."""
    parts = case_id.split("-")
    tags = set(DTYPE_TAGS.values())
    for k in range(len(parts) - 1, -1, -1):
        if parts[k] in tags:
            if parts[k] != DTYPE_TAGS[dtype]:
                break
            parts[k] = DTYPE_TAGS["float64"]
            return "-".join(parts)
    raise ValueError(f"Expected a case id with the dtype tag {DTYPE_TAGS[dtype]!r}. Received: {case_id!r}")


def semantic_parts(explanation: str) -> list[str]:
    """The causes of an explanation that are not rounding."""
    return [p for p in explanation.split("+") if p and not p.startswith(ROUNDING_PREFIX)]


REFERENCE_FRAMEWORK = "torch"  # `matched` recipes reproduce it, departures from the exact loss included


def note_unreproduced(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with a note in `error` on each matched row that is exact where PyTorch's own matched row of the
    same case departs from the exact loss (a NaN from 0 * log 0, say): where the framework could not, or
    should not, reproduce that departure, the row says which one it does not reproduce. Idempotent."""
    if df.empty or REFERENCE_FRAMEWORK not in set(df["framework"]):
        return df
    torch = df[(df["framework"] == REFERENCE_FRAMEWORK) & (df["recipe"] == "matched") & df["outcome"].isin(DIFFERENT)]
    departs = {(c, d): e or "a difference no variant explains" for c, d, e in
               zip(torch["case_id"], torch["device"], torch["explanation"], strict=True)}  # fmt: skip
    if not departs:
        return df
    out = df.copy()
    others = ~out["framework"].isin([REFERENCE_FRAMEWORK, "numpy"])  # numpy is the exact reference by design
    mine = (out["recipe"] == "matched") & others & (out["outcome"] == "ok")
    for i in out.index[mine]:
        why = departs.get((out.at[i, "case_id"], out.at[i, "device"]))
        if why:
            out.at[i, "error"] = f"exact here; does not reproduce PyTorch's departure from it ({why})"
    return out


def decide_once(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with each lower-precision row judged by its float64 sibling's semantics (module docstring)."""
    if df.empty:
        return df
    f64 = df[df["dtype"] == "float64"]
    verdicts = {
        tuple(k): (o, e or "")
        for *k, o, e in zip(*(f64[c] for c in SIBLING_KEY), f64["outcome"], f64["explanation"], strict=True)
    }
    out = df.copy()
    for i, row in zip(df.index, df.itertuples(index=False), strict=True):
        if row.dtype == "float64" or row.outcome not in ("ok", *DIFFERENT):
            continue
        base = (float64_sibling(row.case_id, row.dtype), row.framework, row.api, row.recipe, row.device)
        # the same mode and policy where the float64 case ran so; else the recipe's semantics without a policy
        # (a policy applies to half-precision inputs only), in its mode or any other
        keys = [(*base, row.mode, row.policy), (*base, row.mode, "none"), *((*base, m, "none") for m in MODES)]
        outcome, explanation = next((verdicts[k] for k in keys if k in verdicts), ("", ""))
        if outcome not in DIFFERENT:
            continue
        causes = semantic_parts(explanation)
        if explanation and not causes:
            continue  # float64 differs by rounding alone (a float32 compute policy): nothing semantic to carry
        own = row.explanation or ""
        combined = "+".join(causes + [p for p in own.split("+") if p.startswith(ROUNDING_PREFIX)])
        if row.outcome == "ok":
            out.at[i, "outcome"] = "mismatch"
            seen = explanation or "a difference no variant explains"
            out.at[i, "error"] = f"within the {row.dtype} tolerance; the float64 row of this configuration shows {seen}"
        out.at[i, "explanation"] = combined
    return out
