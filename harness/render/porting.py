"""reports/PORTING.md: for each loss configuration, the PyTorch call and, for every other framework
API, the call that reproduces it (`matched`), the obvious port (`native`) and how far that one is off.

Everything comes from a run's accuracy rows: each snippet is the `recipe_code` that ran, so the guide
says nothing the harness did not execute. Float32 on CPU, the precision people port models in, with each
configuration's float16 and bfloat16 verdicts beside it; the float32 errors it quotes are this machine's
(its instruction set and threads are in the header), and another machine's kernels may round differently.

To stay readable it opens on an index (configurations x target framework, linked), folds a sum or none
configuration into its mean section where it only repeats it (the same snippets but for the reduction, the
same verdicts), and gives a comment that many snippets repeat once, as a numbered note.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from adapters.registry import DISPLAY, FRAMEWORKS, choose_framework, load
from adapters.variants import BY_NAME
from harness.render.markdown import fmt, md_table
from harness.render.tables import (
    essential_line,
    fix_text,
    how_label,
    modes_frame,
    outcomes,
    pair_key,
    section_label,
    symbol,
    to_markdown,
    verdict,
)

REGENERATE = "python -m harness report RUN_DIR --porting reports/PORTING.md"
CONFIG = ("kind", "family", "input", "target", "weighted", "sample_weighted", "ignore_index", "label_smoothing",
          "reduction")  # fmt: skip
CONVENTIONS = """\
Every snippet assigns `loss` from three variables:

- `x`: the input (logits, log-probabilities or probabilities, as the configuration says);
- `y`: the target (class indices, or probabilities / soft binary targets);
- `w`: class weights `w[C]` (softmax) or `pos_weight` (sigmoid); `None` when unweighted.

`matched` is the call that reproduces PyTorch's value and gradient; `native` is the obvious port (each
option to the same-named argument, the framework's own mean), with how far its value is from the exact
one (relative error against the float64 reference) and the documented behaviour that explains it.

Where each framework takes classes, and the names its snippets use (classes LAST means `x`, and probability
targets `y`, are (N, C) or (N, d1, ..., dk, C), i.e. `np.moveaxis(x, 1, -1)` of PyTorch's array: the harness's
adapters move the axis before the call and the gradient back; do the same once where you port):

"""


def layout(fw: str) -> str:
    """Where `fw`'s losses take classes (the adapter's `layout`)."""
    return _adapter_text(fw, "layout") or "classes on axis 1 (PyTorch's layout)"


def _adapter_text(fw: str, attr: str) -> str:
    try:
        return getattr(load(fw), attr)
    except (KeyError, ImportError):
        return ""


def conventions(fws: Sequence[str]) -> str:
    """The guide's conventions: the snippets' variables, then each framework's layout, names and what a
    float64 port must do first."""
    lines = []
    for fw in fws:
        names, note = _adapter_text(fw, "names"), _adapter_text(fw, "float64_note")
        lines.append(f"- {_name(fw)}: {layout(fw)}." + (f" Names in scope: {names}." if names else "")
                     + (f" {note}" if note else ""))  # fmt: skip
    return CONVENTIONS + "\n".join(lines)


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


def _cases(ids: Iterable[str]) -> str:
    cases = list(dict.fromkeys(ids))
    return ", ".join(f"`{c}`" for c in cases[:6]) + (f" and {len(cases) - 6} more" if len(cases) > 6 else "")


def _section(
    g: pd.DataFrame, from_fw: str, to_fws: Sequence[str], suffix: str = "", intro: Sequence[str] = (),
    outro: Sequence[str] = (),
) -> str:  # fmt: skip
    """One configuration: its cases (and `intro`: the reductions folded in), the source call, each target
    API's matched and native recipes, then `outro` (the half-precision verdicts); `suffix` follows the title."""
    config = g.iloc[0][list(CONFIG)].to_dict()
    dtypes = ", ".join(sorted(set(g["dtype"])))
    lines = [f"### {config_title(config)}{suffix}", "", f"Cases ({dtypes}): {_cases(g['case_id'])}", *intro, ""]
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
    lines += [*outro, ""] if outro else []
    return "\n".join(_once(lines)).rstrip() + "\n"


