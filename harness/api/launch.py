"""`harness.launch(...)`: a run split into shards that run at once, here or on a SLURM cluster, merged into one.

We do not schedule: `submitit` (the `launch` extra) hands the shards to the executor a cluster already has.
``local`` runs each shard as a local process through the same code path; ``slurm`` submits one job array
(partition, GPUs per task, time limit and any other sbatch option passed through). Each shard is
``harness.run(shard="K/N")`` (the balanced split, harness/runner/shards.py) in ``OUT/shards/K``; a shard
whose job failed, was killed or came back partial is resumed (``run --resume`` on its directory, its finished
cases kept) up to `retries` times, and submitit requeues a pre-empted or timed-out SLURM shard itself
(`ShardJob.checkpoint`). Then the shard runs are merged into OUT (`write_merged`: the tables, env.json,
summary.md, report.html), and ``launch.json`` says how each shard went and which planned rows are missing.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cases.names import UsageError, choose
from harness.api.run import DEFAULT_RUNS, _selection, new_run_id
from harness.render.load import load_run
from harness.render.merge import write_merged
from harness.render.summary import new_difference_count
from harness.runner.env import cpu_model, gpu_names, hardware_name
from harness.runner.options import device_kind
from harness.runner.shards import Split, balanced_split, measured, planned_keys
from harness.runner.store import RunStore
from harness.runner.timing import BUDGET_S

EXECUTORS = ("local", "slurm")
TIMEOUT_MIN = {"local": 24 * 60, "slurm": 240}  # a shard's time limit unless --timeout-min says
POLL_S = {"local": 1.0, "slurm": 30.0}  # how often the shards are looked at
LAUNCH = "launch.json"
INSTALL = "pip install 'ce-harness[launch]' (submitit)"


@dataclass(frozen=True)
class ShardSpec:
    """What one shard job runs: `harness.run`'s keyword arguments for shard `k` of `n` in `path`."""

    k: int
    n: int
    path: Path
    run: dict[str, Any]
    machine: str | None = None  # the name its rows are filed under (None: the shard's own default)
    partition: str | None = None  # slurm without --machine: the shards are named after their partition


class ShardJob:
    """A shard as a submitit job: the shard's run, or its resumption where its directory already holds one (a
    retry, or submitit's requeue after a pre-emption or time-out: `checkpoint` makes the job requeueable)."""

    def __call__(self, spec: ShardSpec) -> dict[str, Any]:
        from harness.api.run import run

        machine = spec.machine
        if machine is None and spec.partition is not None:  # nodes of one partition: one machine, per hardware
            machine = f"slurm {spec.partition}: {hardware_name(cpu_model(), os.cpu_count(), gpu_names())}"
        where = {"resume": spec.path} if (spec.path / "options.json").is_file() else {
            "out": spec.path, "shard": f"{spec.k}/{spec.n}"}  # fmt: skip
        result = run(**spec.run, **where, machine=machine)
        return {"path": str(result.path), "rows": len(result.accuracy), "partial": result.partial,
                "machine": result.env.get("machine")}  # fmt: skip

    def checkpoint(self, spec: ShardSpec) -> Any:
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, spec)


@dataclass
class ShardStatus:
    """How one shard went (launch.json's ``shards``)."""

    k: int
    path: str
    cases: int  # accuracy and timing cases in the shard
    planned_s: float  # its cost (harness/runner/shards.py: modelled or measured seconds)
    case_runs: int  # accuracy (case, framework, device kind) runs planned
    done: int = 0  # of them in its rows
    attempts: int = 0
    state: str = "pending"  # pending, running, done, failed (retries spent), incomplete (rows missing)
    jobs: list[str] = field(default_factory=list)
    error: str = ""  # why it is not done
    failures: list[str] = field(default_factory=list)  # every failure it was resumed after


@dataclass(frozen=True)
class LaunchResult:
    """The merged run (under `path`) and how each shard went."""

    path: Path
    accuracy: pd.DataFrame
    env: dict[str, Any]
    shards: tuple[ShardStatus, ...]
    missing: int  # planned accuracy case runs no shard completed
    new_differences: int
    partial: bool  # some shard failed or was interrupted: `launch(resume=path)` completes it


