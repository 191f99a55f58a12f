"""report.html: summary.md's tables with plots, in one self-contained file.

Plots are PNGs embedded as base64 data URIs and the style sheet is inline, so the file reads the same
offline, attached to an issue or opened years later: no scripts, fonts or CDN.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cases.names import DTYPES, KINDS
from harness.summary import column_label, fmt, md_table

JUDGED = ("ok", "mismatch")
STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em 2em; color: #1b1b1b; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.8em; }
.scroll { overflow-x: auto; margin: .6em 0; }
table { border-collapse: collapse; font-size: 12.5px; }
th, td { border: 1px solid #d0d0d0; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #eef1f5; position: sticky; top: 0; }
tbody tr:nth-child(even) { background: #f8f9fb; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
pre { background: #f4f4f4; padding: .6em; overflow-x: auto; }
img { max-width: 100%; height: auto; display: block; margin: .5em 0; }
td a { overflow-wrap: anywhere; } nav a { margin-right: 1em; } .note { color: #555; }
"""


# -- Markdown (the subset summary.md uses) -> HTML --------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _inline(text: str) -> str:
    """`code`, **bold**, _italic_ and bare URLs; everything else escaped."""
    out = []
    for i, part in enumerate(re.split(r"`([^`]*)`", text)):
        if i % 2:
            out.append(f"<code>{html.escape(part)}</code>")
            continue
        s = html.escape(part)
        s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
        s = re.sub(r"(?<![\w/])_([^_]+?)_(?!\w)", r"<em>\1</em>", s)
        s = re.sub(r"(https?://[^\s<>&]+[^\s<>&.,;:)])", r'<a href="\1">\1</a>', s)
        out.append(s)
    return "".join(out)


def _cells(line: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]  # md_table escapes | in cells as \|
    return [p.strip().replace("\\|", "|") for p in parts]


def _table(lines: list[str]) -> str:
    head, body = _cells(lines[0]), [_cells(x) for x in lines[2:]]
    th = "".join(f"<th>{_inline(h)}</th>" for h in head)
    rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
    return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{rows}</tbody></table></div>'


def _blocks(lines: list[str]) -> Iterator[tuple[str, list[str]]]:
    """(kind, lines) for each block: heading, table, list, code or paragraph."""
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            yield "code", lines[i + 1 : j]
            i = j + 1
            continue
        if line.startswith("#"):
            yield "heading", [line]
            i += 1
            continue
        kind = "table" if line.startswith("|") else "list" if line.startswith("- ") else "para"
        j = i + 1
        while j < len(lines) and lines[j].strip() and not lines[j].startswith(("#", "```")):
            nxt = "table" if lines[j].startswith("|") else "list" if lines[j].startswith("- ") else "para"
            if nxt != kind:
                break
            j += 1
        yield kind, lines[i:j]
        i = j


def md_to_html(md: str) -> str:
    """Headings, paragraphs, bullet lists, fenced code and GitHub tables: what summary.md holds."""
    out = []
    for kind, lines in _blocks(md.splitlines()):
        if kind == "heading":
            level = min(len(lines[0]) - len(lines[0].lstrip("#")), 6)
            text = lines[0].lstrip("#").strip()
            out.append(f'<h{level} id="{_slug(text)}">{_inline(text)}</h{level}>')
        elif kind == "table":
            out.append(_table(lines))
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{_inline(x[2:])}</li>" for x in lines) + "</ul>")
        elif kind == "code":
            out.append(f"<pre><code>{html.escape(chr(10).join(lines))}</code></pre>")
        else:
            out.append("<p>" + "<br>\n".join(_inline(x) for x in lines) + "</p>")
    return "\n".join(out)


# -- plots ------------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    """A figure on its own Agg canvas: no pyplot, so no global figure registry and no change to the
    backend of a session (a notebook) that imports this module."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _labels(df: pd.DataFrame) -> pd.Series:
    """column_label, with the machine when a merged frame holds several."""
    label = column_label(df)
    if "machine" in df.columns and df["machine"].nunique() > 1:
        label = label + " @ " + df["machine"]
    return label


