"""`harness.verify`, `python -m harness verify` and `harness.testing.assert_matches_torch` on users' own losses.

Correct ports pass, in float64 and float32, the K-dim, confident and edge cases included; a port that
divides a weighted mean by the count of non-ignored elements is caught by all three with ``weight_norm``
named (its value is off by the ratio of the two denominators, computed here by hand); functions defined in
a plain script's ``__main__`` (no main guard) run as well as importable ones.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import harness
from cases.names import UsageError
from harness.api.verify import failure_message, failures
from harness.testing import assert_matches_torch

ROOT = Path(__file__).resolve().parents[3]
SMOOTHED = dict(weighted=True, ignore_index=-100, label_smoothing=0.1)  # CrossEntropyLoss(weight=w, ...)

# Ports of torch.nn.CrossEntropyLoss(weight=w, ignore_index=-100, label_smoothing=0.1): the module is written
# to a temporary directory and imported by name, as a user's would be.
PORTS = '''
import jax
import jax.numpy as jnp
import torch
import torch.nn.functional as F


def jax_port(x, y, w):
    """Classes last; an all-ignored batch gives PyTorch's NaN loss with a zero gradient."""
    c = x.shape[-1]
    logp = jax.nn.log_softmax(x, axis=-1)
    valid = y != -100
    yy = jnp.where(valid, y, 0)
    nll = -jnp.take_along_axis(logp, yy[..., None], axis=-1)[..., 0]
    smooth = -(logp * w).sum(-1) / c
    wy = jnp.where(valid, w[yy], 0.0)
    loss = jnp.where(valid, 0.9 * nll * wy + 0.1 * smooth, 0.0)
    total = wy.sum()
    return jnp.where(total > 0, loss.sum() / jnp.where(total > 0, total, 1.0), jnp.nan)


def jax_count_port(x, y, w):
    """The same, divided by the number of non-ignored elements: the usual wrong port."""
    c = x.shape[-1]
    logp = jax.nn.log_softmax(x, axis=-1)
    valid = y != -100
    yy = jnp.where(valid, y, 0)
    nll = -jnp.take_along_axis(logp, yy[..., None], axis=-1)[..., 0]
    smooth = -(logp * w).sum(-1) / c
    loss = jnp.where(valid, 0.9 * nll * w[yy] + 0.1 * smooth, 0.0)
    return loss.sum() / valid.sum()


def torch_port(x, y, w):
    return F.cross_entropy(x, y, weight=w, ignore_index=-100, label_smoothing=0.1)
