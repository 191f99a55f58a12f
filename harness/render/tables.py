"""Tables that answer "what happens with my configuration?" in a minute, shared by summary.md and report.html.

Each builder reads the tidy accuracy frame and returns a small frame of display strings in inline Markdown
(`code`, **bold**; a newline separates lines within a cell). summary.md renders it with `md_table`,
report.html as an HTML table: one implementation for both, and nothing recomputed (a row's outcome,
errors and explanation are the judge's; these only group, pick and pivot).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from adapters.registry import FRAMEWORKS
from adapters.variants import BY_NAME, describe
from cases.names import DTYPES
from harness.judge.rows import own_mode, with_columns
from harness.render.markdown import fmt, md_table

DIFFERENT = ("mismatch", "nonfinite")
FAILED = ("raised", "crashed", "timeout")
SURPRISES_SHOWN = 15
SPEC = ("family", "input", "target", "weighted", "sample_weighted", "ignore_index", "label_smoothing", "reduction")
ORDER = {  # the order configurations are listed in (unknown values last)
    "family": ("softmax", "sigmoid"),
    "input": ("logits", "log_probs", "probs"),
    "target": ("index", "prob"),
    "reduction": ("mean", "sum", "none"),
}


def short_api(api: str) -> str:
    return str(api).split(".")[-1]


def config_label(c: Mapping[str, Any]) -> str:
    """``softmax logits index, w, ignore=-100, ls=0.1, mean``: a configuration in one short line."""
    parts = [f"{c['family']} {c['input']} {c['target']}"]
    if _true(c.get("weighted")):
        parts.append("w" if c["family"] == "softmax" else "pos_weight")
    if _true(c.get("sample_weighted")):
        parts.append("sample weights")
    if not pd.isna(c.get("ignore_index")):
        parts.append(f"ignore={int(c['ignore_index'])}")
    if c.get("label_smoothing") and not pd.isna(c["label_smoothing"]):
        parts.append(f"ls={float(c['label_smoothing']):g}")
    parts.append(str(c["reduction"]))
    return ", ".join(parts)


def section_label(c: Mapping[str, Any]) -> str:
    """``multiclass · softmax logits index, w, mean``: a porting guide section (configurations per case kind)."""
    return f"{c['kind']} · {config_label(c)}"


def _true(v: Any) -> bool:
    return bool(v) and not pd.isna(v)


def _dtypes(values: Iterable[str]) -> list[str]:
    have = set(values)
    return [d for d in DTYPES if d in have] + sorted(have - set(DTYPES))


def _rounding(name: str) -> bool:
    v = BY_NAME.get(name)
    return v is not None and v.dtype is not None


def cause_of(explanation: Any) -> str:
    """The semantic part of an explanation (``computed_in=D`` dropped: a lower dtype's rounding on top of the
    same departure is the same surprise), or the rounding cause alone, or '(unexplained)'."""
    parts = [p for p in (explanation if isinstance(explanation, str) else "").split("+") if p]
    semantic = [p for p in parts if not _rounding(p)]
    return "+".join(semantic or parts) or "(unexplained)"


def tolerance_ratio(df: pd.DataFrame, part: str | None = None) -> pd.Series:
    """Each row's scaled error over its tolerance (of the value or the gradient, or the worse of the two): the
    judge's own test (ok where both are <= 1), so a colour says within or beyond tolerance whatever the dtype
    (NaN where a row has no error: raised, unsupported)."""
    value, grad = df["value_scaled_err"].astype(float), df["grad_scaled_err"].astype(float)
    err = value if part == "value" else grad if part == "grad" else np.fmax(value, grad)
    return err / df["tol"].astype(float)


# -- the fix: the matched recipe's essential line ------------------------------------------------------

TRIVIAL = re.compile(r"^loss = (\w+\.\w+\(\)|[\w.]+\(\w+(\(\w+\))?\))$")  # loss.mean(), tf.reduce_sum(bce(x))


def _code_lines(code: Any) -> list[str]:
    """The code lines of a snippet, comments dropped."""
    lines = []
    for line in str(code if isinstance(code, str) else "").splitlines():
        line = re.sub(r"\s+#.*$", "", line).rstrip()
        if line.strip() and not line.lstrip().startswith("#"):
            lines.append(line)
    return lines


def essential_line(matched: Any, native: Any) -> tuple[str, int]:
    """The line of the matched snippet that makes the difference, and how many other code lines it has:
    a custom-gradient function's header, else the last new line computing the loss (a bare reduction such as
    ``loss = loss.mean()`` is not essential), else the last new line; '' where matched is the same code."""
    lines = _code_lines(matched)
    have = {x.strip() for x in _code_lines(native)}
    new = [x.strip() for x in lines if x.strip() not in have]
    if not new:
        return "", 0
    defs = [i for i, x in enumerate(new) if x.startswith("def ")]
    if defs:
        i = defs[0]
        pick = f"{new[i - 1]} {new[i]}" if i and new[i - 1].startswith("@") else new[i]
        return pick, len(lines) - (2 if pick.startswith("@") else 1)
    useful = [x for x in new if not TRIVIAL.match(x)] or new
    pick = ([x for x in useful if x.startswith("loss")] or useful)[-1]
    return pick, len(lines) - 1


def fix_text(framework: str, cause: str, matched: Any, native: Any, matched_error: Any, where: str) -> str:
    """The fix for a native difference, from its matched recipe: the essential line (and where the rest is)."""
    if not isinstance(matched, str):
        return "no matched recipe" + (f": {matched_error}" if isinstance(matched_error, str) else "")
    line, more = essential_line(matched, native)
    if line:
        return f"`{line}`" + (f" (+{more} line{'s' * (more > 1)}: PORTING.md, {where})" if more else "")
    if framework == "torch":
        return "none: PyTorch's own behaviour (matched is the same call)"
    if "class_axis" in cause:
        return "the same call with classes last: `np.moveaxis(x, 1, -1)`"
    reason = matched_error if isinstance(matched_error, str) and matched_error else "no call of this API avoids it"
    return f"the same call: matched gives the same ({reason})"


# -- top surprises: native differences grouped by API and cause ----------------------------------------


# what makes a native row and its matched row a pair (columns a frame lacks are left out: older runs)
PAIR = ("machine", "case_id", "framework", "api", "device", "mode", "policy")


def pair_key(df: pd.DataFrame) -> list[str]:
    return [k for k in PAIR if k in df.columns]


def _with_matched(native: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """Native rows with their matched row's code and error (same case, framework, API, device, machine, mode
    and policy)."""
    key = pair_key(df)
    matched = df[df["recipe"] == "matched"][[*key, "recipe_code", "error"]].drop_duplicates(key)
    matched = matched.rename(columns={"recipe_code": "matched_code", "error": "matched_error"})
    return native.merge(matched, on=key, how="left")


def _worst(values: pd.Series) -> float:
    v = values.astype(float)
    return float(v.max()) if v.notna().any() else math.nan


def _typical(values: pd.Series) -> float:
    """The median (an infinite error counts: a class whose gradients are all infinitely off is typically so)."""
    v = values.astype(float).dropna()
    return float(v.median()) if len(v) else math.nan


def _fix(rows: pd.DataFrame, cause: str) -> str:
    """The fix a class' rows of one framework take: of their (native, matched) snippet pairs, the most common
    (the shorter fix of equals); named by its API."""
    pairs = Counter(zip(rows["api"], rows["recipe_code"], rows["matched_code"], rows["matched_error"], strict=True))
    best = min(pairs, key=lambda p: (-pairs[p], essential_line(p[2], p[1])[1]))
    where = section_label(rows[(rows["api"] == best[0]) & (rows["recipe_code"] == best[1])].iloc[0])
    fw = rows["framework"].iloc[0]
    return f"{fw}.{short_api(best[0])}: " + fix_text(fw, cause, best[2], best[1], best[3], where)


def surprise_classes(df: pd.DataFrame) -> pd.DataFrame:
    """One row per native difference class (its cause), tidy, most surprising first: causes met on typical
    inputs (any kind but ``edge``: what real models feed a loss) first; then causes seen at float64 (semantics,
    not rounding); then those met in more configurations (a port is likelier to meet them); then by the order
    of magnitude of the typical error, a class mostly NaN or Inf where the exact value is finite (or the
    reverse) above all; then the more rows first."""
    df = with_columns(df)
    native = df[(df["recipe"] == "native") & df["outcome"].isin(DIFFERENT)]
    native = _with_matched(native.assign(cause=native["explanation"].map(cause_of)), df)
    records = []
    for cause, g in native.groupby("cause", sort=False):
        apis = {fw: list(dict.fromkeys(map(short_api, a["api"]))) for fw, a in g.groupby("framework", sort=False)}
        also = {p for e in g["explanation"].dropna() for p in e.split("+")} - set(str(cause).split("+"))
        records.append({
            "cause": cause, "apis": apis, "rows": len(g), "configs": len(g.drop_duplicates(list(SPEC))),
            "nonfinite": int((g["outcome"] == "nonfinite").sum()), "dtypes": _dtypes(g["dtype"]),
            "value_worst": _worst(g["value_rel_err"]), "value_typical": _typical(g["value_rel_err"]),
            "grad_worst": _worst(g["grad_rel_err"]), "grad_typical": _typical(g["grad_rel_err"]),
            "at_float64": bool((g["dtype"] == "float64").any()), "typical": bool((g["kind"] != "edge").any()),
            "also": sorted(also),
            "fixes": [_fix(f, str(cause)) for _, f in g.groupby("framework", sort=False)],
        })  # fmt: skip
    out = pd.DataFrame(records, columns=list(CLASS_COLUMNS))
    if out.empty:
        return out
    out = out.assign(_size=surprise_size(out))
    keys = ["typical", "at_float64", "configs", "_size", "rows"]
    out = out.sort_values(keys, ascending=[False] * len(keys), kind="stable")
    return out.drop(columns="_size").reset_index(drop=True)


def surprise_size(classes: pd.DataFrame) -> pd.Series:
    """The decade of a class' typical error (inf where most of its rows are NaN/Inf): "large errors first"
    at the resolution a reader compares errors, so that within a decade the more common cause comes first."""
    typical = np.fmax(classes["value_typical"].astype(float), classes["grad_typical"].astype(float))
    with np.errstate(divide="ignore", invalid="ignore"):
        decade = np.floor(np.log10(typical.where(typical > 0)))
    decade = decade.fillna(-np.inf)  # no error to speak of: last
    return decade.where(2 * classes["nonfinite"] < classes["rows"], np.inf)


CLASS_COLUMNS = ("cause", "apis", "rows", "configs", "nonfinite", "dtypes", "value_worst", "value_typical",
                 "grad_worst", "grad_typical", "at_float64", "typical", "also", "fixes")  # fmt: skip


def _worst_typical(worst: float, typical: float) -> str:
    return f"{fmt(worst)} ({fmt(typical)})" if not math.isnan(worst) else "-"


def top_surprises(df: pd.DataFrame, limit: int = SURPRISES_SHOWN) -> tuple[pd.DataFrame, int]:
    """The `limit` most surprising native difference classes as display rows, and how many more there are."""
    classes = surprise_classes(df)
    rows = []
    for i, c in enumerate(classes.head(limit).itertuples(), 1):
        size = f"{c.configs} config{'s' * (c.configs != 1)}, {c.rows} row{'s' * (c.rows != 1)}"
        size += f" ({c.nonfinite} NaN/Inf)" if c.nonfinite else ""
        why = describe(c.cause) if c.cause != "(unexplained)" else "**unexplained**: no documented variant gives it"
        why += f"; some rows also {', '.join(f'`{a}`' for a in c.also)}" if c.also else ""
        rows.append({
            "#": i, "cause": f"`{c.cause}`",
            "frameworks / APIs": "\n".join(f"{fw}: {', '.join(a)}" for fw, a in c.apis.items()),
            "value rel err: worst (typical)": _worst_typical(c.value_worst, c.value_typical),
            "grad rel err: worst (typical)": _worst_typical(c.grad_worst, c.grad_typical),
            "how many": size, "dtypes": ", ".join(c.dtypes), "why": why, "fix (matched recipe)": "\n".join(c.fixes),
        })  # fmt: skip
    return pd.DataFrame(rows), max(len(classes) - limit, 0)


@dataclass(frozen=True)
class Front:
    """The tables summary.md and report.html open on: the top surprises (`top_surprises`: display rows, how many
    more) and the configuration matrix (`config_matrix`); made once where both are rendered from the same rows."""

    surprises: pd.DataFrame
    more: int
    matrix: pd.DataFrame


def front(df: pd.DataFrame) -> Front:
    return Front(*top_surprises(df), config_matrix(df))


# -- the configuration x framework matrix --------------------------------------------------------------


Outcome = tuple[str, str, str]  # (outcome, explanation, dtype) of one row: what a verdict reads


def outcomes(g: pd.DataFrame) -> list[Outcome]:
    return list(zip(g["outcome"], g["explanation"].fillna(""), g["dtype"], strict=True))


def _only(part: list[Outcome], judged: list[str]) -> str:
    """`` (float16, bfloat16)`` where the part's rows cover fewer dtypes than the verdict's rows."""
    mine = _dtypes(d for *_, d in part)
    return f" ({', '.join(mine)})" if mine != judged else ""


def symbol(rows: list[Outcome]) -> str:
    """``✓`` (every row that ran is ok), ``✗`` (some differ), ``raises`` (some raise, none ok or differ),
    ``✓, k/n raise`` (the others are ok), ``n/a`` (none ran)."""
    ran = [o for o, *_ in rows if o != "unsupported"]
    if not ran:
        return "n/a"
    if any(o in DIFFERENT for o in ran):
        return "✗"
    ok = sum(o == "ok" for o in ran)
    return "✓" if ok == len(ran) else "raises" if not ok else f"✓, {len(ran) - ok}/{len(ran)} raise"


def verdict(rows: list[Outcome]) -> str:
    """One recipe over a configuration's rows: ``✓``, or ``✗ weight_norm=N`` with the causes (and the dtypes
    where not all), ``raises``, ``n/a`` (unsupported); ``k/n rows`` where some rows are ok."""
    ran = [r for r in rows if r[0] != "unsupported"]
    if not ran:
        return "n/a"
    judged = _dtypes(d for *_, d in ran)
    by_cause: dict[str, list[Outcome]] = {}
    for r in ran:
        if r[0] in DIFFERENT:
            by_cause.setdefault(r[1] or "unexplained", []).append(r)
    parts = ["✗ " + ", ".join(f"{e}{_only(p, judged)}" for e, p in by_cause.items())] if by_cause else []
    for outcome in FAILED:
        hit = [r for r in ran if r[0] == outcome]
        if hit:
            parts.append(("raises" if outcome == "raised" else outcome) + _only(hit, judged))
    if not parts:
        return "✓"
    ok = sum(r[0] == "ok" for r in ran)
    return "; ".join(parts) + (f"; {len(ran) - ok}/{len(ran)} rows" if ok else "")


def _cell(apis: Mapping[str, Mapping[str, list[Outcome]]]) -> str:
    """One framework's APIs for one configuration: ``native ✗ weight_norm=N · matched ✓`` per API, APIs with
    the same verdicts on one line (named where the framework has several)."""
    lines: dict[str, list[str]] = {}
    for api, recipes in apis.items():
        if all(o == "unsupported" for rows in recipes.values() for o, *_ in rows):
            continue
        text = f"native {verdict(recipes.get('native', []))} · matched {verdict(recipes.get('matched', []))}"
        lines.setdefault(text, []).append(short_api(api))
    if not lines:
        return "n/a"
    named = sum(map(len, lines.values())) > 1
    return "\n".join((f"{', '.join(f'`{a}`' for a in apis)}: " if named else "") + t for t, apis in lines.items())


def _rank(column: str, value: Any) -> tuple[int, float | str]:
    order = ORDER.get(column)
    if order is not None:
        return (order.index(value), "") if value in order else (len(order), str(value))
    return (0, 0.0) if value is None or not value else (1, float(value))  # unset first, then by value


def config_key(c: Mapping[str, Any]) -> tuple[Any, ...]:
    """A configuration as a hashable key (missing values as None, so NaN keys are equal)."""
    return tuple(None if pd.isna(c.get(k)) else c.get(k) for k in SPEC)


def config_order(keys: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Configurations sorted family, input, target, then unweighted first, ignore_index, smoothing, reduction."""
    return sorted(keys, key=lambda k: tuple(_rank(c, v) for c, v in zip(SPEC, k, strict=True)))


