"""report.html: summary.md's tables with plots and every row, filterable, in one self-contained file.

It opens on the top surprises and the configuration x framework matrix (harness/render/tables.py, as in
summary.md), then every accuracy row with a search box and filters. The plots are inline SVG and coloured
HTML tables, written here without a plotting library; the style sheet and the filters' script are inline,
so the file works the same opened from disk, offline, attached to an issue or years later: no server, no
external script, image, font or CDN. Colours say where a row stands against its own tolerance (err/tol).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adapters.registry import FRAMEWORKS
from cases.names import DTYPES, KINDS, OUTCOMES
from harness.judge.rows import with_columns
from harness.render.load import load_run
from harness.render.markdown import fmt, md_table
from harness.render.summary import CONFIG_NOTE, SURPRISES_NOTE, column_label
from harness.render.tables import Front, front, short_api, tolerance_ratio
from harness.runner.store import atomic_write

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
table.heat { font-size: 11.5px; } table.heat caption { text-align: left; color: #555; padding: .2em 0; }
table.heat td { text-align: center; min-width: 2.6em; padding: 2px 4px; font-variant-numeric: tabular-nums; }
table.heat td.dark { color: #fff; }
table.heat th.kind { white-space: nowrap; } table.heat th.panel { background: #fff; font-weight: 600; }
table.heat th.api { vertical-align: bottom; padding: 4px 2px; }
table.heat th.api span { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; font-weight: 500; }
.legend { font-weight: normal; color: #444; margin-left: 1.5em; white-space: nowrap; }
.sw { display: inline-block; width: 1.4em; height: .9em; margin: 0 .25em 0 .7em; border: 1px solid #bbb;
      vertical-align: -1px; }
svg.chart { display: block; max-width: 100%; height: auto; margin: .5em 0; font: 11px system-ui, sans-serif; }
svg.chart text { fill: #1b1b1b; } svg.chart text.title { font-size: 12.5px; font-weight: 600; }
svg.chart .grid { stroke: #ddd; } svg.chart .axis { stroke: #555; }
svg.chart .whisker { stroke: #333; fill: none; } svg.chart .roof { stroke-width: 2.5; }
td a { overflow-wrap: anywhere; } nav a { margin-right: 1em; } .note { color: #555; }
table.rows td.err { max-width: 32em; overflow-wrap: anywhere; } table.rows td.num { text-align: right; }
table.rows td.dark { color: #fff; } table.rows tr[hidden] { display: none; }
td.o-mismatch, td.o-nonfinite { color: #a50f15; font-weight: 600; } td.o-raised, td.o-crashed,
td.o-timeout { color: #8c510a; font-weight: 600; } td.o-unsupported { color: #777; }
.filters { position: sticky; top: 0; background: #fff; padding: .5em 0; z-index: 2; border-bottom: 1px solid #ddd; }
.filters input[type=search] { width: 26em; padding: 3px 6px; } .filters label { margin-left: 1em; }
table.surprises code { cursor: pointer; } details summary { cursor: pointer; color: #1f4e8c; }
"""
# the filters of the row table: every control narrows the rows; words in the search box must all appear
SCRIPT = """
(function () {
  var table = document.getElementById("row-table");
  if (!table) return;
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var text = rows.map(function (r) { return r.textContent.toLowerCase(); });
  var search = document.getElementById("row-search");
  var count = document.getElementById("row-count");
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  function keep(row, i, words, wanted) {
    for (var k = 0; k < wanted.length; k++) {
      var have = row.getAttribute("data-" + wanted[k][0]), want = wanted[k][1];
      if (want === "not ok" ? (have === "ok" || have === "unsupported") : have !== want) return false;
    }
    for (var w = 0; w < words.length; w++) if (text[i].indexOf(words[w]) < 0) return false;
    return true;
  }
  function apply() {
    var words = search.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var wanted = selects.filter(function (s) { return s.value; }).map(function (s) {
      return [s.getAttribute("data-filter"), s.value];
    });
    var shown = 0;
    rows.forEach(function (row, i) { var on = keep(row, i, words, wanted); row.hidden = !on; shown += on; });
    count.textContent = shown + " of " + rows.length + " rows";
  }
  search.addEventListener("input", apply);
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  // a cause in the top surprises table searches the rows for it
  Array.prototype.forEach.call(document.querySelectorAll("table.surprises code"), function (c) {
    c.title = "show these rows";
    c.addEventListener("click", function () {
      search.value = c.textContent; apply(); table.scrollIntoView();
    });
  });
  apply();
})();
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
        if re.match(r"</?details>|<details><summary>", line):
            yield "fold", [line]
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
        elif kind == "fold":  # collapsible() writes these lines; the label is inline Markdown
            label = re.fullmatch(r"<details><summary>(.*)</summary>", lines[0])
            out.append(f"<details><summary>{_inline(label.group(1))}</summary>" if label else lines[0])
        else:
            out.append("<p>" + "<br>\n".join(_inline(x) for x in lines) + "</p>")
    return "\n".join(out)


# -- plots: coloured tables and inline SVG ----------------------------------------------------------

# ColorBrewer YlOrRd (9 classes), the ramp the PNG heatmaps used; interpolated linearly in RGB
RAMP = ((255, 255, 204), (255, 237, 160), (254, 217, 118), (254, 178, 76), (253, 141, 60), (252, 78, 42),
        (227, 26, 28), (189, 0, 38), (128, 0, 38))  # fmt: skip
NAN_COLOUR = "#e8e8e8"
EAGER, COMPILED, ROOF = "#4c78a8", "#f58518", "#d62728"


GREENS = ((237, 248, 233), (199, 233, 192), (161, 217, 155), (116, 196, 118))  # ColorBrewer Greens 2-5
TOL_FLOOR, TOL_CEILING = 1e-3, 1e6  # err/tol where the greens start and the reds end


def _blend(stops: tuple[tuple[int, int, int], ...], t: float) -> str:
    """The colour at t in [0, 1] along `stops`, linearly in RGB, as #rrggbb."""
    x = min(max(t, 0.0), 1.0) * (len(stops) - 1)
    i = min(int(x), len(stops) - 2)
    f = x - i
    a, b = stops[i], stops[i + 1]
    return "#" + "".join(f"{round(p + (q - p) * f):02x}" for p, q in zip(a, b, strict=True))


