"""report.html (issue 8): one self-contained file with the tables, the plots and the environment."""

from __future__ import annotations

import base64
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

from harness.html_report import md_to_html, render_html, roofline_s, write_html
from harness.summary import md_table

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and os.path.exists(p)), None)


class Page(HTMLParser):
    """Tags, attributes, table cells and text of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.cells: list[str] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]


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


def images(page: Page) -> list[bytes]:
    srcs = [a["src"] or "" for a in page.all("img")]
    assert all(s.startswith("data:image/png;base64,") for s in srcs), "every image is embedded"
    return [base64.b64decode(s.split(",", 1)[1]) for s in srcs]


def test_report_has_tables_plots_and_environment(timed_run: Path) -> None:
    path = write_html(timed_run)
    assert path == timed_run / "report.html"
    page = Page(path.read_text())
    env = json.loads((timed_run / "env.json").read_text())
    pngs = images(page)
    assert len(pngs) == 1 + 2, "one heatmap figure (float32) and one chart per timing case"
    assert all(p.startswith(b"\x89PNG\r\n\x1a\n") and len(p) > 5_000 for p in pngs)
    ids = {a.get("id") for _, a in page.tags}
    for section in ("error-heatmaps", "timing-charts", "outcomes", "discrepancies-matched-recipes",
                    "documented-examples-shared-seeds", "environment"):  # fmt: skip
        assert section in ids, section
    assert len(page.all("table")) >= 6
    for value in (env["run_id"], env["cpu"], env["frameworks"]["torch"]["version"], "0.126928"):
        assert value in page.cells, value
    assert "torch.nn.functional.cross_entropy" in page.cells
    # self-contained: nothing fetched when the file is opened
    assert not page.all("script") and not page.all("link") and not page.all("iframe")
    assert all((a.get("src") or "").startswith("data:") for _, a in page.tags if "src" in a)


def test_missing_timing_is_said(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "untimed"
    shutil.copytree(run_dir, out)
    page = Page(write_html(out).read_text())
    assert len(images(page)) == 1
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
    from PIL import Image

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
