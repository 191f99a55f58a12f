"""The accuracy pass: cases -> workers (one per framework and device kind, `jobs` at a time) -> rows.

The runner knows nothing of judging: a `CaseJudge` (harness/judge/rows.py's `RowJudge`) turns each
case's results into rows as they arrive, so the parent holds one result's arrays at a time.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from adapters import registry
from adapters.base import Adapter, Result
from cases.spec import Case
from harness.runner.env import no_gpu_reason
from harness.runner.options import RunOptions
from harness.runner.plan import Plan, case_plan, case_repeats
from harness.runner.progress import Progress
from harness.runner.worker import Interrupted, Worker, WorkerDied

Sink = Callable[[list[dict[str, Any]]], None]


class CaseJudge(Protocol):
    """What the runner hands a case's outcome to."""

    def results(
        self, case: Case, adapter: Adapter, version: str | None, device: str, results: Iterable[Result]
    ) -> list[dict[str, Any]]:
        """Rows for the results a worker sends for one case (consumed one at a time)."""

    def without_numbers(
        self, case: Case, adapter: Adapter, version: str | None, device: str, outcome: str, error: str, plan: Plan
    ) -> list[dict[str, Any]]:
        """Rows for a case that produced no numbers (unsupported, crashed, timeout), one per recipe and
        (mode, policy) of `plan`."""


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


def _start(worker: Worker, kind: str, info: dict[str, Any]) -> tuple[str, tuple[str, str] | None]:
    """Start `worker`; record what env.json keeps of its hello in `info`. Returns the concrete device and,
    where the worker cannot run cases, the (outcome, error) its rows get."""
    try:
        hello = worker.start()
    except WorkerDied as e:
        info[kind] = str(e)
        return kind, (e.outcome, str(e))
    info[kind] = hello.reason or hello.device
    pairs = (("threads", hello.threads), ("versions", hello.versions), (f"isa_{kind}", hello.isa),
             ("python", hello.python))  # fmt: skip
    for key, value in pairs:
        if value:
            info[key] = value
    return hello.device or kind, (("unsupported", hello.reason) if hello.reason else None)


def _run_job(
    framework: str, kind: str, cases: Iterable[Case], judge: CaseJudge, options: RunOptions, sink: Sink,
    progress: Progress, stop: threading.Event, cpus: tuple[int, ...] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """All cases of one framework on one device kind, in a worker pinned to `cpus` (if given);
    returns what env.json records of it."""
    adapter = registry.load(framework)
    if options.user is not None:
        adapter = adapter.verifying(options.user)
    python = options.interpreter(framework)  # another environment: what is installed there, its worker says
    version = None if python else adapter.version()
    info: dict[str, Any] = {"version": version}
    pending = iter(cases)
    head = next(pending, None)
    if head is None:  # a queue the other jobs emptied: no worker to start
        return info
    cases = itertools.chain([head], pending)
    # not installed, or no GPU on this machine at all: no worker needed to say so
    reason = (None if python else adapter.unavailable()) or (no_gpu_reason() if kind == "gpu" else None)
    if reason is not None:
        for case in cases:
            sink(judge.without_numbers(case, adapter, version, kind, "unsupported", reason,
                                       case_plan(adapter, case, options)))  # fmt: skip
            progress.step(framework)
        info[kind] = reason
        progress.line(f"{framework} {kind}: unsupported ({reason})")
        return info

    t0 = time.perf_counter()
    # accuracy workers run `jobs` at a time: they share the cores (oversubscribed OpenMP threads spin
    # against each other and run several times slower); timing workers run alone and get them all
    threads = max(1, (options.threads or os.cpu_count() or 1) // max(1, options.jobs))
    worker = Worker(framework, kind, options.debug, threads, cpus=cpus, user=options.user, python=python)
    device, hello_error = _start(worker, kind, info)
    version = info["version"] = worker.hello.version if worker.hello else version
    counts: dict[str, int] = {}
    try:
        for case in cases:
            if stop.is_set():
                break
            plan = case_plan(adapter, case, options)
            if hello_error is not None:
                rows = judge.without_numbers(case, adapter, version, device, *hello_error, plan)
            else:
                try:  # each result is judged as it arrives, its arrays dropped before the next
                    results = worker.results(case, options.case_timeout, stop, plan, case_repeats(case, options))
                    rows = judge.results(case, adapter, version, device, results)
                except WorkerDied as e:
                    rows = judge.without_numbers(case, adapter, version, device, e.outcome, str(e), plan)
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
    cases: Sequence[Case], options: RunOptions, judge: CaseJudge, sink: Sink,
    skip: frozenset[tuple[str, str, str]] = frozenset(),
) -> dict[str, Any]:  # fmt: skip
    """Run every case through every (framework, device kind) in worker processes.

    `judge` turns each case's results into rows (harness.judge.rows.RowJudge); they go to `sink` as each
    case completes (jobs run `options.jobs` at a time; `sink` is called under a lock). Keys in `skip`
    (from `row_key`) are not run again. Returns env.json's framework part.
    """
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
            return _run_job(framework, kind, todo, judge, options, locked_sink, progress, stop, cpus)
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
