"""summary.md: the published discrepancy tables, rendered from the tidy accuracy DataFrame."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from adapters.variants import BY_NAME
from cases.names import DTYPES, KINDS, OUTCOMES
from harness.judge.registry import KnownDifference, is_known, known_differences
from harness.render.load import RunFiles
from harness.render.markdown import collapsible, fmt, md_table
from harness.render.tables import (
    DIFFERENT,
    Front,
    config_matrix,
    how_label,
    modes_frame,
    nondeterministic,
    to_markdown,
    top_surprises,
)
from harness.render.versions import VERSIONS_NOTE, versions_frame

NOT_OK_LISTED = 80  # rows compare lists (summary.md lists every row, folded when there are more than SHOWN_OPEN)
SHOWN_OPEN = 20
SURPRISES_NOTE = (
    "What the obvious port (`native`) gets wrong, one row per cause (adapters/variants.py), most surprising "
    "first: causes met on typical inputs (not only on the `edge` kind) first, then those seen at float64 "
    "(semantics, not rounding), then those met in more configurations, then the larger typical error (a cause "
    "that mostly gives NaN or Inf first), then the more rows. Errors are relative to the exact value: worst "
    "(median) over the rows. The fix is the essential line of the `matched` recipe, which reproduces PyTorch; "
    "the whole snippet per configuration is in reports/PORTING.md."
)
CONFIG_NOTE = (
    "Each configuration over its case kinds, shapes and dtypes, per framework: the `native` and `matched` "
    "verdicts of each API. ✓: every row within tolerance of the exact value; ✗: the causes that explain the "
    "difference, with the dtypes in brackets where not every dtype differs; raises; n/a: the API cannot express "
    "it. `k/n rows`: how many rows are not ok where some are. APIs with the same verdicts share a line. A "
    "`matched` ✗ is PyTorch's own departure, reproduced (its `error` says so where it is not)."
)
TIMING_NOTE = (
    "Matched recipes, inputs staged on the device beforehand; the first call (compilation in compiled mode) is "
    "kept out of the medians and shown as compile time, taken after the worker compiled a 4 x 3 loss once (so "
    "no row carries the compiler's one-time setup). Blocks of calls are sized so timer and synchronisation "
    "cost under 1%, and samples are taken for the whole budget (`samples`: how many); noisy means IQR > 10% "
    "of the median, common on a 2-core machine. Roofline: the bytes the loss must move at least "
    "(read x and targets, write the loss, and the gradient for forward_backward) per second, over the device's "
    "measured copy bandwidth (harness/runner/timing.py)."
)
MATRIX_NOTE = (
    "Largest relative difference of the loss value between two APIs (matched recipes, float32) over the cases "
    "of a kind: what you see when you port from the row's API to the column's."
)
TOLERANCE_NOTE = (
    "A row is `ok` when every element's error is within tol of the size of the terms that make it: "
    "|value - exact| <= tol x sum |a| (|log p| + 1) and |grad - exact| <= tol x (|S| p (1 + |log p|) + |a|) for "
    "softmax of logits (`value_scaled_err` and `grad_scaled_err` are those ratios), with tol = 4 eps(dtype) "
    "(2 + log2 C + log2 M) for C classes and M loss elements; a confident prediction's ~1e-5 loss is judged "
    "against its terms of size 1, not against itself (harness/judge/tolerances.py). At C=10, M=64: float64 1.0e-14, "
    "float32 5.4e-6, float16 0.044, bfloat16 0.35. Semantics are decided by a configuration's float64 row and "
    "hold at every dtype: a lower-precision row of a semantic difference is never `ok` (harness/judge/semantics.py)."
)


def column_label(df: pd.DataFrame) -> pd.Series:
    """``framework.api`` (its last dotted part), with ``@device`` when several devices appear, and `` [mode,
    policy]`` for a row run otherwise than its framework's own way (`how_label`)."""
    label = df["framework"] + "." + df["api"].str.split(".").str[-1]
    if df["device"].nunique() > 1:
        label = label + "@" + df["device"]
    return label + how_label(df)


