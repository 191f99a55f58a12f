"""The runner's scheduling: jobs of a compile-bound framework share one queue of cases; concurrent
jobs run on their own CPUs."""

from __future__ import annotations

import os
import threading
import time

import pytest

from cases.generator import default_cases
from harness.runner.accuracy import SharedCases, slot_cpus
from harness.runner.worker import Worker


def test_jobs_on_a_shared_queue_take_every_case_once_and_finish_together() -> None:
    cases = default_cases(kinds=("multiclass",), dtypes=("float64",))
    queue = SharedCases(cases)
    taken: dict[str, list[str]] = {"slow": [], "fast": []}

    def job(name: str, seconds: float) -> None:
        for case in queue:
            taken[name].append(case.id)
            time.sleep(seconds)

    threads = [threading.Thread(target=job, args=a) for a in (("slow", 0.02), ("fast", 0.005))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = taken["slow"] + taken["fast"]
    assert sorted(got) == sorted(c.id for c in cases), f"{len(got)} taken of {len(cases)} cases"
    # a static half-and-half split would give each 10; the faster job takes more
    assert len(taken["fast"]) > len(taken["slow"]), {k: len(v) for k, v in taken.items()}


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="this platform cannot pin a process to CPUs")
def test_job_slots_split_this_process_cpus_without_overlap() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    assert slot_cpus(0, 1) is None, "a single job keeps every CPU"
    for jobs in (2, 3, len(cpus) + 1):
        shares = [slot_cpus(slot, jobs) for slot in range(jobs)]
        assert all(s and set(s) <= set(cpus) for s in shares), f"{shares} not within {cpus} [jobs={jobs}]"
        if jobs <= len(cpus):
            flat = [c for s in shares for c in s]
            assert len(flat) == len(set(flat)) == jobs * (len(cpus) // jobs), f"{shares} [jobs={jobs}]"
        else:  # more jobs than CPUs: one CPU each, round-robin
            assert [s[0] for s in shares] == [cpus[k % len(cpus)] for k in range(jobs)], shares


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="this platform cannot pin a process to CPUs")
def test_a_worker_runs_on_the_cpus_it_is_given() -> None:
    cpu = min(os.sched_getaffinity(0))
    worker = Worker("numpy", "cpu", cpus=(cpu,))
    worker.start()
    try:
        assert os.sched_getaffinity(worker.process.pid) == {cpu}, os.sched_getaffinity(worker.process.pid)
    finally:
        worker.stop()


def test_the_reference_cache_keeps_a_cases_inputs_and_remakes_a_large_gradient() -> None:
    """The parent holds a large case's logits once: the inputs it judges and explains with, and a
    reference whose gradient is remade from them when read (the same numbers as the array). A smaller
    case's gradient is an array (every default case's): remaking it for every row would cost more time than
    it saves."""
    import dataclasses
    import math

    import numpy as np

    from adapters.reference import GradRows, evaluate
    from harness.judge.rows import LAZY_MIN_ELEMENTS, reference_cache

    get = reference_cache(size=2)
    softmax = [c for c in default_cases() if c.spec.family == "softmax" and c.dtype == "float64" and not c.spec.linear]
    largest = max(softmax, key=lambda c: math.prod(c.shape))
    assert math.prod(largest.shape) < LAZY_MIN_ELEMENTS, largest.shape
    large = dataclasses.replace(largest, shape=(LAZY_MIN_ELEMENTS // math.prod(largest.shape[1:]) + 1, *largest.shape[1:]))
    small = min(softmax, key=lambda c: math.prod(c.shape))
    for case, kind in ((large, GradRows), (small, np.ndarray)):
        inputs, ref = get(case)
        assert get(case)[0] is inputs, f"inputs made again [reference_cache()({case.id})]"
        assert isinstance(ref.grad, kind), f"grad is {type(ref.grad).__name__}, should be {kind.__name__} [{case.id}]"
        eager = evaluate(case.spec, inputs)
        assert np.array_equal(np.asarray(ref.grad), eager.grad), f"reference gradient differs [{case.id}]"
        assert np.array_equal(ref.value, eager.value), f"value {ref.value} != {eager.value} [{case.id}]"