'''


def module_on_path(tmp_path_factory: pytest.TempPathFactory, name: str, text: str) -> Iterator[str]:
    """A fixture's body: `name`.py holding `text` in a new directory on sys.path (the workers get the caller's
    path), removed again afterwards."""
    d = tmp_path_factory.mktemp(name)
    (d / f"{name}.py").write_text(text)
    sys.path.insert(0, str(d))
    yield str(d)
    sys.path.remove(str(d))
    sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The directory holding `my_ports.py`, on sys.path (the workers inherit it)."""
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    yield from module_on_path(tmp_path_factory, "my_ports", PORTS)


def _kinds(df) -> set[str]:
    return {c.split("-")[0] for c in df["case_id"]}


def test_a_correct_jax_port_passes_in_float64_and_float32(ports: str) -> None:
    df = harness.verify("my_ports:jax_port", "jax", class_axis=-1, **SMOOTHED)
    assert failure_message(df) == "", failure_message(df)
    assert set(df["dtype"]) == {"float64", "float32"}
    assert _kinds(df) == {"smoothed", "edge"}
    assert {"4x10x4x3x2", "256x100"} <= set(df["shape"]), "the K-dim and confident cases ran"
    assert set(df["api"]) == {"my_ports.jax_port"} and set(df["recipe"]) == {"user"}
    assert (df["framework"] == "jax").all()


def test_a_correct_torch_port_passes(ports: str) -> None:
    import my_ports

    df = harness.verify(my_ports.torch_port, "pytorch", **SMOOTHED)  # a callable, an alias
    assert failure_message(df) == "", failure_message(df)
    assert set(df["dtype"]) == {"float64", "float32"} and len(df) == 10


def test_a_count_denominator_is_caught_and_named(ports: str) -> None:
    import my_ports

    df = harness.verify(my_ports.jax_count_port, "jax", class_axis=-1, **SMOOTHED, kinds="smoothed", dtypes="float64")
    assert len(df) == 3 and (df["outcome"] == "mismatch").all()
    assert (df["explanation"] == "weight_norm=count").all(), df["explanation"].tolist()
    # by hand: the port's value is PyTorch's times sum(w[y] over kept) / count(kept)
    case = df.iloc[0]
    from cases.generator import verify_cases
    from cases.spec import LossSpec

    spec = LossSpec(weighted=True, ignore_index=-100, label_smoothing=0.1)
    inputs = next(c for c in verify_cases(spec, dtypes=("float64",)) if c.id == case["case_id"]).inputs()
    kept = inputs.target != -100
    ratio = inputs.weight[inputs.target[kept]].sum() / kept.sum()
    assert case["value"] == pytest.approx(case["ref_value"] * ratio, rel=1e-12)
    message = failure_message(df)
    assert message.startswith("my_ports.jax_count_port (JAX/optax) does not match PyTorch on 3 of 3 rows")
    assert "weight_norm=count (weighted mean divided by the count of non-ignored elements)" in message


def test_assert_matches_torch_raises_with_the_cause_in_one_line(ports: str) -> None:
    with pytest.raises(AssertionError) as info:
        assert_matches_torch("my_ports:jax_count_port", "jax", class_axis=-1, **SMOOTHED, dtypes="float32")
    text = str(info.value)
    assert "\n" not in text and "weight_norm=count" in text and "case smoothed-n64-c10-f32" in text
    df = assert_matches_torch("my_ports:jax_port", "jax", class_axis=-1, **SMOOTHED, kinds="smoothed")
    assert (df["outcome"] == "ok").all()


def test_the_command_line_prints_the_cause_and_exits_1(ports: str) -> None:
    cmd = [sys.executable, "-m", "harness", "verify", "my_ports:jax_count_port", "--framework", "jax",
           "--class-axis", "-1", "--weighted", "--ignore-index", "-100", "--label-smoothing", "0.1",
           "--kinds", "smoothed", "--dtypes", "float64"]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ports, env=_env())
    assert p.returncode == 1, p.stderr
    assert "weight_norm=count" in p.stdout and "does not match PyTorch on 3 of 3 rows" in p.stdout
    ok = subprocess.run(
        [*cmd[:4], "my_ports:jax_port", *cmd[5:]], capture_output=True, text=True, cwd=ports, env=_env()
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "my_ports.jax_port matches PyTorch on all 3 rows" in ok.stdout


KERAS_PORTS = """
import keras


def as_written(x, y, w):
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, x)


def in_x_dtype(x, y, w):
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=x.dtype)(y, x)
"""


def test_a_keras_loss_computes_in_float32_unless_given_the_dtype(tmp_path: Path) -> None:
    """Keras losses cast to their dtype, keras.config.floatx() ('float32') by default: on float64 input the
    port computes in float32 (and is named so); with dtype=x.dtype it matches, and float32 input passes either way."""
    pytest.importorskip("tensorflow")
    (tmp_path / "keras_ports.py").write_text(KERAS_PORTS)
    sys.path.insert(0, str(tmp_path))
    try:
        df = harness.verify("keras_ports:as_written", "keras", class_axis=-1, kinds="multiclass")
        f64, f32 = df[df["dtype"] == "float64"], df[df["dtype"] == "float32"]
        assert len(f64) == 3 and (f64["explanation"] == "computed_in=float32").all(), f64[["outcome", "explanation"]]
        assert (f32["outcome"] == "ok").all()
        assert_matches_torch("keras_ports:in_x_dtype", "tensorflow", class_axis=-1, kinds="multiclass")
    finally:
        sys.path.remove(str(tmp_path))


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}


PLAIN_SCRIPT = """
import numpy as np
import torch
import torch.nn.functional as F
import harness

def port(x, y, w):  # defined in __main__: sent to the worker by value
    return F.cross_entropy(x, y, weight=w)

rng = np.random.default_rng(0)
df = harness.check(rng.normal(size=(8, 5)).astype(np.float32), rng.integers(0, 5, 8), frameworks="numpy,torch")
print("check", len(df), sorted(set(df["outcome"])))
v = harness.verify(port, "torch", weighted=True, kinds="multiclass")
print("verify", len(v), sorted(set(v["outcome"])))
v = harness.verify(lambda x, y, w: F.cross_entropy(x, y).mul(1.5), "torch", kinds="multiclass", dtypes="float64")
print("lambda", sorted(set(v["outcome"])), sorted(set(v["explanation"])))
"""


def test_a_plain_script_and_a_heredoc_get_rows(tmp_path: Path) -> None:
    """No main guard: the workers start without re-running the script, and its functions travel by value."""
    pytest.importorskip("torch")
    script = tmp_path / "plain.py"
    script.write_text(PLAIN_SCRIPT)
    for how in ([sys.executable, str(script)], [sys.executable, "-"]):
        stdin = PLAIN_SCRIPT if how[-1] == "-" else None
        p = subprocess.run(how, input=stdin, capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        lines = p.stdout.splitlines()
        assert lines[0].startswith("check ") and "crashed" not in lines[0] and "'ok'" in lines[0], lines
        assert lines[1] == "verify 6 ['ok']", lines  # 3 cases in float64 and float32
        assert lines[2].startswith("lambda ['mismatch']"), lines  # 1.5 x the loss: no variant scales it


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(fn="nosuchmodule:f", framework="jax"),
            "Expected an importable module in 'nosuchmodule:f'. Received: module 'nosuchmodule'",
        ),
        (dict(fn="no_colon", framework="jax"), "Expected MODULE:FUNCTION (e.g. my_losses:ce). Received: 'no_colon'"),
        (
            dict(fn=len, framework="nosuch"),
            "Expected framework in {numpy, torch, tensorflow, jax, paddle, mlx, onnxruntime, keras_jax, keras_torch}. Received: framework='nosuch'",
        ),
        (dict(fn=len, framework="jax", class_axis=2), "Expected class_axis in {1, -1}. Received: class_axis=2"),
        (dict(fn=len, framework="jax", kinds="soft"), "Expected kind in {multiclass, edge}. Received: kind='soft'"),
        (
            dict(fn=len, framework="jax", ignore_index=1.5),
            "Expected ignore_index to be an integer or None. Received: ignore_index=1.5",
        ),
        (
            dict(fn=len, framework="jax", target="prob", ignore_index=-100),
            "Expected ignore_index=None for target='prob'",
        ),
        (dict(fn=3, framework="jax"), "Expected a function fn(x, y, w) -> loss or 'module:function'. Received: 3"),
    ],
)
def test_bad_options_are_one_line_before_any_work(kwargs: dict, message: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(UsageError) as info:
        harness.verify(kwargs.pop("fn"), **kwargs)
    assert str(info.value).startswith(message), str(info.value)
    assert time.perf_counter() - t0 < 5


def test_the_command_line_rejects_a_bad_option_with_exit_2() -> None:
    p = subprocess.run([sys.executable, "-m", "harness", "verify", "x:y", "--framework", "nosuch"],
                       capture_output=True, text=True, env=_env(), timeout=60)  # fmt: skip
    assert p.returncode == 2 and p.stderr.startswith("error: Expected framework in"), p.stderr


# Hand-written NumPy ports of the same CrossEntropyLoss(weight=w, ignore_index=-100, label_smoothing=0.1), and a
# plain-Python F.cross_entropy(x, y) over lists: NumPy has no autodiff, so their gradients are numerical.
NUMPY_PORTS = '''
import math