def _once(lines: list[str]) -> list[str]:
    """A section's Why lines in full the first time, then by name only: a note said once per section."""
    seen: set[str] = set()
    out = []
    for line in lines:
        if line.startswith("Why: ") and line in seen:
            names = re.findall(r"`([^`]+)`: ", line)
            line = f"Why: {', '.join(f'`{n}`' for n in names)} (as above)."
        else:
            seen.add(line)
        out.append(line)
    return out


def _sections(rows: pd.DataFrame, from_fw: str, to_fws: Sequence[str]) -> list[str]:
    return [_section(g, from_fw, to_fws) for _, g in rows.groupby(list(CONFIG), sort=False, dropna=False)]


HALF = ("float16", "bfloat16")
REPEATED = 3  # a snippet comment in this many snippets or more becomes a numbered note
SPELLING = {  # how each framework spells a reduction (the fold's note; _without_reduction reads the same)
    "sum": "`reduction='sum'`, `tf.reduce_sum(...)`, `.sum()`",
    "none": "`reduction='none'`, no reduce call",
}


@dataclass
class Plan:
    """One section of the guide: its float32 rows, the reductions folded into it, its half-precision rows."""

    rows: pd.DataFrame
    half: pd.DataFrame
    folded: dict[str, pd.DataFrame] = field(default_factory=dict)  # reduction -> its float32 rows


