"""The version-to-version table: what changed between two installs of one framework."""

from __future__ import annotations

import math

import pandas as pd

from harness.render.versions import version_pairs, versions_frame


def rows(framework: str, version: str, values: list[float], outcomes: list[str], grad: list[float]) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({
        "case_id": [f"c{i}" for i in range(n)], "api": "jax.f", "recipe": "matched", "mode": "compiled",
        "policy": "none", "device": "cpu", "framework": framework, "framework_version": version,
        "value": values, "ref_value": [2.0] * n, "outcome": outcomes, "grad_rel_err": grad,
    })  # fmt: skip


def test_pairs_only_installs_of_a_framework_present() -> None:
    assert version_pairs(pd.Series(["jax", "jax@new", "torch@x", "numpy"])) == [("jax", "jax@new")]


def test_unchanged_installs_show_no_change() -> None:
    df = pd.concat([rows("jax", "0.10.2", [2.0, 3.0], ["ok", "ok"], [1e-7, 0.0]),
                    rows("jax@new", "0.9.2", [2.0, 3.0], ["ok", "ok"], [1e-7, 0.0])])  # fmt: skip
    v = versions_frame(df).iloc[0]
    assert (v["A"], v["B"], v["rows"], v["outcomes changed"]) == ("jax 0.10.2", "jax@new 0.9.2", 2, 0)
    assert v["value change"] == 0.0 and v["grad change"] == 0.0 and math.isnan(v["time B/A"])


def test_a_changed_value_outcome_and_speed_are_reported() -> None:
    df = pd.concat([rows("jax", "0.10.2", [2.0, 3.0], ["ok", "ok"], [1e-7, 0.0]),
                    rows("jax@new", "0.9.2", [2.0, 3.5], ["ok", "mismatch"], [1e-7, 0.25])])  # fmt: skip
    timing = pd.DataFrame({"case_id": ["c0", "c0"], "api": "jax.f", "device": "cpu", "mode": "compiled",
                           "pass": "forward", "framework": ["jax", "jax@new"], "median_s": [1e-3, 3e-3]})  # fmt: skip
    v = versions_frame(df, timing).iloc[0]
    assert v["outcomes changed"] == 1 and v["example"] == "c1 jax.f matched: ok -> mismatch"
    assert v["value change"] == 0.25  # |3.5 - 3.0| / |2.0|
    assert v["grad change"] == 0.25 and abs(v["time B/A"] - 3.0) < 1e-12