def _heatmap_panel(ax: Any, grid: pd.DataFrame, title: str) -> None:
    import matplotlib
    from matplotlib.colors import LogNorm

    values = grid.to_numpy(dtype=float)
    positive = values[np.isfinite(values) & (values > 0)]
    lo = max(float(positive.min()) if positive.size else 1.0, 1e-3)
    hi = max(float(positive.max()) if positive.size else 10.0, lo * 10)
    # log scale: exact zeros are drawn at the bottom of the scale and annotated "0"
    shown = np.where(np.isfinite(values), np.clip(values, lo, None), np.nan)
    cmap = matplotlib.colormaps["YlOrRd"].with_extremes(bad="#e8e8e8")
    im = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, norm=LogNorm(lo, hi), aspect="auto")
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(grid.shape[0]), grid.index, fontsize=9)
    ax.set_title(title, fontsize=10)
    for (r, c), v in np.ndenumerate(values):
        if math.isfinite(v):
            dark = v > 0 and math.log(max(v, lo) / lo) > 0.6 * math.log(hi / lo)
            ax.text(c, r, fmt(v), ha="center", va="center", fontsize=7.5, color="white" if dark else "black")
    bar = ax.figure.colorbar(im, ax=ax, fraction=0.03, pad=0.01, label="ULPs (log)")
    bar.ax.minorticks_off()  # hi >= 10 lo, so at least one power of ten is labelled


def heatmaps(accuracy: pd.DataFrame, recipe: str = "matched") -> list[tuple[str, str]]:
    """(dtype, <img>) per dtype: worst value and gradient error in ULPs by case kind x framework API,
    over the rows the tolerance judged (ok or mismatch) of one recipe."""
    sub = accuracy[accuracy["outcome"].isin(JUDGED) & (accuracy["recipe"] == recipe)]
    if sub.empty:
        return []
    sub = sub.assign(col=_labels(sub))
    cols = list(dict.fromkeys(sub["col"]))
    kinds = [k for k in (*KINDS, "user") if k in set(sub["kind"])] + sorted(set(sub["kind"]) - {*KINDS, "user"})
    out = []
    for dtype in [d for d in DTYPES if d in set(sub["dtype"])]:
        g = sub[sub["dtype"] == dtype]
        rows = [k for k in kinds if k in set(g["kind"])]
        # stacked, not side by side: many API columns need the page's whole width
        fig = _figure(max(8.0, 0.95 * len(cols) + 3.0), 2 * (0.45 * len(rows) + 2.6))
        axes = fig.subplots(2, 1)
        for ax, column, what in zip(axes, ("value_ulp_err", "grad_ulp_err"), ("value", "gradient"), strict=True):
            grid = g.pivot_table(index="kind", columns="col", values=column, aggfunc="max", dropna=False)
            grid = grid.reindex(index=rows, columns=cols)
            _heatmap_panel(ax, grid, f"{dtype}: worst {what} error (ULPs), {recipe} recipes")
        fig.tight_layout()
        out.append((dtype, _png(fig)))
    return out


def roofline_s(t: pd.DataFrame) -> pd.Series:
    """The time the minimal bytes take at the measured peak bandwidth: bytes_min / (gbps / roofline_frac)
    (gbps in GB/s, 1e9 bytes); NaN where a row has no bandwidth figure."""
    peak = t["gbps"].astype(float) * 1e9 / t["roofline_frac"].astype(float)
    peak = peak.where(np.isfinite(peak) & (peak > 0))
    return t["bytes_min"].astype(float) / peak