def config_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """Rows: configuration (over kinds, shapes and dtypes; a linear head's apart, ``linear head: ...``); columns:
    framework, or framework and device where the rows have several (``torch · cpu``, ``torch · cuda:0``; a merged
    report's devices name their machine: a CPU and a GPU column per framework and machine, side by side); cells:
    each API's native and matched verdicts with their causes."""
    df = with_columns(df)
    if (df["outcome"] == "unsupported").all():
        return pd.DataFrame(columns=["configuration"])
    seen = list(dict.fromkeys(df["device"]))
    devices = sorted(seen, key=lambda d: (not str(d).endswith("cpu"), seen.index(d)))  # CPU first, then as listed
    column = df["framework"] + (" · " + df["device"] if len(devices) > 1 else "")
    ran = set(column[df["outcome"] != "unsupported"])
    order = {f: i for i, f in enumerate(FRAMEWORKS)}
    fws = sorted(ran, key=lambda c: (order.get(c.split(" · ")[0], len(order)), c.split(" · ")[0],
                                     devices.index(c.split(" · ", 1)[1]) if " · " in c else 0))  # fmt: skip
    # config -> column -> api -> recipe -> rows, in one pass (per-cell filtering of the frame is slow); a linear
    # head's rows (E Wᵀ + b, APIs of their own) are a configuration of their own, after the logits' ones
    tree: dict[tuple[Any, ...], dict[str, dict[str, dict[str, list[Outcome]]]]] = {}
    heads = df["kind"].eq("linear") if "kind" in df else pd.Series(False, index=df.index)
    keys = ((*config_key(c), bool(h)) for c, h in zip(df[list(SPEC)].to_dict("records"), heads, strict=True))
    columns = zip(keys, column, df["api"], df["recipe"], outcomes(df), strict=True)
    for key, fw, api, recipe, row in columns:
        tree.setdefault(key, {}).setdefault(fw, {}).setdefault(api, {}).setdefault(recipe, []).append(row)
    rank = {k: i for i, k in enumerate(config_order({key[:-1] for key in tree}))}
    return pd.DataFrame([
        {"configuration": ("linear head: " if key[-1] else "") + config_label(dict(zip(SPEC, key[:-1], strict=True))),
         **{f: _cell(tree[key][f]) if f in tree[key] else "" for f in fws}}
        for key in sorted(tree, key=lambda k: (k[-1], rank[k[:-1]]))
    ])  # fmt: skip


