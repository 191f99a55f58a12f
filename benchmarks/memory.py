"""Peak resident memory of a run's processes on the largest default case, against 4x its logits.

For each framework this drives a real worker process the way `python -m harness run` does: the
worker runs the case and sends every result, the parent judges each one against the reference as
it arrives. The case runs once to reach the baseline (framework imported, kernels compiled,
allocator pools and caches filled), then three times more, each time after resetting the peaks of
both processes (/proc/PID/clear_refs). Printed: each process's median peak above its baseline
(VmHWM - VmRSS before the run) beside 4x the logits' bytes, the target of issue 7. The parent's
figure includes explaining the rows that differ: that holds the reference's and the row's gradients,
the inputs and one variant's evaluation at once.

At 2 MB of logits the allocator's granularity is a noticeable part of the figure, so the same case
is also run with N scaled up (--scale, 16 by default): the slope between the two sizes, extra bytes
per byte of logits, is the multiple that holds for large inputs, whatever the fixed overheads.

Both processes run with MALLOC_MMAP_THRESHOLD_=131072 (the script re-executes itself with it): glibc
then maps every array of 128 KiB or more on its own and unmaps it when freed, so the peak is that of
the arrays alive at once. With glibc's default, a freed array's pages may stay resident and be
counted again, or absorb the next run's, and the figures move by a copy of the logits between runs.

Beside each worker, the framework's own floor: in a fresh process with nothing but the framework and
the case's inputs, each of the recipes the worker runs (the code the porting guide shows) is called
with its gradient, and the heaviest one's peak above the inputs, plus the logits themselves, is the
least any process that makes that call needs. A worker over 4x whose slope is that floor adds nothing
of its own: its verdict says `framework`, and names the call. Two do that on this case:

- PyTorch, 4.0x: `F.cross_entropy(x, y, weight=w).backward()` holds x, the log_softmax it saved, the
  nll_loss gradient and log_softmax's backward output at once (`log_softmax_backward_data` needs its
  output and the incoming gradient; the leaf is x itself).
- TensorFlow, 5x and 6x: the registered gradient of `SoftmaxCrossEntropyWithLogits` computes the
  labels' gradient, `grad_loss * -log_softmax(logits)`, whether or not anything asked for it
  (`tensorflow/python/ops/nn_grad.py`, `_SoftmaxCrossEntropyWithLogitsGrad`), beside the dense
  one-hot labels; the matched recipe's `tf.maximum(x, x.dtype.min)` adds its gradient's mask and
  zeros (`math_grad.py`, `_MaximumMinimumGradInputOnly`). The sparse APIs stay at 3x.

    python benchmarks/memory.py [--frameworks numpy,torch,tensorflow,jax] [--scale 16]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cases.generator import default_cases  # noqa: E402
from cases.names import ITEMSIZE  # noqa: E402
from cases.spec import Case  # noqa: E402
from harness.judge.rows import accuracy_row, reference_cache  # noqa: E402
from harness.runner.worker import Worker  # noqa: E402


def status_kb(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int | str) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS


def run_once(worker: Worker, case: Case) -> int:
    """The case through the worker, each result judged as the runner judges it; rows made."""
    inputs, ref = reference_cache()(case)
    memo: dict = {}
    rows = 0
    for result in worker.results(case, timeout_s=600):
        accuracy_row("memory", case, worker.framework, None, "cpu", result, ref, memo, inputs)
        rows += 1
        del result  # as the runner does: one result's arrays at a time
    return rows


def peaks(framework: str, case: Case, repeats: int = 3) -> tuple[int, int]:
    """(worker, parent) extra bytes running `case`: the median over `repeats` runs after a first one."""
    worker = Worker(framework, "cpu", threads=1)
    hello = worker.start()
    if hello.reason:
        raise RuntimeError(hello.reason)
    extra: list[tuple[int, int]] = []
    try:
        run_once(worker, case)
        pid = worker.process.pid
        for _ in range(repeats):
            base_w, base_p = status_kb(pid, "VmRSS:"), status_kb("self", "VmRSS:")
            reset_peak(pid)
            reset_peak("self")
            run_once(worker, case)
            extra.append(((status_kb(pid, "VmHWM:") - base_w) * 1024, (status_kb("self", "VmHWM:") - base_p) * 1024))
    finally:
        worker.stop()
    return sorted(e[0] for e in extra)[repeats // 2], sorted(e[1] for e in extra)[repeats // 2]


def floor(framework: str, case: Case) -> tuple[float, str]:
    """(x's bytes + the heaviest recipe's peak above its inputs) / x's bytes, and that recipe's name:
    what the framework's own calls need, in this process (call it in a fresh one)."""
    from adapters.registry import load

    adapter = load(framework)
    if adapter.unavailable():
        raise RuntimeError(adapter.unavailable())
    inputs = case.inputs()
    size = inputs.x.nbytes
    worst = (0.0, "")
    for api in adapter.apis_for(case.spec):
        for recipe in api.recipes(case.spec):
            if recipe.code is None:
                continue
            fn = adapter.compile(recipe.code)
            adapter.evaluate(fn, case.spec, inputs, case.dtype, "cpu")  # first call: kernels, caches
            base = status_kb("self", "VmRSS:")
            reset_peak("self")
            result = adapter.evaluate(fn, case.spec, inputs, case.dtype, "cpu")
            peak = (status_kb("self", "VmHWM:") - base) * 1024
            del result
            worst = max(worst, (1 + peak / size, f"{api.name} {recipe.name}"))
    return worst


