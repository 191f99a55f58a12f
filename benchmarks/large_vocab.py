"""Large vocabularies: a language model's head, cross_entropy(E Wᵀ, y), by every implementation that runs here:
time, peak memory and the largest gradient errors (of the hidden states E and the classifier W) against the
float64 reference, forward and forward+backward, in the layout of the Cut Cross-Entropy README's table.

Each implementation runs in a fresh process (nothing another one allocated or cached is counted): the harness's
own recipes (the snippets a run's rows show), timed as a run times them (harness/runner/timing.py: the first call
kept apart, calibrated blocks, the median) in the framework's own mode, PyTorch's naive composition also under
torch.compile, and the peak of one more call measured as a run measures it (harness/runner/peak.py: the worker's
resident set on a CPU, the framework's allocator on a GPU). Peak memory includes the call's inputs (E, W, y), so
it compares with the floor: the inputs and the outputs, E, W and their gradients, and no logits.

    python benchmarks/large_vocab.py [--rows 512] [--hidden 128] [--classes 32000,128256,256000] [--budget 0.3]

N > D as in training (there N is ~8192 tokens, D ~2304): the logits (N x C) then outweigh W (C x D), which every
implementation holds with its gradient. A call slower than the budget is sampled once after its first call; an
eager one slower than 10 s is timed by its first call alone.

It ends with the line `peak memory, best chunked / naive: R` for its largest case (forward+backward; naive is
PyTorch's cross_entropy of the materialised logits, eager). An implementation that cannot run here is listed
with the reason (Cut Cross-Entropy: triton; Liger-Kernel: no GPU).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from adapters.base import PASSES  # noqa: E402
from cases.spec import Case, LossSpec  # noqa: E402

MiB = 2**20
SLOW_S = 10.0  # an eager call slower than this is timed once (its first call), not sampled


@dataclass(frozen=True)
class Impl:
    """One implementation: a framework's API and recipe (the harness's snippet), in a mode."""

    label: str
    framework: str
    api: str
    recipe: str
    mode: str
    chunked: bool = False


IMPLS = (
    Impl("torch naive: F.cross_entropy(x @ W.T)", "torch", "torch.nn.functional.cross_entropy:linear", "matched",
         "eager"),
    Impl("torch naive, torch.compile", "torch", "torch.nn.functional.cross_entropy:linear", "matched", "compiled"),
    Impl("torch F.linear_cross_entropy (options=None)", "torch", "torch.nn.functional.linear_cross_entropy",
         "matched", "eager"),
    Impl("torch F.linear_cross_entropy, default options", "torch", "torch.nn.functional.linear_cross_entropy:chunked",
         "native", "eager", chunked=True),
    Impl("torch F.linear_cross_entropy, chunks >= 8 rows", "torch",
         "torch.nn.functional.linear_cross_entropy:chunked", "matched", "eager", chunked=True),
    Impl("cut_cross_entropy (cce, filtered)", "torch", "cut_cross_entropy.linear_cross_entropy", "native", "eager",
         chunked=True),
    Impl("cut_cross_entropy (cce_exact)", "torch", "cut_cross_entropy.linear_cross_entropy", "matched", "eager",
         chunked=True),
    Impl("liger fused linear cross-entropy", "torch",
         "liger_kernel.transformers.functional.liger_fused_linear_cross_entropy", "matched", "eager", chunked=True),
    Impl("jax naive: optax on x @ W.T (jit)", "jax", "optax.losses.softmax_cross_entropy_with_integer_labels:linear",
         "native", "compiled"),
    Impl("jax chunked: lax.map + checkpoint (jit)", "jax",
         "optax.losses.softmax_cross_entropy_with_integer_labels:linear", "matched", "compiled", chunked=True),
    Impl("keras naive: SparseCategoricalCrossentropy (tf.function)", "tensorflow",
         "keras.losses.SparseCategoricalCrossentropy:linear", "matched", "compiled"),
)  # fmt: skip


@dataclass
class Outcome:
    """What one implementation's process measured (or why it did not)."""

    reason: str = ""
    seconds: dict[str, float] = field(default_factory=dict)  # pass -> median seconds per call
    peak: dict[str, int] = field(default_factory=dict)  # pass -> bytes above the staged inputs
    peak_by: str = ""
    grads: tuple[Any, ...] = ()  # (value, dE, d[W | b]) as float32 arrays


def run_impl(impl: Impl, case: Case, budget: float, conn: Any) -> None:
    """In a fresh process: time and measure `impl` on `case`, then its value and gradients for the errors."""
    from adapters.base import Unavailable, error_text
    from adapters.registry import load
    from harness.runner.peak import peak_bytes, resident_set
    from harness.runner.timing import measure

    out = Outcome()
    try:
        adapter = load(impl.framework)
        why = adapter.unavailable()
        api = next((a for a in adapter.apis_for(case.spec) if a.name == impl.api), None)
        recipe = None if api is None else next(r for r in api.recipes(case.spec) if r.name == impl.recipe)
        if why or api is None or recipe.code is None:
            out.reason = why or ("no such API here" if api is None else recipe.reason)
            conn.send(out)
            return
        inputs, device = case.inputs(), "cpu"
        for pass_ in PASSES:
            call, sync = adapter.timer(recipe.code, case.spec, inputs, case.dtype, device, impl.mode, pass_)
            t0 = time.perf_counter()
            sync(call())  # the first call (compiles where compiled): too slow to repeat, it is the one sample
            first = time.perf_counter() - t0
            slow = first > SLOW_S and impl.mode == "eager"
            out.seconds[pass_] = first if slow else measure(call, sync, budget_s=budget, min_samples=1).median_s
            counters = adapter.memory_counters(device) or resident_set()  # as a run's timing pass counts
            if counters is not None:
                out.peak[pass_], out.peak_by = peak_bytes(call, sync, counters), counters.source
            del call, sync
        value, grad, _ = adapter.evaluate(adapter.compile(recipe.code), case.spec, inputs, case.dtype, device,
                                          impl.mode)  # fmt: skip
        out.grads = tuple(np.asarray(a, np.float32) for a in (value, grad.x, grad.w))
    except Unavailable as e:
        out.reason = str(e)
    except Exception as e:  # the framework raised: the row says what
        out.reason = f"raised {error_text(e)}"
    conn.send(out)


