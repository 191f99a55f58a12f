"""Cases -> workers (one per framework and device kind) -> rows judged against the reference."""

from __future__ import annotations

import itertools
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from adapters import reference, registry
from adapters.base import Adapter
from adapters.reference import Evaluation
from cases.names import FRAMEWORKS
from cases.spec import Case, Inputs
from harness.env import no_gpu_reason
from harness.explain import MEMO_MAX_ELEMENTS, Memo
from harness.rows import ACCURACY_COLUMNS, TIMING_COLUMNS, accuracy_row, placeholder_rows, timing_row
from harness.semantics import decide_once
from harness.timing import BUDGET_S, copy_bandwidth_gbps
from harness.worker import Interrupted, TimingRequest, Worker, WorkerDied

Sink = Callable[[list[dict[str, Any]]], None]


@dataclass(frozen=True)
class RunOptions:
    frameworks: tuple[str, ...] = FRAMEWORKS
    devices: tuple[str, ...] = ("cpu",)
    case_timeout: float = 120.0
    jobs: int = 2
    debug: bool = False
    quiet: bool = False
    verbose: bool = False
    threads: int | None = None  # intra-op threads for every framework (None: the frameworks' default)
    timing_budget_s: float = BUDGET_S  # sampling seconds per timing measurement (at least 3 samples)


def device_kind(device: str) -> str:
    """``cpu`` or ``gpu`` for a row's concrete device (``cuda:0`` -> ``gpu``)."""
    return "cpu" if device == "cpu" else "gpu"


def row_key(row: dict[str, Any]) -> tuple[str, str, str]:
    """What a resumed run skips: a case already done by a framework on a device kind."""
    return row["case_id"], row["framework"], device_kind(row["device"])


@dataclass
class Progress:
    """A live counter (case runs done, elapsed, current framework) when stderr is a terminal; one line
    per finished (framework, device) there or with --verbose; nothing with --quiet or when piped."""

    total: int
    quiet: bool = False
    verbose: bool = False
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    live: bool = field(default_factory=lambda: sys.stderr.isatty())
    t0: float = field(default_factory=time.perf_counter)

    def step(self, label: str) -> None:
        with self.lock:
            self.done += 1
            if self.live and not self.quiet:
                el = time.perf_counter() - self.t0
                print(f"\r  {self.done}/{self.total} case runs, {el:5.1f} s, {label}   ", end="", file=sys.stderr)

    def line(self, text: str) -> None:
        if self.quiet or not (self.live or self.verbose):
            return
        with self.lock:
            print(("\r" if self.live else "") + text + " " * 20, file=sys.stderr)


CaseReference = tuple[Inputs, Evaluation]


def reference_cache(size: int = 8) -> Callable[[Case], CaseReference]:
    """A case's inputs and reference, made when first needed and kept for the last `size` cases (jobs
    walk the cases in the same order), so the parent never holds every case's arrays.

    A large case's reference gradient is remade from the inputs when read (`evaluate(lazy=True)`): the
    parent holds its logits once, not beside a gradient of their size, while it judges and explains
    rows. A small case's is kept: remaking it for each of its rows and variants costs more CPU time
    (several seconds a run) than the memory it would save.
    """
    lock = threading.Lock()
    kept: dict[str, CaseReference] = {}

    def get(case: Case) -> CaseReference:
        with lock:
            if case.id in kept:
                return kept[case.id]
        inputs = case.inputs()
        entry = inputs, reference.evaluate(case.spec, inputs, lazy=math.prod(case.shape) > MEMO_MAX_ELEMENTS)
        with lock:
            kept[case.id] = entry
            while len(kept) > size:
                kept.pop(next(iter(kept)))
        return entry

    return get


class SharedCases:
    """Cases that several jobs of one framework take from, one at a time (thread-safe)."""

    def __init__(self, cases: Sequence[Case]) -> None:
        self._next = iter(cases)
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[Case]:
        while True:
            with self._lock:
                case = next(self._next, None)
            if case is None:
                return
            yield case


def slot_cpus(slot: int, jobs: int) -> tuple[int, ...] | None:
    """The CPUs that job slot `slot` of `jobs` runs its workers on: an equal share of this process's
    CPUs, or one CPU round-robin when there are fewer CPUs than jobs. None (no restriction) for a
    single job or where the platform cannot pin a process.

    Thread variables cannot keep concurrent jobs off each other's cores: XLA sizes its compile thread
    pool to the CPUs a process may use, so two JAX workers on 2 cores compile with 4 threads.
    """
    if jobs <= 1 or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < jobs:
        return (cpus[slot % len(cpus)],)
    share = len(cpus) // jobs
    return tuple(cpus[slot * share : (slot + 1) * share])


