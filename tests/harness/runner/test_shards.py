"""Shards balanced by cost (issue 20): LPT packing, the cost model, measured durations, the per-case times a run
records, and the plan a shard (or a resumed old shard) runs."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cases.generator import default_cases, mode_cases, timing_plan, with_float64
from cases.names import UsageError
from cases.shards import shard_cases, shard_of
from cases.spec import Case
from harness.runner.shards import (
    TimedJudge,
    balanced_split,
    case_key,
    lap_timer,
    measured,
    modelled,
    pack,
    planned_cases,
    subset,
    unit_costs,
    unit_of,
)

SELECTION = {"frameworks": ["numpy", "torch"], "devices": ["cpu"], "kinds": ["multiclass", "documented", "soft"],
             "dtypes": ["float32", "bfloat16", "float64"], "seed": 5, "timing": "full", "modes": None,
             "policies": None}  # fmt: skip
BUDGET = 0.15


def test_pack_is_lpt_worked_by_hand() -> None:
    # costliest first, each into the lightest bin (ties: key order, then the lowest bin):
    # a5 -> 0 (5); b4 -> 1 (4); c3 -> 1 (7); d3 -> 0 (8); e3 -> 1 (10)
    assert pack({"e": 3, "d": 3, "c": 3, "b": 4, "a": 5}, 2) == [["a", "d"], ["b", "c", "e"]]
    assert pack({"x": 1.0}, 3) == [["x"], [], []]


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_pack_partitions_and_bounds_the_largest_bin(n: int) -> None:
    costs = {f"u{i}": float((i * 7919) % 97 + 1) for i in range(60)}
    bins = pack(costs, n)
    assert sorted(k for b in bins for k in b) == sorted(costs), "every unit once"
    loads = [sum(costs[k] for k in b) for b in bins]
    assert max(loads) <= sum(costs.values()) / n + max(costs.values()), "LPT: at most one unit above the mean"
    assert pack(dict(reversed(costs.items())), n) == bins, "independent of the order the costs come in"


def test_the_split_partitions_the_cases_and_keeps_a_configuration_together() -> None:
    split = balanced_split(SELECTION, 4, BUDGET)
    cases = with_float64(default_cases(SELECTION["kinds"], SELECTION["dtypes"], 5))
    timed = {c.id for v in timing_plan("full", 5).values() for c in v}
    ids = [i for shard in split.ids for i in shard]
    assert sorted(ids) == sorted({c.id for c in cases} | timed) and len(ids) == len(set(ids))
    where = {i: k for k, shard in enumerate(split.ids) for i in shard}
    for c in cases:  # a lower dtype runs beside the float64 case that decides its semantics
        assert where[c.id] == where[unit_of(c)], c.id
    assert balanced_split(SELECTION, 4, BUDGET) == split, "deterministic"
    assert split.source == "cost model" and len(split.seconds) == 4


def test_the_split_is_balanced_where_the_crc_split_is_not() -> None:
    """The 4096 x 32000 timing case dominates a CRC shard; packed by cost, no shard exceeds the mean by more than
    the largest unit (and the largest shard is no larger than the CRC split's)."""
    units = unit_costs(SELECTION, BUDGET).units
    split = balanced_split(SELECTION, 3, BUDGET)
    mean = sum(units.values()) / 3
    assert max(split.seconds) <= mean + max(units.values())
    assert abs(sum(split.seconds) - sum(units.values())) < 1e-9
    model = modelled(SELECTION, BUDGET)
    per_case: dict[str, float] = {}
    for (cid, _, _), v in model.items():
        per_case[cid] = per_case.get(cid, 0.0) + v
    cases = with_float64(default_cases(SELECTION["kinds"], SELECTION["dtypes"], 5))
    timed = {c.id: c for v in timing_plan("full", 5).values() for c in v}
    crc = [0.0, 0.0, 0.0]
    for c in [*cases, *timed.values()]:
        crc[shard_of(c.id, 3) - 1] += per_case[case_key(c.id)]
    assert max(split.seconds) <= max(crc)
    top = sorted(units, key=lambda u: -units[u])[:3]
    assert all(u.startswith("timing:") for u in top), "the large timing cases cost the most"
    where = {u: k for k, shard in enumerate(split.ids) for u in {unit_of_id(i) for i in shard}}
    assert len({where[u] for u in top}) == 3, "the three costliest units go to three shards"


@functools.cache
def _selected() -> dict[str, Case]:
    return {c.id: c for c in with_float64(default_cases(SELECTION["kinds"], SELECTION["dtypes"], 5))}


def unit_of_id(case_id: str) -> str:
    """The unit of a case id of SELECTION (a timing case's id names its unit too)."""
    return unit_of(_selected()[case_id]) if case_id in _selected() else f"timing:{case_id}"


def test_the_model_counts_apis_modes_and_compiles() -> None:
    cost = modelled(SELECTION, BUDGET)
    sub = subset(SELECTION)
    eager = next(c for c in with_float64(default_cases(["multiclass"], ["float32"], 5)) if c.id not in sub)
    deep = next(c for c in with_float64(default_cases(["multiclass"], ["bfloat16"], 5)) if c.id in sub)
    assert cost[(case_key(deep.id), "torch", "accuracy")] > 100 * cost[(case_key(eager.id), "torch", "accuracy")]
    assert cost[("timing-n4096-c32000-f32-mean", "numpy", "cpu")] == 0.0, "the reference is not timed"


def _run_dir(path: Path, seconds: dict[str, float], timing: dict[str, float]) -> Path:
    path.mkdir()
    with open(path / "rows.jsonl", "w") as f:
        for cid, s in seconds.items():  # one line per (case, framework, device): its rows, each with case_s
            f.write(json.dumps([{"case_id": cid, "framework": "torch", "device": "cpu", "case_s": s}] * 2) + "\n")
    with open(path / "timing.jsonl", "w") as f:
        for cid, s in timing.items():
            f.write(json.dumps({"key": {"case_id": cid, "framework": "torch", "device": "cpu"}, "rows": [],
                                "case_s": s}) + "\n")  # fmt: skip
    return path


def test_durations_replace_the_model_and_scale_it_for_the_rest(tmp_path: Path) -> None:
    model = modelled(SELECTION, BUDGET)
    cases = with_float64(default_cases(SELECTION["kinds"], SELECTION["dtypes"], 5))
    known = [c for c in cases if c.kind == "soft"]
    # the previous run took 10x the model for the soft cases (another seed: matched without the seed suffix)
    seconds = {c.id.replace("-s5", "-s0"): 10 * model[(case_key(c.id), "torch", "accuracy")] for c in known}
    seconds[known[0].id.replace("-s5", "-s0")] += 50.0  # and one case far more
    run = _run_dir(tmp_path / "prev", seconds, {"timing-n256-c1000-f32-mean-s0": 7.0})
    got = measured(run)
    assert got[(case_key(known[0].id), "torch", "accuracy")] == pytest.approx(seconds[known[0].id.replace("-s5", "-s0")])
    costs = unit_costs(SELECTION, BUDGET, run)
    assert costs.source.startswith(f"durations {run} (") and "case runs measured" in costs.source
    measured_total = sum(seconds.values()) + 7.0
    modelled_total = sum(model[(case_key(c.id), "torch", "accuracy")] for c in known)
    modelled_total += model[("timing-n256-c1000-f32-mean", "torch", "cpu")]
    scale = measured_total / modelled_total
    other = next(c for c in cases if c.kind == "multiclass")
    mine = [c for c in cases if unit_of(c) == unit_of(other)]
    want = scale * sum(model[(case_key(c.id), fw, "accuracy")] for c in mine for fw in ("numpy", "torch"))
    assert costs.units[unit_of(other)] == pytest.approx(want), "unmeasured: the model, scaled to the measured"
    assert balanced_split(SELECTION, 3, BUDGET, run) != balanced_split(SELECTION, 3, BUDGET)


def test_durations_from_a_run_without_times_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "rows.jsonl").write_text(json.dumps([{"case_id": "x", "framework": "torch", "device": "cpu"}]))
    with pytest.raises(UsageError) as e:
        measured(tmp_path / "old")
    assert str(e.value) == ("Expected --durations RUN_DIR to be a run that recorded per-case times (rows.jsonl with "
                            f"case_s). Received: --durations={str(tmp_path / 'old')!r}")  # fmt: skip