def _key(c: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(None if pd.isna(c[k]) else c[k] for k in CONFIG)


def _by_config(rows: pd.DataFrame) -> dict[tuple[Any, ...], pd.DataFrame]:
    return {_key(g.iloc[0]): g for _, g in rows.groupby(list(CONFIG), sort=False, dropna=False)}


REDUCE_CALL = re.compile(r"\b(?:tf\.reduce_(?:mean|sum)|jnp\.(?:mean|sum))\(")


def _without_reduction(code: str) -> str:
    """A snippet with its reduction taken out: ``reduction=...`` arguments blanked, ``.mean()``/``.sum()``
    and ``tf.reduce_mean(...)``-style wrappers removed (a weighted mean's division stays, so it differs)."""
    code = re.sub(r"reduction=('[^']*'|None)", "reduction=R", code)
    code = re.sub(r"\.(?:mean|sum)\(\)", "", code)
    while m := REDUCE_CALL.search(code):
        depth, i = 1, m.end()
        while i < len(code) and depth:
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            i += 1
        code = code[: m.start()] + code[m.end() : i - 1] + code[i:]
    return "\n".join(line for line in code.splitlines() if line.strip() != "loss = loss")  # was loss.mean()


def _verdicts(rows: pd.DataFrame) -> dict[tuple[str, str, str], dict[tuple[Any, ...], tuple[str, str]]]:
    """(framework, api, recipe) -> (kind, shape, dtype, mode, policy) -> (verdict, explanation); a mismatch and a
    NaN of the same cause are the same verdict (it differs, for that reason)."""
    out: dict[tuple[str, str, str], dict[tuple[Any, ...], tuple[str, str]]] = {}
    for r in rows.itertuples():
        outcome = "differs" if r.outcome in ("mismatch", "nonfinite") else r.outcome
        explanation = r.explanation if isinstance(r.explanation, str) else ""
        case = (r.kind, r.shape, r.dtype, getattr(r, "mode", None), getattr(r, "policy", None))
        out.setdefault((r.framework, r.api, r.recipe), {})[case] = (outcome, explanation)
    return out


def folds(mean: pd.DataFrame, other: pd.DataFrame) -> bool:
    """Whether `other` (a sum or none configuration, all its dtypes) only repeats `mean`: every API and recipe
    has `mean`'s snippets once the reduction is taken out, and the same verdicts (the same outcome and
    explanation on the same case shape and dtype; on a shape only `other` has, a verdict `mean` has too)."""

    def snippets(rows: pd.DataFrame) -> dict[tuple[str, str, str], set[str]]:
        ran = rows[rows["outcome"] != "unsupported"]
        return {k: {_without_reduction(str(c)) for c in g["recipe_code"]}
                for k, g in ran.groupby(["framework", "api", "recipe"], sort=False)}  # fmt: skip

    have, want = snippets(mean), snippets(other)
    if set(have) != set(want) or any(not want[k] <= have[k] for k in want):
        return False
    mine, theirs = _verdicts(mean), _verdicts(other)
    if set(mine) != set(theirs):
        return False
    for key, cases in theirs.items():
        for case, v in cases.items():
            if mine[key].get(case, v) != v or v not in mine[key].values():
                return False
    return True


def _plans(rows: pd.DataFrame, half: pd.DataFrame) -> list[Plan]:
    """The guide's sections in run order: a sum or none configuration that `folds` into its mean one is not
    its own section."""
    configs, halves = _by_config(rows), _by_config(half)
    position = CONFIG.index("reduction")
    plans: dict[tuple[Any, ...], Plan] = {k: Plan(g, halves.get(k, half.iloc[:0])) for k, g in configs.items()}
    for key, g in configs.items():
        reduction = key[position]
        mean_key = (*key[:position], "mean", *key[position + 1 :])
        if reduction == "mean" or mean_key not in configs:
            continue
        mean = plans[mean_key]
        whole = pd.concat([g, halves.get(key, half.iloc[:0])])
        if folds(pd.concat([mean.rows, mean.half]), whole):
            mean.folded[str(reduction)] = g
            del plans[key]
    return list(plans.values())


def _fold_lines(plan: Plan) -> list[str]:
    """The reductions folded into a mean section: how to spell them, and their cases."""
    return [
        f"- reduction={red}: the same with {SPELLING.get(red, red)}, with the same verdicts; "
        f"cases (float32): {_cases(g['case_id'])}"
        for red, g in plan.folded.items()
    ]


def _half_lines(plan: Plan, from_fw: str, to_fws: Sequence[str]) -> list[str]:
    """float16 and bfloat16 verdicts beside float32's: the same, or the APIs and recipes where they differ."""
    if plan.half.empty:
        return []
    dtypes = [d for d in HALF if d in set(plan.half["dtype"])]
    head = f"**Half precision** ({', '.join(dtypes)}, each within its own tolerance"
    differ = []
    for fw in (from_fw, *to_fws):
        for (api, recipe), h in plan.half[plan.half["framework"] == fw].groupby(["api", "recipe"], sort=False):
            mine = plan.rows[(plan.rows["framework"] == fw) & (plan.rows["api"] == api)]
            f32 = verdict(outcomes(mine[mine["recipe"] == recipe]))
            half = {d: verdict(outcomes(h[h["dtype"] == d])) for d in dtypes}
            if any(v != f32 for v in half.values()):
                got = "; ".join(f"{d} {v}" for d, v in half.items())
                differ.append(f"- {_name(fw)} `{api}` {recipe}: {got} (float32 {f32})")
    if not differ:
        return [f"{head}): the same verdicts as float32."]
    return [f"{head}; what to do: Half precision and rounding, above), where they differ from float32:", "", *differ]


def _notes(text: str) -> tuple[str, list[str]]:
    """`text` with every snippet comment that REPEATED or more snippets carry replaced by a numbered note
    (`# [1]`), and the notes: the code stays as it ran, the explanation is said once."""
    blocks = re.findall(r"```python\n(.*?)\n```", text, flags=re.S)
    seen: dict[str, int] = {}
    for block in blocks:
        for note in dict.fromkeys(m.group(2) for m in map(COMMENT.match, block.splitlines()) if m):
            seen[note] = seen.get(note, 0) + 1
    numbers = {n: i for i, n in enumerate((n for n, k in seen.items() if k >= REPEATED), 1)}
    if not numbers:
        return text, []

    def number(block: re.Match[str]) -> str:
        lines = []
        for line in block.group(0).splitlines():
            m = COMMENT.match(line)
            lines.append(f"{m.group(1)}# [{numbers[m.group(2)]}]" if m and m.group(2) in numbers else line)
        return "\n".join(lines)

    notes = [f"- [{i}] {n} ({seen[n]} snippets)" for n, i in numbers.items()]
    return re.sub(r"```python\n.*?\n```", number, text, flags=re.S), notes


COMMENT = re.compile(r"^((?:.*?\S)?\s\s|\s*)# (.+)$")  # code then two spaces, or nothing, then "# note"


def _slugs(doc: str) -> list[tuple[int, str, str]]:
    """(level, text, GitHub anchor) of every heading outside code blocks, duplicates numbered as GitHub does."""
    out, used, fenced = [], {}, False
    for line in doc.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"^(#{1,6}) (.+)$", line)
        if not m:
            continue
        base = re.sub(r"[^\w\- ]", "", m.group(2).strip().lower()).replace(" ", "-")
        slug, n = base, used.get(base, 0)
        while slug in used:
            n += 1
            slug = f"{base}-{n}"
        used[base] = n
        used.setdefault(slug, 0)
        out.append((len(m.group(1)), m.group(2), slug))
    return out