import numpy as np


def _smoothed(logp, y, w, c):
    keep = y != -100
    yk = np.expand_dims(np.where(keep, y, 0), 1)
    nll = -np.take_along_axis(logp, yk, axis=1)[:, 0]
    wy = w[yk[:, 0]] * keep
    smooth = -(logp * w.reshape((-1,) + (1,) * (logp.ndim - 2))).sum(axis=1) / c
    loss = np.where(keep, 0.9 * wy * nll + 0.1 * smooth, 0)
    return loss.sum() / wy.sum() if wy.sum() > 0 else np.nan


def ce(x, y, w):
    """A stable log-softmax: PyTorch's loss."""
    m = x.max(axis=1, keepdims=True)
    return _smoothed(x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True)), y, w, x.shape[1])


def clipped(x, y, w):
    """The softmax clipped to [1e-7, 1 - 1e-7] before its log, as many tutorials write it."""
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return _smoothed(np.log(np.clip(e / e.sum(axis=1, keepdims=True), 1e-7, 1 - 1e-7)), y, w, x.shape[1])


def plain_sum(x, y, w):
    """Plain Python over lists (math.exp), every element's C scores a list: the batch's sum."""
    rows = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1]).tolist()
    total = 0.0
    for z, k in zip(rows, y.reshape(-1).tolist()):
        m = max(z)
        total += -(z[k] - m - math.log(sum(math.exp(v - m) for v in z)))
    return total


