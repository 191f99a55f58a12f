"""What changed between two runs: outcomes, errors that grew, timings that moved beyond their noise.

Rows are matched on (case, framework, api, recipe, device), the case by its id without the seed suffix
(``-s0``), so runs with different seeds still pair up; the header says when they did, since their
inputs then differ and a value change mixes the inputs' change with the framework's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adapters.registry import DISPLAY, FRAMEWORKS
from harness.judge.tolerances import EPS
from harness.render.load import RunFiles, load_run
from harness.render.markdown import fmt, md_table
from harness.render.merge import machine_name
from harness.render.summary import NOT_OK_LISTED

ACCURACY_MATCH = ("case", "framework", "api", "recipe", "device", "mode", "policy")
TIMING_MATCH = ("case", "framework", "api", "device", "mode", "pass")
GROWTH = 10.0  # an error "grew" when it is more than this many times larger (or crossed the tolerance)
NOISE_IQRS = 2.0  # a median "moved" when it shifted by more than this many times the two IQRs together...
MIN_MOVE = 0.05  # ...and by more than this fraction of the first run's median


@dataclass(frozen=True)
class Changes:
    """Rows of B that differ from the matching rows of A (columns suffixed _a and _b)."""

    outcomes: pd.DataFrame  # outcome changed
    errors: pd.DataFrame  # value or gradient relative error grew (one row per row and quantity)
    timings: pd.DataFrame  # median time moved beyond noise
    matched: int  # accuracy rows present in both runs
    only_a: int
    only_b: int


def _keyed(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(case=df["case_id"].str.replace(r"-s\d+$", "", regex=True))


def by_machine(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether rows pair by machine as well: both runs are merged ones (a `machine` column) that share a machine.
    Two runs of different machines pair across them (what changed from one box to the other)."""
    return "machine" in a.columns and "machine" in b.columns and bool(set(a["machine"]) & set(b["machine"]))


def _pair(a: pd.DataFrame, b: pd.DataFrame, match: Sequence[str]) -> pd.DataFrame:
    key = [*match, *(["machine"] if by_machine(a, b) else [])]
    a, b = _keyed(a).drop_duplicates(key), _keyed(b).drop_duplicates(key)
    pairs = a.merge(b, on=key, how="outer", suffixes=("_a", "_b"), indicator=True)
    if "machine" in key and pairs["machine"].nunique() > 1:  # the tables name a row's machine with its device
        pairs = pairs.assign(device=pairs["machine"].astype(str) + ": " + pairs["device"].astype(str))
    return pairs


def _errors_grew(both: pd.DataFrame) -> pd.DataFrame:
    floor = both["dtype_a"].map(EPS).astype(float)  # below one ulp a tenfold change is noise
    tol = both["tol_b"].astype(float)
    out = []
    for what in ("value", "grad"):
        a, b = both[f"{what}_rel_err_a"].astype(float), both[f"{what}_rel_err_b"].astype(float)
        grew = (b > GROWTH * np.maximum(a, floor)) | ((b > tol) & ~(a > tol))
        rows = both[grew.fillna(False).astype(bool)]
        out.append(rows.assign(quantity=what, err_a=a[rows.index], err_b=b[rows.index]))
    keep = ["case_id_a", "case_id_b", "framework", "api", "recipe", "device", "mode", "policy", "dtype_a", "quantity",
            "err_a", "err_b", "tol_b", "outcome_a", "outcome_b", "explanation_b"]  # fmt: skip
    df = pd.concat(out, ignore_index=True).reindex(columns=keep)
    return df.assign(ratio=df["err_b"] / df["err_a"].where(df["err_a"] > 0))


def _timings_moved(a: pd.DataFrame | None, b: pd.DataFrame | None) -> pd.DataFrame:
    cols = ["case_id_a", "framework", "api", "device", "mode", "pass", "median_s_a", "median_s_b", "iqr_s_a",
            "iqr_s_b", "ratio"]  # fmt: skip
    if a is None or b is None or a.empty or b.empty:
        return pd.DataFrame(columns=cols)
    both = _pair(a, b, TIMING_MATCH)
    both = both[both["_merge"] == "both"]
    ma, mb = both["median_s_a"].astype(float), both["median_s_b"].astype(float)
    noise = NOISE_IQRS * (both["iqr_s_a"].astype(float).fillna(0) + both["iqr_s_b"].astype(float).fillna(0))
    moved = ((mb - ma).abs() > noise) & ((mb - ma).abs() > MIN_MOVE * ma)
    return both.assign(ratio=mb / ma)[moved].reindex(columns=cols).reset_index(drop=True)


