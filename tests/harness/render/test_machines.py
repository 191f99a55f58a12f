"""Machines side by side (issue 20): the configuration matrix has a CPU and a GPU column per framework (per
machine in a merged report), and `compare` pairs the rows of merged runs by machine."""

from __future__ import annotations

import pandas as pd

from harness.judge.rows import with_columns
from harness.render.compare import by_machine, changes
from harness.render.tables import config_matrix

ROW = {"run_id": "r", "case_id": "multiclass-n64-c10-f32-mean-s0", "kind": "multiclass", "family": "softmax",
       "input": "logits", "target": "index", "weighted": False, "sample_weighted": False, "ignore_index": None,
       "label_smoothing": 0.0, "reduction": "mean", "shape": "64x10", "dtype": "float32", "framework": "torch",
       "framework_version": "2", "api": "torch.nn.functional.cross_entropy", "recipe": "native", "device": "cpu",
       "mode": "eager", "policy": "none", "outcome": "ok", "explanation": "", "value": 1.0, "value_rel_err": 0.0,
       "grad_rel_err": 0.0, "tol": 1e-5}  # fmt: skip


def frame(*rows: dict) -> pd.DataFrame:
    return with_columns(pd.DataFrame([{**ROW, **r} for r in rows]))


def test_one_device_keeps_one_column_per_framework() -> None:
    m = config_matrix(frame({}, {"recipe": "matched"}))
    assert list(m.columns) == ["configuration", "torch"]


def test_a_cpu_and_a_gpu_column_per_framework() -> None:
    rows = [{"device": d, "recipe": r, "framework": f} for d in ("cuda:0", "cpu") for r in ("native", "matched")
            for f in ("torch", "numpy")]  # fmt: skip
    rows.append({"device": "cuda:0", "recipe": "native", "framework": "torch", "outcome": "mismatch",
                 "explanation": "computed_in=float16", "case_id": "multiclass-n64-c10-f16-mean-s0",
                 "dtype": "float16"})  # fmt: skip
    m = config_matrix(frame(*rows))
    assert list(m.columns) == ["configuration", "numpy · cpu", "numpy · cuda:0", "torch · cpu", "torch · cuda:0"]
    assert m.iloc[0]["torch · cpu"] == "native ✓ · matched ✓"
    assert m.iloc[0]["torch · cuda:0"].startswith("native ✗ computed_in=float16 (float16)")


def test_a_device_where_nothing_ran_has_no_column() -> None:
    m = config_matrix(frame({}, {"device": "gpu", "outcome": "unsupported"}))
    assert list(m.columns) == ["configuration", "torch · cpu"]


def test_machines_of_a_merged_report_stand_side_by_side() -> None:
    """write_merged names each row's device with its machine when there are several (``box: cpu``)."""
    rows = [{"device": f"{m}: {d}"} for m in ("lab-h100", "ci-x64") for d in ("cpu", "cuda:0") if (m, d) != ("ci-x64", "cuda:0")]
    cols = list(config_matrix(frame(*rows)).columns)
    assert cols == ["configuration", "torch · lab-h100: cpu", "torch · ci-x64: cpu", "torch · lab-h100: cuda:0"]


def test_compare_pairs_merged_runs_by_machine_and_runs_of_two_machines_across() -> None:
    a = frame({}, {"value": 2.0, "outcome": "ok"}).assign(machine=["x64", "arm64"])
    b = frame({}, {"outcome": "mismatch", "value_rel_err": 0.5}).assign(machine=["x64", "arm64"])
    assert by_machine(a, b)
    ch = changes(a, b)
    assert ch.matched == 2 and ch.only_a == ch.only_b == 0, "each machine's row with its own"
    assert list(ch.outcomes["device"]) == ["arm64: cpu"], "the changed row says which machine"
    other = frame({}).assign(machine=["lab-h100"])
    assert not by_machine(a.iloc[:1], other), "two machines' runs compare across machines"
    assert changes(a.iloc[:1], other).matched == 1