def test_a_shard_runs_its_ids_and_an_old_shard_its_crc_split() -> None:
    sel = {**SELECTION, "timing": "off"}
    split = balanced_split(sel, 3, BUDGET)
    cases, timed, _ = planned_cases({**sel, "shard": [2, 3], "shard_ids": list(split.ids[1])})
    assert {c.id for c in cases} == set(split.ids[1]) and not any(timed.values())
    old, _, _ = planned_cases({**sel, "shard": [2, 3]})  # options.json of a run made before the balanced split
    assert [c.id for c in old] == [c.id for c in with_float64(shard_cases(default_cases(sel["kinds"], sel["dtypes"], 5), 2, 3))]


def test_the_deep_subset_is_chosen_from_the_whole_selection() -> None:
    """Each shard runs compiled, under policies and repeated exactly the cases the unsharded run does."""
    whole = mode_cases(with_float64(default_cases(SELECTION["kinds"], SELECTION["dtypes"], 5)))
    assert subset(SELECTION) == whole
    split = balanced_split(SELECTION, 3, BUDGET)
    shard_subsets = [mode_cases(planned_cases({**SELECTION, "shard": [k, 3], "shard_ids": list(split.ids[k - 1])})[0])
                     for k in (1, 2, 3)]  # fmt: skip
    assert set().union(*shard_subsets) != whole, "choosing per shard would run other cases deep"


