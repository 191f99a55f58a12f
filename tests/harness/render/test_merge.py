"""Shards of a case set and merged runs (issue 8): a merge of the shards is the unsharded run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from cases.generator import default_cases, with_float64
from cases.names import UsageError
from cases.shards import parse_shard, shard_cases
from cases.spec import Case
from harness.judge.claims import claims_frame
from harness.judge.rows import RowJudge, accuracy_frame
from harness.render.load import load_run
from harness.render.merge import machine_name, merge_runs, write_merged
from harness.runner.accuracy import run_accuracy
from harness.runner.env import environment
from harness.runner.options import RunOptions
from harness.runner.store import RunStore

CASES = default_cases(("documented", "soft"), ("float32",))
ALL = default_cases()
KEY = ["case_id", "framework", "api", "recipe", "device"]


def make_run(path: Path, cases: list[Case], run_id: str, shard: tuple[int, int] | None = None) -> Path:
    """A run directory as `python -m harness run` writes it (accuracy, claims, env.json, options.json), float64
    cases added as a run adds them."""
    cases = with_float64(cases)
    rows: list[dict] = []
    options = RunOptions(("numpy", "torch"), ("cpu",), jobs=2, quiet=True)
    info = run_accuracy(cases, options, RowJudge(run_id), rows.extend)
    store = RunStore.create(path)
    opts = {"run_id": run_id, "frameworks": ["numpy", "torch"], "devices": ["cpu"], "kinds": ["soft", "documented"],
            "dtypes": ["float32"], "seed": 0, "shard": list(shard) if shard else None}  # fmt: skip
    store.write_json("options.json", opts)
    store.write_table("accuracy", accuracy_frame(rows, cases))
    if len(claims := claims_frame(cases)):
        store.write_table("claims", claims)
    store.write_json("env.json", {"run_id": run_id, **environment("python -m harness run", info)})
    return path


def timing(run_id: str, case_ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"run_id": run_id, "case_id": c, "shape": "256x1000", "dtype": "float32", "framework": "torch",
          "framework_version": "2", "api": "torch.nn.functional.cross_entropy", "device": "cpu", "mode": m,
          "pass": "forward", "median_s": 1e-3, "iqr_s": 1e-5, "samples": 50, "compile_s": float("nan"),
          "bytes_min": 10**6, "gbps": 1.0, "roofline_frac": 0.05, "threads": 2}
         for c in case_ids for m in ("eager", "compiled")]
    )  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("shards")
    out = {"full": make_run(base / "full", CASES, "full")}
    for k in (1, 2):
        out[f"s{k}"] = make_run(base / f"s{k}", shard_cases(CASES, k, 2), f"shard{k}", (k, 2))
    return out


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["run_id"]).sort_values(KEY).reset_index(drop=True)


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_partition_the_cases_deterministically(n: int) -> None:
    shards = [shard_cases(ALL, k, n) for k in range(1, n + 1)]
    ids = [c.id for s in shards for c in s]
    assert sorted(ids) == sorted(c.id for c in ALL), "the union of the shards is every case"
    assert len(ids) == len(set(ids)), "shards are disjoint"
    assert all(shards), "every shard has work"
    for k, s in enumerate(shards, 1):
        assert [c.id for c in s] == [c.id for c in ALL if c in s], "a shard keeps the case order"
        assert {c.id for c in shard_cases(ALL[::-1], k, n)} == {c.id for c in s}, "independent of the order"
        assert {c.id for c in shard_cases(ALL[: len(ALL) // 2], k, n)} <= {c.id for c in s}, "independent of the rest"


@pytest.mark.parametrize("text", ["3/2", "0/2", "1/0", "a/b", "2", "-1/2", ""])
def test_a_bad_shard_is_one_line(text: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_shard(text)
    assert str(e.value) == f"Expected --shard K/N with 1 <= K <= N. Received: --shard={text!r}"
    assert "\n" not in str(e.value)


def test_shard_cases_rejects_k_beyond_n() -> None:
    assert parse_shard(" 2/4 ") == (2, 4)
    with pytest.raises(ValueError, match=r"^Expected --shard K/N with 1 <= K <= N\. Received: --shard='3/2'$"):
        shard_cases(CASES, 3, 2)


def test_merged_shards_equal_the_unsharded_run(runs: dict[str, Path]) -> None:
    assert all(len(load_run(runs[s]).accuracy) for s in ("s1", "s2")), "both shards ran something"
    m = merge_runs([runs["s1"], runs["s2"]])
    merged, timing_, env = m.accuracy, m.timing, m.env
    m = merge_runs([runs["full"]])
    full, _, _ = m.accuracy, m.timing, m.env
    assert timing_ is None, "no run has timing.parquet"
    assert set(merged["run_id"]) == {"shard1", "shard2"}
    assert merged["machine"].nunique() == 1 and env["machines"] == [machine_name(load_run(runs["full"]).env)]
    pd.testing.assert_frame_equal(canonical(merged), canonical(full))


def test_a_row_from_two_runs_counts_once(runs: dict[str, Path]) -> None:
    m = merge_runs([runs["s1"], runs["s2"]])
    once, _, _ = m.accuracy, m.timing, m.env
    m = merge_runs([runs["s1"], runs["s2"], runs["s1"], runs["full"]])
    twice, _, env = m.accuracy, m.timing, m.env
    pd.testing.assert_frame_equal(canonical(once), canonical(twice))
    assert env["run_id"].startswith("merged: shard1, shard2")


def test_machines_stay_apart_and_timings_merge(runs: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(runs["s1"], other)
    env = json.loads((other / "env.json").read_text())
    (other / "env.json").write_text(json.dumps({**env, "machine": "lab box / NVIDIA H100"}))
    ids = sorted(load_run(other).accuracy["case_id"].unique())
    timing(env["run_id"], ids).to_parquet(other / "timing.parquet")
    m = merge_runs([runs["s1"], other])
    merged, timing_, menv = m.accuracy, m.timing, m.env
    assert len(merged) == 2 * len(load_run(runs["s1"]).accuracy), "same rows on two machines are two rows"
    assert list(merged.columns[:2]) == ["run_id", "machine"]
    assert set(merged["machine"]) == {"lab box / NVIDIA H100", machine_name(env)}
    assert menv["machines"] == [machine_name(env), "lab box / NVIDIA H100"]
    assert timing_ is not None and len(timing_) == 2 * len(ids) and set(timing_["machine"]) == {"lab box / NVIDIA H100"}
    write_merged([runs["s1"], other], tmp_path / "both")
    summary = (tmp_path / "both" / "summary.md").read_text()
    assert "torch.cross_entropy@lab box / NVIDIA H100: cpu" in summary, "summary columns tell the machines apart"


def test_machine_name_is_readable_and_stable() -> None:
    assert machine_name({"machine": "ci-runner"}) == "ci-runner"
    env = {"cpu": "AMD EPYC", "cpu_count": 16, "gpus": ["NVIDIA H100 80GB HBM3"], "hostname": "ip-10-0-0-1"}
    assert machine_name(env) == "AMD EPYC (16 cores) / NVIDIA H100 80GB HBM3"
    assert machine_name({}) == "unknown CPU"


def test_write_merged_writes_a_report(runs: dict[str, Path], tmp_path: Path) -> None:
    report = write_merged([runs["s1"], runs["s2"]], tmp_path / "merged")
    assert report == tmp_path / "merged" / "report.html" and report.stat().st_size > 10_000
    for name in ("accuracy.parquet", "accuracy.csv", "env.json", "summary.md"):
        assert (tmp_path / "merged" / name).is_file(), name
    assert "0.126928" in (tmp_path / "merged" / "summary.md").read_text(), "the documented table has the seeds' cases"
    m = merge_runs([tmp_path / "merged"])
    again, _, env = m.accuracy, m.timing, m.env
    assert set(again["machine"]) == {env["machines"][0]} and len(again) == len(load_run(runs["full"]).accuracy)
    with pytest.raises(UsageError, match=r"^Expected a run directory with accuracy\.parquet"):
        merge_runs([tmp_path])
    with pytest.raises(UsageError, match=r"^Expected an --out directory without a run in it"):
        write_merged([runs["s1"]], runs["s2"])


def test_runs_that_differ_are_merged_with_one_warning(runs: dict[str, Path], tmp_path: Path) -> None:
    """Shards differ only in their shard: no warning. Another seed, other options or another framework version:
    one line naming each difference, as a MergeWarning and on the command line's stderr."""
    import subprocess
    import sys
    import warnings

    from harness.render.merge import MergeWarning, run_differences

    assert run_differences([load_run(runs["s1"]), load_run(runs["s2"])]) == ""
    other = tmp_path / "other"
    shutil.copytree(runs["s1"], other)
    opts = json.loads((other / "options.json").read_text())
    (other / "options.json").write_text(json.dumps({**opts, "seed": 3, "dtypes": ["float16"], "shard": None}))  # not a shard: no rows missing
    env = json.loads((other / "env.json").read_text())
    env["frameworks"]["torch"]["version"] = "2.0.0"
    (other / "env.json").write_text(json.dumps(env))
    mine = env["frameworks"]["torch"]["version"], load_run(runs["s1"]).env["frameworks"]["torch"]["version"]
    want = (f"the merged runs differ in seed (0 | 3), dtypes (['float32'] | ['float16']), "
            f"torch version ({mine[1]} | {mine[0]})")  # fmt: skip
    assert run_differences([load_run(runs["s1"]), load_run(other)]) == want
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_merged([runs["s1"], other], tmp_path / "both")
    assert [(w.category, str(w.message)) for w in caught] == [(MergeWarning, want)]
    assert json.loads((tmp_path / "both" / "env.json").read_text())["differences"] == want
    root = Path(__file__).resolve().parents[3]
    p = subprocess.run([sys.executable, "-m", "harness", "report", str(runs["s1"]), str(other), "--out",
                        str(tmp_path / "cli")], capture_output=True, text=True, cwd=root, timeout=120)  # fmt: skip
    assert p.returncode == 0 and p.stderr == f"warning: {want}\n", p.stderr
