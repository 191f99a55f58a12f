"""reports/PORTING.md: for each loss configuration, the PyTorch call and, for every other framework
API, the call that reproduces it (`matched`), the obvious port (`native`) and how far that one is off.

Everything comes from a run's accuracy rows: each snippet is the `recipe_code` that ran, so the guide
says nothing the harness did not execute. Float32 on CPU, the precision people port models in; the
float32 errors it quotes are this machine's (its instruction set and threads are in the header), and
another machine's kernels may round differently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from adapters.registry import DISPLAY, FRAMEWORKS, choose_framework
from adapters.variants import BY_NAME
from harness.render.markdown import fmt, md_table

REGENERATE = "python -m harness report RUN_DIR --porting reports/PORTING.md"
CONFIG = ("kind", "family", "input", "target", "weighted", "sample_weighted", "ignore_index", "label_smoothing",
          "reduction")  # fmt: skip
CONVENTIONS = """\
Every snippet assigns `loss` from three variables:

- `x`: the input (logits, log-probabilities or probabilities, as the configuration says);
- `y`: the target (class indices, or probabilities / soft binary targets);
- `w`: class weights `w[C]` (softmax) or `pos_weight` (sigmoid); `None` when unweighted.

PyTorch and NumPy snippets use PyTorch's layout, classes on axis 1: `x` is (N, C) or (N, C, d1, ..., dk).
TensorFlow and JAX snippets take classes LAST: `x` (and probability targets `y`) are (N, C) or
(N, d1, ..., dk, C), i.e. `np.moveaxis(x, 1, -1)` of PyTorch's array (the harness's adapters move the axis
before the call and move the gradient back; do the same once where you port). JAX index targets are int32.
Names in scope: PyTorch `torch`, `F` (torch.nn.functional); TensorFlow `tf`, `keras`; JAX `jax`, `jnp`,
`optax`.

`matched` is the call that reproduces PyTorch's value and gradient; `native` is the obvious port (each
option to the same-named argument, the framework's own mean), with how far its value is from the exact
one (relative error against the float64 reference) and the documented behaviour that explains it."""
LAYOUT = {
    "torch": "classes on axis 1 (PyTorch's layout)",
    "numpy": "classes on axis 1 (PyTorch's layout)",
    "tensorflow": "classes LAST: pass np.moveaxis(x, 1, -1) (and probability targets likewise)",
    "jax": "classes LAST: pass np.moveaxis(x, 1, -1) (and probability targets likewise); int32 index targets",
}


def _name(fw: str) -> str:
    return DISPLAY.get(fw, fw)


def config_title(c: Mapping[str, Any]) -> str:
    """``multiclass: softmax, logits input, index targets, class weights, reduction=mean``."""
    parts = [str(c["family"]), f"{c['input']} input", f"{c['target']} targets"]
    if c.get("sample_weighted"):
        parts.append("sample weights")
    if c["weighted"]:
        parts.append("class weights" if c["family"] == "softmax" else "pos_weight")
    if not pd.isna(c["ignore_index"]):
        parts.append(f"ignore_index={int(c['ignore_index'])}")
    if c["label_smoothing"]:
        parts.append(f"label_smoothing={c['label_smoothing']:g}")
    parts.append(f"reduction={c['reduction']}")
    return f"{c['kind']}: " + ", ".join(parts)


def _judged(g: pd.DataFrame) -> str:
    """``3/3 ok; worst rel err vs exact: value 2.4e-08, gradient 3e-08`` (outcome counts when not all ok)."""
    counts = g["outcome"].value_counts()
    ok = int(counts.get("ok", 0))
    text = f"{ok}/{len(g)} ok" if ok == len(g) else ", ".join(f"{n} {o}" for o, n in counts.items())
    errs = [(what, g[f"{col}_rel_err"].dropna()) for what, col in (("value", "value"), ("gradient", "grad"))]
    shown = [f"{what} {fmt(float(e.max()))}" for what, e in errs if len(e)]
    return text + (f"; worst rel err vs exact: {', '.join(shown)}" if shown else "")


def _why(g: pd.DataFrame) -> list[str]:
    """Each explanation of the rows, composite ones ("A+B") split, with what it does and its source."""
    lines = []
    for expl in dict.fromkeys(e for e in g["explanation"].fillna("") if e):
        parts = []
        for name in expl.split("+"):
            v = BY_NAME.get(name)
            parts.append(f"`{name}`: {v.summary} (source: {v.source})" if v else f"`{name}`")
        lines.append("Why: " + "; ".join(parts) + ".")
    return lines


def _code(code: str) -> list[str]:
    return ["```python", code.rstrip(), "```"]


def _recipe(g: pd.DataFrame, label: str) -> list[str]:
    """A recipe's snippet(s) with what it gave, or why there is none."""
    runs = g[g["outcome"] != "unsupported"]
    if runs.empty:
        return [f"{label}: not expressible ({g['error'].iloc[0]})."]
    out = [f"{label}: {_judged(runs)}.", *_why(runs), ""]
    for code in dict.fromkeys(runs["recipe_code"]):
        out += [*_code(code), ""]
    return out[:-1]


def _api_part(fw: str, api: str, g: pd.DataFrame) -> list[str]:
    matched, native = g[g["recipe"] == "matched"], g[g["recipe"] == "native"]
    if (g["outcome"] == "unsupported").all():
        return [f"- {_name(fw)} `{api}`: {g['error'].iloc[0]}"]
    out = [f"#### {_name(fw)} `{api}`", "", *_recipe(matched, "matched (reproduces PyTorch)"), ""]
    same = set(native["recipe_code"]) == set(matched["recipe_code"]) and (native["outcome"] != "unsupported").all()
    if same:
        out.append("native: the same call.")
    else:
        out += _recipe(native, "native (the obvious port)")
    return [*out, ""]


