"""harness.launch (issue 20) with submitit's local executor for real: shard processes, a killed shard resumed,
a merge of incomplete shards, SLURM's job array through a stand-in sbatch, and the one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("submitit")

from cases.generator import default_cases
from cases.names import UsageError
from harness.api.launch import ShardJob, ShardSpec, launch, make_executor, slurm_parameters
from harness.api.run import run
from harness.render.merge import IncompleteWarning, write_merged
from harness.runner.env import this_machine
from harness.runner.shards import unit_of
from harness.runner.store import RunStore

ROOT = Path(__file__).resolve().parents[3]
SELECTION = {"frameworks": "numpy", "kinds": "documented,soft,binary", "dtypes": "float32,float64", "seed": 5,
             "timing": "off"}  # fmt: skip
KEY = ["case_id", "framework", "api", "recipe", "device", "mode", "policy"]
SOFT_UNITS = len({unit_of(c) for c in default_cases(["soft"], ["float32"])})  # a configuration with its float64 case


def same_rows(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, int]:
    """Columns whose cells differ between two accuracy tables matched on their keys (floats exactly, NaN equal to
    NaN), run_id and machine left out: {} when the rows are the same."""

    def norm(df: pd.DataFrame) -> pd.DataFrame:
        df = df.drop(columns=["run_id", "machine"], errors="ignore").sort_values(KEY).reset_index(drop=True)
        return df.astype(object).where(df.notna(), None)

    a, b = norm(a), norm(b)
    assert list(a.columns) == list(b.columns) and len(a) == len(b), (len(a), len(b))
    assert a[KEY].equals(b[KEY]), "the same rows"
    bad = {}
    for c in a.columns:
        same = [u == v or (isinstance(u, float) and isinstance(v, float) and np.isnan(u) and np.isnan(v))
                for u, v in zip(a[c], b[c], strict=True)]  # fmt: skip
        if not all(same):
            bad[c] = len(same) - sum(same)
    return bad


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return run(**SELECTION, out=tmp_path_factory.mktemp("whole") / "run", quiet=True).accuracy


def test_a_launch_merges_shards_into_the_unsharded_run(tmp_path: Path, unsharded: pd.DataFrame) -> None:
    result = launch(**SELECTION, shards=3, executor="local", out=tmp_path / "launch", quiet=True, poll_s=0.2)
    assert [(s.state, s.attempts) for s in result.shards] == [("done", 1)] * 3
    assert not result.partial and result.missing == 0
    assert same_rows(result.accuracy, unsharded) == {}
    env = json.loads((tmp_path / "launch" / "env.json").read_text())
    assert env["machine"] == this_machine() and env["machines"] == [this_machine()], "one machine, named"
    assert env["cpu_isa"] and env["launch"].startswith("launch-") and env["executor"] == "local"
    record = json.loads((tmp_path / "launch" / "launch.json").read_text())
    assert [len(ids) for ids in record["split"]["ids"]] == [s.cases for s in result.shards]
    for k in (1, 2, 3):  # each shard is a run directory of its own, with the balanced split's cases
        options = RunStore(tmp_path / "launch" / "shards" / str(k)).read_json("options.json")
        assert options["shard"] == [k, 3] and options["shard_ids"] == record["split"]["ids"][k - 1]
    assert (tmp_path / "launch" / "summary.md").is_file() and (tmp_path / "launch" / "report.html").is_file()


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the shard's process through /proc")
def test_a_killed_shard_is_resumed_with_its_finished_cases(tmp_path: Path, unsharded: pd.DataFrame) -> None:
    out = tmp_path / "launch"
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(result=launch(
        **SELECTION, shards=2, executor="local", out=out, retries=1, quiet=True, poll_s=0.1)))  # fmt: skip
    thread.start()
    deadline = time.monotonic() + 120
    killed, before = None, 0
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        record = json.loads((out / "launch.json").read_text()) if (out / "launch.json").is_file() else {}
        shards = record.get("shards", [])
        if shards and all(s["jobs"] for s in shards):
            target = max(shards, key=lambda s: s["case_runs"])  # the longest shard: still running when killed
            before = len(RunStore(Path(target["path"])).rows())
            tasks = _children(int(target["jobs"][0]))  # submitit's controller runs the shard as its child
            if before >= 1 and tasks:
                os.kill(tasks[0], signal.SIGKILL)
                killed = target
        time.sleep(0.02)
    thread.join(timeout=240)
    assert killed is not None, "the shard was killed while it ran"
    result = box["result"]
    shard = result.shards[killed["k"] - 1]
    assert shard.state == "done" and shard.attempts == 2 and shard.failures[0].startswith("job "), shard
    assert "failed (UncompletedJobError" in shard.failures[0], "what happened is reported"
    lines = RunStore(Path(killed["path"])).rows()
    keys = [(line[0]["case_id"], line[0]["framework"]) for line in lines]
    assert len(keys) == len(set(keys)) == shard.case_runs, "resumed: every case once, none run twice"
    log = (out / "submitit" / f"{shard.jobs[1]}_0_log.err").read_text()
    assert "resuming: " in log, log
    done_before = int(log.split("resuming: ")[1].split()[0])
    assert done_before >= before, "the cases finished before the kill were kept"
    assert not result.partial and same_rows(result.accuracy, unsharded) == {}


def test_a_merge_of_incomplete_shards_says_which_rows_are_missing(tmp_path: Path) -> None:
    small = {**SELECTION, "kinds": "soft", "dtypes": "float32"}
    a = run(**small, shard="1/2", out=tmp_path / "a", quiet=True)
    b = run(**small, shard="2/2", out=tmp_path / "b", quiet=True)
    lines = RunStore(b.path).rows()
    # as a kill leaves it: the first case's line, no tables, no env.json
    (b.path / "rows.jsonl").write_text(json.dumps(lines[0]) + "\n")
    for name in ("accuracy.parquet", "accuracy.csv", "env.json"):
        (b.path / name).unlink()
    lost = sorted(f"{line[0]['case_id']} numpy cpu" for line in lines[1:])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_merged([a.path, b.path], tmp_path / "merged")
    (w,) = [w for w in caught if w.category is IncompleteWarning]
    assert str(w.message).startswith(f"the merged runs lack {len(lost)} planned case runs, so their rows are missing "
                                      f"({b.path}: {len(lost)} (first: ")  # fmt: skip
    env = json.loads((tmp_path / "merged" / "env.json").read_text())
    assert env["partial"] is True and env["missing"][str(b.path)]["case_runs"] == len(lost)
    assert sorted(env["missing"][str(b.path)]["first"]) == lost[:20]
    assert list(env["missing"]) == [str(b.path)], "the complete shard lacks nothing"
    cli = subprocess.run([sys.executable, "-m", "harness", "report", str(a.path), str(b.path), "--out",
                          str(tmp_path / "cli")], capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert cli.returncode == 0 and f"warning: the merged runs lack {len(lost)} planned case runs" in cli.stderr


def test_slurm_gets_one_job_array_with_the_options_passed_through(tmp_path: Path) -> None:
    """No cluster here: stand-ins for srun and sbatch record what submitit would submit."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_ / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/submitted.sh\necho "Submitted batch job 4242"\n')
    for f in ("srun", "sbatch"):
        (bin_ / f).chmod(0o755)
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{bin_}{os.pathsep}{old}"
    try:
        params = slurm_parameters("gpu", gpus_per_task=1, cpus_per_task=8, array_parallelism=2,
                                  extra=["account=ml", 'additional_parameters={"qos": "high"}'])  # fmt: skip
        ex = make_executor("slurm", tmp_path / "submitit", 90, params)
        specs = [ShardSpec(k, 3, tmp_path / "shards" / str(k), {"frameworks": "numpy"}) for k in (1, 2, 3)]
        jobs = ex.map_array(ShardJob(), specs)
    finally:
        os.environ["PATH"] = old
    assert [j.job_id for j in jobs] == ["4242_0", "4242_1", "4242_2"]
    script = (tmp_path / "submitted.sh").read_text()
    for flag in ("--partition=gpu", "--gpus-per-task=1", "--cpus-per-task=8", "--account=ml", "--qos=high",
                 "--array=0-2%2", "--time=90", "--job-name=harness-shard", "--signal=USR2@"):  # fmt: skip
        assert f"#SBATCH {flag}" in script, flag