def outcome_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Counts of each outcome per framework/api/recipe/device/mode/policy (tidy in, wide out: for rendering)."""
    df = df.assign(api=df["api"] + how_label(df))
    counts = df.groupby(["framework", "api", "recipe", "device", "outcome"], sort=False).size()
    wide = counts.unstack("outcome", fill_value=0)
    return wide.reindex(columns=[o for o in OUTCOMES if o in wide.columns], fill_value=0).reset_index()


def _cells(sub: pd.DataFrame, keys: list[str]) -> dict[tuple[Any, ...], str]:
    """Per group of `keys`: worst value/grad ULP error of the judged rows, then outcome counts.

    Counted in one pass over the table (filtering the frame per cell was most of summary.md's time).
    """
    judged = sub["outcome"].isin(["ok", "mismatch"])
    counts: dict[tuple[Any, ...], dict[str, int]] = {}
    worst: dict[tuple[Any, ...], list[float]] = {}
    columns = [sub[k] for k in keys]
    for *key, outcome, j, v, g in zip(
        *columns, sub["outcome"], judged, sub["value_ulp_err"], sub["grad_ulp_err"], strict=True
    ):
        key = tuple(key)
        by = counts.setdefault(key, {})
        by[outcome] = by.get(outcome, 0) + 1
        if j:
            w = worst.setdefault(key, [math.nan, math.nan])
            w[0], w[1] = np.fmax(w[0], v), np.fmax(w[1], g)  # fmax: a NaN error does not hide the others
    out = {}
    for key, by in counts.items():
        parts = [f"{fmt(worst[key][0])} / {fmt(worst[key][1])} ulp"] if key in worst else []
        parts.append(f"{by.get('ok', 0)}/{sum(by.values())} ok")
        parts += [f"{by[o]} {o}" for o in OUTCOMES[1:] if o in by]
        out[key] = ", ".join(parts)
    return out


def discrepancy_table(df: pd.DataFrame, recipe: str) -> str:
    """Rows: kind and dtype; columns: framework.api; cells: worst value/grad ULP error and outcome counts."""
    sub = df[(df["recipe"] == recipe) & (df["outcome"] != "unsupported")]
    if sub.empty:
        return "_No rows._"
    sub = sub.assign(col=column_label(sub))
    cols = list(dict.fromkeys(sub["col"]))
    cells = _cells(sub, ["kind", "dtype", "col"])
    present = {key[:2] for key in cells}
    rows = [
        [kind, dtype, *(cells.get((kind, dtype, c), "") for c in cols)]
        for kind in [k for k in (*KINDS, "user") if k in set(sub["kind"])]
        for dtype in DTYPES
        if (kind, dtype) in present
    ]
    return md_table(["kind", "dtype", *cols], rows)


def documented_table(df: pd.DataFrame, claims: pd.DataFrame | None) -> str:
    """The seeds' printed numbers (the run's `claims` table) beside the exact value and each framework's
    (matched recipe)."""
    if claims is None or claims.empty:
        return ""
    sub = df[(df["kind"] == "documented") & (df["recipe"] == "matched")]
    sub = sub.assign(col=column_label(sub))
    cols = list(dict.fromkeys(sub["col"]))
    numeric = ("ok", "mismatch", "nonfinite")
    values = {(r.case_id, r.col): (fmt(r.value) if r.outcome in numeric else r.outcome) for r in sub.itertuples()}
    rows = []
    for c in claims.itertuples():
        text = "agrees" if c.agrees else ("**" + (c.variants or "unexplained") + "**")
        got = [values.get((c.case_id, k), "") for k in cols]
        rows.append([c.case_id, c.label, c.claimed, f"{c.exact:.6g}", text, *got])
    return md_table(["case", "what the source printed", "claimed", "exact", "claim vs exact", *cols], rows)


def label_known(df: pd.DataFrame, registry: tuple[KnownDifference, ...]) -> pd.Series:
    """For each row: 'known' (its explanation is registered for its framework and API), 'new'
    (a difference that is not), or '' (not a difference)."""
    diff = df["outcome"].isin(DIFFERENT)
    known = [
        is_known(f, a, e or "", registry) for f, a, e in zip(df["framework"], df["api"], df["explanation"], strict=True)
    ]
    return pd.Series(
        ["" if not d else ("known" if k else "new") for d, k in zip(diff, known, strict=True)], index=df.index
    )


def new_differences_table(df: pd.DataFrame) -> str:
    """Differences the registry does not know, unexplained ones first."""
    new = df[df["known"] == "new"]
    if new.empty:
        return "_None: every difference is explained by a documented variant in adapters/known_differences.csv._"
    new = new.assign(_unexplained=new["explanation"].fillna("") == "").sort_values(
        "_unexplained", ascending=False, kind="stable"
    )
    rows = [
        [r.case_id, f"{r.framework}.{r.api.split('.')[-1]}", r.recipe, r.device, r.outcome,
         r.explanation or "**unexplained**", fmt(r.value_rel_err), fmt(r.grad_rel_err), r.error]
        for r in new.itertuples()
    ]  # fmt: skip
    header = ["case", "api", "recipe", "device", "outcome", "explanation", "value rel err", "grad rel err", "error"]
    return _folded(md_table(header, rows), len(rows), "new differences")


def explanations_table(df: pd.DataFrame) -> str:
    """How many differences each variant explains, per framework API and recipe, with its source."""
    diff = df[df["outcome"].isin(DIFFERENT)]
    if diff.empty:
        return "_No differences._"
    g = diff.assign(explanation=diff["explanation"].fillna("").replace("", "(unexplained)")).groupby(
        ["framework", "api", "recipe", "explanation", "known"], sort=False
    )
    rows = []
    for (fw, api, recipe, expl, known), sub in g:
        v = BY_NAME.get(expl)
        rows.append([fw, api.split(".")[-1], recipe, expl, known, len(sub), ", ".join(sorted(set(sub["dtype"]))),
                     v.summary if v else "", v.source if v else ""])  # fmt: skip
    return md_table(
        ["framework", "api", "recipe", "explanation", "known/new", "rows", "dtypes", "what it does", "source"], rows
    )


def cross_framework_matrix(df: pd.DataFrame, kind: str, dtype: str = "float32") -> str:
    """Largest relative difference between the values of every two framework APIs (matched recipes,
    first device, one dtype) over the cases of one kind: what a user porting from one to the other sees."""
    judged = df["outcome"].isin(["ok", "mismatch", "nonfinite"])
    sub = df[(df["kind"] == kind) & (df["recipe"] == "matched") & (df["dtype"] == dtype) & judged]
    sub = sub[sub["device"] == sub["device"].iloc[0]] if len(sub) else sub
    if sub.empty:
        return ""
    sub = sub.assign(col=sub["framework"] + "." + sub["api"].str.split(".").str[-1])
    wide = sub.pivot_table(index="case_id", columns="col", values="value", aggfunc="first", dropna=False)
    cols = [c for c in dict.fromkeys(sub["col"]) if c in wide.columns]
    values = wide[cols].to_numpy(dtype=float)
    rows = []
    for i, a in enumerate(cols):
        cells = []
        for j in range(len(cols)):
            both = ~np.isnan(values[:, i]) & ~np.isnan(values[:, j])  # cases both APIs gave a number for
            if i == j or not both.any():
                cells.append("-" if i == j else "")
                continue
            va, vb = values[both, i], values[both, j]
            with np.errstate(all="ignore"):
                rel = np.abs(va - vb) / np.maximum(np.abs(va), np.abs(vb))
            rel = np.where(va == vb, 0.0, rel)
            cells.append(fmt(float(np.nanmax(rel))))
        rows.append([a, *cells])
    return md_table([kind, *cols], rows)


def timing_table(timing: pd.DataFrame, env: dict[str, Any]) -> str:
    """Per timing case and device: median with IQR, ratio to the fastest for the same pass, achieved
    bandwidth as a fraction of the device's measured copy bandwidth, compile time."""
    if timing is None or timing.empty:
        return "_No timings in this run._"
    parts = []
    bw = env.get("timing", {}).get("bandwidth_gbps", {})
    for (case_id, device), g in timing.groupby(["case_id", "device"], sort=False):
        fastest = g.groupby("pass")["median_s"].transform("min")
        rows = []
        g = g.rename(columns={"pass": "pass_"})
        for r, ratio in zip(g.itertuples(), g["median_s"] / fastest, strict=True):
            noisy = " (noisy)" if r.iqr_s > 0.1 * r.median_s else ""
            rows.append([f"{r.framework}.{r.api.split('.')[-1]}", r.mode, r.pass_,
                         f"{r.median_s * 1e3:.3g} ± {r.iqr_s * 1e3:.2g} ms{noisy}", f"{ratio:.2f}x",
                         f"{r.gbps:.3g}", fmt(r.roofline_frac), fmt(r.compile_s), r.samples])  # fmt: skip
        bandwidth = bw.get(device) or bw.get("cpu")
        parts += [f"**{case_id}** on {device} (copy bandwidth {fmt(bandwidth)} GB/s)", "",
                  md_table(["api", "mode", "pass", "median ± IQR", "vs fastest", "GB/s", "roofline", "compile s",
                            "samples"], rows), ""]  # fmt: skip
    return "\n".join(parts)


