"""A run survives crashes, hangs, interruptions and bad input, and loses nothing (issue 7)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cases.generator import default_cases
from harness.cli import main
from harness.judge.rows import RowJudge, accuracy_frame
from harness.runner.accuracy import run_accuracy
from harness.runner.options import RunOptions

ROOT = Path(__file__).resolve().parents[3]
CASES = default_cases(kinds=("multiclass",), dtypes=("float64",))[:6]  # reductions mean, mean(w), sum, ...


@pytest.fixture(autouse=True)
def importable_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # workers (spawned) import tests.harness.faulty_adapter


def run_with(framework: str, timeout: float = 60.0) -> pd.DataFrame:
    rows: list[dict] = []
    options = RunOptions(frameworks=(framework, "numpy"), devices=("cpu",), case_timeout=timeout, jobs=1, quiet=True)
    run_accuracy(CASES, options, RowJudge("t"), rows.extend)
    return accuracy_frame(rows, CASES)


@pytest.mark.parametrize(
    ("adapter", "outcome", "error"),
    [
        ("aborts", "crashed", "SIGABRT"),
        ("killed", "crashed", "SIGKILL"),
        ("hangs", "timeout", "--case-timeout=3"),
        ("oom", "unsupported", "out of memory: MemoryError: Unable to allocate"),
    ],
)
def test_faulty_worker_gives_rows_and_is_restarted(adapter: str, outcome: str, error: str) -> None:
    df = run_with(f"tests.harness.faulty_adapter:{adapter.upper()}", timeout=3.0)
    mine = df[df["framework"] == adapter]
    faulted = mine[mine["reduction"] == "sum"]
    rest = mine[(mine["reduction"] != "sum") & (mine["recipe"] == "native")]
    assert len(faulted) and set(faulted["outcome"]) <= {outcome, "unsupported"}, faulted[
        ["case_id", "outcome", "error"]
    ]
    hit = faulted[faulted["recipe"] == "native"]  # the matched recipe of these adapters is unsupported by design
    assert (hit["outcome"] == outcome).all(), hit["outcome"].tolist()
    assert hit["error"].str.contains(error, regex=False).all(), hit["error"].tolist()
    # the restarted worker finished the cases after the fault, and numpy was never disturbed
    assert len(rest) == sum(c.spec.reduction != "sum" for c in CASES) and set(rest["outcome"]) == {"ok"}
    assert set(df[(df["framework"] == "numpy") & (df["api"] == "adapters.reference.evaluate")]["outcome"]) == {"ok"}


def cli_run(out: Path, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "harness", "run", "--frameworks", "numpy,torch", "--kinds", "multiclass,soft",
            "--dtypes", "float64,float32", "--devices", "cpu", "--jobs", "1", "--timing", "off", "--out", str(out), *extra]  # fmt: skip
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_interrupt_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    whole = tmp_path / "whole"
    p = cli_run(whole)
    assert p.wait(timeout=300) == 0, p.stderr.read()

    cut = tmp_path / "cut"
    p = cli_run(cut)
    rows = cut / "rows.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (rows.exists() and len(rows.read_text().splitlines()) >= 5):
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    code = p.wait(timeout=60)
    err = p.stderr.read()
    assert code == 130, (code, err)
    assert "--resume" in err
    partial = pd.read_csv(cut / "accuracy.csv")
    assert 0 < len(partial) < len(pd.read_csv(whole / "accuracy.csv"))
    assert "PARTIAL" in (cut / "summary.md").read_text()
    assert not list(cut.glob(".*.tmp")), "a temporary file was left behind"

    r = subprocess.run([sys.executable, "-m", "harness", "run", "--resume", str(cut), "--quiet"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    a, b = (pd.read_parquet(d / "accuracy.parquet").drop(columns=["run_id"]) for d in (whole, cut))
    pd.testing.assert_frame_equal(a, b)
    assert "PARTIAL" not in (cut / "summary.md").read_text()


def test_sigterm_is_an_interrupt_too(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    p = cli_run(tmp_path / "t")
    rows = tmp_path / "t" / "rows.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not rows.exists():
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 130
    assert (tmp_path / "t" / "summary.md").is_file()


def test_same_seed_gives_identical_accuracy_columns() -> None:
    options = RunOptions(frameworks=("numpy",), devices=("cpu",), jobs=1, quiet=True)
    cases = default_cases(kinds=("binary", "edge"), dtypes=("float32",))
    frames = []
    for _ in range(2):
        rows: list[dict] = []
        run_accuracy(cases, options, RowJudge("same"), rows.extend)
        frames.append(accuracy_frame(rows, cases))
    pd.testing.assert_frame_equal(frames[0], frames[1])


# Malformed `check` input: a clean exit 2 or a correct result, never a traceback.
arrays = st.one_of(
    st.none(),
    st.builds(lambda s, d: np.zeros(s, dtype=d), st.lists(st.integers(0, 4), max_size=3).map(tuple),
              st.sampled_from(["float64", "float32", "int64", "bool"])),
    st.builds(lambda v: np.array(v), st.lists(st.one_of(st.integers(-200, 10), st.floats(allow_nan=True)), max_size=6)),
)  # fmt: skip
options = st.lists(
    st.sampled_from([["--label-smoothing", "-0.5"], ["--label-smoothing", "nan"], ["--ignore-index", "-100"],
                     ["--reduction", "sum"], ["--input", "probs"], ["--family", "sigmoid"], ["--target", "prob"],
                     ["--input", "log_probs"], ["--reduction", "avg"]]),
    max_size=3,
).map(lambda xs: [a for x in xs for a in x])  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=arrays, target=arrays, weight=arrays, opts=options)
def test_check_never_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture, x, target, weight, opts) -> None:
    f = tmp_path / "h.npz"
    np.savez(f, **{k: v for k, v in (("x", x), ("target", target), ("weight", weight)) if v is not None})
    code = main(["check", "--npz", str(f), "--frameworks", "numpy", "--json", *opts])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: Expected"), err
