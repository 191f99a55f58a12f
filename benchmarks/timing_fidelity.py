"""Does the harness time a call the way the frameworks' own tools do?

For the same call (an adapter's timer, inputs staged on the device), print the harness's median
beside torch.utils.benchmark.Timer.blocked_autorange's median, and for JAX beside a hand-written
loop of `jax.block_until_ready` calls. Target: every ratio within 0.9 to 1.1.

    python benchmarks/timing_fidelity.py [--device cpu|gpu] [--budget 0.1] [--threads N]

The two methods alternate over several rounds (harness, reference, harness, ...); the ratio is the
median of the per-round ratios, so that the machine drifting between rounds does not pass for a
difference of method (the two medians printed are each method's median over the rounds). Run it on
a quiet machine: on a 2-core box a second busy process slows multi-threaded kernels tenfold and no
method can be faithful then.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cases.generator import timing_cases
from harness.runner.timing import BUDGET_S, measure

PASSES = ("forward", "forward_backward")
ROUNDS = 15  # per-round ratios scatter by +-20% on a 2-core VM; the median of 15 settles within a few %


def alternate(ours, theirs) -> tuple[float, float, float]:
    """Each method's median over ROUNDS of its own medians, the two taking turns, and the median of
    the per-round ratios: a pair measured back to back shares the machine's state, so drift over the
    rounds cancels in the ratio instead of passing for a difference of method."""
    a, b = [], []
    for _ in range(ROUNDS):
        a.append(ours())
        b.append(theirs())
    return statistics.median(a), statistics.median(b), statistics.median(x / y for x, y in zip(a, b, strict=True))


def torch_rows(device_kind: str, budget: float) -> list[tuple[str, float, float, float]]:
    import torch
    import torch.utils.benchmark as tb

    from adapters.torch_adapter import ADAPTER

    device = ADAPTER.device(device_kind)
    rows = []
    for case in timing_cases()[::2]:  # the 256x1000 and the K-dim case (the large one takes minutes on a CPU)
        api = ADAPTER.apis_for(case.spec)[0]
        code = api.recipes(case.spec)[1].code
        for mode in ("eager", "compiled"):
            for pass_ in PASSES:
                call, sync = ADAPTER.timer(code, case.spec, case.inputs(), case.dtype, device, mode, pass_)

                def stmt(call=call, sync=sync) -> None:
                    sync(call())

                # Timer runs single-threaded unless told: give it the threads the harness uses
                timer = tb.Timer(stmt="stmt()", globals={"stmt": stmt}, num_threads=torch.get_num_threads())
                got = alternate(
                    lambda call=call, sync=sync: measure(call, sync, budget_s=budget).median_s,
                    lambda timer=timer: timer.blocked_autorange(min_run_time=budget).median,
                )
                rows.append((f"torch {case.shape_str} {mode} {pass_}", *got))
    return rows


def jax_rows(device_kind: str, budget: float) -> list[tuple[str, float, float, float]]:
    import jax

    from adapters.jax_adapter import ADAPTER

    device = ADAPTER.device(device_kind)
    rows = []
    for case in timing_cases()[::2]:
        api = ADAPTER.apis_for(case.spec)[0]
        code = api.recipes(case.spec)[1].code
        inputs = ADAPTER.arrange("matched", case.spec, case.inputs())[0]  # classes last, as the harness times it
        for mode in ("eager", "compiled"):
            for pass_ in PASSES:
                call, sync = ADAPTER.timer(code, case.spec, inputs, case.dtype, device, mode, pass_)

                def hand_loop(call=call) -> float:
                    for _ in range(3):  # warm up, as anyone would
                        jax.block_until_ready(call())
                    per_call = []
                    deadline = time.perf_counter() + budget
                    while time.perf_counter() < deadline or len(per_call) < 5:
                        t0 = time.perf_counter()
                        jax.block_until_ready(call())
                        per_call.append(time.perf_counter() - t0)
                    return statistics.median(per_call)

                got = alternate(lambda call=call, sync=sync: measure(call, sync, budget_s=budget).median_s, hand_loop)
                rows.append((f"jax {case.shape_str} {mode} {pass_}", *got))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    help_budget = f"seconds of sampling per measurement, per round (default {BUDGET_S}, the harness's)"
    p.add_argument("--budget", type=float, default=BUDGET_S, help=help_budget)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[var] = str(args.threads)

    rows: list[tuple[str, float, float, float]] = []
    for name, fn in (("torch", torch_rows), ("jax", jax_rows)):
        try:
            rows += fn(args.device, args.budget)
        except Exception as e:  # a framework that is missing or has no such device: say so, go on
            print(f"{name}: skipped ({type(e).__name__}: {e})")
    print(f"{'call':<44} {'harness':>12} {'reference':>12} {'ratio':>7}")
    bad = 0
    for label, ours, theirs, ratio in rows:
        flag = "" if 0.9 <= ratio <= 1.1 else "  <- outside 0.9..1.1"
        bad += bool(flag)
        print(f"{label:<44} {ours * 1e3:>10.4f}ms {theirs * 1e3:>10.4f}ms {ratio:>7.3f}{flag}")
    print(f"{len(rows) - bad}/{len(rows)} ratios within 0.9..1.1 (reference: torch blocked_autorange, jax hand loop)")
    return 0 if rows and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
