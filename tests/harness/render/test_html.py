"""report.html (issue 8): one self-contained file with the tables, the plots and the environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.render.html import md_to_html, ramp, render_html, roofline_s, timing_charts, write_html
from harness.render.markdown import fmt, md_table

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
    # self-contained: nothing fetched when the file is opened
    assert not page.all("script") and not page.all("link") and not page.all("iframe") and not page.all("img")
    assert all((a.get("src") or "").startswith("data:") for _, a in page.tags if "src" in a)


def test_heatmap_cells_are_the_worst_errors_of_the_run(run_dir: Path) -> None:
    page = Page(write_html(run_dir).read_text())
    cells = heat_cells(page)
    acc = pd.read_parquet(run_dir / "accuracy.parquet")
    judged = acc[acc["outcome"].isin(["ok", "mismatch"]) & (acc["recipe"] == "matched") & (acc["dtype"] == "float32")]
    judged = judged.assign(label=judged["framework"] + "." + judged["api"].str.split(".").str[-1])
    assert {api for *_, api in cells} == set(judged["label"])
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
