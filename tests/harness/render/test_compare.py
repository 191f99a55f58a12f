"""`compare RUN_A RUN_B` (issue 8): outcome changes, errors that grew, timings that moved, versions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.render.compare import changes, compare_runs
from harness.render.load import load_run

ROOT = Path(__file__).resolve().parents[3]


def run(out: Path, seed: int) -> Path:
    p = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--frameworks", "numpy,torch", "--kinds", "documented,soft",
         "--dtypes", "float32", "--devices", "cpu", "--timing", "off", "--quiet", "--seed", str(seed),
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return out


def timing(seed: int, medians: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Rows for one timing case of a run with `seed`: {mode: (median_s, iqr_s)}."""
    return pd.DataFrame(
        [{"run_id": "r", "case_id": f"timing-n256-c1000-f32-mean-s{seed}", "shape": "256x1000",
          "dtype": "float32", "framework": "torch", "framework_version": "2", "api": "torch.nn.functional.cross_entropy",
          "device": "cpu", "mode": mode, "pass": "forward", "median_s": m, "iqr_s": iqr, "samples": 50,
          "compile_s": float("nan"), "bytes_min": 10**6, "gbps": 1.0, "roofline_frac": 0.05, "threads": 2}
         for mode, (m, iqr) in medians.items()]
    )  # fmt: skip


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("compare")
    return run(base / "s0", 0), run(base / "s1", 1)


def test_runs_with_different_seeds_pair_up_and_say_so(seeds: tuple[Path, Path]) -> None:
    a, b = seeds
    ch = changes(load_run(a).accuracy, load_run(b).accuracy)
    assert ch.matched == len(load_run(a).accuracy) == len(load_run(b).accuracy), "cases match without the seed"
    assert ch.only_a == ch.only_b == 0
    text = compare_runs(a, b)
    assert "different seeds (0 vs 1)" in text
    assert "| seed | 0 | 1 |" in text and "| PyTorch |" in text
    assert "## Outcome changes" in text and "## Errors that grew" in text
    assert "_No timing in A and B (timing.parquet missing)._" in text


def test_a_regression_is_listed(seeds: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(seeds[0], a)
    shutil.copytree(seeds[1], b)
    # B: a newer PyTorch that breaks one row and slows one timing
    env = json.loads((b / "env.json").read_text())
    env["frameworks"]["torch"]["version"] = "2.99.0"
    (b / "env.json").write_text(json.dumps(env))
    df = pd.read_parquet(b / "accuracy.parquet")
    hit = (df["framework"] == "torch") & (df["recipe"] == "matched") & (df["kind"] == "soft")
    i = df.index[hit][0]
    df.loc[i, ["outcome", "value_rel_err", "grad_rel_err"]] = ["mismatch", 1e-3, 5e-7]
    df.to_parquet(b / "accuracy.parquet")
    timing(0, {"eager": (1.0e-3, 1e-5), "compiled": (5e-4, 2e-4)}).to_parquet(a / "timing.parquet")
    timing(1, {"eager": (1.5e-3, 1e-5), "compiled": (6e-4, 2e-4)}).to_parquet(b / "timing.parquet")

    ch = changes(load_run(a).accuracy, df, load_run(a).timing, load_run(b).timing)
    changed = ch.outcomes[["case_id_b", "outcome_a", "outcome_b"]].values.tolist()
    assert changed == [[df.loc[i, "case_id"], "ok", "mismatch"]]
    assert set(ch.errors["quantity"]) == {"value"}, "the value error grew past tolerance; the gradient's did not 10x"
    moved = ch.timings[["mode", "ratio"]].values.tolist()
    assert moved == [["eager", pytest.approx(1.5)]], "compiled moved within noise"

    text = compare_runs(a, b)
    assert "Framework versions that differ: PyTorch 2.13" in text and "vs 2.99.0" in text
    assert df.loc[i, "case_id"] in text and "| ok | mismatch |" in text
    assert "1 changed outcome, 1 errors grew, 1 timings moved" in text
    one = compare_runs(a, b, max_rows=0)
    assert "1 more (pass --verbose for all)" in one


def test_nothing_changes_against_itself(seeds: tuple[Path, Path]) -> None:
    a, _ = seeds
    ch = changes(load_run(a).accuracy, load_run(a).accuracy)
    assert ch.outcomes.empty and ch.errors.empty and ch.timings.empty
    text = compare_runs(a, a)
    assert "Same framework versions." in text and "different seeds" not in text
    assert text.count("_None._") == 2


def test_an_instruction_set_change_is_named_as_the_likely_cause(seeds: tuple[Path, Path], tmp_path: Path) -> None:
    """PyTorch's float32 CPU kernels differ between AVX2 and AVX-512 machines: a changed value with the same
    versions is most likely that, and the header says so."""
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(seeds[0], a)
    shutil.copytree(seeds[0], b)
    env_a = json.loads((a / "env.json").read_text())
    assert env_a["cpu_isa"] and "get_cpu_capability()" in env_a["frameworks"]["torch"]["isa_cpu"], env_a
    env_b = {**env_a, "cpu_isa": "sse4_2 avx avx2 fma"}
    env_b["frameworks"] = {**env_a["frameworks"], "torch": {**env_a["frameworks"]["torch"],
                                                              "isa_cpu": "torch.backends.cpu.get_cpu_capability() = AVX2"}}  # fmt: skip
    (b / "env.json").write_text(json.dumps(env_b))
    text = compare_runs(a, b)
    assert "Instruction sets differ (the CPU, PyTorch cpu)" in text and "likely cause of float32" in text, text[:2000]
    assert "| PyTorch cpu kernels |" in text
    assert "Instruction sets differ" not in compare_runs(a, a)
