"""The worker protocol: results cross the pipe intact and without a pickled copy of their arrays;
a timing worker warms its compiler up on a 4x3 loss, and makes the eager first calls of what it will time,
before anything is timed."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from adapters.base import MODES, PASSES, Result
from adapters.numpy_adapter import NumpyAdapter
from cases.spec import Case, Inputs, LossSpec
from harness.runner import worker as worker_module
from harness.runner.worker import ENTRY, WARM_UP_CASE, Worker, describe_exit, receive, send, serve, warm_up


def roundtrip(obj: Any) -> tuple[Any, list[int]]:
    """`obj` sent and received through a real pipe; also the sizes of the frames on the wire."""
    a, b = mp.Pipe()
    frames: list[int] = []
    sent = a.send_bytes

    def counting(data: Any, *args: Any) -> None:
        frames.append(memoryview(data).nbytes)
        sent(data, *args)

    a.send_bytes = counting  # type: ignore[method-assign]
    t = threading.Thread(target=send, args=(a, obj))  # a large message fills the pipe: read concurrently
    t.start()
    got = receive(b)
    t.join()
    return got, frames


def test_results_cross_the_pipe_intact_and_arrays_out_of_band() -> None:
    grad = np.random.default_rng(0).standard_normal((64, 2000))  # 1 MB
    moved = np.moveaxis(np.arange(24.0).reshape(2, 3, 4), 1, -1)  # not contiguous: pickled in band
    result = Result("api", "matched", "loss = f(x)", None, "", np.asarray(1.5), grad)
    got, frames = roundtrip((result, moved, "case done"))
    r, m, tail = got
    assert (r.api, r.recipe, r.recipe_code, r.outcome) == ("api", "matched", "loss = f(x)", None)
    assert r.grad.dtype == grad.dtype and np.array_equal(r.grad, grad), "gradient changed on the way"
    assert float(r.value) == 1.5 and np.array_equal(m, moved) and tail == "case done"
    assert frames[0] < 4096, f"header frame {frames[0]} bytes: the gradient was pickled in band"
    assert grad.nbytes in frames, f"frames {frames}: the gradient's {grad.nbytes} bytes were not sent as they are"


class Recording(NumpyAdapter):
    """The numpy adapter with a timer that records what it is asked to time."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], str, str]] = []

    def timer(
        self, code: str, spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str, pass_: str
    ) -> tuple[Callable[[], Any], Callable[[Any], None]]:
        self.calls.append((inputs.x.shape, mode, pass_))
        return (lambda: None), (lambda result: None)


def test_warm_up_compiles_every_mode_and_pass_of_a_tiny_loss() -> None:
    adapter = Recording()
    warm_up(adapter, "cpu")
    assert WARM_UP_CASE.shape == (4, 3)
    assert adapter.calls == [((4, 3), m, p) for m in MODES for p in PASSES], adapter.calls


def test_warm_up_makes_the_eager_first_calls_of_the_cases_to_time_and_no_compiled_one() -> None:
    # a compiled first call is the reported compile time: it must wait for the timing request
    adapter = Recording()
    cases = [Case(kind="timing", spec=LossSpec(), shape=(6, 5)), Case(kind="timing", spec=LossSpec(), shape=(2, 3, 4))]
    warm_up(adapter, "cpu", cases)
    apis = adapter.apis_for(LossSpec())
    expected = [(c.shape, "eager", p) for c in cases for _ in apis for p in PASSES]
    assert adapter.calls[len(MODES) * len(PASSES) :] == expected, adapter.calls


class Keeping(NumpyAdapter):
    """The numpy adapter, counting the calls of `keep_compiled`."""

    kept = 0

    def keep_compiled(self) -> None:
        self.kept += 1


def test_accuracy_workers_keep_compiled_programs_and_timing_workers_do_not(monkeypatch) -> None:
    """`serve` lets an accuracy worker's framework keep what it compiles for the next run (before its import); a timing
    worker's compile times must be real compiles, and a verifying worker runs a user's function."""
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # serve ignores Ctrl-C in its own process only
    for timing, want in ((False, 1), (True, 0)):
        adapter = Keeping()
        monkeypatch.setattr(worker_module.registry, "load", lambda name, adapter=adapter: adapter)
        ours, theirs = mp.Pipe()
        theirs.send(None)  # stop once it has said hello
        serve(ours, "numpy", "cpu", False, timing=timing)
        assert receive(theirs).device == "cpu"
        assert adapter.kept == want, f"timing={timing}: keep_compiled called {adapter.kept} times"


