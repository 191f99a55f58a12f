"""The peer projects' own test expectations for cross-entropy, run through `harness.check`.

Each vector in `peer_vectors.VECTORS` is a literal input from a framework's own test suite with the
number (or gradient) that test asserts, mapped to the canonical (PyTorch) semantics. For each one
this module calls ``harness.check`` once and proves:

(a) the harness's float64 reference agrees with the peer's expectation within the peer's own
    tolerance, element by element (so the reference and the peers mean the same loss); where the
    peer's number holds a peer-specific behaviour (Keras' clipping and renormalisation of
    probabilities and its mean over the last axis, tf.nn's ``softmax - labels`` backprop) the
    reference agrees with the exact canonical value instead, and
(b) every ``matched`` row that is not ``unsupported`` is ``ok`` and within the peer's tolerance of
    the expectation: its first value directly, every element through ``value_abs_err`` and
    ``grad_abs_err`` (an error within the expectation's slack ``atol + rtol |e| - |ref - e|`` at
    every element keeps the row within the peer's tolerance there), and
(c) for a peer-specific vector, the ``native`` row of the peer's own API reproduces the peer's
    number: its value, or for a gradient the size of the peer's departure from the exact gradient
    (the DataFrame holds gradient errors, not gradients); where the vector names the variant that is
    the peer's behaviour (``peer_variant``), the reference under that variant gives the peer's number
    and the native row's explanation names it; where the peer's test expects its API to raise on the
    CPU (``raises``), the native row raised with that message.

Labels outside [0, C) (``undefined``) have no canonical loss (PyTorch raises): there (a) holds with
the reference's NaNs exactly where the peer's are, the reference says it is undefined, and (b)
becomes: no row is ``ok``, PyTorch's and NumPy's rows raise, and every matched row raised or names the
``label_oob=`` treatment it applied while its numbers agree with the peer's where the loss is defined.

Vectors the harness cannot express (``needs``) are recorded whole and skipped; none is at present.

Sources (commits are the versions read):
- Keras 3: keras-team/keras, keras/src/losses/losses_test.py (Categorical/SparseCategorical/Binary
  CrossentropyTest), tolerances of keras/src/testing/test_case.py.
- optax: google-deepmind/optax, optax/losses/_classification_test.py (SoftmaxCrossEntropyTest,
  SafeSoftmaxCrossEntropyTest, SoftmaxCrossEntropyWithIntegerLabelsTest, SigmoidCrossEntropyTest).
- TensorFlow: tensorflow/tensorflow, tensorflow/python/kernel_tests/nn_ops/xent_op_test_base.py,
  nn_ops/xent_op_test.py and kernel_tests/sparse_xent_op_test.py.
- PyTorch: pytorch/pytorch, test/test_nn.py (TestNN, TestNNDeviceType).

Each vector names the frameworks it runs through (``frameworks``): TensorFlow's worker takes ~5 s
to start, so 15 vectors (TensorFlow's layouts and native rows, most of Keras' recipes) run numpy, torch
and tensorflow and the other 13 numpy, torch and jax; the module takes ~130 s on 2 cores.
"""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

import harness
from adapters import reference, variants
from harness.api.check import make_case