def slurm_parameters(
    partition: str | None = None, gpus_per_task: int | None = None, cpus_per_task: int | None = None,
    mem_gb: float | None = None, array_parallelism: int | None = None, extra: Iterable[str] = (),
) -> dict[str, Any]:  # fmt: skip
    """submitit's slurm_* parameters from the options; `extra` items are ``KEY=VALUE`` (``account=ml``,
    ``constraint=h100``, ``additional_parameters={"qos": "high"}``; a JSON value is parsed)."""
    params: dict[str, Any] = {"slurm_partition": partition, "slurm_gpus_per_task": gpus_per_task,
                              "slurm_cpus_per_task": cpus_per_task, "slurm_mem_gb": mem_gb,
                              "slurm_array_parallelism": array_parallelism}  # fmt: skip
    for item in extra:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"Expected --slurm KEY=VALUE. Received: --slurm {item!r}")
        try:
            params[f"slurm_{key.strip()}"] = json.loads(value)
        except json.JSONDecodeError:
            params[f"slurm_{key.strip()}"] = value
    return {k: v for k, v in params.items() if v is not None}


def make_executor(kind: str, folder: Path, timeout_min: int, slurm: Mapping[str, Any]) -> Any:
    """A submitit executor for `kind` (local: processes here; slurm: sbatch) with every parameter checked:
    a one-line UsageError for submitit missing or a parameter SLURM's executor does not take."""
    try:
        import submitit
    except ImportError:
        raise UsageError(f"Expected submitit for launch ({INSTALL}). Received: no module named 'submitit'") from None
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=kind)
    except RuntimeError as e:  # slurm where there is none: submitit looks for srun
        raise UsageError(f"Expected a SLURM cluster for --executor slurm ({e}). Received: no srun here") from None
    try:
        executor.update_parameters(name="harness-shard", timeout_min=timeout_min, **slurm)
    except (NameError, ValueError, TypeError, AssertionError) as e:
        bad = " ".join(f"--slurm {k.removeprefix('slurm_')}={v}" for k, v in slurm.items())
        first = str(e).strip().splitlines()[0]
        raise UsageError(f"Expected SLURM parameters that submitit takes ({first}). Received: {bad}") from None
    return executor


def _done_keys(path: Path) -> set[tuple[str, str, str]]:
    """The (case, framework, device kind) runs a shard's rows.jsonl holds."""
    return {(line[0]["case_id"], line[0]["framework"], device_kind(line[0]["device"]))
            for line in RunStore(path).rows() if line}  # fmt: skip


def _planned(selection: dict[str, Any], split: Split, k: int, path: Path) -> list[tuple[str, str, str]]:
    """Shard k's accuracy runs: from its own options.json once it started (what it will do), else the split."""
    options = path / "options.json"
    mine = json.loads(options.read_text()) if options.is_file() else {
        **selection, "shard": [k, len(split.ids)], "shard_ids": list(split.ids[k - 1])}  # fmt: skip
    return planned_keys(mine)


