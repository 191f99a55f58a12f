"""A run directory read back (`RunFiles`): its tables, env.json, options and summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cases.names import UsageError
from harness.judge.rows import accuracy_frame, with_columns
from harness.runner.store import RunStore
from harness.runner.timings import timing_frame


@dataclass(frozen=True)
class RunFiles:
    """What one run directory holds (timing and summary may be missing)."""

    path: Path
    accuracy: pd.DataFrame
    timing: pd.DataFrame | None
    env: dict[str, Any]
    options: dict[str, Any]
    summary_md: str
    claims: pd.DataFrame | None = None


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def load_run(run_dir: Path) -> RunFiles:
    """Read a run directory; a killed run without the .parquet files is read from its .jsonl lines."""
    run_dir = Path(run_dir)
    store = RunStore(run_dir)
    if (run_dir / "accuracy.parquet").is_file():
        accuracy = with_columns(pd.read_parquet(run_dir / "accuracy.parquet"))
    elif (run_dir / store.ROWS).is_file():
        accuracy = accuracy_frame([row for line in store.rows() for row in line])
    else:
        raise UsageError(f"Expected a run directory with accuracy.parquet. Received: {str(run_dir)!r}")
    timing = None
    if (run_dir / "timing.parquet").is_file():
        timing = pd.read_parquet(run_dir / "timing.parquet")
    elif (run_dir / store.TIMING).is_file():
        timing = timing_frame([row for line in store.rows(store.TIMING) for row in line["rows"]])
    summary = run_dir / "summary.md"
    claims = pd.read_parquet(run_dir / "claims.parquet") if (run_dir / "claims.parquet").is_file() else None
    options = _json(run_dir / "options.json") or _json(run_dir / "launch.json").get("options", {})  # a launch's
    return RunFiles(run_dir, accuracy, timing, _json(run_dir / "env.json"), options,
                    summary.read_text() if summary.is_file() else "", claims)  # fmt: skip
