"""report.html (issue 8): one self-contained file with the tables, the plots and the environment."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.render.html import (
    ROW_HEADER,
    heatmaps,
    md_to_html,
    ramp,
    render_html,
    roofline_s,
    timing_charts,
    tol_colour,
    write_html,
)
from harness.render.markdown import fmt, md_table
from harness.render.summary import column_label

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and os.path.exists(p)), None)


class Page(HTMLParser):
    """Tags, attributes, table cells and rows, and text of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.cells: list[str] = []
        # (class and caption of the enclosing table, [(tag, attributes, text) per cell]) per table row
        self.rows: list[tuple[dict[str, str], list[tuple[str, dict[str, str | None], str]]]] = []
        self._tables: list[dict[str, str]] = []
        self._row: list[tuple[str, dict[str, str | None], str]] | None = None
        self._cell: list[str] | None = None
        self._cell_attrs: dict[str, str | None] = {}
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self._tables.append({"class": dict(attrs).get("class") or "", "caption": ""})
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th", "caption"):
            self._cell, self._cell_attrs = [], dict(attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th", "caption") and self._cell is not None:
            text = "".join(self._cell).strip()
            if tag == "caption":
                self._tables[-1]["caption"] = text
            else:
                self.cells.append(text)
                if self._row is not None:
                    self._row.append((tag, self._cell_attrs, text))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append((self._tables[-1] if self._tables else {}, self._row))
            self._row = None
        elif tag == "table" and self._tables:
            self._tables.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]


def heat_cells(page: Page) -> dict[tuple[str, str, str, str], tuple[str, dict[str, str | None]]]:
    """(dtype, panel, kind, API column) -> (text, attributes) of every cell of the heatmap tables: a
    table's caption starts with its dtype, a panel's title row with "value" or "gradient"."""
    out = {}
    panel = ""
    apis: list[str] = []
    for table, row in page.rows:
        if table.get("class") != "heat":
            continue
        dtype = table["caption"].split(":")[0]
        if row[0][2] == "kind":  # the header row
            apis = [text for _, _, text in row[1:]]
        elif len(row) == 1:
            panel = row[0][2].split(":")[0]
        else:
            for api, (tag, attrs, text) in zip(apis, row[1:], strict=True):
                assert tag == "td"
                out[dtype, panel, row[0][2], api] = (text, attrs)
    return out


def svg_charts(page: Page) -> list[list[tuple[str, dict[str, str | None]]]]:
    """The tags of each <svg>, in order."""
    charts: list[list[tuple[str, dict[str, str | None]]]] = []
    inside = False
    for tag, attrs in page.tags:
        if tag == "svg":
            charts.append([])
            inside = True
        elif tag in ("h2", "h3", "table", "p"):
            inside = False
        elif inside:
            charts[-1].append((tag, attrs))
    return charts


def synthetic_timing(run_id: str) -> pd.DataFrame:
    rows = []
    for case, nbytes in (
        ("timing-n256-c1000-f32-mean-s0", 2_048_000),
        ("timing-n16-c21-d64x64-f32-mean-s0", 11_534_340),
    ):
        for fw, api in (("torch", "torch.nn.functional.cross_entropy"),
                        ("jax", "optax.losses.softmax_cross_entropy_with_integer_labels")):  # fmt: skip
            for mode in ("eager", "compiled"):
                for pass_ in ("forward", "forward_backward"):
                    median = nbytes / 5e9 * (2 if pass_ == "forward_backward" else 1) * (1 if mode == "compiled" else 3)
                    gbps = nbytes / median / 1e9
                    rows.append({"run_id": run_id, "case_id": case, "shape": "256x1000", "dtype": "float32",
                                 "framework": fw, "framework_version": "1", "api": api, "device": "cpu", "mode": mode,
                                 "pass": pass_, "median_s": median, "iqr_s": 0.1 * median, "samples": 30,
                                 "compile_s": 0.4 if mode == "compiled" else float("nan"), "bytes_min": nbytes,
                                 "gbps": gbps, "roofline_frac": gbps / 20.0, "threads": 2})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "run"
    p = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--frameworks", "numpy,torch", "--kinds", "documented,soft",
         "--dtypes", "float32", "--devices", "cpu", "--timing", "off", "--quiet", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    (out / "timing.parquet").unlink(missing_ok=True)
    return out