def _section(g: pd.DataFrame, from_fw: str, to_fws: Sequence[str]) -> str:
    config = g.iloc[0][list(CONFIG)].to_dict()
    cases = list(dict.fromkeys(g["case_id"]))
    shown = ", ".join(f"`{c}`" for c in cases[:6]) + (f" and {len(cases) - 6} more" if len(cases) > 6 else "")
    lines = [f"### {config_title(config)}", "", f"Cases ({', '.join(sorted(set(g['dtype'])))}): {shown}", ""]
    src = g[(g["framework"] == from_fw) & (g["recipe"] == "matched") & (g["outcome"] != "unsupported")]
    if src.empty:
        lines += [f"**{_name(from_fw)}**: no call in this run for this configuration.", ""]
    for code, sg in src.groupby("recipe_code", sort=False):
        apis = ", ".join(f"`{a}`" for a in dict.fromkeys(sg["api"]))
        lines += [f"**{_name(from_fw)}** {apis}: {_judged(sg)}.", "", *_code(str(code)), ""]
    missing = []
    for fw in to_fws:
        for api, ag in g[g["framework"] == fw].groupby("api", sort=False):
            part = _api_part(fw, str(api), ag)
            (missing if part[0].startswith("- ") else lines).extend(part)
    if missing:
        lines += ["Not expressible:", "", *missing, ""]
    return "\n".join(lines).rstrip() + "\n"


def _sections(rows: pd.DataFrame, from_fw: str, to_fws: Sequence[str]) -> list[str]:
    return [_section(g, from_fw, to_fws) for _, g in rows.groupby(list(CONFIG), sort=False, dropna=False)]


def porting_guide(accuracy: pd.DataFrame, env: dict[str, Any]) -> str:
    """The whole of reports/PORTING.md from a run's accuracy rows (float32, CPU) and env.json."""
    rows = accuracy[(accuracy["dtype"] == "float32") & (accuracy["device"] == "cpu")]
    fws = [f for f in FRAMEWORKS if f in set(rows["framework"])]
    from_rows = rows.groupby("framework")["framework_version"].first()
    versions = ", ".join(
        f"{_name(f)} {env.get('frameworks', {}).get(f, {}).get('version') or from_rows[f]}" for f in fws
    )
    head = [
        "# Porting cross-entropy between PyTorch, TensorFlow and JAX",
        "",
        f"Generated from run `{env.get('run_id', '')}` ({versions}; float32 on CPU) by the harness: every snippet "
        f"below is the code that ran, and every number is from that run. Regenerate it (`{REGENERATE}`) rather "
        "than editing it.",
        "",
        f"Machine: {env.get('cpu', 'unknown CPU')} ({env.get('cpu_isa') or 'instruction set not recorded'}). "
        "The semantic differences below hold everywhere; the float32 errors are this machine's: another "
        "instruction set (PyTorch's AVX2 and AVX-512 kernels, say) rounds differently in the last digits.",
        "",
        "## Conventions",
        "",
        CONVENTIONS,
        "",
        "## Configurations",
        "",
    ]
    if rows.empty:
        return "\n".join([*head, "_No float32 CPU rows in this run._", ""])
    to_fws = [f for f in fws if f not in ("torch", "numpy")]  # numpy is the reference, not a port target
    return "\n".join([*head[:-3], *_unreproduced(rows), *head[-3:], *_sections(rows, "torch", to_fws)])


UNREPRODUCED = ("does not reproduce PyTorch", "PyTorch raises")


def _unreproduced(rows: pd.DataFrame) -> list[str]:
    """The places where a matched recipe cannot (or should not) reproduce what PyTorch does."""
    err = rows["error"].fillna("")
    ports = (rows["recipe"] == "matched") & ~rows["framework"].isin(["torch", "numpy"])
    hit = rows[ports & err.str.contains("|".join(UNREPRODUCED), regex=True)]
    if hit.empty:
        return []
    table = [[f"{_name(r.framework)} `{r.api}`", config_title(r._asdict()), r.error] for r in
             hit.drop_duplicates(["framework", "api", *CONFIG]).itertuples()]  # fmt: skip
    return [
        "",
        "## Where `matched` does not reproduce PyTorch",
        "",
        "PyTorch departs from the exact answer in these places (it raises, or gives a NaN); each row says what "
        "the matched recipe does instead.",
        "",
        md_table(["API", "configuration", "what it does"], table),
    ]


def porting_section(
    accuracy: pd.DataFrame, from_fw: str, to_fw: str, spec_filter: Mapping[str, Any] | None = None
) -> str:
    """The guide's part for porting from one framework to another, for the rows whose configuration
    fields equal `spec_filter`'s (e.g. the rows of `check`: one case); one section per configuration."""
    from_fw, to_fw = choose_framework(from_fw), choose_framework(to_fw)
    rows = accuracy
    for k, v in (spec_filter or {}).items():
        rows = rows[rows[k].isna()] if v is None else rows[rows[k] == v]
    head = (
        f"Porting from {_name(from_fw)} to {_name(to_fw)}. Snippets use `x`, `y`, `w`; {_name(from_fw)}: "
        f"{LAYOUT[from_fw]}; {_name(to_fw)}: {LAYOUT[to_fw]}.\n\n"
    )
    if rows.empty:
        return head + "_No rows match this configuration._\n"
    return head + "\n".join(_sections(rows, from_fw, [to_fw]))
