"""summary.md (issue 17): it opens on the top surprises and the configuration matrix, and lists every row
that is not ok (folded when there are many), so the published copy refers to no file it does not ship."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from harness.render.load import RunFiles
from harness.render.summary import SHOWN_OPEN, render, summary_of

Frame = Callable[..., pd.DataFrame]
ENV = {"run_id": "r1", "utc_time": "now", "cpu": "a CPU", "frameworks": {"tensorflow": {"version": "2.21.0"}}}


def headings(md: str) -> list[str]:
    return re.findall(r"^## (.+)$", md, flags=re.M)


def not_ok(n: int) -> list[dict[str, object]]:
    return [{"case_id": f"case-{i:03d}", "outcome": "mismatch", "explanation": "weight_norm=N",
             "value_rel_err": 0.1, "grad_rel_err": 0.1} for i in range(n)]  # fmt: skip


def test_it_opens_on_the_surprises_then_the_matrix(frame: Frame) -> None:
    md = render(frame(*not_ok(2), {"recipe": "matched"}), ENV, registry=())
    assert headings(md)[:3] == ["Top surprises", "Configurations × frameworks", "Reading the tables"]
    head = md.split("\n## ")[0]
    assert head.startswith("# Cross-entropy discrepancy report") and "Run `r1`" in head and "**tensorflow**" in head
    surprises = md.split("## Top surprises")[1].split("\n## ")[0]
    assert "| 1 | `weight_norm=N` | tensorflow: CategoricalCrossentropy |" in surprises
    matrix = md.split("## Configurations × frameworks")[1].split("\n## ")[0]
    assert "| softmax logits index, mean | native ✗ weight_norm=N · matched ✓ |" in matrix


def test_no_surprise_is_said(frame: Frame) -> None:
    md = render(frame({}, {"recipe": "matched"}), ENV, registry=())
    assert "_None: every obvious port is within tolerance of the exact value._" in md
    assert "| softmax logits index, mean | native ✓ · matched ✓ |" in md


def test_every_row_not_ok_is_listed(frame: Frame) -> None:
    n = SHOWN_OPEN + 5
    md = render(frame(*not_ok(n)), ENV, registry=())
    rows = md.split("## Rows not ok")[1]
    assert all(f"case-{i:03d}" in rows for i in range(n))
    assert f"<details><summary>All {n} rows not ok (click to show)</summary>" in rows and "</details>" in rows
    assert "more in accuracy.csv" not in md, "no pointer to a file the published summary does not ship"
    new = md.split("## New differences")[1].split("\n## ")[0]
    assert f"All {n} new differences" in new and all(f"case-{i:03d}" in new for i in range(n))
    few = render(frame(*not_ok(3)), ENV, registry=()).split("## Rows not ok")[1]
    assert "<details>" not in few and "case-002" in few


def test_the_published_summary_is_rendered_from_the_tables(frame: Frame) -> None:
    df = frame(*not_ok(2))
    run = RunFiles(Path("."), df, None, {**ENV, "partial": True}, {}, "an old summary.md, cut at 80 rows")
    assert summary_of(run) == render(df, run.env, partial=True)
    assert "(PARTIAL: the run was interrupted)" in summary_of(run)