def ramp(t: float) -> str:
    """The colour at t in [0, 1] along RAMP (YlOrRd), as #rrggbb."""
    return _blend(RAMP, t)


def tol_colour(ratio: float) -> str:
    """A row's colour from its err/tol: within tolerance (<= 1) greens, darker as the error nears the
    tolerance (from 1e-3 of it); beyond it YlOrRd's reds, darker up to 1e6 times it; grey without an error."""
    if ratio is None or math.isnan(ratio):
        return NAN_COLOUR
    if ratio <= 1:
        return _blend(GREENS, (math.log10(max(ratio, TOL_FLOOR)) - math.log10(TOL_FLOOR)) / -math.log10(TOL_FLOOR))
    t = math.log10(ratio) / math.log10(TOL_CEILING) if math.isfinite(ratio) else 1.0
    return ramp(0.625 + 0.375 * min(t, 1.0))  # from RAMP's red (#fc4e2a) on: past tolerance is red at once


def _dark(ratio: float) -> bool:
    """Where black text no longer reads on tol_colour."""
    return not math.isnan(ratio) and ratio > 1e3


def tol_legend() -> str:
    """Swatches of the err/tol scale and the no-error grey."""
    stops = [(1e-3, "≤0.001"), (0.1, "0.1"), (1, "1 (tolerance)"), (1.01, ">1"), (1e3, "1e3"), (1e6, "≥1e6")]
    swatches = [f'<span class="sw" style="background:{tol_colour(v)}"></span>{html.escape(t)}' for v, t in stops]
    swatches.append(f'<span class="sw" style="background:{NAN_COLOUR}"></span>no error (raised, unsupported)')
    return '<span class="legend">err/tol: ' + " ".join(swatches) + "</span>"