def timing_charts(timing: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(case_id, <img>, Markdown table) per timing case: median time with IQR whiskers per
    framework API, mode and pass, and each row's roofline marked."""
    out = []
    for case_id, t in timing.groupby("case_id", sort=False):
        t = t.sort_values(["framework", "api", "mode", "pass"], kind="stable").reset_index(drop=True)
        labels = _labels(t) + " " + t["mode"] + " " + t["pass"]
        roof = roofline_s(t)
        fig = _figure(10, 0.36 * len(t) + 1.6)
        ax = fig.subplots()
        y = np.arange(len(t))
        colors = ["#4c78a8" if m == "eager" else "#f58518" for m in t["mode"]]
        ax.barh(y, t["median_s"], xerr=t["iqr_s"].fillna(0) / 2, color=colors, capsize=3, ecolor="#333")
        if roof.notna().any():
            ax.scatter(roof, y, marker="|", s=400, color="#d62728", linewidths=2.5, zorder=3,
                       label="roofline: bytes_min at measured bandwidth")  # fmt: skip
            ax.legend(loc="lower right", fontsize=8)
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("median seconds per call (whiskers: IQR; blue eager, orange compiled)")
        ax.set_title(f"{case_id} ({t['shape'].iloc[0]}, {t['dtype'].iloc[0]})", fontsize=10)
        ax.grid(axis="x", which="both", alpha=0.3)
        table = md_table(
            ["api", "mode", "pass", "device", "median s", "IQR s", "samples", "compile s", "GB/s", "roofline frac",
             "roofline s", "threads"],
            [[f"{r['framework']}.{r['api'].split('.')[-1]}", r["mode"], r["pass"], r["device"], fmt(r["median_s"]),
              fmt(r["iqr_s"]), r["samples"], fmt(r["compile_s"]), fmt(r["gbps"]), fmt(r["roofline_frac"]), fmt(rf),
              r["threads"]]
             for r, rf in zip(t.to_dict("records"), roof, strict=True)],  # records: `pass` is a keyword
        )  # fmt: skip
        out.append((str(case_id), _png(fig), table))
    return out


# -- the page ---------------------------------------------------------------------------------------


def _flatten(d: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flatten(v, key + ".")
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for i, x in enumerate(v):
                yield from _flatten(x, f"{key}[{i}].")
        else:
            yield key, ", ".join(map(str, v)) if isinstance(v, list) else str(v)


def env_table(env: dict[str, Any]) -> str:
    return md_table(["key", "value"], list(_flatten(env)))


def render_html(accuracy: pd.DataFrame, timing: pd.DataFrame | None, env: dict[str, Any], summary_md: str) -> str:
    """The whole report as one HTML string: summary.md's introduction, the error heatmaps, the timing
    charts, summary.md's tables, then env.json."""
    intro, sep, rest = summary_md.partition("\n## ")
    if not summary_md.strip():
        intro = f"# Cross-entropy discrepancy report\n\nRun `{env.get('run_id', '')}`."
    parts = [md_to_html(intro)]
    nav = [("error-heatmaps", "Error heatmaps"), ("timing-charts", "Timing charts")]
    nav += [(_slug(h), h) for h in re.findall(r"^## (.+)$", sep + rest, flags=re.M)] + [("environment", "Environment")]
    parts.append("<nav>" + "".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in nav) + "</nav>")

    parts.append('<h2 id="error-heatmaps">Error heatmaps</h2>')
    parts.append(md_to_html(
        "Worst error in ULPs of the row's dtype, over the cases of a kind, for rows within or beyond tolerance "
        "(`ok` or `mismatch`; other outcomes are in the tables below). `matched` recipes: the numerics of each "
        "API called so as to reproduce PyTorch's semantics. Grey: no judged row."
    ))  # fmt: skip
    maps = heatmaps(accuracy)
    parts += [f"<h3>{d}</h3>{img}" for d, img in maps] or ["<p><em>No judged rows.</em></p>"]

    parts.append('<h2 id="timing-charts">Timing charts</h2>')
    if timing is None or timing.empty:
        parts.append("<p><em>No timing in this run (timing.parquet is missing or empty).</em></p>")
    else:
        parts.append(md_to_html(
            "Median seconds per call with the interquartile range as whiskers, per framework API, mode (eager or "
            "compiled) and pass (forward or forward+backward). The red mark is the roofline: the time the bytes the "
            "loss must move at least (bytes_min) take at the device's measured copy bandwidth, bytes_min / (GB/s / "
            "roofline_frac)."
        ))  # fmt: skip
        tabled = re.search(r"^## Timing", summary_md, flags=re.M) is not None  # summary.md has the numbers
        for case_id, img, table in timing_charts(timing):
            parts += [f"<h3>{html.escape(case_id)}</h3>", img, "" if tabled else md_to_html(table)]

    if sep:
        parts.append(md_to_html(sep.lstrip("\n") + rest))
    parts += ['<h2 id="environment">Environment</h2>', md_to_html(env_table(env))]
    title = html.escape(f"Cross-entropy report {env.get('run_id', '')}".strip())
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>\n'
        "<body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def write_html(run_dir: Path) -> Path:
    """Read a run directory (accuracy, timing if any, env.json, summary.md) and write its report.html."""
    from harness.merge import load_run
    from harness.store import atomic_write

    run = load_run(run_dir)
    path = Path(run_dir) / "report.html"
    atomic_write(path, render_html(run.accuracy, run.timing, run.env, run.summary_md).encode())
    return path