def _index(doc: str, plans: Sequence[Plan], to_fws: Sequence[str]) -> list[str]:
    """The table of contents: one row per section (configuration), one column per target framework, each API
    linked to its part with its native verdict at float32 (✓, ✗, raises; n/a: not expressible)."""
    headings = _slugs(doc)
    top = [f"[{t.replace('`', '')}](#{s})" for level, t, s in headings if level == 2 and t != "Index"]
    sections = [i for i, (level, *_) in enumerate(headings) if level == 3]
    rows = []
    for plan, start in zip(plans, sections, strict=True):
        end = next((i for i in sections if i > start), len(headings))
        anchors = {t: s for level, t, s in headings[start + 1 : end] if level == 4}
        config = plan.rows.iloc[0]
        label = f"[{section_label(config)}](#{headings[start][2]})"
        also = [f"[{section_label(g.iloc[0])}](#{headings[start][2]})" for g in plan.folded.values()]
        label += f" (+ {', '.join(also)})" if also else ""  # each folded configuration findable by its label
        rows.append([label, *(_index_cell(plan.rows, fw, anchors) for fw in to_fws)])
    return [" · ".join(top), "", INDEX_NOTE, "", md_table(["configuration", *map(_name, to_fws)], rows)]


INDEX_NOTE = (
    "One row per configuration (section), linked; per target framework each API links to its part, with the "
    "obvious port's (`native`) float32 verdict: ✓ within tolerance of PyTorch's exact answer, ✗ differs, "
    "raises, n/a: not expressible. `(+ ...)`: configurations folded into the section (sum or none, which only "
    "repeat its mean)."
)


def _index_cell(rows: pd.DataFrame, fw: str, anchors: Mapping[str, str]) -> str:
    cells = []
    for api, g in rows[rows["framework"] == fw].groupby("api", sort=False):
        native = symbol(outcomes(g[g["recipe"] == "native"]))
        anchor = anchors.get(f"{_name(fw)} `{api}`")
        name = f"`{str(api).split('.')[-1]}`"
        cells.append(f"[{name}](#{anchor}) native {native}" if anchor else f"{name} n/a")
    return "<br>".join(cells)


PRECISION_NOTE = (
    "Every section ends with its **Half precision** line: the float16 and bfloat16 verdicts, each judged "
    "within its own dtype's tolerance (harness/judge/tolerances.py; at C=10, M=64: float16 0.044, bfloat16 "
    "0.35). Semantics are decided at float64 and hold at every dtype, so a semantic difference of the "
    "obvious port (`weight_norm=N`, ...) is not `ok` in half precision either, however small next to the "
    "tolerance: the fix is the float32 one. What is new in low precision is rounding: a `computed_in=D` cause "
    "means the API computes (and accumulates) the loss in D, below the input's precision (at float64 too: "
    "Keras' float32 policy). What to do:"
)
ADVICE = {
    "float32": "pass the input's dtype where the API takes one (Keras' float32 policy computes a float64 input "
    "in float32)",
    "float16": "compute the loss in float32: cast the input (and weights) to float32 before the call (autocast "
    "runs log_softmax and nll_loss in float32 for this reason); in float16 large logits overflow and small terms "
    "vanish",
    "bfloat16": "compute the loss in float32: cast the input (and weights) to float32 before the call; "
    "bfloat16 keeps 8 bits of mantissa",
}


