"""The CI sweep example (.github/workflows/sweep.yml, issue 20), checked offline: it parses as YAML, its jobs and
steps use only keys GitHub Actions knows (a small schema), the shard matrix agrees with the shard count, the
merge job waits for every shard, and each `python -m harness` command it runs parses with this CLI."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from harness.cli import parser

yaml = pytest.importorskip("yaml", reason="PyYAML (the test extra) reads the workflow")

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "sweep.yml"
JOB_KEYS = {"name", "runs-on", "needs", "if", "steps", "strategy", "timeout-minutes", "env", "permissions",
            "outputs", "continue-on-error", "container", "services", "concurrency", "defaults", "environment"}  # fmt: skip
STEP_KEYS = {"name", "id", "uses", "run", "with", "env", "if", "shell", "working-directory", "continue-on-error",
             "timeout-minutes"}  # fmt: skip
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def test_the_workflow_is_started_by_hand_and_reads_only(workflow: dict[str, Any]) -> None:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(on) == {"workflow_dispatch"} and workflow["permissions"] == {"contents": "read"}
    assert set(workflow) <= {"name", "on", True, "permissions", "env", "jobs", "concurrency", "defaults"}


def test_jobs_and_steps_use_known_keys(workflow: dict[str, Any]) -> None:
    for name, job in workflow["jobs"].items():
        assert set(job) <= JOB_KEYS, (name, set(job) - JOB_KEYS)
        for step in job["steps"]:
            assert set(step) <= STEP_KEYS and ("uses" in step) != ("run" in step), (name, step)
            if "uses" in step:
                assert re.fullmatch(r"actions/[a-z-]+@v\d+", step["uses"]), step["uses"]


def test_shards_run_on_a_matrix_of_machines_and_one_job_merges_them(workflow: dict[str, Any]) -> None:
    shard, merge = workflow["jobs"]["shard"], workflow["jobs"]["merge"]
    matrix = shard["strategy"]["matrix"]
    assert matrix["shard"] == list(range(1, workflow["env"]["SHARDS"] + 1)), "the matrix covers shards 1..SHARDS"
    assert len(matrix["machine"]) >= 2 and all({"name", "label"} <= set(m) for m in matrix["machine"])
    assert len({m["name"] for m in matrix["machine"]}) == len(matrix["machine"]), "machines named apart"
    assert shard["runs-on"] == "${{ matrix.machine.label }}" and shard["strategy"]["fail-fast"] is False
    assert merge["needs"] in ("shard", ["shard"]) and "!cancelled()" in merge["if"], "merges what the shards left"
    upload = next(s for s in shard["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert {"matrix.machine.name", "matrix.shard"} <= set(EXPRESSION.findall(upload["with"]["name"])), "unique"
    download = next(s for s in merge["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"]["merge-multiple"] is True and download["with"]["pattern"] == "run-*"


def _commands(workflow: dict[str, Any]) -> list[list[str]]:
    """Each `python -m harness ...` the workflow runs, expressions replaced by a value of their kind."""
    values = {"matrix.shard": "2", "env.SHARDS": "3", "inputs.timing": "default"}
    out = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            text = EXPRESSION.sub(lambda m: values.get(m.group(1), "x"), step.get("run", ""))
            for line in text.replace("\\\n", " ").splitlines():
                words = shlex.split(line)
                if words[:3] == ["python", "-m", "harness"]:
                    out.append(words[3:])
    return out


def test_the_harness_commands_it_runs_exist(workflow: dict[str, Any]) -> None:
    commands = _commands(workflow)
    assert [c[0] for c in commands] == ["run", "report"]
    run = parser().parse_args(commands[0])
    assert run.shard == "2/3" and run.machine == "x" and run.out is not None, "a shard named after its machine"
    report = parser().parse_args(commands[1])
    assert report.out is not None and report.publish is not None
    with pytest.raises(ValueError, match="unrecognized arguments"):  # the check can fail
        parser().parse_args([*commands[0], "--no-such-option"])