def _load_vectors() -> ModuleType:
    """peer_vectors.py beside this file (tests/ is no package; pytest runs with importlib mode)."""
    name = "harness_tests_peer_vectors"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("peer_vectors.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while they are made
        spec.loader.exec_module(module)
    return sys.modules[name]


PV = _load_vectors()
CHECK_OPTIONS = ("family", "input", "target_kind", "ignore_index", "label_smoothing", "reduction")
UNDEFINED_OUTCOMES = ("raised", "nonfinite", "mismatch")  # what a row on labels outside [0, C) may be

# Matched rows that fail for a reason of the harness (or of a framework it cannot match), not of the
# vector: id -> the row and what was observed.
XFAIL: dict[str, str] = {
    "keras-bce-probs-clipped": (
        "torch/torch.nn.functional.binary_cross_entropy/matched is 'nonfinite': value 25.0 where the reference is "
        "inf (PyTorch clamps each log term to >= -100: (0 + 100 + 0 + 0) / 4), gradient 2.5e11 where it is inf; "
        "the matched recipe keeps the clamp"
    ),
    "optax-safe-softmax-ce-neg-inf": (
        "torch/torch.nn.functional.cross_entropy/matched is 'nonfinite' (value has 3 non-finite, reference 1): "
        "per-example [9.0001, 3.0697, nan, inf, nan] where the reference is [9.00013, 3.0696733, 0.693147, inf, 0] "
        "(0 * -inf where a zero target meets a -inf logit); the matched recipe does not clamp -inf logits"
    ),
    "tf-xent-double-tail-gradient": (
        "the matched rows torch/torch.nn.functional.cross_entropy, tensorflow/keras.losses.CategoricalCrossentropy "
        "and tensorflow/tf.nn.softmax_cross_entropy_with_logits give the target class's gradient 0 where it is "
        "-exp(-a) = -5.55e-17: grad_abs_err 5.55e-17 against the peer's rtol 1e-14, atol 0 (slack 5.55e-31), yet "
        "outcome 'ok' under the harness's norm-wise tolerance; at commit 8d6fcb6 the float64 reference itself "
        "rounds that element to 0 (1 - softmax cancels)"
    ),
    "torch-nll-total-weight-zero": (
        "the matched rows of torch (nll_loss, cross_entropy) and jax (optax) are 'nonfinite': 'grad has 2 "
        "non-finite, reference 0'. PyTorch's nll_loss backward is -w[y] / total_weight = 0 * -inf = NaN at each "
        "target entry when every class weight is 0, while the reference gives a zero gradient whenever the "
        "mean's denominator is 0 (right where every target is ignored: torch-nll-all-ignored passes)"
    ),
}


def _params() -> list[Any]:
    params = []
    for v in PV.VECTORS:
        marks: list[Any] = []
        if v.needs:
            marks.append(pytest.mark.skip(reason=f"needs {v.needs}: harness.check cannot express it yet"))
        elif v.id in XFAIL:
            marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[v.id]))
        params.append(pytest.param(v, id=v.id, marks=marks))
    return params


