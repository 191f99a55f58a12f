"""`python -m harness run` and `list` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def documented_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "r"
    p = cli("run", "--frameworks", "numpy,torch", "--kinds", "documented", "--devices", "cpu,gpu", "--timing", "off",
            "--out", str(out))  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert f"wrote {out}/" in p.stdout
    return out


def test_run_writes_every_file(documented_run: Path) -> None:
    for name in ("accuracy.parquet", "accuracy.csv", "env.json", "summary.md", "options.json"):
        assert (documented_run / name).is_file(), name
    env = json.loads((documented_run / "env.json").read_text())
    assert env["frameworks"]["numpy"]["version"] and env["command"].startswith("python -m harness run")
    for key in ("git_commit", "cpu", "os", "python", "utc_time", "harness_version"):
        assert key in env, key
    # the machine is part of the result: the CPU's instruction set, and the kernels each framework picked
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    assert env["cpu_isa"] and ("avx2" not in flags or "avx2" in env["cpu_isa"]), env["cpu_isa"]
    import torch

    want = torch.backends.cpu.get_cpu_capability()
    assert env["frameworks"]["torch"]["isa_cpu"].endswith(f"= {want}"), env["frameworks"]["torch"]
    assert env["frameworks"]["numpy"]["isa_cpu"].startswith("baseline "), env["frameworks"]["numpy"]
    summary = (documented_run / "summary.md").read_text()
    assert env["cpu_isa"] in summary and f"isa_cpu: {env['frameworks']['torch']['isa_cpu']}" in summary


def test_accuracy_frame_follows_the_schema(documented_run: Path) -> None:
    from harness.judge.rows import ACCURACY_COLUMNS

    df = pd.read_parquet(documented_run / "accuracy.parquet")
    assert tuple(df.columns) == ACCURACY_COLUMNS
    assert df.equals(df.drop_duplicates())
    gpu = df[df["device"] == "gpu"]
    assert len(gpu) and set(gpu["outcome"]) == {"unsupported"}, "no GPU here: gpu rows are unsupported with a reason"
    assert gpu["error"].str.len().min() > 0


def test_golden_values_appear_in_the_summary(documented_run: Path) -> None:
    summary = (documented_run / "summary.md").read_text()
    for exact in ("0.126928", "0.555577", "1.03217", "1.03021", "0.916291", "1.03307", "1.07776", "-0.139867"):
        assert exact in summary, exact
    df = pd.read_csv(documented_run / "accuracy.csv")
    torch64 = df[
        (df["framework"] == "torch")
        & (df["dtype"] == "float64")
        & (df["recipe"] == "matched")
        & (df["device"] == "cpu")
    ]
    assert len(torch64) and set(torch64["outcome"]) == {"ok"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--frameworks", "pytorc"], "Expected framework in {numpy, torch, tensorflow, jax, paddle, mlx, onnxruntime, keras_jax, keras_torch}. Received: framework='pytorc'"),
        (["run", "--kinds", "multi"], "Expected kind in {binary, multiclass, soft, smoothed, edge, accumulation, documented, linear}"),
        (["run", "--modes", "jit"], "Expected mode in {eager, compiled}. Received: mode='jit'"),
        (["run", "--policies", "amp"], "Expected policy in {none, autocast-bfloat16, autocast-float16, mixed_bfloat16, mixed_float16}. Received: policy='amp'"),
        (["run", "--dtypes", "float8"], "Expected dtype in {float64, float32, float16, bfloat16}. Received: dtype='float8'"),
        (["run", "--devices", "tpu"], "Expected device in {cpu, gpu}. Received: device='tpu'"),
        (["run", "--timing", "fast"], "Expected timing in {off, default, full}. Received: timing='fast'"),
        (["run", "--threads", "0"], "Expected --case-timeout > 0, --jobs >= 1, --timing-budget >= 0, --threads >= 1"),
        (["run", "--out", "/proc/nope"], "Expected a writable --out directory"),
        (["run", "--seed", "x"], "argument --seed: invalid int value: 'x'"),
        (["run", "--resume", "/nonexistent"], "Expected a run directory with options.json"),
        (["run", "--python", "jax=/no/such/python"], "Expected an executable Python or pip requirements such as 'jax==0.9.2 jaxlib==0.9.2'. Received: --python jax='/no/such/python'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)  # fmt: skip
def test_bad_options_one_line_exit_2(args: list[str], message: str) -> None:
    p = cli(*args)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and message in lines[0], (p.returncode, p.stderr)


def test_run_never_overwrites_an_earlier_run(documented_run: Path) -> None:
    before = (documented_run / "rows.jsonl").read_bytes()
    p = cli("run", "--frameworks", "numpy", "--kinds", "documented", "--timing", "off", "--out", str(documented_run))
    assert p.returncode == 2 and "holds a run: pass --resume" in p.stderr, p.stderr
    assert (documented_run / "rows.jsonl").read_bytes() == before


def test_list_shows_frameworks_apis_and_cases() -> None:
    p = cli("list")
    assert p.returncode == 0, p.stderr
    assert "torch.nn.functional.cross_entropy" in p.stdout and "documented-seed000-n3-c2-f64-mean-s0" in p.stdout
    assert "numpy" in p.stdout.split("apis")[0]