def _labels(df: pd.DataFrame) -> pd.Series:
    """column_label, with the machine when a merged frame holds several."""
    label = column_label(df)
    if "machine" in df.columns and df["machine"].nunique() > 1:
        label = label + " @ " + df["machine"]
    return label


def _heat_panel(grid: pd.DataFrame, ratios: pd.DataFrame, what: str, title: str) -> str:
    """A <tbody>: a title row with the legend, then one row per kind: each cell the worst ULP error, coloured
    by the worst err/tol of its rows (a 3-ULP cell within tolerance is green, not red)."""
    values, tols = grid.to_numpy(dtype=float), ratios.to_numpy(dtype=float)
    rows = [f'<tr><th class="panel" colspan="{grid.shape[1] + 1}">{html.escape(title)} {tol_legend()}</th></tr>']
    for kind, line, tol_line in zip(grid.index, values, tols, strict=True):
        cells = [f'<th class="kind">{html.escape(str(kind))}</th>']
        for api, v, r in zip(grid.columns, line, tol_line, strict=True):
            where = f"kind {kind}, {api}"
            if math.isnan(v):
                tip = html.escape(f"{what}: no judged row; {where}")
                cells.append(f'<td class="na" style="background:{NAN_COLOUR}" title="{tip}"></td>')
                continue
            tip = html.escape(f"{what} ULP error {v!r}; worst err/tol {fmt(r)}; {where}")
            cls = ' class="dark"' if _dark(r) else ""
            cells.append(f'<td{cls} style="background:{tol_colour(r)}" title="{tip}">{html.escape(fmt(v))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<tbody>" + "".join(rows) + "</tbody>"


def heatmaps(accuracy: pd.DataFrame, recipe: str = "matched") -> list[tuple[str, str]]:
    """(dtype, <table class="heat">) per dtype: worst value and gradient error in ULPs by case kind x
    framework API, over the rows the tolerance judged (ok or mismatch) of one recipe, each cell coloured by
    the worst err/tol of its rows: ULPs mean different things at different sizes, the tolerance does not."""
    sub = accuracy[accuracy["outcome"].isin(JUDGED) & (accuracy["recipe"] == recipe)]
    if sub.empty:
        return []
    sub = sub.assign(col=_labels(sub), value_tol=tolerance_ratio(sub, "value"), grad_tol=tolerance_ratio(sub, "grad"))
    cols = list(dict.fromkeys(sub["col"]))
    kinds = [k for k in (*KINDS, "user") if k in set(sub["kind"])] + sorted(set(sub["kind"]) - {*KINDS, "user"})
    out = []
    for dtype in [d for d in DTYPES if d in set(sub["dtype"])]:
        g = sub[sub["dtype"] == dtype]
        rows = [k for k in kinds if k in set(g["kind"])]

        def grid(column: str, g: pd.DataFrame = g, rows: list[str] = rows) -> pd.DataFrame:
            table = g.pivot_table(index="kind", columns="col", values=column, aggfunc="max", dropna=False)
            return table.reindex(index=rows, columns=cols)

        # one table, the two panels stacked: many API columns need the page's whole width; the API names
        # read bottom to top so that 30-odd columns fit a page
        head = "".join(f'<th class="api"><span>{html.escape(c)}</span></th>' for c in cols)
        panels = [
            _heat_panel(grid(f"{part}_ulp_err"), grid(f"{part}_tol"), what, f"{what}: worst {what} error (ULPs), "
                        f"coloured by err/tol, {recipe} recipes")
            for part, what in (("value", "value"), ("grad", "gradient"))
        ]  # fmt: skip
        caption = html.escape(f"{dtype}: worst error in ULPs by case kind (rows) and API (columns)")
        body = f'<caption>{caption}</caption><thead><tr><th class="kind">kind</th>{head}</tr></thead>{"".join(panels)}'
        out.append((dtype, f'<div class="scroll"><table class="heat">{body}</table></div>'))
    return out


def roofline_s(t: pd.DataFrame) -> pd.Series:
    """The time the minimal bytes take at the measured peak bandwidth: bytes_min / (gbps / roofline_frac)
    (gbps in GB/s, 1e9 bytes); NaN where a row has no bandwidth figure."""
    peak = t["gbps"].astype(float) * 1e9 / t["roofline_frac"].astype(float)
    peak = peak.where(np.isfinite(peak) & (peak > 0))
    return t["bytes_min"].astype(float) / peak


def _finite_positive(xs: Any) -> list[float]:
    return [float(x) for x in xs if x is not None and math.isfinite(x) and x > 0]


def _svg_chart(title: str, labels: list[str], modes: list[str], median: list[float], iqr: list[float],
               roof: list[float]) -> str:  # fmt: skip
    """Horizontal bars on a log10 x axis, from the axis' left edge to the median, IQR whiskers
    (median +- IQR/2) and a red roofline tick per row."""
    row_h, top, char_w = 20, 30, 6.4  # 11px system-ui averages about 6 px a character; err wide
    label_w = round(char_w * max(map(len, labels), default=10)) + 12
    plot_w = 620
    width = label_w + plot_w + 24
    half = [(m - q / 2, m + q / 2) if math.isfinite(q) else (m, m) for m, q in zip(median, iqr, strict=True)]
    seen = _finite_positive([*median, *(h for _, h in half), *roof]) or [1e-3]
    # the axis starts a little below the smallest time, so the shortest bar is still visible
    lo_e = math.floor(math.log10(min(seen) * 0.8))
    hi_e = max(math.ceil(math.log10(max(seen))), lo_e + 1)
    bottom = top + row_h * len(labels)
    height = bottom + 62

    def x(v: float) -> float:
        v = max(v, 10.0**lo_e)
        return round(label_w + plot_w * (math.log10(v) - lo_e) / (hi_e - lo_e), 1)

    e = html.escape
    svg = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(title)}">',
           f'<text class="title" x="{label_w}" y="16">{e(title)}</text>']  # fmt: skip
    for k in range(lo_e, hi_e + 1):
        gx = x(10.0**k)
        svg.append(f'<line class="grid" x1="{gx}" y1="{top - 4}" x2="{gx}" y2="{bottom}"/>')
        svg.append(f'<text class="tick" x="{gx}" y="{bottom + 14}" text-anchor="middle">1e{k} s</text>')
    for i, (label, mode, m, (w_lo, w_hi), r) in enumerate(zip(labels, modes, median, half, roof, strict=True)):
        y = top + i * row_h
        mid = y + row_h / 2
        svg.append(f'<text class="label" x="{label_w - 6}" y="{mid + 4}" text-anchor="end">{e(label)}</text>')
        if math.isfinite(r) and r > 0:  # drawn last in the row, over the bar, so it shows wherever it falls
            rx = x(r)
            roof_mark = f'<line class="roof" x1="{rx}" y1="{y + 1}" x2="{rx}" y2="{y + row_h - 1}" stroke="{ROOF}"/>'
        else:
            roof_mark = ""
        if not (math.isfinite(m) and m > 0):
            svg += [f'<text class="tick" x="{label_w + 4}" y="{mid + 4}">no time</text>', roof_mark]
            continue
        colour = EAGER if mode == "eager" else COMPILED
        tip = f"{label}: median {fmt(m)} s, IQR {fmt(iqr[i])} s"
        tip += f", roofline {fmt(r)} s" if math.isfinite(r) else ""
        svg.append(f'<rect class="bar {e(mode)}" x="{label_w}" y="{y + 3}" width="{round(x(m) - label_w, 1)}" '
                   f'height="{row_h - 6}" fill="{colour}"><title>{e(tip)}</title></rect>')  # fmt: skip
        if w_hi > w_lo:
            a, b = x(w_lo), x(w_hi)
            svg.append(f'<path class="whisker" d="M{a} {mid}H{b}M{a} {mid - 4}V{mid + 4}M{b} {mid - 4}V{mid + 4}"/>')
        svg.append(roof_mark)
    svg.append(f'<line class="axis" x1="{label_w}" y1="{bottom}" x2="{label_w + plot_w}" y2="{bottom}"/>')
    svg.append(f'<text class="tick" x="{label_w + plot_w / 2}" y="{bottom + 30}" text-anchor="middle">'
               "median seconds per call (log scale; whiskers: IQR)</text>")  # fmt: skip
    ly = bottom + 46
    lx = label_w
    for colour, name in ((EAGER, "eager"), (COMPILED, "compiled")):
        svg.append(f'<rect class="swatch" x="{lx}" y="{ly}" width="12" height="10" fill="{colour}"/>')
        svg.append(f'<text class="tick" x="{lx + 16}" y="{ly + 9}">{name}</text>')
        lx += 16 + round(char_w * len(name)) + 16
    svg.append(f'<line class="roof key" x1="{lx + 5}" y1="{ly - 1}" x2="{lx + 5}" y2="{ly + 11}" stroke="{ROOF}"/>')
    svg.append(f'<text class="tick" x="{lx + 14}" y="{ly + 9}">roofline: bytes_min at measured bandwidth</text>')
    svg.append("</svg>")
    return "\n".join(p for p in svg if p)


