"""`harness.run(...)`: the whole comparison, as `python -m harness run` does it, from Python.

Validates every option first (a one-line `UsageError`), creates the run directory (or resumes one), runs
the accuracy pass and the timing pass in worker processes, judges the rows as they arrive, and writes the
run's tables, env.json, summary.md and report.html. Ctrl-C or SIGTERM stops it cleanly: what finished
is written, the result says `partial`, and ``run(resume=path)`` completes it.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from adapters.registry import choose_frameworks
from cases.generator import TIMING_LEVELS
from cases.names import DEVICES, DTYPES, KINDS, MODES, POLICIES, UsageError, choose, choose_many
from cases.shards import parse_shard
from cases.spec import Case
from harness.judge.claims import claims_frame
from harness.judge.rows import RowJudge, accuracy_frame
from harness.render.html import render_html
from harness.render.summary import new_difference_count, render
from harness.render.tables import front
from harness.runner.accuracy import run_accuracy
from harness.runner.env import environment, present_devices
from harness.runner.interpreters import interpreter
from harness.runner.interpreters import parse as interpreters_of
from harness.runner.options import RunOptions, device_kind, row_key
from harness.runner.shards import TimedJudge, balanced_split, lap_timer, planned_cases, subset
from harness.runner.store import RunStore
from harness.runner.timing import BUDGET_S
from harness.runner.timings import WarmingWorkers, run_timing, timing_frame

DEFAULT_RUNS = Path("reports") / "runs"


@dataclass(frozen=True)
class RunResult:
    """What a run wrote (under `path`) and what `python -m harness run` prints of it."""

    path: Path
    accuracy: pd.DataFrame
    timing: pd.DataFrame
    env: dict[str, Any]
    new_differences: int  # rows `--strict` fails on (summary.md, "New differences")
    partial: bool  # interrupted: complete it with run(resume=path)


def new_run_id(seed: int) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{now}-s{seed}-{secrets.token_hex(2)}"


def _selection(
    frameworks: str | Iterable[str], devices: str | Iterable[str] | None, kinds: str | Iterable[str],
    dtypes: str | Iterable[str], seed: int, shard: str | None, timing: str, case_timeout: float, jobs: int,
    timing_budget: float, threads: int | None, modes: str | Iterable[str] | None = None,
    policies: str | Iterable[str] | None = None, python: Iterable[str] = (),
) -> dict[str, Any]:  # fmt: skip
    """Every option checked before any work starts (one line each, the value received)."""
    interpreters = interpreters_of(python)
    if case_timeout <= 0 or jobs < 1 or timing_budget < 0 or (threads is not None and threads < 1):
        got = f"--case-timeout={case_timeout:g} --jobs={jobs} --timing-budget={timing_budget:g} --threads={threads}"
        want = "Expected --case-timeout > 0, --jobs >= 1, --timing-budget >= 0, --threads >= 1"
        raise UsageError(f"{want}. Received: {got}")
    return {
        # a framework given its own interpreter runs, whether listed or not (``jax@new``: a second JAX)
        "frameworks": list(dict.fromkeys([*choose_frameworks(frameworks), *interpreters])),
        "python": interpreters,
        "devices": present_devices() if devices is None else choose_many(devices, DEVICES, "device"),
        "kinds": choose_many(kinds, KINDS, "kind"),
        "dtypes": choose_many(dtypes, DTYPES, "dtype"),
        "seed": seed,
        "shard": list(parse_shard(shard)) if shard else None,  # kept for --resume
        "timing": choose(timing, TIMING_LEVELS, "timing"),
        # None: the subset (harness/runner/plan.py); a list: every case in each
        "modes": None if modes is None else list(choose_many(modes, MODES, "mode")),
        "policies": None if policies is None else list(choose_many(policies, POLICIES, "policy")),
    }


def run_cases(selection: dict[str, Any]) -> tuple[list[Case], dict[str, list[Case]], int]:
    """The accuracy cases and the timing cases of a selection, shard applied, and how many float64 cases
    were added to the accuracy ones (float64 decides every configuration's semantics)."""
    return planned_cases(selection)


def run(
    frameworks: str | Iterable[str] = "all", kinds: str | Iterable[str] = "all", dtypes: str | Iterable[str] = "all",
    devices: str | Iterable[str] | None = None, *, seed: int = 0, out: str | Path | None = None,
    resume: str | Path | None = None, timing: str = "default", timing_budget: float = BUDGET_S,
    case_timeout: float = 120.0, jobs: int | None = None, threads: int | None = None, shard: str | None = None,
    modes: str | Iterable[str] | None = None, policies: str | Iterable[str] | None = None,
    python: Iterable[str] = (), quiet: bool = False, verbose: bool = False, debug: bool = False,
    command: str | None = None, machine: str | None = None, durations: str | Path | None = None,
) -> RunResult:  # fmt: skip
    """Run the case set through the frameworks and write a run directory.

    Args:
      frameworks, kinds, dtypes, devices: names or comma-separated strings (aliases accepted; 'all').
        devices defaults to those present here (cpu, and gpu where the machine has one); one asked for
        that is absent gives `unsupported` rows with the reason.
      seed: seed of the generated inputs.
      out: run directory (default reports/runs/<run_id>); never one that holds a run.
      resume: an interrupted run's directory: its options are used and finished cases skipped.
      timing: off, default (CPU without its largest case) or full; timing_budget: seconds per measurement.
      case_timeout: seconds one case may take in a worker; jobs: workers at once (default min(2, CPUs));
      threads: intra-op threads for every framework (default: every core).
      shard: ``"K/N"``, run shard K of N of the cases, balanced by cost (harness/runner/shards.py; merge shards
        with `report`, or let `harness.launch` run and merge them); durations: a previous run whose per-case
        times balance the shards (default: the cost model).
      machine: the name env.json files the rows under (default $HARNESS_MACHINE, else the hostname and the
        CPU and GPU models; merged reports put machines side by side).
      modes, policies: how the losses run (eager, compiled; none, autocast-bfloat16, mixed_float16, ...; or
        'all'). Default: every case in the framework's own mode without a policy, and the other modes and
        the policies on a subset that holds every kind and dtype (harness/runner/plan.py); named ones run
        every case in each.
      python: ``"FW=PATH"`` items: FW's workers run under that interpreter, or in an environment the harness
        makes for pip requirements (``"jax@new=jax==0.9.2 jaxlib==0.9.2"``; harness/runner/interpreters.py).
        An instance (``jax@new``) joins the frameworks: two versions of one framework side by side.
      quiet, verbose, debug: progress on stderr, and tracebacks of framework errors.
      command: what env.json records as the command (default: this call, as Python).

    Returns:
      A `RunResult`. Bad options raise `UsageError` before anything is written.
    """
    jobs = min(2, os.cpu_count() or 1) if jobs is None else jobs
    command = command or f"harness.run({frameworks!r}, {kinds!r}, {dtypes!r}, {devices!r}, seed={seed})"
    if resume is not None:
        resume = Path(resume)
        if not (resume / "options.json").is_file():
            raise UsageError(f"Expected a run directory with options.json. Received: --resume={str(resume)!r}")
        store = RunStore(resume)
        selection = store.read_json("options.json")
        run_id = selection["run_id"]
    else:
        selection = _selection(frameworks, devices, kinds, dtypes, seed, shard, timing, case_timeout, jobs,
                               timing_budget, threads, modes, policies, python)  # fmt: skip
        if durations is not None and not selection["shard"]:
            raise UsageError(f"Expected --durations with --shard K/N. Received: --durations={str(durations)!r}")
        if selection["shard"]:  # the shard's cases, kept for --resume (the split needs the durations run)
            k, n = selection["shard"]
            split = balanced_split(selection, n, timing_budget, durations)
            selection.update(shard_ids=list(split.ids[k - 1]), split=split.source)
        selection["machine"] = machine
        run_id = new_run_id(seed)
        store = RunStore.create(Path(out) if out is not None else DEFAULT_RUNS / run_id)
        store.write_json("options.json", {"run_id": run_id, **selection, "command": command})
    selection["machine"] = machine or selection.get("machine")
    cases, timed, added = run_cases(selection)
    chosen = {k: None if selection.get(k) is None else tuple(selection[k]) for k in ("modes", "policies")}
    say = (lambda line: None) if quiet else (lambda line: print(line, file=sys.stderr))
    python = tuple((fw, interpreter(where, say)) for fw, where in selection.get("python", {}).items())
    options = RunOptions(
        frameworks=tuple(selection["frameworks"]), devices=tuple(selection["devices"]), case_timeout=case_timeout,
        jobs=jobs, debug=debug, quiet=quiet, verbose=verbose, threads=threads or os.cpu_count(),
        timing_budget_s=timing_budget, **chosen, mode_cases=subset(selection), python=python,
    )  # fmt: skip
    if not quiet:
        extra = f" ({added} of them float64, added to decide semantics)" if added else ""
        print(f"{len(cases)} cases{extra} x {len(options.frameworks)} frameworks x {len(options.devices)} device "
              f"kinds -> {store.path}", file=sys.stderr)  # fmt: skip
    return _execute(store, run_id, selection, options, cases, timed, command)


def _execute(
    store: RunStore, run_id: str, selection: dict[str, Any], options: RunOptions, cases: list[Case],
    timed: dict[str, list[Case]], command: str,
) -> RunResult:  # fmt: skip
    """Both passes (skipping what the store already holds), then the tables, env.json and reports."""
    skip = frozenset(row_key(line[0]) for line in store.rows() if line)
    keys = (line["key"] for line in store.rows(store.TIMING))
    timed_done = frozenset((k["case_id"], k["framework"], device_kind(k["device"])) for k in keys)
    level = selection.get("timing", "default")
    if skip and not options.quiet:
        print(f"resuming: {len(skip)} case runs already done", file=sys.stderr)

    def sink(rows: list[dict[str, Any]]) -> None:
        if rows:
            store.append([rows])  # one line per (case, framework, device): a kill never splits a case

    partial, info, timing_info = False, {}, {}
    restore = _interrupt_on_sigterm()
    # timing workers import and warm up while the accuracy pass runs (its numbers do not depend on the
    # load; timings do, and are taken after it, one framework at a time)
    early = WarmingWorkers(timed, options, timed_done) if level != "off" else None
    try:
        info = run_accuracy(cases, options, TimedJudge(RowJudge(run_id)), sink, skip)  # rows keep case_s
        if level != "off":
            lap = lap_timer()  # each timing line keeps the seconds since the last: what --durations reads
            timing_info = run_timing(timed, options, run_id,
                                     lambda lines: store.append([{**x, "case_s": lap()} for x in lines], store.TIMING),
                                     timed_done, early)  # fmt: skip
    except KeyboardInterrupt:
        partial = True
        print("\ninterrupted: writing what finished; complete it with "
              f"`python -m harness run --resume {store.path}`", file=sys.stderr)  # fmt: skip
    finally:
        if early is not None:  # run_timing stops those it reached
            early.kill()
        restore()
    if level == "default" and "cpu" in options.devices:
        timing_info.setdefault("not_timed", {})["cpu: larger cases"] = (
            "the CPU's largest timing case is timed with --timing full"
        )
    return _write(store, run_id, cases, info, timing_info, partial, command, level, selection.get("machine"))


def _write(
    store: RunStore, run_id: str, cases: list[Case], info: dict[str, Any], timing_info: dict[str, Any],
    partial: bool, command: str, level: str, machine: str | None = None,
) -> RunResult:  # fmt: skip
    """The run's tables, env.json, summary.md and report.html, from what the store holds."""
    if store.path.joinpath("env.json").exists():  # a resumed run keeps the versions it started with
        old = store.read_json("env.json").get("frameworks", {})
        info = {**old, **{k: {**old.get(k, {}), **v} for k, v in info.items()}}
    df = accuracy_frame([row for line in store.rows() for row in line], cases)
    tdf = timing_frame([row for line in store.rows(store.TIMING) for row in line["rows"]])
    claims = claims_frame(cases)
    env = {"run_id": run_id, **environment(command, info, machine), "partial": partial, "timing": timing_info}
    store.write_table("accuracy", df)
    if len(tdf) or level != "off":
        store.write_table("timing", tdf)
    if len(claims):
        store.write_table("claims", claims)
    store.write_json("env.json", env)
    made = front(df)  # what both reports open on
    summary = render(df, env, claims, partial=partial, timing=tdf, made=made)
    store.write_text("summary.md", summary)
    store.write_text("report.html", render_html(df, tdf, env, summary, made))
    return RunResult(store.path, df, tdf, env, new_difference_count(df), partial)


def _interrupt_on_sigterm() -> Any:
    """SIGTERM interrupts like Ctrl-C while the run goes (main thread only); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)
