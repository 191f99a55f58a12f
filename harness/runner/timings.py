"""The timing pass: every framework API's matched recipe timed on the timing cases, one framework at a
time, each in a fresh worker per device; and the `timing` table's rows (docs/DESIGN.md, "Results")."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd

from adapters import registry
from adapters.base import Adapter
from cases.names import ITEMSIZE
from cases.spec import Case
from harness.runner.accuracy import Sink
from harness.runner.env import no_gpu_reason
from harness.runner.options import RunOptions
from harness.runner.progress import Progress
from harness.runner.timing import copy_bandwidth_gbps
from harness.runner.worker import Interrupted, TimingRequest, Worker, WorkerDied

TIMING_COLUMNS = (
    "run_id", "case_id", "shape", "dtype", "framework", "framework_version", "api", "device", "mode", "pass",
    "median_s", "iqr_s", "samples", "compile_s", "bytes_min", "gbps", "roofline_frac", "threads",
    "peak_bytes", "peak_by",
)  # fmt: skip


def bytes_min(case: Case, pass_: str) -> int:
    """The fewest bytes a loss call must move: read x, targets and weights, write the loss, and for
    forward+backward also write the gradient (a fused kernel reads x once for both). A linear head's x is E, and
    W (and b) are read and their gradients written too: never its N x C logits. Also the least memory the call
    holds at once (`peak_bytes`' floor): its inputs and outputs."""
    item = ITEMSIZE[case.dtype]
    x = (case.shape[0] * case.hidden if case.hidden else math.prod(case.shape)) * item
    if case.hidden:  # the classifier [W | b] is read, and differentiated, like x
        x += case.n_classes * (case.hidden + case.spec.bias) * item
    target = case.n_elements * 8 if case.spec.target == "index" else x
    weight = case.n_classes * item if case.spec.weighted else 0
    out = item if case.spec.reduction != "none" else case.n_elements * item
    return x + target + weight + out + (x if pass_ == "forward_backward" else 0)


def timing_row(
    run_id: str, case: Case, framework: str, version: str | None, device: str, api: str, mode: str, pass_: str,
    measurement, bandwidth_gbps: float | None, threads: int | None, peak: tuple[int | None, str] = (None, ""),
) -> dict[str, Any]:  # fmt: skip
    """One timing row; `measurement` is a harness.runner.timing.Measurement; `peak` the call's measured peak above
    its staged inputs and what counted it (harness/runner/peak.py): the row's peak_bytes adds those inputs, so it
    compares with bytes_min (inputs and outputs, the floor)."""
    b = bytes_min(case, pass_)
    grown, by = peak
    gbps = b / measurement.median_s / 1e9
    return {
        "run_id": run_id, "case_id": case.id, "shape": case.shape_str, "dtype": case.dtype, "framework": framework,
        "framework_version": version or "", "api": api, "device": device, "mode": mode, "pass": pass_,
        "median_s": measurement.median_s, "iqr_s": measurement.iqr_s, "samples": len(measurement.samples),
        "compile_s": measurement.compile_s if mode == "compiled" else float("nan"), "bytes_min": b, "gbps": gbps,
        "roofline_frac": gbps / bandwidth_gbps if bandwidth_gbps else float("nan"), "threads": threads or 0,
        "peak_bytes": float("nan") if grown is None else bytes_min(case, "forward") - _output(case) + grown,
        "peak_by": by,
    }  # fmt: skip


def _output(case: Case) -> int:
    """The loss' bytes in `bytes_min` (what `bytes_min(case, "forward")` adds to the inputs)."""
    item = ITEMSIZE[case.dtype]
    return item if case.spec.reduction != "none" else case.n_elements * item


def _timing_plan(
    cases: dict[str, Sequence[Case]], options: RunOptions, skip: frozenset[tuple[str, str, str]]
) -> Iterator[tuple[str, str, list[Case] | None, str | None]]:
    """(framework, kind, cases to time, reason not to) in the order they are timed; cases is None
    for a framework without a timing hook, reason is set where no worker is needed to know."""
    for framework in options.frameworks:
        adapter = registry.load(framework)
        if type(adapter).timer is Adapter.timer:
            yield framework, "", None, f"{adapter.name} has no timing hook (the float64 reference is not timed)"
            continue
        for kind in options.devices:
            todo = [c for c in cases.get(kind, ()) if (c.id, adapter.name, kind) not in skip]
            here = options.interpreter(framework) is None  # else what is installed there, its worker says
            reason = (adapter.unavailable() if here else None) or (no_gpu_reason() if kind == "gpu" else None)
            if todo:
                yield framework, kind, todo, reason


def _timing_worker(framework: str, kind: str, todo: Sequence[Case], options: RunOptions) -> Worker:
    """A started (not yet greeted) timing worker: it warms its compiler up on `todo` while the caller goes on."""
    worker = Worker(framework, kind, options.debug, options.threads, timing=True, warm=todo,
                    python=options.interpreter(framework))  # fmt: skip
    worker.spawn()
    return worker


class WarmingWorkers:
    """The timing workers, started during the accuracy pass `AT_ONCE` at a time: each imports its framework and
    warms its compiler up (`worker.warm_up`), and the next starts once one has said hello. Few warm-ups at a time
    compete with the accuracy jobs for the cores: eight at once (each with a thread pool sized for the whole
    machine) thrashed a 2-core machine and slowed the accuracy pass by more than the warm-ups cost.

    `ready()` waits for the last warm-up, so that nothing warms up while `run_timing` times; `kill()` stops
    starting workers and kills those started (an interrupted run).
    """

    AT_ONCE = 2

    def __init__(
        self, cases: dict[str, Sequence[Case]], options: RunOptions, skip: frozenset[tuple[str, str, str]] = frozenset()
    ) -> None:
        self.options = options
        plan = _timing_plan(cases, options, skip)
        self.todo = [(fw, kind, todo) for fw, kind, todo, reason in plan if todo and not reason]
        self.workers: dict[tuple[str, str], Worker] = {}
        self.failed: dict[tuple[str, str], WorkerDied] = {}  # why a worker did not say hello
        self._next = iter(self.todo)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._start_each, name=f"timing-warm-up-{k}", daemon=True)
                         for k in range(self.AT_ONCE)]  # fmt: skip
        for thread in self._threads:
            thread.start()

    def _start_each(self) -> None:
        while True:
            with self._lock:
                framework, kind, todo = next(self._next, (None, None, None))
                if framework is None or self._stop.is_set():
                    return
                worker = self.workers[(framework, kind)] = _timing_worker(framework, kind, todo, self.options)
            try:
                worker.handshake()  # returns once its warm-up is done
            except WorkerDied as e:
                self.failed[(framework, kind)] = e
            except OSError:  # `kill()` closed its connection while it warmed up (an interrupted run)
                return

    def ready(self) -> dict[tuple[str, str], Worker]:
        """The started workers, once every warm-up is done."""
        for thread in self._threads:
            thread.join()
        return self.workers

    def kill(self) -> None:
        with self._lock:
            self._stop.set()
        for worker in self.workers.values():
            worker.kill()
        for thread in self._threads:
            thread.join()


