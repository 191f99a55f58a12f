"""A call's peak memory (harness/runner/peak.py): the resident set on Linux sees an allocation and not the inputs
staged before the call; a framework's own counters are used as given; the timing rows carry the peak with the
inputs added, against bytes_min (the floor)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from adapters.base import MemoryCounters
from cases.spec import Case, LossSpec
from harness.runner.peak import peak_bytes, resident_set, status_bytes
from harness.runner.timing import Measurement
from harness.runner.timings import bytes_min, timing_row

MiB = 2**20
RSS = resident_set()
needs_rss = pytest.mark.skipif(RSS is None, reason="no /proc/self/clear_refs here (Linux only)")


@needs_rss
@pytest.mark.parametrize("mib", [40, 128])  # above glibc's largest adaptive mmap threshold (32 MiB): mapped anew
def test_the_resident_set_sees_what_a_call_allocates(mib: int) -> None:
    n = mib * MiB // 8

    def call() -> np.ndarray:
        a = np.ones(n)  # alive with the result below: two arrays of n at once
        return a + 1.0

    got = peak_bytes(call, lambda r: None, RSS)
    assert abs(got - 2 * mib * MiB) <= MiB, got / MiB  # to the kernel's page counters' batching


@needs_rss
def test_memory_staged_before_the_call_and_freed_memory_are_not_counted() -> None:
    staged = np.ones(64 * MiB // 8)  # the inputs: resident before the call
    freed = np.ones(64 * MiB // 8)
    del freed  # freed before the call: handed back (malloc_trim), not reused unseen
    got = peak_bytes(lambda: staged.sum(), lambda r: None, RSS)
    assert got < 4 * MiB, got / MiB


def test_a_frameworks_own_counters_are_read_around_the_call() -> None:
    log: list[str] = []
    used = [100]

    def call() -> int:
        log.append("call")
        used[0] += 40  # the call holds 40 more at its peak
        return 1

    counters = MemoryCounters("fake", lambda: log.append("reset"), lambda: used[0], lambda: 100)
    assert peak_bytes(call, lambda r: log.append("sync"), counters) == 40
    assert log == ["reset", "call", "sync"]


def test_status_fields_are_read_in_bytes(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n")
    assert status_bytes("VmHWM", status) == 2048 * 1024 and status_bytes("VmRSS", status) == 1024 * 1024
    with pytest.raises(KeyError, match="Expected VmSwap"):
        status_bytes("VmSwap", status)


def test_a_linear_heads_floor_is_its_inputs_and_gradients_without_logits() -> None:
    n, c, d = 512, 32000, 256
    case = Case("timing", LossSpec(linear=True, bias=True), (n, c), "float32", hidden=d)
    params = (n * d + c * (d + 1)) * 4  # E and [W | b]
    assert bytes_min(case, "forward") == params + n * 8 + 4  # and int64 labels, the loss
    assert bytes_min(case, "forward_backward") == 2 * params + n * 8 + 4  # and their gradients
    m = Measurement((0.5,), 1, 0.6, 0.0)
    row = timing_row("r", case, "torch", "2", "cpu", "api", "eager", "forward_backward", m, None, 2,
                     (10 * MiB, "VmHWM"))  # fmt: skip
    assert row["peak_bytes"] == params + n * 8 + 10 * MiB and row["peak_by"] == "VmHWM"
    plain = timing_row("r", case, "torch", "2", "cpu", "api", "eager", "forward", m, None, 2)
    assert math.isnan(plain["peak_bytes"]) and plain["peak_by"] == ""


def test_a_timing_sweep_of_a_linear_head_has_every_api_and_its_peak() -> None:
    """Through the real workers: torch's and JAX's linear APIs timed with W's gradient, each row with its peak;
    the chunked paths hold less than the naive one (N >> D, so the logits outweigh W)."""
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    from harness.runner.options import RunOptions
    from harness.runner.timings import TIMING_COLUMNS, run_timing, timing_frame

    case = Case("timing", LossSpec(linear=True), (2048, 4000), "float32", hidden=16)  # logits 31 MiB, W 0.25 MiB
    lines: list = []
    options = RunOptions(frameworks=("torch", "jax"), quiet=True, threads=1, timing_budget_s=0.0)
    info = run_timing({"cpu": [case], "gpu": []}, options, "t", lines.extend)
    df = timing_frame([row for line in lines for row in line["rows"]])
    assert tuple(df.columns) == TIMING_COLUMNS
    assert set(df["api"]) == {"torch.nn.functional.cross_entropy:linear", "torch.nn.functional.linear_cross_entropy",
                              "torch.nn.functional.linear_cross_entropy:chunked",
                              "optax.losses.softmax_cross_entropy_with_integer_labels:linear"}  # fmt: skip
    assert any("cut_cross_entropy" in k for k in info["not_timed"]), info["not_timed"]
    assert df["peak_bytes"].notna().all() and set(df["peak_by"]) == {"VmHWM", "XLA memory_analysis (temp + output)"}
    fb = df[(df["pass"] == "forward_backward") & (df["mode"] == "eager")].set_index("api")["peak_bytes"]
    logits = 2048 * 4000 * 4
    assert fb["torch.nn.functional.cross_entropy:linear"] > bytes_min(case, "forward_backward") + 2 * logits
    assert fb["torch.nn.functional.linear_cross_entropy:chunked"] < bytes_min(case, "forward_backward") + logits / 2
