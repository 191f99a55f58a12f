"""Shards balanced by cost (``run --shard K/N``, ``launch --shards N``) and the per-case times that balance them.

A shard is a set of **units**: the cases of one configuration across its dtypes (they share the float64 case
that decides their semantics, harness/judge/semantics.py, so it runs once) and each timing case. Units are
packed greedily, the costliest first, each into the shard with the least cost so far (LPT, as pytest-split's
``least_duration`` and PyTorch CI's test sharding do): no shard exceeds the ideal N-th by more than the
largest unit. A unit's cost is its measured seconds in a previous run (``--durations RUN_DIR``: the
``case_s`` each run records per case, framework and device kind), else the cost model below scaled to the
measured ones; everything is deterministic: ties go by unit id, then to the lowest shard.

The cost model (seconds, roughly; only ratios matter): per accuracy case, framework, API, (mode, policy) and
call, ``CALL_S + elements * ELEMENT_S`` plus ``COMPILE_S`` per compiled (API, mode); per timing case, framework,
device list, API, mode and pass, the larger of the budget and three calls. It reads the case list and the
adapters' declarations only, never the machine, so every shard computes the same split on its own box.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from adapters import registry
from adapters.base import PASSES, Adapter, Result
from cases.generator import default_cases, mode_cases, timing_plan, with_float64
from cases.names import MODES, UsageError
from cases.shards import shard_cases
from cases.spec import Case
from harness.runner.accuracy import CaseJudge
from harness.runner.options import RunOptions, device_kind
from harness.runner.plan import Plan, case_plan, case_repeats
from harness.runner.store import RunStore

# Measured on a loaded 2-core machine (numpy and torch, multiclass and documented): ~0.1 s per case and framework
# of 2-4 recipe calls with their judging, 35-55 s for a case torch compiles (two recipes).
CALL_S = 0.02  # a call's fixed cost: the worker round trip, argument staging, judging and explaining its row
ELEMENT_S = 5e-9  # per input element and call (log-softmax and its gradient, float64, one core)
COMPILE_S = 20.0  # one torch.compile / jit_compile / jax.jit of a loss
TIMING_SAMPLES = 3  # a timing measurement takes at least this many calls, else its budget
SEED = re.compile(r"-s\d+$")
Key = tuple[str, str, str]  # (case id without its seed, framework, "accuracy" or the timing's device kind)


def case_key(case_id: str) -> str:
    """A case's id without the seed suffix: a previous run with another seed still says what a case costs."""
    return SEED.sub("", case_id)


def unit_of(case: Case) -> str:
    """The unit a case is packed in: a timing case alone; the others with their configuration's other dtypes
    (named by the float64 case's id, which `with_float64` adds where the selection lacks it)."""
    if case.kind == "timing":
        return f"timing:{case.id}"
    return case.id if case.dtype == "float64" else dataclasses.replace(case, dtype="float64").id


# -- what a selection runs (options.json's fields) ---------------------------------------------------------


def selected_cases(selection: Mapping[str, Any]) -> tuple[list[Case], dict[str, list[Case]]]:
    """The accuracy cases and the timing cases (per device kind) of a whole selection, before sharding."""
    cases = default_cases(selection["kinds"], selection["dtypes"], selection["seed"])
    return cases, timing_plan(selection.get("timing", "default"), selection["seed"])


def subset(selection: Mapping[str, Any]) -> frozenset[str]:
    """The cases that also run compiled, under policies and repeated (`cases.generator.mode_cases`), chosen from
    the whole selection, so a shard runs them exactly as the unsharded run does."""
    return mode_cases(with_float64(selected_cases(selection)[0]))


def planned_cases(selection: Mapping[str, Any]) -> tuple[list[Case], dict[str, list[Case]], int]:
    """The accuracy cases and the timing cases a run of `selection` (options.json) runs, its shard applied, and
    how many float64 cases were added to the accuracy ones (float64 decides every configuration's semantics).

    A shard keeps the case ids options.json lists (``shard_ids``, the balanced split); a shard of a run made
    before it (``shard`` without ids) keeps the CRC split it was started with, so --resume completes it."""
    cases, timed = selected_cases(selection)
    if selection.get("shard"):
        ids = selection.get("shard_ids")
        if ids is None:
            cases = shard_cases(cases, *selection["shard"])
            timed = {k: shard_cases(v, *selection["shard"]) for k, v in timed.items()}
        else:
            keep = set(ids)
            cases = [c for c in cases if c.id in keep]
            timed = {k: [c for c in v if c.id in keep] for k, v in timed.items()}
    full = with_float64(cases)
    return full, timed, len(full) - len(cases)