def changes(
    a_accuracy: pd.DataFrame, b_accuracy: pd.DataFrame,
    a_timing: pd.DataFrame | None = None, b_timing: pd.DataFrame | None = None,
) -> Changes:  # fmt: skip
    """Outcome changes, errors that grew (more than 10x, or past the tolerance) and timings that moved
    (|median_a - median_b| > 2 (iqr_a + iqr_b) and > 5% of median_a), from run A to run B."""
    pairs = _pair(a_accuracy, b_accuracy, ACCURACY_MATCH)
    both = pairs[pairs["_merge"] == "both"].reset_index(drop=True)
    outcome_cols = ["case_id_a", "case_id_b", "framework", "api", "recipe", "device", "mode", "policy", "outcome_a",
                    "outcome_b", "value_rel_err_a", "value_rel_err_b", "explanation_a", "explanation_b",
                    "error_b"]  # fmt: skip
    outcomes = both[both["outcome_a"] != both["outcome_b"]].reindex(columns=outcome_cols).reset_index(drop=True)
    return Changes(
        outcomes=outcomes,
        errors=_errors_grew(both).reset_index(drop=True),
        timings=_timings_moved(a_timing, b_timing),
        matched=len(both),
        only_a=int((pairs["_merge"] == "left_only").sum()),
        only_b=int((pairs["_merge"] == "right_only").sum()),
    )


def _versions(run: RunFiles) -> dict[str, str]:
    """Framework versions from env.json, else from the rows."""
    out = {k: str(v.get("version") or "") for k, v in run.env.get("frameworks", {}).items()}
    for fw, v in run.accuracy.groupby("framework")["framework_version"].first().items():
        out.setdefault(str(fw), str(v))
    return out


def _instruction_sets(run: RunFiles) -> dict[str, str]:
    """``{"PyTorch cpu": "...AVX512"}``: what each framework's worker said its kernels use (env.json)."""
    out = {}
    for fw, info in run.env.get("frameworks", {}).items():
        for key, value in info.items():
            if key.startswith("isa_") and value:
                out[f"{DISPLAY.get(fw, fw)} {key[4:]}"] = str(value)
    return out


def header(a: RunFiles, b: RunFiles) -> str:
    """Both runs side by side: id, time, machine, seed, commit and each framework's version."""
    va, vb = _versions(a), _versions(b)
    fws = [f for f in FRAMEWORKS if f in va or f in vb] + sorted((va.keys() | vb.keys()) - set(FRAMEWORKS))
    seed_a, seed_b = a.options.get("seed"), b.options.get("seed")
    rows: list[list[Any]] = [
        ["run", a.env.get("run_id", a.path.name), b.env.get("run_id", b.path.name)],
        ["directory", a.path, b.path],
        ["time (UTC)", a.env.get("utc_time", ""), b.env.get("utc_time", "")],
        ["machine", _machines(a.env), _machines(b.env)],
        ["seed", seed_a, seed_b],
        ["git commit", a.env.get("git_commit", ""), b.env.get("git_commit", "")],
        *[[DISPLAY.get(f, f), va.get(f, "-") or "-", vb.get(f, "-") or "-"] for f in fws],
    ]
    moved = [f"{DISPLAY.get(f, f)} {va[f]} vs {vb[f]}" for f in fws if va.get(f) and vb.get(f) and va[f] != vb[f]]
    isa_a, isa_b = _instruction_sets(a), _instruction_sets(b)
    rows.append(["CPU instruction set", a.env.get("cpu_isa", "-") or "-", b.env.get("cpu_isa", "-") or "-"])
    rows += [[f"{k} kernels", isa_a.get(k, "-"), isa_b.get(k, "-")] for k in sorted(isa_a.keys() | isa_b.keys())]
    isa_moved = [k for k in sorted(isa_a.keys() & isa_b.keys()) if isa_a[k] != isa_b[k]]
    if a.env.get("cpu_isa") and b.env.get("cpu_isa") and a.env["cpu_isa"] != b.env["cpu_isa"]:
        isa_moved.insert(0, "the CPU")
    lines = [
        f"# Comparison: {rows[0][1]} (A) vs {rows[0][2]} (B)",
        "",
        md_table(["", "A", "B"], rows),
        "",
        ("Framework versions that differ: " + "; ".join(moved) + ".") if moved else "Same framework versions.",
    ]
    if isa_moved:
        lines += [
            "",
            f"Instruction sets differ ({', '.join(isa_moved)}): the likely cause of float32 and "
            "lower-precision value changes below, where the versions are the same (the frameworks pick their "
            "kernels for the CPU they run on: PyTorch's AVX2 and AVX-512 reductions round differently).",
        ]
    if seed_a != seed_b:
        lines += ["", f"The runs used different seeds ({seed_a} vs {seed_b}): the generated case inputs differ, so "
                  "cases are matched by id without the seed, and a changed value reflects the inputs as well as "
                  "the frameworks."]  # fmt: skip
    if _machines(a.env) != _machines(b.env):
        lines += ["", "The runs are from different machines: timings compare hardware as well as software."]
    return "\n".join(lines)