def not_ok_table(df: pd.DataFrame) -> str:
    bad = df[~df["outcome"].isin(["ok", "unsupported"])]
    if bad.empty:
        return "_Every judged row is within tolerance._"
    rows = [
        [r.case_id, f"{r.framework}.{r.api.split('.')[-1]}", r.recipe, r.device, r.outcome, fmt(r.value),
         fmt(r.ref_value), fmt(r.value_rel_err), fmt(r.grad_rel_err), r.explanation or "", r.error]
        for r in bad.itertuples()
    ]  # fmt: skip
    header = ["case", "api", "recipe", "device", "outcome", "value", "exact", "value rel err", "grad rel err",
              "explanation", "error"]  # fmt: skip
    return _folded(md_table(header, rows), len(rows), "rows not ok")


def _folded(table: str, n: int, what: str) -> str:
    """Every row, folded under a one-line summary when there are many: the published file is complete."""
    return table if n <= SHOWN_OPEN else collapsible(f"All {n} {what} (click to show)", table)


def surprises_section(df: pd.DataFrame, made: Front | None = None) -> list[str]:
    """## Top surprises: the native difference classes, most surprising first, with the rest counted (`made`:
    those of `df`, made already)."""
    top, rest = top_surprises(df) if made is None else (made.surprises, made.more)
    if top.empty:
        return ["## Top surprises", "", "_None: every obvious port is within tolerance of the exact value._"]
    more = f"_{rest} more causes: the Explanations table below lists every one._" if rest else ""
    return ["## Top surprises", "", SURPRISES_NOTE, "", to_markdown(top), *(["", more] if more else [])]