class Launch:
    """The shards of one launch, their jobs and their progress (one instance per `launch` call)."""

    def __init__(self, out: Path, record: dict[str, Any], say: Any) -> None:
        self.out, self.record, self.say = out, record, say
        self.selection = record["options"]
        self.split = Split(tuple(tuple(i) for i in record["split"]["ids"]), tuple(record["split"]["seconds"]),
                           record["split"]["source"])  # fmt: skip
        n = len(self.split.ids)
        self.specs = [
            ShardSpec(k, n, out / "shards" / str(k), {**record["run"], "command": f"{record['command']} ({k}/{n})"},
                      record.get("machine"), record.get("partition"))
            for k in range(1, n + 1)
        ]  # fmt: skip
        old = {s["k"]: s for s in record.get("shards", [])}
        self.status = [
            ShardStatus(s.k, str(s.path), len(self.split.ids[s.k - 1]), round(self.split.seconds[s.k - 1], 3),
                        len(_planned(self.selection, self.split, s.k, s.path)),
                        attempts=old.get(s.k, {}).get("attempts", 0), jobs=list(old.get(s.k, {}).get("jobs", [])),
                        failures=list(old.get(s.k, {}).get("failures", [])))
            for s in self.specs
        ]  # fmt: skip

    def save(self) -> None:
        RunStore(self.out).write_json(LAUNCH, {**self.record, "shards": [asdict(s) for s in self.status]})

    def refresh(self, k: int) -> int:
        """Shard k's finished accuracy runs (its rows.jsonl); returns how many planned ones are missing."""
        spec, st = self.specs[k - 1], self.status[k - 1]
        planned = _planned(self.selection, self.split, k, spec.path)
        st.case_runs = len(planned)
        have = _done_keys(spec.path)
        st.done = sum(key in have for key in planned)
        return st.case_runs - st.done

    def complete(self, k: int) -> bool:
        """Shard k ran to the end: its env.json is written, not partial, and no planned row is missing."""
        env = self.specs[k - 1].path / "env.json"
        return env.is_file() and not json.loads(env.read_text()).get("partial") and self.refresh(k) == 0

    def progress(self) -> str:
        total = sum(s.case_runs for s in self.status)
        done = sum(s.done for s in self.status)
        parts = [f"{s.k}: {s.state}" + (f" {s.done}/{s.case_runs}" if s.state == "running" else "")
                 for s in self.status]  # fmt: skip
        return f"launch: {done}/{total} case runs; shards " + ", ".join(parts)


def launch(
    frameworks: str | Iterable[str] = "all", kinds: str | Iterable[str] = "all", dtypes: str | Iterable[str] = "all",
    devices: str | Iterable[str] | None = None, *, shards: int = 2, executor: str = "local", seed: int = 0,
    out: str | Path | None = None, resume: str | Path | None = None, durations: str | Path | None = None,
    timing: str = "default", timing_budget: float = BUDGET_S, case_timeout: float = 120.0, jobs: int | None = None,
    threads: int | None = None, modes: str | Iterable[str] | None = None, policies: str | Iterable[str] | None = None,
    python: Iterable[str] = (), machine: str | None = None, retries: int = 2, timeout_min: int | None = None,
    slurm: Mapping[str, Any] | None = None, poll_s: float | None = None, quiet: bool = False, verbose: bool = False,
    debug: bool = False, command: str | None = None,
) -> LaunchResult:  # fmt: skip
    """Run the selection as `shards` shards through `executor` and merge them into one run directory.

    Args:
      frameworks ... python: as `harness.run` (the selection and how each shard runs). jobs and threads default
        to this machine's cores shared among the shards for ``local``, to 2 workers and every core for ``slurm``.
      shards: how many; executor: ``local`` (processes here) or ``slurm`` (a job array through submitit).
      out: the merged run's directory (default reports/runs/<id>); the shards run in ``out/shards/K`` and
        submitit's files and logs go to ``out/submitit``. resume: a launch's directory: every shard not complete
        is resumed with its finished cases kept, then all are merged again.
      durations: a previous run (a launched one too) whose per-case times balance the shards (default: the
        cost model, harness/runner/shards.py).
      machine: the name the rows are filed under (default: the shards' own, hostname and hardware; on SLURM the
        partition and the node's hardware, so a partition's nodes of one kind are one machine).
      retries: how many times a failed, killed or interrupted shard is resumed.
      timeout_min: each shard's time limit (default 24 h local, 4 h slurm); slurm: submitit's slurm_*
        parameters (`slurm_parameters`); poll_s: seconds between looks at the shards.
      quiet, verbose, debug: the launcher's progress on stderr (each shard logs to its submitit log).

    Returns:
      A `LaunchResult`. Bad options raise `UsageError` before anything is submitted.
    """
    say = (lambda line: None) if quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    if resume is not None:
        out = Path(resume)
        if not (out / LAUNCH).is_file():
            raise UsageError(f"Expected a launch directory with {LAUNCH}. Received: --resume={str(out)!r}")
        record = json.loads((out / LAUNCH).read_text())
    else:
        record = _plan(frameworks, kinds, dtypes, devices, shards, executor, seed, out, durations, timing,
                       timing_budget, case_timeout, jobs, threads, modes, policies, python, machine, retries,
                       timeout_min, slurm, verbose, debug, command)  # fmt: skip
        out = Path(record.pop("out"))
    kind = record["executor"]
    ex = make_executor(kind, out / "submitit", record["timeout_min"], record.get("slurm", {}))
    state = Launch(out, record, say)
    for s in state.status:
        say(f"shard {s.k}/{len(state.status)}: {s.cases} cases, {s.case_runs} case runs, "
            f"~{s.planned_s:.3g} s planned ({state.split.source})")  # fmt: skip
    partial = _wait(state, ex, record["retries"], poll_s or POLL_S[kind], say)
    return _merge(state, partial, say)