def _arrays(v: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    x = np.array(v.x, dtype=v.dtype)
    kind = v.options.get("target_kind")
    softmax = v.options.get("family", "softmax") == "softmax"
    index = kind == "index" or (kind is None and softmax and np.asarray(v.target).dtype.kind in "iu")
    target = np.array(v.target, dtype=np.int64 if index else v.dtype)
    weight = None if v.weight is None else np.array(v.weight, dtype=v.dtype)
    return x, target, weight


def _options(v: Any) -> dict[str, Any]:
    """The vector's ``harness.check`` / ``make_case`` keyword arguments."""
    options = {k: v.options[k] for k in CHECK_OPTIONS if k in v.options}
    if v.sample_weight is not None:
        options["sample_weight"] = np.array(v.sample_weight, dtype=np.float64)
    return options


def _as_array(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _far(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Elements outside |a - e| <= atol + rtol |e|; NaN and inf only match themselves."""
    a, e = np.broadcast_arrays(_as_array(actual), _as_array(expected))
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(e)
        same = (np.isnan(a) & np.isnan(e)) | (~finite & ~np.isnan(e) & (a == e))
        near = finite & (np.abs(a - e) <= atol + rtol * np.abs(e))
    return ~(same | near)


def _slack(ref: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> float:
    """The largest error against `ref` that keeps every finite element within the peer's tolerance
    of `expected`: min over elements of atol + rtol |e| - |ref - e|."""
    r, e = np.broadcast_arrays(_as_array(ref), _as_array(expected))
    finite = np.isfinite(e) & np.isfinite(r)
    if not finite.any():
        return math.inf
    return float(np.min(atol + rtol * np.abs(e[finite]) - np.abs(r[finite] - e[finite])))


def _row_name(row: pd.Series) -> str:
    return f"{row['framework']}/{row['api']}/{row['recipe']}"


@pytest.mark.parametrize("v", _params())
def test_peer_expectation(v: Any) -> None:
    x, target, weight = _arrays(v)
    options = _options(v)
    df = harness.check(x, target, weight, frameworks=v.frameworks, **options)
    tol = f"(rtol={v.rtol:g}, atol={v.atol:g})"
    problems: list[str] = []

    # (a) the float64 reference (evaluated whole here: ref_value holds only the first element)
    case = make_case(x, target, weight, **options)
    ev = reference.evaluate(case.spec, case.inputs())
    ref_value, ref_grad = np.asarray(ev.value, np.float64), np.asarray(ev.grad, np.float64)
    assert bool(ev.undefined) == v.undefined, f"{v.id}: the reference says undefined={ev.undefined!r}"
    want = v.exact if v.exact is not None else v.expected  # the canonical expectation
    want_grad = v.exact_grad if v.exact_grad is not None else v.expected_grad
    what = "exact canonical value" if v.peer_specific else "peer's expectation"
    for name, got, wanted in (("value", ref_value, want), ("gradient", ref_grad, want_grad)):
        shape = None if wanted is None else _as_array(wanted).shape
        assert shape in (None, got.shape), f"{v.id}: the reference {name} has shape {got.shape}, the vector's {shape}"
    if want is not None:
        far = _far(ref_value, want, v.rtol, v.atol)
        if far.any():
            problems.append(
                f"reference value {ref_value.tolist()} vs {what} {want} {tol}: far at {np.argwhere(far).tolist()}"
            )
        if _far(df["ref_value"].to_numpy(), _as_array(want).flat[0], v.rtol, v.atol).any():
            problems.append(
                f"ref_value column {sorted(set(df['ref_value']))} vs {what} {_as_array(want).flat[0]} {tol}"
            )
    if want_grad is not None:
        far = _far(ref_grad, want_grad, v.rtol, v.atol)
        if far.any():
            problems.append(
                f"reference gradient {ref_grad.tolist()} vs {what} {want_grad} {tol}: far at {np.argwhere(far).tolist()}"
            )

    if v.peer_variant:  # the peer's number is the reference under the variant the vector names
        variant = variants.BY_NAME[v.peer_variant]
        vev = variants.evaluate_variants((variant,), case.spec, case.inputs())
        assert vev is not None, f"{v.id}: variant {v.peer_variant} does not apply to the vector"
        for name, got, wanted in (("value", vev.value, v.expected), ("gradient", vev.grad, v.expected_grad)):
            if wanted is not None and _far(np.asarray(got, np.float64), wanted, v.rtol, v.atol).any():
                problems.append(f"reference under {v.peer_variant}: {name} {np.asarray(got).tolist()} vs the "
                                f"peer's {wanted} {tol}")  # fmt: skip

    # (b) every matched row that runs: ok, and within the peer's tolerance of the expectation
    value_slack = None if want is None else _slack(ref_value, want, v.rtol, v.atol)
    grad_slack = None if want_grad is None else _slack(ref_grad, want_grad, v.rtol, v.atol)
    matched = df[(df["recipe"] == "matched") & (df["outcome"] != "unsupported")]
    assert len(matched), (
        f"{v.id}: no matched row ran: {df[['framework', 'api', 'recipe', 'outcome']].to_dict('records')}"
    )
    if v.undefined:  # no canonical value to be ok against: what each row says instead
        problems += _undefined_rows(df, value_slack, grad_slack, tol)
        matched = matched.iloc[:0]
    for _, row in matched.iterrows():
        name = _row_name(row)
        numbers = (f"value={row['value']!r} ref_value={row['ref_value']!r} value_abs_err={row['value_abs_err']:.3g} "
                   f"grad_abs_err={row['grad_abs_err']:.3g}")  # fmt: skip
        if row["outcome"] != "ok":
            problems.append(f"{name}: outcome {row['outcome']!r} ({row['error']}); {numbers}")
            continue
        if want is not None:
            first = _as_array(want).flat[0]
            if _far(row["value"], first, v.rtol, v.atol).any():
                problems.append(f"{name}: value {row['value']!r} vs expected {first!r} {tol}")
            if row["value_abs_err"] > value_slack:
                problems.append(f"{name}: value_abs_err {row['value_abs_err']:.3g} > slack {value_slack:.3g} {tol}")
        if want_grad is not None and row["grad_abs_err"] > grad_slack:
            problems.append(f"{name}: grad_abs_err {row['grad_abs_err']:.3g} > slack {grad_slack:.3g} {tol}")

    # (c) a peer-specific number comes back from the peer's own API as it is first ported
    if v.peer_specific:
        native = df[(df["api"] == v.peer_api) & (df["recipe"] == "native")]
        if v.raises:  # the peer's CPU behaviour, which its own test asserts
            raised = native["outcome"].eq("raised") & native["error"].map(lambda e: bool(re.search(v.raises, e)))
            if native.empty or not raised.all():
                problems.append(f"native {v.peer_api} did not raise {v.raises!r}: "
                                f"{native[['dtype', 'outcome', 'error']].to_dict('records')}")  # fmt: skip
            native = native.iloc[:0]
        elif native.empty or set(native["outcome"]) & {"unsupported", "raised"}:
            problems.append(f"native {v.peer_api} did not run: {native[['outcome', 'error']].to_dict('records')}")
        for _, row in native.iterrows():
            if v.peer_variant and v.peer_variant not in row["explanation"].split("+"):
                problems.append(f"{_row_name(row)} ({row['dtype']}): explanation {row['explanation']!r} does not "
                                f"name {v.peer_variant} ({v.peer_specific})")  # fmt: skip
            if v.expected is not None and v.exact is not None:
                first = _as_array(v.expected).flat[0]
                if _far(row["value"], first, v.rtol, v.atol).any():
                    problems.append(f"{_row_name(row)}: value {row['value']!r} vs the peer's {first!r} {tol} "
                                    f"({v.peer_specific})")  # fmt: skip
            if v.expected_grad is not None and v.exact_grad is not None:
                departure = float(np.max(np.abs(_as_array(v.expected_grad) - _as_array(v.exact_grad))))
                if _far(row["grad_abs_err"], departure, v.rtol, v.atol).any():
                    problems.append(f"{_row_name(row)}: grad_abs_err {row['grad_abs_err']!r} vs the peer gradient's "
                                    f"departure {departure!r} from the exact one {tol} ({v.peer_specific})")  # fmt: skip

    assert not problems, f"{v.id} [{v.source}]:\n  " + "\n  ".join(problems)


def _undefined_rows(df: pd.DataFrame, value_slack: float | None, grad_slack: float | None, tol: str) -> list[str]:
    """What rows on labels outside [0, C) must be (module docstring): never ``ok``; PyTorch's and NumPy's
    raised (the canonical semantics); every matched row raised, or names its ``label_oob=`` treatment and
    the reference's undefinedness, with numbers within the peer's tolerance where the loss is defined."""
    problems = []
    for _, row in df[df["outcome"] != "unsupported"].iterrows():
        name, outcome = f"{_row_name(row)} ({row['dtype']})", row["outcome"]
        if outcome not in UNDEFINED_OUTCOMES:
            problems.append(f"{name}: outcome {outcome!r} on labels outside [0, C) ({row['error']})")
        elif row["framework"] in ("torch", "numpy") and outcome != "raised":
            problems.append(f"{name}: outcome {outcome!r}, not raised as PyTorch ({row['error']})")
        elif row["recipe"] == "matched" and outcome != "raised":
            causes = row["explanation"].split("+")
            if not any(c.startswith("label_oob=") for c in causes) or reference.UNDEFINED not in row["error"]:
                problems.append(f"{name}: {outcome!r} with explanation {row['explanation']!r}, error {row['error']!r}")
            if value_slack is not None and not row["value_abs_err"] <= value_slack:
                problems.append(f"{name}: value_abs_err {row['value_abs_err']:.3g} > slack {value_slack:.3g} {tol}")
            if grad_slack is not None and not row["grad_abs_err"] <= grad_slack:
                problems.append(f"{name}: grad_abs_err {row['grad_abs_err']:.3g} > slack {grad_slack:.3g} {tol}")
    return problems