def floor_in_fresh_process(framework: str, case: Case) -> tuple[float, str]:
    out = subprocess.run(
        [sys.executable, __file__, "--floor-of", framework, "--floor-rows", str(case.shape[0])],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}")
    multiple, name = out.stdout.strip().splitlines()[-1].split(" ", 1)
    return float(multiple), name


MMAP_THRESHOLD = "131072"
FLOOR_SLACK = 0.05  # of the logits: allocator rounding between the two processes' figures


def main() -> int:
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") != MMAP_THRESHOLD:  # read by glibc at process start
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD})
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frameworks", default="numpy,torch,tensorflow,jax")
    p.add_argument("--scale", type=int, default=16, help="N multiplier of the second, larger run")
    p.add_argument("--floor-of", help=argparse.SUPPRESS)  # the floor of one framework, in this process
    p.add_argument("--floor-rows", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    big = max(default_cases(), key=lambda c: math.prod(c.shape) * ITEMSIZE[c.dtype])
    if args.floor_of:
        multiple, name = floor(args.floor_of, dataclasses.replace(big, shape=(args.floor_rows, *big.shape[1:])))
        print(f"{multiple:.3f} {name}")
        return 0
    scaled = dataclasses.replace(big, shape=(big.shape[0] * args.scale, *big.shape[1:]))
    size = {c.id: math.prod(c.shape) * ITEMSIZE[c.dtype] for c in (big, scaled)}
    print(f"largest default case {big.id}: logits {size[big.id] / 2**20:.2f} MB, target 4x = "
          f"{4 * size[big.id] / 2**20:.2f} MB above baseline; scaled x{args.scale}: {scaled.shape}")  # fmt: skip
    print(f"{'framework':<11} {'process':<7} {'default case':>20} {'x' + str(args.scale) + ' case':>20} "
          f"{'slope':>6} {'floor':>6}  verdict")  # fmt: skip
    worst = 0
    for fw in args.frameworks.split(","):
        try:
            got = {c.id: peaks(fw, c) for c in (big, scaled)}
            own, call = floor_in_fresh_process(fw, scaled)
        except Exception as e:  # not installed, or failed to start: say so, go on
            print(f"{fw:<11} skipped ({type(e).__name__}: {e})")
            continue
        for i, process in ((0, "worker"), (1, "parent")):
            small, large = got[big.id][i], got[scaled.id][i]
            slope = (large - small) / (size[scaled.id] - size[big.id])
            if small <= 4 * size[big.id] and slope <= 4:
                verdict = "ok"
            elif process == "worker" and slope <= own + FLOOR_SLACK:
                verdict = f"framework: {call} needs {own:.2f}x on its own"
            else:
                verdict, worst = "OVER", 1
            cells = [f"{b / 2**20:7.1f} MB ({b / size[c.id]:4.1f}x)" for c, b in ((big, small), (scaled, large))]
            where = f"{own:6.2f}" if process == "worker" else f"{'':6}"
            print(f"{fw:<11} {process:<7} {cells[0]:>20} {cells[1]:>20} {slope:6.2f} {where}  {verdict}")
    return worst


if __name__ == "__main__":
    sys.exit(main())
