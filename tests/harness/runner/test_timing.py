"""The timing method (with a fake clock: deterministic) and one real sweep through a worker."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pandas as pd
import pytest

from cases.generator import timing_cases
from harness.runner.options import RunOptions
from harness.runner.timing import Measurement, measure
from harness.runner.timings import TIMING_COLUMNS, bytes_min, run_timing, timing_frame


class FakeDevice:
    """A clock that advances `call_s` per call and `sync_s` per synchronisation."""

    def __init__(self, call_s: float, sync_s: float, first_extra_s: float = 0.0) -> None:
        self.now, self.call_s, self.sync_s, self.first_extra_s, self.calls = 0.0, call_s, sync_s, first_extra_s, 0

    def clock(self) -> float:
        return self.now

    def call(self) -> int:
        self.now += self.call_s + (self.first_extra_s if self.calls == 0 else 0.0)
        self.calls += 1
        return self.calls

    def sync(self, result: int) -> None:
        self.now += self.sync_s


def test_block_is_sized_so_overhead_stays_under_one_percent() -> None:
    dev = FakeDevice(call_s=1e-6, sync_s=1e-5)  # a 1 us call against a 10 us synchronisation
    m = measure(dev.call, dev.sync, budget_s=0.01, clock=dev.clock)
    assert m.block >= 1000, m.block  # 1000 calls = 1 ms per block, sync 10 us = 1%
    assert m.median_s == pytest.approx(1e-6, rel=0.011), m.median_s
    assert m.overhead_s == pytest.approx(1e-5)


def test_compile_time_is_kept_out_of_the_median() -> None:
    dev = FakeDevice(call_s=0.2, sync_s=0.0, first_extra_s=5.0)
    m = measure(dev.call, dev.sync, budget_s=0.0, clock=dev.clock)
    assert m.median_s == pytest.approx(0.2) and m.compile_s == pytest.approx(5.0)
    assert len(m.samples) == 3 and m.block == 1  # the minimum samples of a slow call, no calibration calls
    assert dev.calls == 4  # the first (compiling) call and three samples


def test_noisy_is_iqr_over_ten_percent_of_median() -> None:
    assert Measurement((1.0, 1.0, 1.3, 1.3), 1, 1.0, 0.0).noisy
    assert not Measurement((1.0, 1.01, 1.02, 1.0), 1, 1.0, 0.0).noisy


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="Received: min_samples=0"):
        measure(lambda: None, lambda r: None, min_samples=0)


def test_bytes_min_counts_reads_and_writes() -> None:
    case = timing_cases()[0]  # 256 x 1000 float32, int64 labels, mean
    x = 256 * 1000 * 4
    assert bytes_min(case, "forward") == x + 256 * 8 + 4
    assert bytes_min(case, "forward_backward") == 2 * x + 256 * 8 + 4


def test_real_sweep_writes_timing_rows() -> None:
    pytest.importorskip("torch")
    case = timing_cases()[0]
    lines: list = []
    options = RunOptions(frameworks=("numpy", "torch"), devices=("cpu", "gpu"), quiet=True, threads=1,
                         timing_budget_s=0.0)  # fmt: skip
    info = run_timing({"cpu": [case], "gpu": []}, options, "t", lines.extend)
    df = timing_frame([row for line in lines for row in line["rows"]])
    raw = [samples for line in lines for samples in line["samples_s"]]  # kept beside the rows, in their order
    assert [len(s) for s in raw] == df["samples"].tolist()
    assert [float(np.median(s)) for s in raw] == df["median_s"].tolist()
    assert tuple(df.columns) == TIMING_COLUMNS
    got = df.set_index(["mode", "pass"])
    assert set(got.index) == {(m, p) for m in ("eager", "compiled") for p in ("forward", "forward_backward")}
    assert (df["median_s"] > 0).all() and (df["samples"] >= 3).all() and (df["threads"] == 1).all()
    assert (
        df[df["mode"] == "compiled"]["compile_s"].notna().all() and df[df["mode"] == "eager"]["compile_s"].isna().all()
    )
    assert ((df["roofline_frac"] > 0) & (df["roofline_frac"] < 1)).all(), df[["mode", "pass", "gbps", "roofline_frac"]]
    assert info["bandwidth_gbps"]["cpu"] > 0 and "numpy" in info["not_timed"]
    assert math.isclose(df["gbps"].iloc[0], df["bytes_min"].iloc[0] / df["median_s"].iloc[0] / 1e9)
    assert isinstance(df, pd.DataFrame)


def test_samples_span_the_budget_when_calls_are_cheap() -> None:
    """A 0.1 ms call is sampled for the whole 0.3 s budget (blocked_autorange's span), one call per
    sample while the timer costs under 1% of it: blocks of unsynchronised calls would let an
    asynchronous framework overlap them."""
    dev = FakeDevice(call_s=1e-4, sync_s=0.0)
    m = measure(dev.call, dev.sync, budget_s=0.3, clock=dev.clock)
    assert m.block == 1, f"block={m.block} [measure(call_s=1e-4, sync_s=0)]"
    assert len(m.samples) * 1e-4 == pytest.approx(0.3, rel=0.01), f"{len(m.samples)} samples of 0.1 ms"
    assert m.median_s == pytest.approx(1e-4)


class FakeTimingWorker:
    """A timing worker whose warm-up (the wait for its hello) takes `warm_s`; counts warm-ups running at once."""

    running = 0
    most = 0
    lock = threading.Lock()

    def __init__(self, framework: str, warm_s: float = 0.05) -> None:
        self.framework, self.warm_s, self.hello, self.killed = framework, warm_s, None, False

    def handshake(self) -> str:
        with self.lock:
            FakeTimingWorker.running += 1
            FakeTimingWorker.most = max(FakeTimingWorker.most, FakeTimingWorker.running)
        time.sleep(self.warm_s)
        with self.lock:
            FakeTimingWorker.running -= 1
        self.hello = f"hello from {self.framework}"
        return self.hello

    def kill(self) -> None:
        self.killed = True


def test_timing_workers_warm_up_a_few_at_a_time_and_are_ready_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """During the accuracy pass at most AT_ONCE warm-ups compete with it; `ready()` returns once every one has said
    hello (nothing warms up while another framework is timed); `kill()` starts no more and kills those started."""
    from harness.runner import timings

    monkeypatch.setattr(timings, "_timing_worker", lambda fw, kind, todo, options: FakeTimingWorker(fw))
    frameworks = ("torch", "tensorflow", "jax", "paddle", "mlx", "keras_jax")
    options = RunOptions(frameworks=frameworks, quiet=True)
    warming = timings.WarmingWorkers({"cpu": timing_cases()[:1], "gpu": []}, options)
    started = warming.ready()
    assert sorted(fw for fw, _ in started) == sorted(fw for fw, *_ in warming.todo)
    assert all(w.hello for w in started.values())
    assert FakeTimingWorker.most == timings.WarmingWorkers.AT_ONCE, FakeTimingWorker.most

    monkeypatch.setattr(timings, "_timing_worker", lambda fw, kind, todo, options: FakeTimingWorker(fw, warm_s=0.5))
    stopped = timings.WarmingWorkers({"cpu": timing_cases()[:1], "gpu": []}, options)
    stopped.kill()  # while the first two warm up
    assert len(stopped.workers) <= timings.WarmingWorkers.AT_ONCE < len(stopped.todo)
    assert all(w.killed for w in stopped.workers.values())
