"""Several runs as one: shards of a case set (``run --shard K/N``) and runs on other machines.

A run directory is read into `RunFiles`; `merge_runs` concatenates the runs' tidy frames with a
`machine` column, so rows from two machines (or two devices) stay distinct while the same row from two
shards is counted once.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cases.names import UsageError
from harness.render.html import write_html
from harness.render.load import RunFiles, load_run
from harness.render.summary import render
from harness.runner.options import device_kind
from harness.runner.shards import planned_keys
from harness.runner.store import RunStore

ACCURACY_KEY = ("machine", "case_id", "framework", "api", "recipe", "device", "mode", "policy")
TIMING_KEY = ("machine", "case_id", "framework", "api", "device", "mode", "pass")
RUN_FIELDS = ("run_id", "utc_time", "git_commit", "command")  # what a merged env.json lists of each run
# options.json fields that make runs' rows incomparable when they differ (a shard is meant to differ)
COMPARED_OPTIONS = ("seed", "frameworks", "devices", "kinds", "dtypes", "timing")


class MergeWarning(UserWarning):
    """Runs merged into one report differ in seed, options or framework versions."""


class IncompleteWarning(UserWarning):
    """Runs merged into one report lack rows their options planned (a shard killed, failed or not yet run)."""


MISSING_LISTED = 20  # case runs a merged env.json names per run (all are counted)


def missing_case_runs(run: RunFiles) -> list[str]:
    """The accuracy runs (``case framework device``) the run's options.json plans and its table lacks: what
    ``run --resume`` would still do. Looked for in shards and in runs that were interrupted or killed (no
    env.json); empty for a run without options (a merged one)."""
    if not {"kinds", "dtypes", "frameworks", "devices", "seed"} <= run.options.keys():
        return []
    if not (run.options.get("shard") or run.env.get("partial") or not run.env):
        return []  # a run that finished did what it planned
    df = run.accuracy
    have = set(zip(df["case_id"], df["framework"], df["device"].map(device_kind), strict=True))
    return [" ".join(k) for k in planned_keys(run.options) if k not in have]


def incomplete(runs: Sequence[RunFiles]) -> dict[str, Any]:
    """env.json's ``missing``: per run that lacks planned rows, how many case runs and the first ones."""
    out = {}
    for r in runs:
        if lacking := missing_case_runs(r):
            out[str(r.path)] = {"case_runs": len(lacking), "first": lacking[:MISSING_LISTED]}
    return out


def missing_line(missing: dict[str, Any]) -> str:
    """One line naming the runs that lack rows, how many, and the first of them, or '' if none does."""
    if not missing:
        return ""
    parts = [f"{path}: {m['case_runs']} (first: {m['first'][0]})" for path, m in missing.items()]
    total = sum(m["case_runs"] for m in missing.values())
    return (f"the merged runs lack {total} planned case runs, so their rows are missing ({'; '.join(parts)}); "
            "complete a run with `python -m harness run --resume RUN_DIR` and merge again")  # fmt: skip


def run_differences(runs: Sequence[RunFiles]) -> str:
    """One line naming what the runs differ in (seed, options, framework versions), or '' if nothing."""
    found = []
    for key in COMPARED_OPTIONS:
        values = list(dict.fromkeys(str(r.options.get(key)) for r in runs if r.options and key in r.options))
        if len(values) > 1:
            found.append(f"{key} ({' | '.join(values)})")
    names = dict.fromkeys(n for r in runs for n in r.env.get("frameworks", {}))
    for name in names:
        versions = [str(r.env.get("frameworks", {}).get(name, {}).get("version")) for r in runs]
        if len(set(versions)) > 1:
            found.append(f"{name} version ({' | '.join(dict.fromkeys(versions))})")
    return f"the merged runs differ in {', '.join(found)}" if found else ""


def machine_name(env: dict[str, Any]) -> str:
    """A stable, readable name for the machine a run used: env["machine"] if the run recorded one,
    else the CPU model and core count, then the GPU names (not the hostname: cloud hosts of the same
    kind get random names, and shards run on them belong together)."""
    if env.get("machine"):
        return str(env["machine"])
    gpus = env.get("gpus") or env.get("gpu") or []
    gpus = [gpus] if isinstance(gpus, str) else [str(g) for g in gpus]
    cpu = str(env.get("cpu") or "unknown CPU")
    if env.get("cpu_count"):
        cpu += f" ({env['cpu_count']} cores)"
    return " / ".join([cpu, *dict.fromkeys(gpus)])


def _with_machine(df: pd.DataFrame, machine: str) -> pd.DataFrame:
    """`df` with a machine column after run_id; a merged run keeps the machines its rows came from."""
    if "machine" in df.columns:
        return df.assign(machine=df["machine"].fillna(machine))
    df = df.copy()
    df.insert(1 if "run_id" in df.columns else 0, "machine", machine)
    return df