def test_a_timing_worker_has_its_own_compiler_cache_removed_with_it() -> None:
    worker = Worker("numpy", "cpu", timing=True)
    worker.start()
    first = worker.compiler_cache
    assert first is not None and os.path.isdir(first), first
    os.kill(worker.process.pid, signal.SIGKILL)  # a crash: the parent restarts the worker
    worker.process.join(5)
    worker.start()
    assert worker.compiler_cache != first and not os.path.exists(first)
    second = worker.compiler_cache
    worker.stop()
    assert worker.compiler_cache is None and not os.path.exists(second)
    assert Worker("numpy", "cpu").compiler_cache is None, "accuracy workers keep the compilers' defaults"


def test_a_stopped_worker_exits_without_the_interpreters_teardown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between two frameworks' timings the parent waits for the last one's worker to exit: it exits as soon as it is
    told to stop, and its teardown (collecting TensorFlow's or torch's modules, atexit handlers: here one that
    would sleep past `stop`'s 10 s wait, and be killed) is skipped. A clean exit, code 0, not a kill."""
    import harness.runner.worker as worker_module

    monkeypatch.setattr(worker_module, "ENTRY", f"import atexit, time; atexit.register(time.sleep, 60); {ENTRY}")
    worker = Worker("numpy", "cpu", timing=True)
    worker.start()
    worker.stop()
    assert worker.process.exitcode == 0, describe_exit(worker.process.exitcode)


def test_native_log_lines_are_dropped_and_everything_else_forwarded() -> None:
    """absl-format lines (TensorFlow 2.19+ writes them whatever TF_CPP_MIN_LOG_LEVEL says) do not reach the
    terminal; tracebacks, fatal lines and a last line without a newline do, byte for byte."""
    import io

    from harness.runner.worker import forward_stderr

    lines = [
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        b"I0000 00:00:1796112261.695987   32723 port.cc:153] oneDNN custom operations are on.\n",
        b"Traceback (most recent call last):\n",
        b"W0000 00:00:1796112001.875430   28908 op_kernel.cc:1858] OP_REQUIRES failed at sparse_xent_op.cc:103\n",
        b"E1201 07:45:01.123456 123 cpu_client.cc:10] an error XLA logs\n",
        b"F0000 00:00:1796112001.875430   28908 x.cc:1] a fatal one stays\n",
        b"WARNING: OMP_NUM_THREADS set to 2, not 1. The computation speed will not be optimized if you use data parallel.\n",
        b"PLEASE USE OMP_NUM_THREADS WISELY.\n",
        b"ValueError: the end",
    ]
    for keep in (False, True):
        r, w = os.pipe()
        os.write(w, b"".join(lines))
        os.close(w)
        out = io.BytesIO()
        forward_stderr(r, out, keep_native_logs=keep)
        want = lines if keep else [lines[2], lines[5], lines[8]]
        assert out.getvalue() == b"".join(want)


def test_a_tensorflow_worker_puts_no_log_lines_on_stderr(capfd) -> None:
    """A TensorFlow worker that loads TensorFlow and meets a label it rejects (its C++ kernel logs a warning):
    the parent's stderr gets nothing from it."""
    import importlib.util

    import pytest

    if importlib.util.find_spec("tensorflow") is None:  # not importorskip: TensorFlow would log in this process
        pytest.skip("TensorFlow is not installed")
    capfd.readouterr()
    case = Case(kind="edge", spec=LossSpec(), shape=(64, 10), tag="oob")
    worker = Worker("tensorflow", "cpu")
    try:
        assert worker.start().reason is None
        results = list(worker.results(case, 120.0))
    finally:
        worker.stop()
    assert any(r.outcome == "raised" and "outside the valid range" in r.error for r in results), results
    err = capfd.readouterr().err
    assert "port.cc" not in err and "op_kernel.cc" not in err and "absl::InitializeLog" not in err, err