def _precision(rows: pd.DataFrame) -> list[str]:
    """## Half precision: the note, then every rounding cause (`computed_in=D`) by API with what to do: the
    matched recipe's fix where it has one, else compute in float32."""
    rows = rows[rows["framework"] != "numpy"]  # the reference, not a port target
    parts = rows["explanation"].fillna("").str.split("+")
    rounding = parts.map(lambda ps: [p for p in ps if BY_NAME.get(p) is not None and BY_NAME[p].dtype])
    hit = rows.assign(_cause=rounding.map("+".join))[rounding.map(bool)]
    table = []
    for (fw, api, cause), g in hit.groupby(["framework", "api", "_cause"], sort=False):
        recipes = ", ".join(dict.fromkeys(g["recipe"]))
        dtypes = ", ".join(sorted(set(g["dtype"])))
        configs = len(g.drop_duplicates(list(CONFIG)))
        todo = _precision_fix(rows, g[g["recipe"] == "native"], str(fw), str(cause))
        table.append([f"{_name(fw)} `{api}`", recipes, f"`{cause}`", dtypes, f"{configs} ({len(g)} rows)", todo])
    advice = [f"- `computed_in={d}`: {a}." for d, a in ADVICE.items()]
    lines = ["", "## Half precision and rounding", "", PRECISION_NOTE, "", *advice, ""]
    if not table:
        return [*lines, "_No rounding cause in this run._"]
    header = ["API", "recipes", "cause", "dtypes", "configurations (rows)", "what to do"]
    return [*lines, "Rounding causes in this run:", "", md_table(header, table)]


MODES_NOTE = (
    "The snippets below are run the way each framework runs a loss by default (PyTorch and TensorFlow eagerly, "
    "JAX through jax.jit). The same calls compiled (torch.compile, tf.function(jit_compile=True); JAX op by op) "
    "and under mixed-precision policies, on a subset of every kind and dtype, gave:"
)


def _modes(rows: pd.DataFrame) -> list[str]:
    """## Compiled and mixed precision: what changes when the same snippet is compiled or runs under a policy,
    and the dtype each policy's loss came back in, with what to write to match PyTorch eager."""
    frame = modes_frame(rows[rows["framework"] != "numpy"])
    if frame.empty:
        return []
    lines = ["", "## Compiled and mixed precision", "", MODES_NOTE, "", to_markdown(frame), ""]
    policy = frame[frame["policy"] != "none"]
    came_back = {}
    for (fw, name), g in policy.groupby(["framework", "policy"], sort=False):
        dtypes = {d.strip() for v in g["loss dtype"] for d in str(v).split(",")} - {"", "-"}
        came_back[fw, name] = ", ".join(sorted(dtypes))
        lines.append(f"- {_name(fw)} under `{name}`: the loss came back in {came_back[fw, name]}.")
    autocast = sorted({d for (fw, _), d in came_back.items() if fw == "torch"})
    if autocast:
        lines.append(
            f"- To match PyTorch under torch.autocast elsewhere, compute the loss in the dtype its autocast rows came "
            f"back in ({'; '.join(autocast)}: cast x first, e.g. `x.astype(jnp.float32)`, `tf.cast(x, tf.float32)`); "
            "to match PyTorch eager on half-precision logits, compute in the logits' dtype."
        )
    return lines