class SlowJudge:
    def results(self, case: Any, adapter: Any, version: Any, device: str, results: Iterator[Any]) -> list[dict]:
        return [{"case_id": case.id, "value": r} for r in results]

    def without_numbers(self, case: Any, *args: Any) -> list[dict]:
        return [{"case_id": case.id, "outcome": "timeout"}]


def _slow(n: int, dt: float, fail: bool = False) -> Iterator[int]:
    for i in range(n):
        time.sleep(dt)
        yield i
    if fail:
        raise TimeoutError("worker timed out")


def test_a_timed_judge_stamps_the_seconds_a_case_took() -> None:
    case = default_cases(["soft"], ["float32"])[0]
    judge = TimedJudge(SlowJudge())  # type: ignore[arg-type]
    rows = judge.results(case, None, None, "cpu", _slow(3, 0.05))  # type: ignore[arg-type]
    assert len(rows) == 3 and len({r["case_s"] for r in rows}) == 1 and 0.15 <= rows[0]["case_s"] < 1.0
    with pytest.raises(TimeoutError):
        judge.results(case, None, None, "cpu", _slow(2, 0.05, fail=True))  # type: ignore[arg-type]
    rows = judge.without_numbers(case, None, None, "cpu", "timeout", "", ())  # type: ignore[arg-type]
    assert 0.1 <= rows[0]["case_s"] < 1.0, "a case that timed out costs the time it took"
    other = default_cases(["soft"], ["float64"])[0]
    assert judge.without_numbers(other, None, None, "cpu", "unsupported", "", ())[0]["case_s"] == 0.0  # type: ignore[arg-type]


def test_a_lap_timer_gives_the_seconds_since_the_last_lap() -> None:
    lap = lap_timer()
    time.sleep(0.05)
    first = lap()
    assert 0.05 <= first < 1.0 and lap() < first