def matrix_section(df: pd.DataFrame, made: Front | None = None) -> list[str]:
    """## Configurations × frameworks: native and matched verdicts per configuration and framework (`made`: see
    surprises_section)."""
    matrix = config_matrix(df) if made is None else made.matrix
    body = to_markdown(matrix) if len(matrix) else "_No rows ran._"
    return ["## Configurations × frameworks", "", CONFIG_NOTE, "", body]


def render(
    df: pd.DataFrame, env: dict[str, Any], claims: pd.DataFrame | None = None, partial: bool = False,
    registry: tuple[KnownDifference, ...] | None = None, timing: pd.DataFrame | None = None,
    made: Front | None = None,
) -> str:  # fmt: skip
    """summary.md from a run's tables (accuracy, claims, timing) and env.json: nothing is recomputed (`made`: the
    top surprises and the matrix of `df`, made already for report.html too)."""
    df = df.assign(known=label_known(df, known_differences() if registry is None else registry))
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
        f"{env.get('cpu', '')} ({env.get('cpu_count', '')} cores; {env.get('cpu_isa') or 'no instruction set recorded'}"
        f"), {env.get('os', '')}{'; GPUs: ' + ', '.join(env['gpus']) if env.get('gpus') else ''}.",
        f"Command: `{env.get('command', '')}`",
        "",
        *fw_lines,
        "",
        *surprises_section(df, made),
        "",
        *matrix_section(df, made),
        "",
        "## Reading the tables",
        "",
        "Errors are against the float64 reference (docs/DESIGN.md) on the same (rounded) inputs. Cells give the worst "
        "value / gradient error in ULPs of the row's dtype, then outcome counts. The reference is the exact "
        "answer; `matched` rows reproduce PyTorch, its departures from the exact answer included where the "
        "framework can express them (BCELoss's -100 log clamp), and say in `error` which one they do not "
        "reproduce; `native` rows are the obvious port (where the surprises are). "
        "Tolerances: harness/judge/tolerances.py. float32 and lower-precision numbers "
        "depend on the machine: the kernels each framework picks for this instruction set (its `isa_*` above), "
        "the thread counts and the GPU; another machine may differ in the last digits (`compare` flags it).",
        "",
        "## New differences",
        "",
        "Rows that differ from the exact answer for a reason the known-differences registry "
        "(adapters/known_differences.csv) does not list; unexplained ones first. `run --strict` fails on these.",
        "",
        new_differences_table(df),
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
    parts += ["", "## Modes, policies and determinism", "", MODES_NOTE, "", modes_section(df)]
    parts += ["", "## Explanations", "",
              "The semantic variant (adapters/variants.py) that reproduces each difference.", "",
              explanations_table(df)]  # fmt: skip
    doc = documented_table(df, claims)
    if doc:
        parts += ["", "## Documented examples (the seed articles)", "", doc]
    matrices = [m for m in (cross_framework_matrix(df, k) for k in (*KINDS, "user")) if m]
    if matrices:
        parts += ["", "## Cross-framework matrix", "", MATRIX_NOTE, ""]
        parts += [x for m in matrices for x in (m, "")]
    versions = versions_frame(df, timing)
    if len(versions):
        shown = versions.assign(**{c: versions[c].map("{:.3g}".format) for c in ("value change", "grad change",
                                                                              "time B/A")})  # fmt: skip
        parts += ["", "## Version to version", "", VERSIONS_NOTE, "", to_markdown(shown)]
    not_timed = env.get("timing", {}).get("not_timed", {})
    parts += ["", "## Timing", "", TIMING_NOTE, "", timing_table(timing, env)]
    if not_timed:
        parts += ["Not timed:", "", *(f"- {k}: {v}" for k, v in sorted(not_timed.items())), ""]
    parts += ["", "## Tolerances", "", TOLERANCE_NOTE, "", "## Rows not ok", "", not_ok_table(df), ""]
    return "\n".join(parts)