def _precision_fix(rows: pd.DataFrame, native: pd.DataFrame, fw: str, cause: str) -> str:
    """The matched recipe's fix where its rows of the same cases are ok with other code, else the advice for
    the dtype (above the table)."""
    key = pair_key(rows)
    fixed = rows[(rows["recipe"] == "matched") & (rows["outcome"] == "ok")].merge(native[key], on=key)
    if len(fixed):
        first = native[native["case_id"] == fixed["case_id"].iloc[0]].iloc[0]
        matched = fixed["recipe_code"].iloc[0]
        if essential_line(matched, first["recipe_code"])[0]:
            return fix_text(fw, cause, matched, first["recipe_code"], None, section_label(first))
    return f"see `{cause.split('+')[0]}` above"


def porting_guide(accuracy: pd.DataFrame, env: dict[str, Any]) -> str:
    """The whole of reports/PORTING.md from a run's accuracy rows (CPU: float32, with float16, bfloat16 and
    float64's rounding causes) and env.json."""
    everything = accuracy[accuracy["device"] == "cpu"]
    cpu = everything[how_label(everything) == ""]  # the snippets as each framework runs them by default
    rows = cpu[cpu["dtype"] == "float32"]
    fws = [f for f in FRAMEWORKS if f in set(rows["framework"])]
    from_rows = rows.groupby("framework")["framework_version"].first()
    versions = ", ".join(
        f"{_name(f)} {env.get('frameworks', {}).get(f, {}).get('version') or from_rows[f]}" for f in fws
    )
    head = [
        "# Porting cross-entropy between PyTorch, TensorFlow and JAX",
        "",
        f"Generated from run `{env.get('run_id', '')}` ({versions}; float32 on CPU, with float16 and bfloat16 "
        f"verdicts) by the harness: every snippet below is the code that ran, and every number is from that run. "
        f"Regenerate it (`{REGENERATE}`) rather than editing it.",
        "",
        f"Machine: {env.get('cpu', 'unknown CPU')} ({env.get('cpu_isa') or 'instruction set not recorded'}). "
        "The semantic differences below hold everywhere; the float32 errors are this machine's: another "
        "instruction set (PyTorch's AVX2 and AVX-512 kernels, say) rounds differently in the last digits.",
    ]
    if rows.empty:
        return "\n".join([*head, "", "## Configurations", "", "_No float32 CPU rows in this run._", ""])
    to_fws = [f for f in fws if f not in ("torch", "numpy")]  # numpy is the reference, not a port target
    plans = _plans(rows, cpu[cpu["dtype"].isin(HALF)])
    sections = [
        _section(p.rows, "torch", to_fws, " (also " + ", ".join(p.folded) + ")" if p.folded else "", _fold_lines(p),
                 _half_lines(p, "torch", to_fws))
        for p in plans
    ]  # fmt: skip
    body, notes = _notes("\n".join(sections))
    note_part = ["", "## Notes on the snippets", "", "Comments many snippets share, said once:", "", *notes]
    rest = [
        "", "## Conventions", "", conventions(fws), *(note_part if notes else []), *_precision(cpu),
        *_modes(everything), *_unreproduced(rows), "", "## Configurations", "", FOLD_NOTE, "", body,
    ]  # fmt: skip
    doc = "\n".join([*head, "", "## Index", "", *rest])
    return "\n".join([*head, "", "## Index", "", *_index(doc, plans, to_fws), *rest])


FOLD_NOTE = (
    "A `sum` or `none` configuration whose snippets are its `mean` section's but for the reduction, with the "
    "same verdicts, is folded into that section (its title says `also sum, none`; a `- reduction=...` line "
    "lists its cases)."
)


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
        f"{layout(from_fw)}; {_name(to_fw)}: {layout(to_fw)}.\n\n"
    )
    notes = [n for n in dict.fromkeys(_adapter_text(fw, "float64_note") for fw in (from_fw, to_fw)) if n]
    if notes and (rows["dtype"] == "float64").any():
        head += "".join(f"{n}\n\n" for n in notes)
    if rows.empty:
        return head + "_No rows match this configuration._\n"
    return head + "\n".join(_sections(rows, from_fw, [to_fw]))
