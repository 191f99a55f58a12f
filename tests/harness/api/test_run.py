"""harness.run(...) without argparse: options validated first, a run written, resume completing it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import harness
from cases.generator import timing_plan
from cases.names import UsageError


def test_bad_options_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    for kwargs, message in (
        (
            {"frameworks": "numpy,torhc"},
            "Expected framework in {numpy, torch, tensorflow, jax, paddle, mlx, onnxruntime, keras_jax, keras_torch}. Received: framework='torhc'",
        ),
        ({"timing": "fast"}, "Expected timing in {off, default, full}. Received: timing='fast'"),
        ({"jobs": 0}, "Expected --case-timeout > 0, --jobs >= 1"),
        ({"shard": "3/2"}, "Expected --shard K/N with 1 <= K <= N. Received: --shard='3/2'"),
    ):
        with pytest.raises(UsageError) as e:
            harness.run(out=tmp_path / "r", quiet=True, **kwargs)
        assert message in str(e.value) and "\n" not in str(e.value), str(e.value)
        assert not (tmp_path / "r").exists()


def test_a_run_and_its_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = harness.run("numpy", "documented", "float32", "cpu", out=out, timing="off", quiet=True)
    assert first.path == out and not first.partial and first.new_differences == 0
    assert set(first.accuracy["dtype"]) == {"float32", "float64"}, "float64 is added: it decides the semantics"
    assert json.loads((out / "env.json").read_text())["command"].startswith("harness.run('numpy'")
    assert (out / "claims.parquet").is_file() and (out / "report.html").is_file()
    # a run killed half-way: its rows.jsonl holds the first cases only; resume completes it to the same rows
    lines = (out / "rows.jsonl").read_text().splitlines()
    (out / "rows.jsonl").write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    again = harness.run(resume=out, quiet=True)
    key = ["case_id", "framework", "api", "recipe"]
    cols = [c for c in first.accuracy.columns if c != "run_id"]
    assert (
        again.accuracy.sort_values(key)[cols]
        .reset_index(drop=True)
        .equals(first.accuracy.sort_values(key)[cols].reset_index(drop=True))
    )


def test_the_timing_policy_lives_with_the_cases() -> None:
    default, full = timing_plan("default"), timing_plan("full")
    assert timing_plan("off") == {"cpu": [], "gpu": []}
    plain = [[c for c in plan["cpu"] if not c.spec.linear] for plan in (default, full)]
    assert len(plain[1]) == len(plain[0]) + 1, "the CPU's largest case is timed with --timing full only"
    linear = sorted(c.n_classes for c in full["cpu"] if c.spec.linear)
    assert linear == [32000, 128256, 256000] and not any(c.spec.linear for c in default["cpu"]), linear
    assert {c.dtype for c in full["gpu"]} == {"float32", "bfloat16"}


def test_devices_default_to_those_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No --devices: the machine's own (no GPU rows on a CPU-only machine); a GPU asked for where there is none
    gives unsupported rows with the reason."""
    from harness.runner import env

    monkeypatch.setattr(env, "no_gpu_reason", lambda: "no GPU: test")
    assert env.present_devices() == ("cpu",)
    monkeypatch.setattr(env, "no_gpu_reason", lambda: None)
    assert env.present_devices() == ("cpu", "gpu")
    monkeypatch.undo()
    if env.no_gpu_reason() is None:
        pytest.skip("this machine has a GPU")
    default = harness.run("numpy", "documented", "float32", out=tmp_path / "a", timing="off", quiet=True)
    assert set(default.accuracy["device"]) == {"cpu"}
    asked = harness.run("numpy", "documented", "float32", "cpu,gpu", out=tmp_path / "b", timing="off", quiet=True)
    gpu = asked.accuracy[(asked.accuracy["device"] == "gpu") & (asked.accuracy["api"] == "adapters.reference.evaluate")]
    assert len(gpu) and set(gpu["outcome"]) == {"unsupported"} and gpu["error"].str.startswith("no GPU").all()