def _run_job(
    framework: str, kind: str, cases: Iterable[Case], ref: Callable[[Case], CaseReference], run_id: str,
    options: RunOptions, sink: Sink, progress: Progress, stop: threading.Event, cpus: tuple[int, ...] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """All cases of one framework on one device kind, in a worker pinned to `cpus` (if given);
    returns what env.json records of it."""
    adapter = registry.load(framework)
    version = adapter.version()
    info: dict[str, Any] = {"version": version}
    pending = iter(cases)
    head = next(pending, None)
    if head is None:  # a queue the other jobs emptied: no worker to start
        return info
    cases = itertools.chain([head], pending)
    # not installed, or no GPU on this machine at all: no worker needed to say so
    reason = adapter.unavailable() or (no_gpu_reason() if kind == "gpu" else None)
    if reason is not None:
        for case in cases:
            sink(placeholder_rows(run_id, case, adapter, version, kind, "unsupported", reason, ref(case)[1]))
            progress.step(framework)
        info[kind] = reason
        progress.line(f"{framework} {kind}: unsupported ({reason})")
        return info

    t0 = time.perf_counter()
    # accuracy workers run `jobs` at a time: they share the cores (oversubscribed OpenMP threads spin
    # against each other and run several times slower); timing workers run alone and get them all
    threads = max(1, (options.threads or os.cpu_count() or 1) // max(1, options.jobs))
    worker = Worker(framework, kind, options.debug, threads, cpus=cpus)
    hello = None
    try:
        hello = worker.start()
    except WorkerDied as e:
        hello_error = (e.outcome, str(e))
    else:
        hello_error = ("unsupported", hello.reason) if hello.reason else None
    device = hello.device if hello and hello.device else kind
    info[kind] = hello.reason or hello.device if hello else hello_error[1]
    if hello and hello.threads:
        info["threads"] = hello.threads
    if hello and hello.versions:
        info["versions"] = hello.versions
    if hello and hello.isa:
        info[f"isa_{kind}"] = hello.isa
    counts: dict[str, int] = {}
    try:
        for case in cases:
            if stop.is_set():
                break
            if hello_error is not None:
                rows = placeholder_rows(run_id, case, adapter, version, device, *hello_error, ref(case)[1])
            else:
                try:
                    # each result is judged as it arrives and its arrays dropped before the next
                    memo: Memo = {}
                    rows = []
                    inputs, ev = ref(case)
                    for r in worker.results(case, options.case_timeout, stop):
                        rows.append(accuracy_row(run_id, case, adapter.name, version, device, r, ev, memo, inputs))
                        del r
                except WorkerDied as e:
                    rows = placeholder_rows(run_id, case, adapter, version, device, e.outcome, str(e), ref(case)[1])
                    progress.line(f"{framework} {kind}: {case.id}: {e.outcome}: {e}")
                    try:
                        worker.start()
                    except WorkerDied as e2:
                        hello_error = (e2.outcome, f"worker could not be restarted: {e2}")
            for r in rows:
                counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
            sink(rows)
            progress.step(f"{framework} {kind}")
    except Interrupted:
        pass
    finally:
        worker.stop()
    summary = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
    took = time.perf_counter() - t0
    progress.line(f"{framework} {kind} ({device}, {version}): {summary or 'nothing to do'} in {took:.1f} s")
    return info


def run_accuracy(
    cases: Sequence[Case], options: RunOptions, run_id: str, sink: Sink,
    skip: frozenset[tuple[str, str, str]] = frozenset(),
) -> dict[str, Any]:  # fmt: skip
    """Run every case through every (framework, device kind) in worker processes.

    Rows go to `sink` as each case completes (it must be thread-safe; jobs run `options.jobs` at
    a time). Keys in `skip` (from `row_key`) are not run again. Returns env.json's framework part.
    """
    ref = reference_cache()
    n_slots = max(1, options.jobs)  # jobs that run at once, each in its own slot of CPUs
    first: list[tuple[tuple[str, str, int], Iterable[Case]]] = []
    rest: list[tuple[tuple[str, str, int], Iterable[Case]]] = []
    total = 0
    for fw in options.frameworks:
        for kind in options.devices:
            mine = [c for c in cases if (c.id, fw, kind) not in skip]
            if not mine:
                continue
            total += len(mine)
            split = registry.load(fw).compile_bound and not (kind == "gpu" and no_gpu_reason())
            if not split:
                first.append(((fw, kind, 0), mine))
                continue
            # `jobs` workers take cases from one queue, so they finish together whatever each case costs;
            # one starts at once (the longest job), the others join when a slot frees
            shared = SharedCases(mine)
            first.insert(0, ((fw, kind, 0), shared))
            rest += [((fw, kind, k), shared) for k in range(1, n_slots)]
    jobs = dict(first + rest)
    progress = Progress(total=total, quiet=options.quiet, verbose=options.verbose)
    lock = threading.Lock()

    def locked_sink(rows: list[dict[str, Any]]) -> None:
        with lock:
            sink(rows)

    info: dict[str, Any] = {}
    stop = threading.Event()
    slots: queue.SimpleQueue[int] = queue.SimpleQueue()  # a running job holds one; the pool runs n_slots
    for slot in range(n_slots):
        slots.put(slot)

    def in_slot(framework: str, kind: str, todo: Iterable[Case]) -> dict[str, Any]:
        slot = slots.get()
        try:
            cpus = slot_cpus(slot, n_slots)
            return _run_job(framework, kind, todo, ref, run_id, options, locked_sink, progress, stop, cpus)
        finally:
            slots.put(slot)

    pool = ThreadPoolExecutor(max_workers=n_slots)
    try:
        futures = {job: pool.submit(in_slot, *job[:2], todo) for job, todo in jobs.items()}
        for (fw, _kind, _shard), fut in futures.items():
            for k, v in fut.result().items():
                info.setdefault(registry.load(fw).name, {})[k] = v
    except BaseException:  # Ctrl-C / SIGTERM: let every job drop its case in flight and return
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return info


def accuracy_frame(rows: Sequence[dict[str, Any]], cases: Sequence[Case] = ()) -> pd.DataFrame:
    """The tidy `accuracy` DataFrame, in case order, then framework, device, api, recipe."""
    df = pd.DataFrame(list(rows), columns=list(ACCURACY_COLUMNS))
    df["ignore_index"] = df["ignore_index"].astype("Int64")
    df["weighted"] = df["weighted"].astype(bool)
    order = {c.id: i for i, c in enumerate(cases)}
    fw_order = {f: i for i, f in enumerate(FRAMEWORKS)}
    df = df.assign(
        _c=df["case_id"].map(order).fillna(len(order)), _f=df["framework"].map(fw_order).fillna(len(fw_order))
    )
    df = df.sort_values(["_c", "case_id", "_f", "device", "api", "recipe"], kind="stable")
    return decide_once(df.drop(columns=["_c", "_f"]).reset_index(drop=True))


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
            reason = adapter.unavailable() or (no_gpu_reason() if kind == "gpu" else None)
            if todo:
                yield framework, kind, todo, reason


def spawn_timing_workers(
    cases: dict[str, Sequence[Case]], options: RunOptions, skip: frozenset[tuple[str, str, str]] = frozenset()
) -> dict[tuple[str, str], Worker]:
    """Start the timing workers early (during the accuracy pass): each imports its framework and
    warms its compiler up, then waits, so `run_timing` spends its time timing. Idle workers block
    on their pipe and take no CPU while another framework is timed."""
    workers = {}
    for framework, kind, todo, reason in _timing_plan(cases, options, skip):
        if todo and not reason:
            workers[(framework, kind)] = Worker(framework, kind, options.debug, options.threads, timing=True, warm=todo)
            workers[(framework, kind)].spawn()
    return workers


def run_timing(
    cases: dict[str, Sequence[Case]], options: RunOptions, run_id: str, sink: Sink,
    skip: frozenset[tuple[str, str, str]] = frozenset(), workers: dict[tuple[str, str], Worker] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Time every framework API's matched recipe on the timing cases of each device kind, one
        framework at a time (each in a fresh worker per device, so no thread pool or allocator disturbs
        another's timing). `sink` receives one ``{"key": ..., "rows": [...], "samples_s": [...]}`` per case
    (each row's raw samples in the same order). `workers` are
        those `spawn_timing_workers` started; the others are started here. Every worker is stopped.

        Returns what env.json records: the bandwidth per device and why something was not timed.
    """
    workers = dict(workers or {})
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
                worker = Worker(framework, kind, options.debug, options.threads, timing=True, warm=todo)
                worker.spawn()
            try:
                hello = worker.handshake()
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
                                         r.pass_, r.measurement, bw, hello.threads)  # fmt: skip
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