@pytest.fixture()
def timed_run(run_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "timed"
    shutil.copytree(run_dir, out)
    synthetic_timing(json.loads((out / "env.json").read_text())["run_id"]).to_parquet(out / "timing.parquet")
    return out


def test_report_has_tables_plots_and_environment(timed_run: Path) -> None:
    path = write_html(timed_run)
    assert path == timed_run / "report.html"
    page = Page(path.read_text())
    env = json.loads((timed_run / "env.json").read_text())
    heat = [a for a in page.all("table") if a.get("class") == "heat"]
    assert len(heat) == 2, "one heatmap table per dtype present: float32, and the float64 rows deciding semantics"
    assert len(page.all("svg")) == 2, "one chart per timing case"
    ids = {a.get("id") for _, a in page.tags}
    for section in ("error-heatmaps", "timing-charts", "outcomes", "discrepancies-matched-recipes",
                    "documented-examples-the-seed-articles", "environment"):  # fmt: skip
        assert section in ids, section
    assert len(page.all("table")) >= 6
    for value in (env["run_id"], env["cpu"], env["frameworks"]["torch"]["version"], "0.126928"):
        assert value in page.cells, value
    assert "torch.nn.functional.cross_entropy" in page.cells
    # self-contained: nothing fetched when the file is opened (the filters' script is inline)
    assert all(not a.get("src") for a in page.all("script")), "no external script"
    assert not page.all("link") and not page.all("iframe") and not page.all("img")
    assert all((a.get("src") or "").startswith("data:") for _, a in page.tags if "src" in a)


def test_heatmap_cells_are_the_worst_errors_of_the_run(run_dir: Path) -> None:
    page = Page(write_html(run_dir).read_text())
    cells = heat_cells(page)
    acc = pd.read_parquet(run_dir / "accuracy.parquet")
    judged = acc[acc["outcome"].isin(["ok", "mismatch"]) & (acc["recipe"] == "matched") & (acc["dtype"] == "float32")]
    judged = judged.assign(label=column_label(judged))  # framework.api, [mode, policy] where not its own way
    assert {api for *_, api in cells} == set(judged["label"])
    assert "torch.cross_entropy [compiled]" in set(judged["label"]), "a compiled row is its own column"
    assert {kind for _, _, kind, _ in cells} == set(judged["kind"]) == {"documented", "soft"}
    checked = 0
    for panel, column in (("value", "value_ulp_err"), ("gradient", "grad_ulp_err")):
        worst = judged.groupby(["kind", "label"])[column].max()
        for (kind, label), v in worst.items():
            text, attrs = cells["float32", panel, kind, label]
            style, title = attrs.get("style") or "", attrs.get("title") or ""
            assert style.startswith("background:#"), style
            assert kind in title and label in title
            if np.isnan(v):
                assert text == "" and style == "background:#e8e8e8"
            else:
                assert text == fmt(v) and repr(float(v)) in title, (panel, kind, label)
                checked += 1
    assert checked >= 4
    soft = judged[(judged["kind"] == "soft") & (judged["framework"] == "torch")]
    assert cells["float32", "value", "soft", "torch.cross_entropy"][0] == fmt(soft["value_ulp_err"].max())


def test_timing_bars_follow_the_medians(timed_run: Path) -> None:
    page = Page(write_html(timed_run).read_text())
    timing = pd.read_parquet(timed_run / "timing.parquet")
    charts = svg_charts(page)
    for chart, (case_id, t) in zip(charts, timing.groupby("case_id", sort=False), strict=True):
        t = t.sort_values(["framework", "api", "mode", "pass"], kind="stable")
        bars = [a for tag, a in chart if tag == "rect" and "bar" in (a.get("class") or "").split()]
        assert len(bars) == len(t), case_id
        widths = [float(a["width"] or "nan") for a in bars]
        assert min(widths) > 0
        for w, m, mode, bar in zip(widths, t["median_s"], t["mode"], bars, strict=True):
            assert mode in (bar.get("class") or "").split()
            assert bar.get("fill") == ("#4c78a8" if mode == "eager" else "#f58518")
            for w2, m2 in zip(widths, t["median_s"], strict=True):
                if m > m2 * 1.01:
                    assert w > w2, (case_id, m, m2)
        roofs = [a for tag, a in chart if tag == "line" and a.get("class") == "roof"]
        assert len(roofs) == len(t), "a roofline mark on every row (all have a bandwidth)"
    text = "".join(page.text)
    assert "1e-4 s" in text and "roofline: bytes_min at measured bandwidth" in text


def test_timing_chart_without_bandwidth_or_time() -> None:
    t = synthetic_timing("r1")
    t = t[t["case_id"] == t["case_id"].iloc[0]].reset_index(drop=True)
    t.loc[0, "gbps"] = float("nan")
    t.loc[1, "median_s"] = float("nan")
    [(case_id, chart, table)] = timing_charts(t)
    page = Page(chart)
    assert case_id == t["case_id"].iloc[0] and "| median s |" in table
    assert len([a for a in page.all("rect") if "bar" in (a.get("class") or "").split()]) == len(t) - 1
    assert len([a for a in page.all("line") if a.get("class") == "roof"]) == len(t) - 1
    assert "no time" in page.text


def test_colour_ramp() -> None:
    assert ramp(0) == ramp(-1) == "#ffffcc" and ramp(1) == ramp(2) == "#800026" and ramp(0.5) == "#fd8d3c"


def test_missing_timing_is_said(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "untimed"
    shutil.copytree(run_dir, out)
    page = Page(write_html(out).read_text())
    assert not page.all("svg") and len([a for a in page.all("table") if a.get("class") == "heat"]) == 2
    assert "No timing in this run (timing.parquet is missing or empty)." in "".join(page.text)


def test_render_html_without_summary_or_judged_rows() -> None:
    acc = pd.DataFrame({"outcome": ["unsupported"], "recipe": ["matched"], "kind": ["soft"], "dtype": ["float32"],
                        "framework": ["torch"], "api": ["a.b"], "device": ["cpu"]})  # fmt: skip
    page = Page(render_html(acc, None, {"run_id": "r1", "cpu": "x"}, ""))
    assert "No judged rows." in "".join(page.text) and "r1" in page.cells


def test_markdown_subset() -> None:
    md = "\n".join([
        "# Title", "", "Run `a|b` at **now**, _note_ snake_case_name.", "Second line.", "",
        "- **torch** 2.13", "- numpy", "", md_table(["k", "v"], [["x|y", "`code`"], ["<b>", "https://x.org/p"]]),
        "", "## Sub heading", "", "```python", "loss = F.cross_entropy(x, y) < 1", "```",
    ])  # fmt: skip
    out = md_to_html(md)
    page = Page(out)
    assert [t for t, _ in page.tags if t in ("h1", "h2", "ul", "table", "pre")] == ["h1", "ul", "table", "h2", "pre"]
    assert "<code>a|b</code>" in out and "<strong>now</strong>" in out and "<em>note</em>" in out
    assert "snake_case_name" in out, "underscores inside words are not emphasis"
    assert page.cells == ["k", "v", "x|y", "code", "<b>", "https://x.org/p"]
    assert '<a href="https://x.org/p">' in out and "&lt;b&gt;" in out and "y) &lt; 1" in out


def test_roofline_is_minimal_bytes_at_measured_bandwidth() -> None:
    t = pd.DataFrame(
        {"bytes_min": [2e9, 1e9, 1e9], "gbps": [10.0, 0.0, float("nan")], "roofline_frac": [0.5, 0.1, 0.1]}
    )
    got = roofline_s(t)
    assert got[0] == pytest.approx(2e9 / 20e9) and np.isnan(got[1]) and np.isnan(got[2])


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_a_headless_browser(timed_run: Path, tmp_path: Path) -> None:
    Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed (pip install pillow)")
    report = write_html(timed_run)
    shot = tmp_path / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--screenshot={shot}",
             "--window-size=1400,2000", f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    p = subprocess.run([CHROMIUM, *flags, report.as_uri()], capture_output=True, text=True, timeout=180)
    assert shot.is_file(), p.stderr[-2000:]
    with Image.open(shot) as im:
        assert im.size == (1400, 2000)
        pixels = np.asarray(im.convert("RGB"))
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 200, "text, tables and a heatmap, not a blank or error page"
    assert (pixels < 200).any(axis=2).mean() > 0.02


# -- issue 17: what the page opens on, the row table's filters, colours by err/tol ---------------------

NODE = shutil.which("node")
FRAMEWORK_ROWS = [
    {"case_id": "w-f64", "weighted": True, "outcome": "mismatch", "explanation": "weight_norm=N", "value_rel_err": 0.2,
     "value_scaled_err": 2e-14, "grad_scaled_err": 1e-15, "tol": 1e-14},  # at 2x its tolerance
    {"case_id": "w-f64", "weighted": True, "recipe": "matched", "recipe_code": "loss = l.sum() / w[y].sum()"},
    {"case_id": "p-f32", "dtype": "float32", "framework": "jax", "api": "optax.losses.softmax_cross_entropy",
     "recipe": "matched", "value_ulp_err": 3.0, "value_scaled_err": 2.7e-6, "tol": 5.4e-6},  # 3 ULP, within tol
    {"case_id": "p-f32", "dtype": "float32", "framework": "jax", "api": "optax.losses.softmax_cross_entropy",
     "outcome": "raised", "error": "ValueError: Incompatible shapes", "value_scaled_err": None,
     "grad_scaled_err": None},
]  # fmt: skip


def rgb(style: str | None) -> tuple[int, int, int]:
    colour = re.search(r"background:#([0-9a-f]{6})", style or "")
    assert colour, style
    h = colour.group(1)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def is_red(style: str | None) -> bool:
    r, g, b = rgb(style)
    return r > 150 and r > g + 60 and r > b + 60


def page_of(df: pd.DataFrame) -> tuple[str, Page]:
    from harness.render.summary import render

    text = render_html(df, None, {"run_id": "r1", "cpu": "x"}, render(df, {"run_id": "r1"}, registry=()))
    return text, Page(text)


def row_table(page: Page) -> list[tuple[dict[str, str | None], list[tuple[str, dict[str, str | None], str]]]]:
    """(tr attributes, cells) of the row table's body rows."""
    trs = [a for a in page.all("tr") if "data-framework" in a]
    cells = [cells for table, cells in page.rows if table.get("class") == "rows" and cells[0][0] == "td"]
    return list(zip(trs, cells, strict=True))


def test_the_page_opens_on_the_surprises_the_matrix_and_every_row(frame: Callable[..., pd.DataFrame]) -> None:
    _, page = page_of(frame(*FRAMEWORK_ROWS))
    h2 = [a.get("id") for t, a in page.tags if t == "h2"]
    assert h2[:3] == ["top-surprises", "configurations", "rows"], h2
    assert h2.index("rows") < h2.index("error-heatmaps") and h2.count("top-surprises") == 1
    ids = [a["id"] for _, a in page.tags if a.get("id")]
    assert len(ids) == len(set(ids)), "unique ids: the script finds its table by id"
    classes = [a.get("class") for a in page.all("table")]
    assert classes[:3] == ["surprises", "matrix", "rows"], "not the matched-only heatmaps first"
    assert "weight_norm=N" in page.cells and "native ✗ weight_norm=N · matched ✓" in page.cells


def test_the_row_table_has_a_search_box_and_filters(frame: Callable[..., pd.DataFrame]) -> None:
    df = frame(*FRAMEWORK_ROWS)
    text, page = page_of(df)
    [search] = [a for a in page.all("input") if a.get("id") == "row-search"]
    assert search.get("type") == "search"
    filters = [a.get("data-filter") for a in page.all("select")]
    assert filters == ["framework", "recipe", "outcome", "dtype", "kind"]
    for value in ("", "not ok", "tensorflow", "jax", "native", "matched", "mismatch", "raised", "float32"):
        assert f'<option value="{value}">' in text, value
    rows = row_table(page)
    assert len(rows) == len(df), "every row, not only those not ok"
    assert [tr.get("data-outcome") for tr, _ in rows][:2] == ["mismatch", "raised"], "not ok first"
    assert {tr.get("data-framework") for tr, _ in rows} == {"tensorflow", "jax"}
    scripts = [a for a in page.all("script")]
    assert len(scripts) == 1 and not scripts[0].get("src") and "row-search" in text.split("<script>")[1]


def test_colour_follows_err_over_tol_not_ulps(frame: Callable[..., pd.DataFrame]) -> None:
    _, page = page_of(frame(*FRAMEWORK_ROWS))
    cells = {(tr.get("data-outcome"), tr.get("data-framework")): c for tr, c in row_table(page)}
    tol_cell = ROW_HEADER.index("err/tol")
    beyond = cells["mismatch", "tensorflow"][tol_cell]
    within = cells["ok", "jax"][tol_cell]
    assert beyond[2] == "2" and is_red(beyond[1].get("style")), "2x its tolerance is red"
    assert within[2] == "0.5" and not is_red(within[1].get("style")), "3 ULP within tolerance is not red"
    r, g, _ = rgb(within[1].get("style"))
    assert g > r, "within tolerance is green"
    assert rgb(cells["raised", "jax"][tol_cell][1].get("style")) == rgb("background:#e8e8e8"), "no error: grey"
    heat = heat_cells(page)
    [(text, attrs)] = [v for k, v in heat.items() if k[:2] == ("float32", "value") and v[0]]
    assert text == "3" and not is_red(attrs.get("style")), "a 3-ULP heatmap cell within tolerance is not red"
    beyond_tol = frame({"recipe": "matched", "value_ulp_err": 3.0, "value_scaled_err": 2e-14, "tol": 1e-14})
    [(_, table)] = heatmaps(beyond_tol)
    [(text, attrs)] = [v for k, v in heat_cells(Page(table)).items() if k[1] == "value"]
    assert text == "3" and is_red(attrs.get("style")), "the same 3 ULPs at 2x the tolerance are red"
    assert tol_colour(1.0) != tol_colour(1.01) and is_red(f"background:{tol_colour(2.0)}")
    assert not is_red(f"background:{tol_colour(0.99)}") and tol_colour(float("nan")) == "#e8e8e8"


@pytest.mark.skipif(NODE is None, reason="node is not installed (the script is checked in a stub DOM)")
def test_the_filters_narrow_the_rows(frame: Callable[..., pd.DataFrame], tmp_path: Path) -> None:
    text, page = page_of(frame(*FRAMEWORK_ROWS))
    rows = [{"attrs": {k: v for k, v in tr.items() if k.startswith("data-")}, "text": " ".join(c[2] for c in cells)}
            for tr, cells in row_table(page)]  # fmt: skip
    script = text.split("<script>")[1].split("</script>")[0]
    first: dict[str, str] = {}  # id -> the tag of its first element, as document.getElementById finds it
    for tag, attrs in page.tags:
        first.setdefault(attrs.get("id") or "", tag)
    stub = STUB_DOM.replace("ROWS", json.dumps(rows)).replace("SCRIPT", json.dumps(script))
    stub = stub.replace("TAGS", json.dumps(first))
    (tmp_path / "t.js").write_text(stub)
    p = subprocess.run([NODE, str(tmp_path / "t.js")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    shown = json.loads(p.stdout)
    assert shown == {"all": "4 of 4 rows", "not ok": ["w-f64", "p-f32"], "outcome ok + jax": ["p-f32"],
                     "search": ["w-f64"], "case": ["w-f64", "w-f64"], "cause clicked": ["w-f64"]}  # fmt: skip


# a DOM with just what the script touches: the table's rows, the search box, the selects, the count
STUB_DOM = """
const rows = ROWS.map(r => ({attrs: r.attrs, textContent: r.text, hidden: false,
                             getAttribute(k) { return this.attrs[k]; }}));
const on = {};
const control = (name, filter) => ({value: "", getAttribute: () => filter,
                                    addEventListener: (e, f) => { on[name] = f; }});
const search = control("search");
const selects = ["framework", "recipe", "outcome", "dtype", "kind"].map(f => control(f, f));
const count = {textContent: ""};
const cause = {textContent: "weight_norm=N", addEventListener: (e, f) => { on.cause = f; }};
const table = {tBodies: [{rows}], scrollIntoView() {}};
global.document = {
  getElementById: id => ({table, input: search, span: count})[TAGS[id]],
  querySelectorAll: s => s.startsWith("select") ? selects : [cause],
};
eval(SCRIPT);
const shown = () => rows.filter(r => !r.hidden).map(r => r.attrs["data-outcome"] === undefined ? "" :
                                                      r.textContent.split(" ")[0]);
const pick = (f, v) => { selects.find(s => s.getAttribute() === f).value = v; on[f](); };
const out = {all: count.textContent};
pick("outcome", "not ok"); out["not ok"] = shown();
pick("outcome", "ok"); pick("framework", "jax"); out["outcome ok + jax"] = shown();
pick("outcome", ""); pick("framework", "");
search.value = "WEIGHT_norm=N"; on.search(); out["search"] = shown();
search.value = " w-f64 "; on.search(); out["case"] = shown();
search.value = ""; on.search(); cause.textContent = "weight_norm=N mismatch"; on.cause(); out["cause clicked"] = shown();
console.log(JSON.stringify(out));
"""


def test_the_front_tables_made_once_render_both_reports_alike(frame: Callable[..., pd.DataFrame]) -> None:
    """`run` makes the top surprises and the matrix once for summary.md and report.html (`tables.front`): both
    reports as each makes them alone; and they are the frame's, not another's."""
    from harness.render.summary import render
    from harness.render.tables import front

    df = frame(*FRAMEWORK_ROWS)
    env = {"run_id": "r1", "cpu": "x"}
    made = front(df)
    assert not made.surprises.empty and not made.matrix.empty
    md = render(df, env, registry=())
    assert render(df, env, registry=(), made=made) == md
    assert render_html(df, None, env, md, made) == render_html(df, None, env, md)
    other = front(frame(*FRAMEWORK_ROWS[:1]))
    assert render(df, env, registry=(), made=other) != md, "the tables given are the ones rendered"