MODES_NOTE = (
    "Rows run otherwise than their framework's own way (PyTorch and TensorFlow eagerly, JAX through jax.jit) "
    "without a policy: compiled (torch.compile, tf.function(jit_compile=True)) or op by op (JAX eager), and under "
    "mixed-precision policies (torch.autocast, Keras' mixed policies) on inputs in the policy's dtype. "
    "`loss dtype` is what the loss came back in (the precision a policy really computed in); `value changed` counts "
    "the rows whose value differs from the same call run the framework's own way; errors are against the exact "
    "value. By default these run on a subset of every kind and dtype (harness/runner/plan.py; `--modes`, "
    "`--policies` run every case), which is also called 3 times: a row is deterministic when the bits agree."
)


def modes_section(df: pd.DataFrame) -> str:
    """The modes-and-policies table and the rows whose repeated calls differed."""
    frame = modes_frame(df)
    table = to_markdown(frame) if len(frame) else "_No row ran in another mode or under a policy._"
    checked = int(df["deterministic"].notna().sum()) if "deterministic" in df else 0
    bad = nondeterministic(df)
    if not checked:
        return table
    if bad.empty:
        return f"{table}\n\nDeterminism: all {checked} repeated rows gave the same bits."
    return f"{table}\n\nNot deterministic ({len(bad)} of {checked} repeated rows):\n\n{to_markdown(bad)}"


def summary_of(run: RunFiles) -> str:
    """summary.md of a run directory read back, rendered now: what `report --publish` copies (complete, in
    this renderer's form, whichever version wrote the run)."""
    return render(run.accuracy, run.env, run.claims, partial=bool(run.env.get("partial")), timing=run.timing)


def new_difference_count(df: pd.DataFrame, registry: tuple[KnownDifference, ...] | None = None) -> int:
    """Rows `run --strict` fails on: differences the registry does not know."""
    return int((label_known(df, known_differences() if registry is None else registry) == "new").sum())