def plain(x, y, w):
    """The same, averaged: F.cross_entropy(x, y)."""
    return plain_sum(x, y, w) / (x.size // x.shape[1])
'''


@pytest.fixture(scope="module")
def numpy_ports(tmp_path_factory: pytest.TempPathFactory) -> str:
    yield from module_on_path(tmp_path_factory, "np_ports", NUMPY_PORTS)


def test_a_correct_numpy_port_passes_with_a_numerical_gradient(numpy_ports: str) -> None:
    """Complex-step gradients in float64 (exact to rounding), judged as a framework's; the confident case's 25600
    elements are past the gradient's time budget: its value alone is judged, and the row says so."""
    df = harness.verify("np_ports:ce", "numpy", **SMOOTHED)
    assert failure_message(df) == "", failure_message(df)
    assert set(df["dtype"]) == {"float64", "float32"} and _kinds(df) == {"smoothed", "edge"}
    methods = dict(zip(df["case_id"], df["grad_method"], strict=True))
    assert {m for c, m in methods.items() if c.startswith(("smoothed-n64", "smoothed-n4", "edge-big"))} == {
        "complex-step"}  # fmt: skip
    assert {m for c, m in methods.items() if "confident" in c or "allignored" in c} == {"none"}
    assert df[df["grad_method"] == "complex-step"]["grad_scaled_err"].max() < 1e-14


def test_a_clipped_numpy_port_is_caught_with_prob_clip_named(numpy_ports: str) -> None:
    df = harness.verify("np_ports:clipped", "numpy", **SMOOTHED, dtypes="float64")
    bad = failures(df)
    assert set(bad["case_id"].str.split("-").str[:2].str.join("-")) == {"smoothed-confident", "edge-big"}, bad
    assert (bad["explanation"] == "prob_clip=1e-7").all(), bad["explanation"].tolist()
    message = failure_message(df)
    assert "prob_clip=1e-7 (probabilities clipped to [1e-7, 1-1e-7] before the log)" in message
    big = bad[bad["case_id"].str.startswith("edge-big")].iloc[0]
    assert big["grad_method"] == "complex-step"  # np.clip takes complex numbers: the clipped derivative, 0
    cmd = [sys.executable, "-m", "harness", "verify", "np_ports:clipped", "--framework", "numpy", "--weighted",
           "--ignore-index", "-100", "--label-smoothing", "0.1", "--kinds", "edge", "--dtypes", "float64"]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=numpy_ports, env=_env(), timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "prob_clip=1e-7" in p.stdout and "complex-step" in p.stdout and "gradient" in p.stdout


def test_a_plain_python_port_gets_central_differences(numpy_ports: str) -> None:
    df = harness.verify("np_ports:plain", "numpy", kinds="multiclass")
    assert failure_message(df) == "", failure_message(df)
    small = df[~df["case_id"].str.contains("confident")]
    assert set(small["grad_method"]) == {"central-difference"}  # math.exp drops an imaginary part
    assert (small["grad_rel_err"] < 1e-8).all(), small["grad_rel_err"].tolist()  # eps^(2/3)
    assert set(df[df["case_id"].str.contains("confident")]["grad_method"]) == {"none"}
    summed = harness.verify("np_ports:plain_sum", "numpy", kinds="multiclass", dtypes="float64")
    assert (summed["explanation"] == "reduction=sum").all(), summed[["case_id", "explanation"]]  # within its slack