def in_fresh_process(impl: Impl, case: Case, budget: float) -> Outcome:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=run_impl, args=(impl, case, budget, child))
    process.start()
    child.close()
    try:
        return parent.recv()
    except EOFError:
        process.join()
        return Outcome(reason=f"the process died (exit {process.exitcode})")
    finally:
        process.join()


def floor_bytes(case: Case, pass_: str) -> int:
    from harness.runner.timings import bytes_min

    return bytes_min(case, pass_)


def staged_bytes(case: Case) -> int:
    """The call's inputs as staged (E, W, y): what a measured peak is above."""
    return floor_bytes(case, "forward") - 4  # the loss' 4 bytes are an output


def relative(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| (the harness's norm-wise relative error)."""
    scale = float(np.abs(want).max())
    return float(np.abs(got.astype(np.float64) - want).max()) / scale if scale else float("nan")


def table(case: Case, results: list[tuple[Impl, Outcome]], ref: Any) -> tuple[str, dict[str, int]]:
    """The Markdown table of one case, and the forward+backward peaks (inputs included) by label."""
    n, c = case.shape
    flops = {"forward": 2 * n * c * case.hidden, "forward_backward": 6 * n * c * case.hidden}
    lines = [
        f"**N={n}, D={case.hidden}, C={c}, {case.dtype}** (logits {n * c * 4 / MiB:.0f} MiB in float32; floor: "
        f"forward {floor_bytes(case, 'forward') / MiB:.0f} MiB, forward+backward "
        f"{floor_bytes(case, 'forward_backward') / MiB:.0f} MiB)",
        "",
        "| implementation | pass | time | GFLOP/s | peak memory | x floor | max dE err | max dW err |",
        "|---|---|---|---|---|---|---|---|",
    ]
    peaks = {}
    for impl, out in results:
        if out.reason:
            lines.append(f"| {impl.label} | - | - | - | - | - | - | {out.reason[:150]} |")
            continue
        errs = ("-", "-")
        if out.grads:
            errs = (f"{relative(out.grads[1], ref.grad):.1e}", f"{relative(out.grads[2], ref.grad_w):.1e}")
        for pass_ in PASSES:
            peak = staged_bytes(case) + out.peak[pass_] if pass_ in out.peak else None
            if pass_ == "forward_backward" and peak is not None:
                peaks[impl.label] = peak
            mem = "-" if peak is None else f"{peak / MiB:,.0f} MiB"
            ratio = "-" if peak is None else f"{peak / floor_bytes(case, pass_):.1f}"
            s = out.seconds[pass_]
            shown = errs if pass_ == "forward_backward" else ("", "")
            lines.append(f"| {impl.label} | {pass_.replace('_', '+')} | {s * 1e3:,.1f} ms | "
                         f"{flops[pass_] / s / 1e9:.0f} | {mem} | {ratio} | {shown[0]} | {shown[1]} |")  # fmt: skip
    return "\n".join(lines), peaks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=512, help="N, the tokens (default 512)")
    ap.add_argument("--hidden", type=int, default=128, help="D, the hidden size (default 128)")
    ap.add_argument("--classes", default="32000,128256,256000", help="C, comma-separated (default: Llama 2, 3, Gemma)")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    ap.add_argument("--budget", type=float, default=0.3, help="sampling seconds per timing (default 0.3)")
    ap.add_argument("--only", default="", help="comma-separated words: run the implementations whose label has one")
    args = ap.parse_args()

    from adapters import reference

    spec = LossSpec(linear=True)
    cases = [Case("timing", spec, (args.rows, int(c)), args.dtype, hidden=args.hidden) for c in args.classes.split(",")]
    impls = [i for i in IMPLS if not args.only or any(w in i.label for w in args.only.split(","))]
    print(__doc__.splitlines()[0], "\n")
    last: dict[str, int] = {}
    for case in cases:
        t0 = time.perf_counter()
        ref = reference.evaluate(case.spec, case.inputs(), scales=False)
        results = [(impl, in_fresh_process(impl, case, args.budget)) for impl in impls]
        text, last = table(case, results, ref)
        del ref
        print(text)
        print(f"\n({time.perf_counter() - t0:.0f} s; peak memory includes E, W and y as staged; errors are max |g - "
              f"exact| / max |exact| of the forward+backward call, against the float64 reference)\n")  # fmt: skip
    naive = last.get(IMPLS[0].label)
    chunked = [v for k, v in last.items() if any(i.chunked and i.label == k for i in impls)]
    if naive and chunked:
        print(f"peak memory, best chunked / naive: {min(chunked) / naive:.2f}")
    else:
        print("peak memory, best chunked / naive: n/a (the naive or every chunked implementation did not run)")


if __name__ == "__main__":
    main()
    sys.exit(0)
