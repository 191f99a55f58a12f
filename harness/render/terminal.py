"""What `check` and `verify` print on a terminal: each row's outcome, errors, every cause of a difference
(nothing cut: an explanation is the answer) and a raised error's reason, then what each cause means."""

from __future__ import annotations

import pandas as pd

from adapters.variants import describe
from harness.render.markdown import fmt

ERROR_WIDTH = 110  # a raised error's reason fits; error_text already dropped the frameworks' noise


def _table(df: pd.DataFrame, columns: dict[str, str]) -> str:
    """`df`'s `columns` (source -> header) as plain aligned text; numbers short, text whole."""
    show = pd.DataFrame({head: df[col] for col, head in columns.items()})
    for head in show.columns:
        if show[head].dtype.kind == "f":
            show[head] = show[head].map(fmt)
    if "error" in show:
        cut = ERROR_WIDTH - 3
        show["error"] = show["error"].fillna("").map(lambda e: e if len(e) <= ERROR_WIDTH else e[:cut] + "...")
    return show.fillna("").to_string(index=False, max_colwidth=None)


def causes(df: pd.DataFrame) -> str:
    """One line per cause met in `df`'s explanations: what it does."""
    names = dict.fromkeys(p for e in df["explanation"].fillna("") for p in e.split("+") if p)
    return "\n".join(f"  {describe(n)}" for n in names)


CHECK_COLUMNS = {"framework": "framework", "api": "api", "recipe": "recipe", "device": "device", "outcome": "outcome",
                 "value": "value", "value_rel_err": "value rel err", "grad_rel_err": "grad rel err",
                 "explanation": "explanation", "error": "error"}  # fmt: skip


def check_table(df: pd.DataFrame) -> str:
    """`check`'s rows, a table per case (the user's dtype, then float64), with the causes below."""
    out = []
    for case_id, g in df.groupby("case_id", sort=False):
        g = g.assign(api=g["api"].str.split(".").str[-1])
        out.append(f"case {case_id}: exact value {g['ref_value'].iloc[0]:.17g}")
        out.append(_table(g, CHECK_COLUMNS))
        out.append("")
    why = causes(df)
    return "\n".join(out + (["Causes:", why] if why else []))


def verify_table(df: pd.DataFrame) -> str:
    """`verify`'s rows (one per case and device), then the causes."""
    cols = {"case_id": "case", "device": "device", "outcome": "outcome", "value_rel_err": "value rel err",
            "grad_rel_err": "grad rel err", "tol": "tol", "explanation": "explanation", "error": "error"}  # fmt: skip
    if "grad_method" in df and (df["grad_method"].fillna("autodiff") != "autodiff").any():  # numerical, or none
        cols = {**dict(list(cols.items())[:5]), "grad_method": "gradient", **dict(list(cols.items())[5:])}
    why = causes(df)
    return _table(df, cols) + (f"\n\nCauses:\n{why}" if why else "")
