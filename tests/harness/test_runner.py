"""The runner's scheduling: jobs of a compile-bound framework share one queue of cases."""

from __future__ import annotations

import threading
import time

from cases.generator import default_cases
from harness.runner import SharedCases


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