# -- modes, policies and determinism ------------------------------------------------------------------


def how_label(df: pd.DataFrame) -> pd.Series:
    """`` [compiled]``, `` [eager, autocast-bfloat16]``: how a row ran where that is not its framework's own way
    (its own mode, no policy); '' otherwise."""
    df = with_columns(df)
    own = df["framework"].map(own_mode)
    parts = [df["mode"].where(df["mode"] != own, ""), df["policy"].where(df["policy"] != "none", "")]
    text = (parts[0] + ", " + parts[1]).str.strip(", ")
    return text.map(lambda t: f" [{t}]" if t else "")


def modes_frame(df: pd.DataFrame) -> pd.DataFrame:
    """One row per framework, API, recipe, mode and policy that ran otherwise than the framework's own way, with
    its rows' outcomes, the dtypes the loss came back in, the worst errors against the exact value, how many
    rows changed value from the same case's own-way row, and the causes of its differences."""
    df = with_columns(df)
    own = df["framework"].map(own_mode)
    base_key = ["case_id", "framework", "api", "recipe", "device"]
    first = df[(df["mode"] == own) & (df["policy"] == "none")][[*base_key, "value"]]
    other = df[(df["mode"] != own) | (df["policy"] != "none")]
    other = other.merge(first.rename(columns={"value": "own_value"}), on=base_key, how="left")
    records = []
    for (fw, api, recipe, mode, policy), g in other.groupby(
        ["framework", "api", "recipe", "mode", "policy"], sort=False
    ):
        v, o = g["value"].astype(float), g["own_value"].astype(float)
        both = v.notna() & o.notna()
        records.append({
            "framework": fw, "api": short_api(api), "recipe": recipe, "mode": mode, "policy": policy,
            "rows": len(g), "outcomes": ", ".join(f"{n} {k}" for k, n in g["outcome"].value_counts().items()),
            "loss dtype": ", ".join(sorted({d for d in g["loss_dtype"] if d})) or "-",
            "value rel err (worst)": fmt(_worst(g["value_rel_err"])),
            "grad rel err (worst)": fmt(_worst(g["grad_rel_err"])),
            "value changed": f"{int((both & (v != o)).sum())} of {int(both.sum())}",
            "causes": ", ".join(sorted({e for e in g["explanation"].fillna("") if e})) or "-",
        })  # fmt: skip
    return pd.DataFrame(records)


def nondeterministic(df: pd.DataFrame) -> pd.DataFrame:
    """The rows whose repeated calls did not give the same bits."""
    df = with_columns(df)
    bad = df[df["deterministic"].fillna(True).eq(False)]
    return bad[["case_id", "framework", "api", "recipe", "device", "mode", "policy"]].assign(
        api=bad["api"].map(short_api)
    )


def to_markdown(frame: pd.DataFrame) -> str:
    """A display frame as a Markdown table (lines within a cell joined by <br>, which GitHub renders)."""
    rows = [[str(v).replace("\n", "<br>") for v in r] for r in frame.itertuples(index=False)]
    return md_table(list(frame.columns), rows)