def planned_keys(selection: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The (case id, framework, device kind) runs of the accuracy pass a run of `selection` makes: what its
    rows.jsonl holds one line each of once complete."""
    cases = planned_cases(selection)[0]
    return [(c.id, fw, kind) for c in cases for fw in selection["frameworks"] for kind in selection["devices"]]


# -- the cost model -------------------------------------------------------------------------------------------


def _model_options(selection: Mapping[str, Any]) -> RunOptions:
    chosen = {k: None if selection.get(k) is None else tuple(selection[k]) for k in ("modes", "policies")}
    return RunOptions(frameworks=tuple(selection["frameworks"]), **chosen, mode_cases=subset(selection))


def call_seconds(case: Case) -> float:
    return CALL_S + math.prod(case.shape) * ELEMENT_S


def accuracy_cost(case: Case, adapter: Adapter, options: RunOptions) -> float:
    """Modelled seconds of one framework's rows of `case` on one device: APIs x recipes x (mode, policy) x calls."""
    plan: Plan = case_plan(adapter, case, options)
    apis = len(adapter.apis_for(case.spec))
    compiled = sum(mode != adapter.modes[0] for mode, _ in plan)
    calls = 2 * apis * len(plan) * case_repeats(case, options)  # native and matched
    return calls * call_seconds(case) + 2 * apis * compiled * COMPILE_S


def timing_cost(case: Case, adapter: Adapter, budget_s: float) -> float:
    """Modelled seconds of timing `case` in one framework on one device (harness/runner/worker.py, `time_case`)."""
    if type(adapter).timer is Adapter.timer:
        return 0.0
    per = max(budget_s, TIMING_SAMPLES * call_seconds(case)) + call_seconds(case)  # the budget, then a warm-up
    apis = len(adapter.apis_for(case.spec))
    return apis * len(MODES) * len(PASSES) * per + apis * COMPILE_S


def modelled(selection: Mapping[str, Any], budget_s: float) -> dict[Key, float]:
    """The cost model's seconds per (case, framework, pass) of the whole selection. Accuracy cases are costed
    once, whatever the devices (the split must not depend on the devices a machine has); timing cases per
    device list they are in."""
    cases, timed = selected_cases(selection)
    options = _model_options(selection)
    adapters = {fw: registry.load(fw) for fw in selection["frameworks"]}
    out: dict[Key, float] = {}
    for case in with_float64(cases):
        for fw, adapter in adapters.items():
            out[(case_key(case.id), fw, "accuracy")] = accuracy_cost(case, adapter, options)
    for kind, mine in timed.items():
        for case in mine:
            for fw, adapter in adapters.items():
                out[(case_key(case.id), fw, kind)] = timing_cost(case, adapter, budget_s)
    return out


# -- measured times ---------------------------------------------------------------------------------------------


def measured(run_dir: str | Path) -> dict[Key, float]:
    """Seconds per (case, framework, pass) a previous run took: the ``case_s`` of its rows.jsonl lines (summed
    over device kinds) and timing.jsonl lines (per device kind), and of its shards' (a launched run keeps them
    under ``shards/``). A one-line UsageError where it recorded none."""
    run_dir = Path(run_dir)
    out: dict[Key, float] = {}
    for path in [run_dir, *sorted(p for p in (run_dir / "shards").glob("*") if p.is_dir())]:
        store = RunStore(path)
        for line in store.rows():
            if line and "case_s" in line[0]:
                row = line[0]
                key = (case_key(row["case_id"]), row["framework"], "accuracy")
                out[key] = out.get(key, 0.0) + float(row["case_s"])
        for line in store.rows(store.TIMING):
            if "case_s" in line:
                k = line["key"]
                key = (case_key(k["case_id"]), k["framework"], device_kind(k["device"]))
                out[key] = out.get(key, 0.0) + float(line["case_s"])
    if not out:
        raise UsageError(
            f"Expected --durations RUN_DIR to be a run that recorded per-case times (rows.jsonl with case_s). "
            f"Received: --durations={str(run_dir)!r}"
        )
    return out


@dataclasses.dataclass(frozen=True)
class Costs:
    """Seconds per unit, and where they came from."""

    units: dict[str, float]
    source: str  # "cost model" or "durations RUN_DIR (k of n case runs measured)"


def unit_costs(selection: Mapping[str, Any], budget_s: float, durations: str | Path | None = None) -> Costs:
    """Each unit's cost: the model's, or the measured seconds of `durations` with the model, scaled to them,
    for what that run did not measure (a new case, framework or dtype)."""
    model = modelled(selection, budget_s)
    source = "cost model"
    cost = dict(model)
    if durations is not None:
        seen = measured(durations)
        both = [k for k in model if k in seen]
        scale = sum(seen[k] for k in both) / max(sum(model[k] for k in both), 1e-12) if both else 1.0
        cost = {k: seen[k] if k in seen else v * scale for k, v in model.items()}
        source = f"durations {durations} ({len(both)} of {len(model)} case runs measured)"
    per_case: dict[str, float] = {}
    for (case, _, _), v in cost.items():
        per_case[case] = per_case.get(case, 0.0) + v
    units: dict[str, float] = {}
    for case in _all_cases(selection):
        units[unit_of(case)] = units.get(unit_of(case), 0.0) + per_case.get(case_key(case.id), 0.0)
    return Costs(units, source)


def _all_cases(selection: Mapping[str, Any]) -> list[Case]:
    """The accuracy cases (float64 partners included) and each timing case once, in the selection's order."""
    cases, timed = selected_cases(selection)
    return [*with_float64(cases), *{c.id: c for v in timed.values() for c in v}.values()]


def pack(costs: Mapping[str, float], n: int) -> list[list[str]]:
    """`costs`' keys in `n` bins by the LPT rule: costliest first (ties by key), each into the bin with the least
    total so far (ties to the lowest bin). Deterministic; the largest bin exceeds the mean by at most one item."""
    bins: list[list[str]] = [[] for _ in range(n)]
    load = [0.0] * n
    for key in sorted(costs, key=lambda k: (-costs[k], k)):
        i = min(range(n), key=lambda j: (load[j], j))
        bins[i].append(key)
        load[i] += costs[key]
    return bins


@dataclasses.dataclass(frozen=True)
class Split:
    """The N shards of a selection: each one's case ids (accuracy and timing) and modelled or measured seconds."""

    ids: tuple[tuple[str, ...], ...]
    seconds: tuple[float, ...]
    source: str


def balanced_split(
    selection: Mapping[str, Any], n: int, budget_s: float, durations: str | Path | None = None
) -> Split:
    """Shards 1..n of `selection`'s cases packed by cost (module docstring); each lists its cases in the
    selection's order, float64 partners included."""
    costs = unit_costs(selection, budget_s, durations)
    bins = pack(costs.units, n)
    where = {unit: i for i, units in enumerate(bins) for unit in units}
    ids: list[list[str]] = [[] for _ in range(n)]
    for case in _all_cases(selection):
        ids[where[unit_of(case)]].append(case.id)
    seconds = tuple(sum(costs.units[u] for u in b) for b in bins)
    return Split(tuple(tuple(i) for i in ids), seconds, costs.source)


# -- recording what a case took ---------------------------------------------------------------------------------


class TimedJudge:
    """A `CaseJudge` that stamps each row with ``case_s``: the seconds its case took in its framework's worker
    (the whole call of the judge, which consumes the worker's results; for a case that died or timed out, the
    call that failed). rows.jsonl keeps it; the accuracy table does not (it is a cost, not a result)."""

    def __init__(self, judge: CaseJudge) -> None:
        self.judge = judge
        self._last = threading.local()  # (case id, seconds) of this job thread's last results call

    def results(
        self, case: Case, adapter: Adapter, version: str | None, device: str, results: Iterable[Result]
    ) -> list[dict[str, Any]]:
        t0 = time.perf_counter()
        try:
            rows = self.judge.results(case, adapter, version, device, results)
        finally:
            self._last.value = (case.id, time.perf_counter() - t0)
        return stamped(rows, self._last.value[1])

    def without_numbers(
        self, case: Case, adapter: Adapter, version: str | None, device: str, outcome: str, error: str, plan: Plan
    ) -> list[dict[str, Any]]:
        rows = self.judge.without_numbers(case, adapter, version, device, outcome, error, plan)
        last = getattr(self._last, "value", None)
        return stamped(rows, last[1] if last and last[0] == case.id else 0.0)


def stamped(rows: list[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    for row in rows:
        row["case_s"] = round(seconds, 6)
    return rows


def lap_timer() -> Callable[[], float]:
    """Seconds since the previous call (the first: since this was made): a timing line's ``case_s``."""
    last = [time.perf_counter()]

    def lap() -> float:
        now = time.perf_counter()
        took, last[0] = now - last[0], now
        return round(took, 6)

    return lap