def test_shard_jobs_are_requeued_where_they_stopped() -> None:
    spec = ShardSpec(1, 2, Path("/tmp/nowhere"), {})
    again = ShardJob().checkpoint(spec)
    assert again.function.__class__ is ShardJob and again.args == (spec,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"executor": "pbs"}, "Expected executor in {local, slurm}. Received: executor='pbs'"),
        ({"shards": 0}, "Expected --shards >= 1, --retries >= 0, --timeout-min >= 1. Received: --shards=0 --retries=2 "
                        "--timeout-min=None"),
        ({"shards": 50}, f"Expected --shards <= {SOFT_UNITS} (this selection splits into {SOFT_UNITS} shards of work "
                         "at most). Received: --shards=50"),
        ({"slurm": {"slurm_bogus": 1}}, "Expected SLURM parameters that submitit takes (Unknown argument 'bogus' "),
    ],
)  # fmt: skip
def test_bad_launch_options_are_one_line_and_write_nothing(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError) as e:
        launch(frameworks="numpy", kinds="soft", dtypes="float32", timing="off", out=tmp_path / "x", **kwargs)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
    assert not (tmp_path / "x").exists()


def test_the_cli_launches_and_names_the_machine(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_MACHINE": "ci box"}
    p = subprocess.run([sys.executable, "-m", "harness", "launch", "--shards", "2", "--frameworks", "numpy",
                        "--kinds", "soft", "--dtypes", "float32", "--timing", "off", "--out", str(tmp_path / "l"),
                        "--poll", "0.2"], capture_output=True, text=True, cwd=ROOT, timeout=180, env=env)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "merged from 2 shards: 1: done (1 attempt), 2: done (1 attempt)" in p.stdout and "machine 'ci box'" in p.stdout
    assert "shard 1/2:" in p.stderr and "launch: " in p.stderr, "the plan and the progress"
    assert json.loads((tmp_path / "l" / "env.json").read_text())["machines"] == ["ci box"]
    bad = subprocess.run([sys.executable, "-m", "harness", "launch", "--resume", str(tmp_path)], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr == f"error: Expected a launch directory with launch.json. Received: --resume={str(tmp_path)!r}\n"