def _machines(env: dict[str, Any]) -> str:
    """The machine a run used, or the machines a merged run holds."""
    return "; ".join(env.get("machines") or [machine_name(env)])


def _api(r: dict[str, Any]) -> str:
    """framework.api, then the mode and policy where the row has them (timing rows have their own mode column)."""
    how = [r.get(k) for k in ("mode", "policy") if "pass" not in r and r.get(k) not in (None, "none")]
    return f"{r['framework']}.{r['api'].split('.')[-1]}" + "".join(f" [{h}]" for h in how)


def _limited(header_: list[str], rows: list[list[Any]], max_rows: int | None) -> str:
    if not rows:
        return "_None._"
    shown = rows if max_rows is None else rows[:max_rows]
    more = "" if len(shown) == len(rows) else f"\n\n_{len(rows) - len(shown)} more (pass --verbose for all)._"
    return md_table(header_, shown) + more


def outcome_table(df: pd.DataFrame, max_rows: int | None = NOT_OK_LISTED) -> str:
    rows = [
        [r["case_id_b"], _api(r), r["recipe"], r["device"], r["outcome_a"], r["outcome_b"], fmt(r["value_rel_err_a"]),
         fmt(r["value_rel_err_b"]), r["explanation_b"] or "", r["error_b"] or ""]
        for r in df.to_dict("records")
    ]  # fmt: skip
    header_ = ["case (B)", "api", "recipe", "device", "A", "B", "value rel err A", "value rel err B", "explanation B",
               "error B"]  # fmt: skip
    return _limited(header_, rows, max_rows)


def error_table(df: pd.DataFrame, max_rows: int | None = NOT_OK_LISTED) -> str:
    rows = [
        [r["case_id_b"], _api(r), r["recipe"], r["device"], r["quantity"], fmt(r["err_a"]), fmt(r["err_b"]),
         fmt(r["ratio"]), fmt(r["tol_b"]), f"{r['outcome_a']} -> {r['outcome_b']}"]
        for r in df.to_dict("records")
    ]  # fmt: skip
    header_ = ["case (B)", "api", "recipe", "device", "quantity", "rel err A", "rel err B", "B / A", "tol", "outcome"]
    return _limited(header_, rows, max_rows)


def timing_table(df: pd.DataFrame, max_rows: int | None = NOT_OK_LISTED) -> str:
    rows = [
        [r["case_id_a"], _api(r), r["device"], r["mode"], r["pass"], fmt(r["median_s_a"]), fmt(r["median_s_b"]),
         fmt(r["ratio"])]
        for r in df.to_dict("records")
    ]  # fmt: skip
    return _limited(["case", "api", "device", "mode", "pass", "median s A", "median s B", "B / A"], rows, max_rows)


def render(a: RunFiles, b: RunFiles, max_rows: int | None = NOT_OK_LISTED) -> str:
    """The comparison as Markdown: header, counts, then the three tables (first `max_rows` rows of each)."""
    ch = changes(a.accuracy, b.accuracy, a.timing, b.timing)
    parts = [
        header(a, b),
        "",
        f"{ch.matched} rows in both runs ({ch.only_a} only in A, {ch.only_b} only in B): {len(ch.outcomes)} changed "
        f"outcome, {len(ch.errors)} errors grew, {len(ch.timings)} timings moved.",
        "",
        "## Outcome changes",
        "",
        outcome_table(ch.outcomes, max_rows),
        "",
        "## Errors that grew",
        "",
        f"Relative error of B more than {GROWTH:g}x A's (and above one ulp), or beyond the tolerance where A's "
        "was not.",
        "",
        error_table(ch.errors, max_rows),
        "",
        "## Timings that moved",
        "",
    ]
    if a.timing is None or b.timing is None:
        missing = " and ".join(x for x, r in (("A", a), ("B", b)) if r.timing is None)
        parts.append(f"_No timing in {missing} (timing.parquet missing)._")
    else:
        parts.append(f"Median changed by more than {NOISE_IQRS:g} x (IQR A + IQR B) and by more than {MIN_MOVE:.0%}.")
        parts += ["", timing_table(ch.timings, max_rows)]
    return "\n".join(parts) + "\n"


def compare_runs(a: Path, b: Path, max_rows: int | None = NOT_OK_LISTED) -> str:
    """Markdown: both runs' versions and seeds, then what changed from A to B (`max_rows=None`: every row)."""
    return render(load_run(a), load_run(b), max_rows)