def _plan(
    frameworks: Any, kinds: Any, dtypes: Any, devices: Any, shards: int, executor: str, seed: int, out: Any,
    durations: Any, timing: str, timing_budget: float, case_timeout: float, jobs: int | None, threads: int | None,
    modes: Any, policies: Any, python: Iterable[str], machine: str | None, retries: int, timeout_min: int | None,
    slurm: Mapping[str, Any] | None, verbose: bool, debug: bool, command: str | None,
) -> dict[str, Any]:  # fmt: skip
    """Every option checked, the split made and launch.json written (before anything is submitted)."""
    kind = choose(executor, EXECUTORS, "executor")
    if not isinstance(shards, int) or shards < 1 or retries < 0 or (timeout_min is not None and timeout_min < 1):
        got = f"--shards={shards} --retries={retries} --timeout-min={timeout_min}"
        raise UsageError(f"Expected --shards >= 1, --retries >= 0, --timeout-min >= 1. Received: {got}")
    cores = os.cpu_count() or 1
    if kind == "local":  # the shards share this machine's cores
        jobs = jobs or max(1, min(2, cores // shards))
        threads = threads or max(1, cores // shards)
    jobs = jobs or 2
    python = list(python)
    selection = _selection(frameworks, devices, kinds, dtypes, seed, None, timing, case_timeout, jobs, timing_budget,
                           threads, modes, policies, python)  # fmt: skip
    if durations is not None:
        measured(durations)  # a one-line error now, not in every shard
    split = balanced_split(selection, shards, timing_budget, durations)
    if not all(split.ids):
        units = shards - sum(not ids for ids in split.ids)
        raise UsageError(f"Expected --shards <= {units} (this selection splits into {units} shards of work at most). "
                         f"Received: --shards={shards}")  # fmt: skip
    launch_id = "launch-" + new_run_id(seed)
    out = Path(out) if out is not None else DEFAULT_RUNS / launch_id
    if (out / LAUNCH).exists() or (out / RunStore.ROWS).exists() or (out / "options.json").exists():
        raise UsageError(f"Expected an --out directory without a run or launch in it. Received: --out={str(out)!r} "
                         f"(pass --resume {out} to complete a launch)")  # fmt: skip
    slurm = dict(slurm or {})
    timeout_min = timeout_min or TIMEOUT_MIN[kind]
    with tempfile.TemporaryDirectory() as scratch:  # nothing written to --out before every option is checked
        make_executor("local", Path(scratch), timeout_min, slurm)  # submitit there, SLURM's parameters known
        make_executor(kind, Path(scratch), timeout_min, slurm)  # and a cluster there for slurm
    record = {
        "launch_id": launch_id, "command": command or f"harness.launch(shards={shards}, executor={kind!r})",
        "executor": kind, "timeout_min": timeout_min, "slurm": slurm, "retries": retries, "machine": machine,
        "partition": slurm.get("slurm_partition", "default") if kind == "slurm" and machine is None else None,
        "options": selection,
        "run": {"frameworks": selection["frameworks"], "kinds": selection["kinds"], "dtypes": selection["dtypes"],
                "devices": devices, "seed": seed, "timing": timing, "timing_budget": timing_budget,
                "case_timeout": case_timeout, "jobs": jobs, "threads": threads, "modes": modes, "policies": policies,
                "python": python, "durations": None if durations is None else str(durations), "verbose": True,
                "debug": debug},
        "split": {"source": split.source, "seconds": list(split.seconds), "ids": [list(i) for i in split.ids]},
    }  # fmt: skip
    (out / "shards").mkdir(parents=True, exist_ok=True)
    RunStore(out).write_json(LAUNCH, record)
    return {**record, "out": str(out)}


def _wait(state: Launch, ex: Any, retries: int, poll_s: float, say: Any) -> bool:
    """Submit the shards that are not complete, wait for them with progress, resume those that fail (up to
    `retries` times each). Returns whether some shard is left incomplete."""
    todo = [s for s in state.specs if not state.complete(s.k)]
    for s in state.status:
        s.state = "pending" if any(t.k == s.k for t in todo) else "done"
    running: dict[int, Any] = {}
    if todo:
        for spec, job in zip(todo, ex.map_array(ShardJob(), todo), strict=True):
            running[spec.k] = job
            _started(state, spec.k, job)
    state.save()
    last, shown = "", 0.0
    try:
        while running:
            time.sleep(poll_s)
            for k, job in list(running.items()):
                state.refresh(k)
                if not job.done():
                    continue
                del running[k]
                st = state.status[k - 1]
                failure = _failure(job, state, k)
                if not failure:
                    st.state, st.error = "done", ""
                    say(f"shard {k}: done ({st.done} case runs)")
                elif st.attempts <= retries:
                    say(f"shard {k}: {failure}; resuming it (attempt {st.attempts + 1} of {retries + 1})")
                    st.failures.append(failure)
                    running[k] = ex.submit(ShardJob(), state.specs[k - 1])
                    _started(state, k, running[k])
                else:
                    st.state, st.error = ("incomplete" if st.done else "failed"), failure
                    st.failures.append(failure)
                    say(f"shard {k}: {failure}; {retries} retries spent, left incomplete")
                state.save()
            line = state.progress()
            if line != last or time.monotonic() - shown > 60:
                say(line)
                last, shown = line, time.monotonic()
    except KeyboardInterrupt:
        for job in running.values():  # a shard writes what it finished on SIGINT; `--resume` completes it
            job.cancel(check=False)
        for k in running:
            state.status[k - 1].state = "interrupted"
        state.save()
        say(f"\ninterrupted: complete it with `python -m harness launch --resume {state.out}`")
    return any(s.state != "done" for s in state.status)


def _started(state: Launch, k: int, job: Any) -> None:
    st = state.status[k - 1]
    st.attempts += 1
    st.state = "running"
    st.jobs.append(str(job.job_id))


def _failure(job: Any, state: Launch, k: int) -> str:
    """'' where shard k finished complete, else one line saying what went wrong."""
    try:
        result = job.result()
    except Exception as e:  # a killed, failed or cancelled job (submitit's UncompletedJobError, FailedJobError)
        text = str(e).strip().splitlines()
        return f"job {job.job_id} failed ({type(e).__name__}: {text[0] if text else ''})"
    missing = state.refresh(k)
    if result.get("partial"):
        return f"interrupted, {missing} case runs left"
    return f"{missing} planned case runs missing" if missing else ""


def _merge(state: Launch, partial: bool, say: Any) -> LaunchResult:
    """The shards that have rows, merged into the launch's directory; launch.json updated."""
    dirs = [s.path for s in state.specs if any((s.path / f).is_file() for f in (RunStore.ROWS, "accuracy.parquet"))]
    if not dirs:
        state.save()
        raise UsageError(f"Expected a shard with rows to merge. Received: none in {state.out / 'shards'} "
                         f"(see the logs in {state.out / 'submitit'})")  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_merged(dirs, state.out)
    for w in caught:  # the merge says which rows are missing (IncompleteWarning) or how the shards differ
        say(f"warning: {w.message}")
    missing = sum(state.refresh(s.k) for s in state.specs)
    env = RunStore(state.out).read_json("env.json")
    env.update(launch=state.record["launch_id"], executor=state.record["executor"],
               shards=[asdict(s) for s in state.status], partial=bool(partial or missing))  # fmt: skip
    if missing:
        env["missing_case_runs"] = missing
    RunStore(state.out).write_json("env.json", env)
    state.save()
    accuracy = load_run(state.out).accuracy
    return LaunchResult(state.out, accuracy, env, tuple(state.status), missing, new_difference_count(accuracy),
                        bool(partial or missing))  # fmt: skip
