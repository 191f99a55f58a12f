"""summary.md: the published discrepancy tables, rendered from the tidy accuracy DataFrame."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from cases.names import DTYPES, KINDS, OUTCOMES
from cases.spec import Case

NOT_OK_LISTED = 80


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (| and newlines in cells escaped)."""

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "inf"
    if x == 0:
        return "0"
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.2e}"


def column_label(df: pd.DataFrame) -> pd.Series:
    """``framework.api`` (its last dotted part), with ``@device`` when several devices appear."""
    label = df["framework"] + "." + df["api"].str.split(".").str[-1]
    if df["device"].nunique() > 1:
        label = label + "@" + df["device"]
    return label


def outcome_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Counts of each outcome per framework/api/recipe/device (tidy in, wide out: for rendering)."""
    counts = df.groupby(["framework", "api", "recipe", "device", "outcome"], sort=False).size()
    wide = counts.unstack("outcome", fill_value=0)
    return wide.reindex(columns=[o for o in OUTCOMES if o in wide.columns], fill_value=0).reset_index()


def _cell(g: pd.DataFrame) -> str:
    n, ok = len(g), int((g["outcome"] == "ok").sum())
    judged = g[g["outcome"].isin(["ok", "mismatch"])]
    parts = []
    if len(judged):
        parts.append(f"{fmt(judged['value_ulp_err'].max())} / {fmt(judged['grad_ulp_err'].max())} ulp")
    parts.append(f"{ok}/{n} ok")
    others = g["outcome"].value_counts()
    parts += [f"{others[o]} {o}" for o in OUTCOMES[1:] if o in others]
    return ", ".join(parts)


def discrepancy_table(df: pd.DataFrame, recipe: str) -> str:
    """Rows: kind and dtype; columns: framework.api; cells: worst value/grad ULP error and outcome counts."""
    sub = df[(df["recipe"] == recipe) & (df["outcome"] != "unsupported")]
    if sub.empty:
        return "_No rows._"
    sub = sub.assign(col=column_label(sub))
    cols = list(dict.fromkeys(sub["col"]))
    rows = []
    for kind in [k for k in (*KINDS, "user") if k in set(sub["kind"])]:
        for dtype in [d for d in DTYPES if d in set(sub["dtype"])]:
            g = sub[(sub["kind"] == kind) & (sub["dtype"] == dtype)]
            if g.empty:
                continue
            by_col = dict(tuple(g.groupby("col")))
            rows.append([kind, dtype, *(_cell(by_col[c]) if c in by_col else "" for c in cols)])
    return md_table(["kind", "dtype", *cols], rows)


def documented_table(df: pd.DataFrame, cases: Sequence[Case]) -> str:
    """The seeds' printed numbers beside the exact value and each framework's (matched recipe)."""
    docs = [c for c in cases if c.kind == "documented"]
    if not docs:
        return ""
    sub = df[(df["kind"] == "documented") & (df["recipe"] == "matched")]
    sub = sub.assign(col=column_label(sub))
    cols = list(dict.fromkeys(sub["col"]))
    rows = []
    for case in docs:
        g = sub[sub["case_id"] == case.id]
        ref = g["ref_value"].iloc[0] if len(g) else float("nan")
        numeric = ("ok", "mismatch", "nonfinite")
        vals = {r.col: (fmt(r.value) if r.outcome in numeric else r.outcome) for r in g.itertuples()}
        for label, claimed in case.claimed:
            verdict = "agrees" if abs(claimed - ref) <= 0.5e-4 + 1e-12 else "**differs**"
            rows.append([case.id, label, claimed, f"{ref:.6g}", verdict, *(vals.get(c, "") for c in cols)])
    return md_table(["case", "what the source printed", "claimed", "exact", "claim vs exact", *cols], rows)


def not_ok_table(df: pd.DataFrame) -> str:
    bad = df[~df["outcome"].isin(["ok", "unsupported"])]
    if bad.empty:
        return "_Every judged row is within tolerance._"
    rows = [
        [r.case_id, f"{r.framework}.{r.api.split('.')[-1]}", r.recipe, r.device, r.outcome, fmt(r.value),
         fmt(r.ref_value), fmt(r.value_rel_err), fmt(r.grad_rel_err), r.explanation or "", r.error]
        for r in bad.head(NOT_OK_LISTED).itertuples()
    ]  # fmt: skip
    more = f"\n\n_{len(bad) - NOT_OK_LISTED} more in accuracy.csv._" if len(bad) > NOT_OK_LISTED else ""
    header = ["case", "api", "recipe", "device", "outcome", "value", "exact", "value rel err", "grad rel err",
              "explanation", "error"]  # fmt: skip
    return md_table(header, rows) + more


def render(df: pd.DataFrame, env: dict[str, Any], cases: Sequence[Case], partial: bool = False) -> str:
    fws = env.get("frameworks", {})
    fw_lines = [
        f"- **{name}** {info.get('version') or 'not installed'}: "
        + ", ".join(f"{k}: {v}" for k, v in info.items() if k not in ("version",))
        for name, info in fws.items()
    ]
    unsupported_cols = []
    for (fw, dev), g in df.groupby(["framework", "device"]):
        if (g["outcome"] == "unsupported").all():
            unsupported_cols.append(f"- {fw} on {dev}: every row unsupported ({g['error'].iloc[0]})")
    counts = outcome_counts(df)
    parts = [
        "# Cross-entropy discrepancy report" + (" (PARTIAL: the run was interrupted)" if partial else ""),
        "",
        f"Run `{env.get('run_id', '')}` at {env.get('utc_time', '')}, harness {env.get('harness_version', '')} "
        f"(commit `{env.get('git_commit', '') or 'unknown'}`), Python {env.get('python', '')}, "
        f"{env.get('cpu', '')} ({env.get('cpu_count', '')} cores), {env.get('os', '')}.",
        f"Command: `{env.get('command', '')}`",
        "",
        *fw_lines,
        "",
        "Errors are against the float64 reference of DESIGN.md on the same (rounded) inputs. Cells give the worst "
        "value / gradient error in ULPs of the row's dtype, then outcome counts. `matched` rows are the "
        "composition that reproduces PyTorch's semantics (pure numerics); `native` rows are the obvious port "
        "(where the surprises are). Tolerances: harness/tolerances.py.",
        "",
        "## Outcomes",
        "",
        md_table(list(counts.columns), counts.values.tolist()),
        *(["", "Not run:", *unsupported_cols] if unsupported_cols else []),
        "",
        "## Discrepancies: matched recipes",
        "",
        discrepancy_table(df, "matched"),
        "",
        "## Discrepancies: native recipes",
        "",
        discrepancy_table(df, "native"),
    ]
    doc = documented_table(df, cases)
    if doc:
        parts += ["", "## Documented examples (shared/seeds)", "", doc]
    parts += ["", "## Rows not ok", "", not_ok_table(df), ""]
    return "\n".join(parts)