def _concat(frames: Sequence[pd.DataFrame], key: Sequence[str]) -> pd.DataFrame:
    df = pd.concat(frames, ignore_index=True)
    return df.drop_duplicates(subset=[k for k in key if k in df.columns], keep="first").reset_index(drop=True)


def merged_env(runs: Sequence[RunFiles]) -> dict[str, Any]:
    """env.json of a merged report: the first run's fields, every run listed, versions that differ joined."""
    envs = [r.env for r in runs]
    machines = list(dict.fromkeys(m for e in envs for m in (e.get("machines") or [machine_name(e)])))
    if len(runs) == 1:
        return {**envs[0], "machines": machines}
    frameworks: dict[str, dict[str, Any]] = {}
    for env in envs:
        for name, info in env.get("frameworks", {}).items():
            have = frameworks.setdefault(name, dict(info))
            versions = str(have.get("version") or "").split(" | ")
            if info.get("version") and info["version"] not in versions:
                have["version"] = " | ".join(v for v in [*versions, info["version"]] if v)
    return {
        **envs[0],
        "run_id": "merged: " + ", ".join(str(e.get("run_id", r.path.name)) for e, r in zip(envs, runs, strict=True)),
        "frameworks": frameworks,
        "machines": machines,
        "partial": any(e.get("partial") for e in envs),
        "runs": [
            {"path": str(r.path), "machine": machine_name(e), **{k: e.get(k, "") for k in RUN_FIELDS}}
            for e, r in zip(envs, runs, strict=True)
        ],
    }


@dataclass(frozen=True)
class Merged:
    """Several runs' tables as one, with a `machine` column, and their env.json."""

    accuracy: pd.DataFrame
    timing: pd.DataFrame | None
    claims: pd.DataFrame | None
    env: dict[str, Any]
    differences: str = ""  # what the runs differ in (`run_differences`), '' if nothing
    missing: str = ""  # which planned rows the runs lack (`missing_line`), '' if none


def _merge(runs: Sequence[RunFiles]) -> Merged:
    accuracy = _concat([_with_machine(r.accuracy, machine_name(r.env)) for r in runs], ACCURACY_KEY)
    timings = [_with_machine(r.timing, machine_name(r.env)) for r in runs if r.timing is not None]
    timing = _concat(timings, TIMING_KEY) if timings else None
    found = [r.claims for r in runs if r.claims is not None]
    claims = pd.concat(found, ignore_index=True).drop_duplicates(["case_id", "label"]) if found else None
    env, missing = merged_env(runs), incomplete(runs)
    if missing:
        env = {**env, "partial": True, "missing": missing}
    return Merged(accuracy, timing, claims, env, run_differences(runs), missing_line(missing))


def merge_runs(run_dirs: list[Path]) -> Merged:
    """Concatenate several runs' accuracy (and timing, claims) frames with a `machine` column.

    Rows stay distinct by (machine, case, framework, api, recipe, device); the same row in two runs
    (overlapping shards, a run given twice) is kept once, from the first run listed.
    """
    if not run_dirs:
        raise UsageError("Expected at least one run directory. Received: none")
    return _merge([load_run(p) for p in run_dirs])


def write_merged(run_dirs: list[Path], out: Path) -> Path:
    """`report RUN_DIR RUN_DIR ... --out DIR`: the merged frames, env.json, summary.md and report.html in
    `out` (never a run's own directory). Returns the report's path."""
    out = Path(out)
    if (out / RunStore.ROWS).exists() or (out / "options.json").exists():
        raise UsageError(f"Expected an --out directory without a run in it. Received: --out={str(out)!r}")
    merged = merge_runs(run_dirs)
    if merged.differences:
        warnings.warn(merged.differences, MergeWarning, stacklevel=2)
    if merged.missing:
        warnings.warn(merged.missing, IncompleteWarning, stacklevel=2)
    accuracy, timing, env = merged.accuracy, merged.timing, {**merged.env, "differences": merged.differences}
    out.mkdir(parents=True, exist_ok=True)
    store = RunStore(out)
    store.write_table("accuracy", accuracy)
    if timing is not None:
        store.write_table("timing", timing)
    if merged.claims is not None:
        store.write_table("claims", merged.claims)
    store.write_json("env.json", env)
    # summary.md's cells are per device: with several machines, the machine goes into the device label
    if len(env["machines"]) > 1:
        accuracy = accuracy.assign(device=accuracy["machine"] + ": " + accuracy["device"])
        timing = None if timing is None else timing.assign(device=timing["machine"] + ": " + timing["device"])
    summary = render(accuracy, env, merged.claims, partial=bool(env.get("partial")), timing=timing)
    store.write_text("summary.md", summary)
    return write_html(out)