def timing_charts(timing: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(case_id, <svg>, Markdown table) per timing case: median time with IQR whiskers per
    framework API, mode and pass, and each row's roofline marked."""
    out = []
    for case_id, t in timing.groupby("case_id", sort=False):
        t = t.sort_values(["framework", "api", "mode", "pass"], kind="stable").reset_index(drop=True)
        labels = _labels(t) + " " + t["mode"] + " " + t["pass"]
        roof = roofline_s(t)
        chart = _svg_chart(
            f"{case_id} ({t['shape'].iloc[0]}, {t['dtype'].iloc[0]})", list(labels), list(t["mode"]),
            list(t["median_s"].astype(float)), list(t["iqr_s"].astype(float)), list(roof.astype(float)),
        )  # fmt: skip
        table = md_table(
            ["api", "mode", "pass", "device", "median s", "IQR s", "samples", "compile s", "GB/s", "roofline frac",
             "roofline s", "threads"],
            [[f"{r['framework']}.{r['api'].split('.')[-1]}", r["mode"], r["pass"], r["device"], fmt(r["median_s"]),
              fmt(r["iqr_s"]), r["samples"], fmt(r["compile_s"]), fmt(r["gbps"]), fmt(r["roofline_frac"]), fmt(rf),
              r["threads"]]
             for r, rf in zip(t.to_dict("records"), roof, strict=True)],  # records: `pass` is a keyword
        )  # fmt: skip
        out.append((str(case_id), chart, table))
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


# summary.md's sections this page builds from the frame itself (as tables with links and filters)
FROM_FRAME = ("Top surprises", "Configurations × frameworks", "Rows not ok")
FILTERS = ("framework", "recipe", "outcome", "dtype", "kind")
FILTER_ORDER = {"framework": FRAMEWORKS, "recipe": ("native", "matched"), "outcome": OUTCOMES, "dtype": DTYPES,
                "kind": KINDS}  # fmt: skip
OUTCOME_RANK = {o: i for i, o in enumerate(("mismatch", "nonfinite", "raised", "crashed", "timeout", "ok"))}


def _text(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def frame_table(frame: pd.DataFrame, cls: str) -> str:
    """A display frame (inline Markdown cells, a newline between lines) as an HTML table."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{'<br>'.join(map(_inline, _text(v).split(chr(10))))}</td>" for v in r) + "</tr>"
        for r in frame.itertuples(index=False)
    )
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _filters(df: pd.DataFrame) -> str:
    """The search box, one select per FILTERS column (its values in the table's order) and the row count."""
    controls = ['<input type="search" id="row-search" placeholder="search every column (all words must appear)" '
                'aria-label="search the rows">']  # fmt: skip
    for column in FILTERS:
        have = [v for v in dict.fromkeys(df[column].map(_text)) if v]
        known = [v for v in FILTER_ORDER.get(column, ()) if v in have]
        values = known + [v for v in have if v not in known]
        extra = ['<option value="not ok">not ok</option>'] if column == "outcome" else []
        options = "".join(f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in values)
        controls.append(f'<label>{column} <select data-filter="{column}"><option value="">all</option>'
                        f"{''.join(extra)}{options}</select></label>")  # fmt: skip
    controls.append('<span id="row-count" class="note"></span>')
    return '<div class="filters">' + " ".join(controls) + "</div>"


ROW_HEADER = ("case", "kind", "dtype", "framework", "api", "recipe", "device", "outcome", "value", "exact",
              "value rel err", "grad rel err", "err/tol", "explanation", "error")  # fmt: skip


def _row(r: dict[str, Any], ratio: float, machine: str) -> str:
    attrs = "".join(f' data-{c}="{html.escape(_text(r[c]))}"' for c in FILTERS)
    cells = [f"<td>{html.escape(_text(r[c]))}</td>" for c in ("case_id", "kind", "dtype", "framework")]
    how = "".join(f" [{r[k]}]" for k in ("mode", "policy") if _text(r.get(k)) not in ("", "none"))
    api = short_api(_text(r["api"])) + how
    cells.append(f'<td title="{html.escape(_text(r["api"]))}">{html.escape(api)}</td>')
    cells += [f"<td>{html.escape(_text(r['recipe']))}</td>", f"<td>{html.escape(_text(r['device']) + machine)}</td>"]
    cells.append(f'<td class="o-{html.escape(_text(r["outcome"]))}">{html.escape(_text(r["outcome"]))}</td>')
    cells += [f'<td class="num">{fmt(r[c])}</td>' for c in ("value", "ref_value", "value_rel_err", "grad_rel_err")]
    dark = " dark" if _dark(ratio) else ""
    cells.append(f'<td class="num tol{dark}" style="background:{tol_colour(ratio)}">{fmt(ratio)}</td>')
    cells.append(f"<td>{html.escape(_text(r['explanation']))}</td>")
    cells.append(f'<td class="err">{html.escape(_text(r["error"]))}</td>')
    return f"<tr{attrs}>" + "".join(cells) + "</tr>"


def rows_table(accuracy: pd.DataFrame) -> str:
    """Every accuracy row (not ok ones first), with data-* attributes the filters read and its err/tol cell
    coloured by tol_colour."""
    df = with_columns(accuracy)
    df = df.iloc[sorted(range(len(df)), key=lambda i: OUTCOME_RANK.get(df["outcome"].iat[i], len(OUTCOME_RANK)))]
    ratio = tolerance_ratio(df)
    several = "machine" in df.columns and df["machine"].nunique() > 1
    machines = df["machine"].map(lambda m: f" @ {m}") if several else [""] * len(df)
    body = "".join(_row(r, q, m) for r, q, m in zip(df.to_dict("records"), ratio, machines, strict=True))
    head = "".join(f"<th>{h}</th>" for h in ROW_HEADER)
    table = f'<table class="rows" id="row-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    return _filters(df) + f'<div class="scroll">{table}</div>'


def _front(accuracy: pd.DataFrame, made: Front | None = None) -> list[str]:
    """What the page opens on: the top surprises, the configuration matrix (`made`: made already) and every row,
    filterable."""
    made = front(accuracy) if made is None else made
    top, rest = made.surprises, made.more
    parts = ['<h2 id="top-surprises">Top surprises</h2>', md_to_html(SURPRISES_NOTE)]
    if top.empty:
        parts.append("<p><em>None: every obvious port is within tolerance of the exact value.</em></p>")
    else:
        parts.append(frame_table(top, "surprises"))
        if rest:
            parts.append(f'<p class="note">{rest} more causes: the Explanations table below lists every one; '
                         "click a cause to see its rows.</p>")  # fmt: skip
    matrix = made.matrix
    parts += ['<h2 id="configurations">Configurations × frameworks</h2>', md_to_html(CONFIG_NOTE),
              frame_table(matrix, "matrix") if len(matrix) else "<p><em>No rows ran.</em></p>"]  # fmt: skip
    parts += ['<h2 id="rows">All rows</h2>', md_to_html(
        "Every row of the run, the ones not ok first. Type in the box to keep the rows with all the words "
        "(a case, an API, a cause, an error), or pick a framework, recipe, outcome, dtype or kind. `err/tol`: the "
        "row's worse scaled error over its tolerance, its colour green within tolerance and red beyond, whatever "
        "the dtype (docs/DESIGN.md, Judging a row)."
    ), f"<p>{tol_legend()}</p>", rows_table(accuracy)]  # fmt: skip
    return parts


def _without(md: str, headings: tuple[str, ...]) -> str:
    """summary.md's `## ` sections but those named."""
    sections = re.split(r"^(?=## )", md, flags=re.M)
    return "".join(s for s in sections if not any(s.startswith(f"## {h}\n") for h in headings))


def render_html(
    accuracy: pd.DataFrame, timing: pd.DataFrame | None, env: dict[str, Any], summary_md: str,
    made: Front | None = None,
) -> str:  # fmt: skip
    """The whole report as one HTML string: summary.md's introduction, the top surprises, the configuration
    matrix and every row (filterable), summary.md's other tables, the error heatmaps, the timing charts, then
    env.json, and the filters' script. `made`: the top surprises and the matrix, made already for summary.md."""
    accuracy = with_columns(accuracy)
    intro, sep, rest = summary_md.partition("\n## ")
    if not summary_md.strip():
        intro = f"# Cross-entropy discrepancy report\n\nRun `{env.get('run_id', '')}`."
    tables = _without((sep + rest).lstrip("\n"), FROM_FRAME)
    parts = [md_to_html(intro)]
    nav = [("top-surprises", "Top surprises"), ("configurations", "Configurations"), ("rows", "All rows")]
    nav += [(_slug(h), h) for h in re.findall(r"^## (.+)$", tables, flags=re.M)]
    nav += [("error-heatmaps", "Error heatmaps"), ("timing-charts", "Timing charts"), ("environment", "Environment")]
    parts.append("<nav>" + "".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in nav) + "</nav>")
    parts += _front(accuracy, made)
    if tables.strip():
        parts.append(md_to_html(tables))

    parts.append('<h2 id="error-heatmaps">Error heatmaps</h2>')
    parts.append(md_to_html(
        "Worst error in ULPs of the row's dtype, over the cases of a kind, for rows within or beyond tolerance "
        "(`ok` or `mismatch`; other outcomes are in the tables above). `matched` recipes: the numerics of each "
        "API called so as to reproduce PyTorch's semantics. Each cell is coloured by the worst err/tol of its "
        "rows: green within tolerance, red beyond. Grey: no judged row."
    ))  # fmt: skip
    maps = heatmaps(accuracy)
    parts += [f"<h3>{d}</h3>{table}" for d, table in maps] or ["<p><em>No judged rows.</em></p>"]

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
        for case_id, chart, table in timing_charts(timing):
            parts += [f"<h3>{html.escape(case_id)}</h3>", chart, "" if tabled else md_to_html(table)]

    parts += ['<h2 id="environment">Environment</h2>', md_to_html(env_table(env))]
    title = html.escape(f"Cross-entropy report {env.get('run_id', '')}".strip())
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>\n'
        "<body>\n" + "\n".join(parts) + f"\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


def write_html(run_dir: Path) -> Path:
    """Read a run directory (accuracy, timing if any, env.json, summary.md) and write its report.html."""
    run = load_run(run_dir)
    path = Path(run_dir) / "report.html"
    atomic_write(path, render_html(run.accuracy, run.timing, run.env, run.summary_md).encode())
    return path