def run_timing(
    cases: dict[str, Sequence[Case]], options: RunOptions, run_id: str, sink: Sink,
    skip: frozenset[tuple[str, str, str]] = frozenset(), warming: WarmingWorkers | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Time every framework API's matched recipe on the timing cases of each device kind, one
        framework at a time (each in a fresh worker per device, so no thread pool or allocator disturbs
        another's timing). `sink` receives one ``{"key": ..., "rows": [...], "samples_s": [...]}`` per case
    (each row's raw samples in the same order). `warming`: the workers started during the accuracy pass
    (`WarmingWorkers`); the others are started here. Every worker is stopped.

        Returns what env.json records: the bandwidth per device and why something was not timed.
    """
    workers = dict(warming.ready()) if warming is not None else {}
    failed = warming.failed if warming is not None else {}
    plan = list(_timing_plan(cases, options, skip))
    total = sum(len(todo) for _, _, todo, reason in plan if todo and not reason)
    progress = Progress(total=total, quiet=options.quiet, verbose=options.verbose)
    info: dict[str, Any] = {"bandwidth_gbps": {"cpu": copy_bandwidth_gbps()}, "not_timed": {}}
    timeout = max(options.case_timeout, 600.0)  # a first torch.compile alone can take ~30 s here
    try:
        for framework, kind, todo, reason in plan:
            name = registry.load(framework).name
            if todo is None or reason:
                info["not_timed"][name if todo is None else f"{name} {kind}"] = reason
                continue
            t0 = time.perf_counter()
            worker = workers.pop((framework, kind), None)
            if worker is None:
                worker = _timing_worker(framework, kind, todo, options)
            try:
                if (framework, kind) in failed:
                    raise failed[(framework, kind)]
                hello = worker.hello or worker.handshake()
                if hello.reason:
                    info["not_timed"][f"{name} {kind}"] = hello.reason
                    continue
                for case in todo:
                    try:
                        (results, bandwidth), _ = worker.run(TimingRequest(case, options.timing_budget_s), timeout)
                    except WorkerDied as e:
                        info["not_timed"][f"{name} {kind} {case.id}"] = f"{e.outcome}: {e}"
                        worker.start()
                        continue
                    if bandwidth:
                        info["bandwidth_gbps"][hello.device] = bandwidth
                    bw = info["bandwidth_gbps"].get(hello.device if kind == "gpu" else "cpu")
                    rows, raw = [], []
                    for r in results:
                        if r.measurement is None:
                            info["not_timed"][f"{name} {kind} {r.api} {r.mode} {r.pass_}"] = r.error
                            continue
                        row = timing_row(run_id, case, name, hello.version, hello.device, r.api, r.mode,
                                         r.pass_, r.measurement, bw, hello.threads,
                                         (getattr(r, "peak_bytes", None), getattr(r, "peak_by", "")))  # fmt: skip
                        rows.append(row)
                        raw.append(list(r.measurement.samples))
                    key = {"case_id": case.id, "framework": name, "device": hello.device}
                    # the raw samples (seconds per call, one per block) stay in timing.jsonl beside the rows
                    sink([{"key": key, "rows": rows, "samples_s": raw}])
                    progress.step(f"timing {name} {kind}")
            except (WorkerDied, Interrupted) as e:
                info["not_timed"][f"{name} {kind}"] = str(e)
            finally:
                worker.stop()
            progress.line(f"timed {name} {kind} in {time.perf_counter() - t0:.1f} s")
    finally:
        for worker in workers.values():  # spawned but not reached (interrupted)
            worker.kill()
    return info


def timing_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(TIMING_COLUMNS))
