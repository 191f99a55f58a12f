"""ONNX's backend node tests of SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss, run through the harness.

Each ONNX case is captured as its test suite builds it: every ``export*`` static method of the case
class is called with the ``expect`` it calls replaced, which records the node (its attributes), the
inputs and the expected outputs. Mapped onto the canonical (PyTorch) semantics, for each case:

(a) the harness's float64 reference (`adapters.reference.evaluate`, on the float32 inputs as given)
    equals ONNX's expected loss within ONNX's own backend tolerance, element by element, and so does
    the ``ref_value`` column of the case's rows; where the case also asks for SoftmaxCrossEntropyLoss'
    second output ``log_prob`` (log_softmax(x) along axis 1), the reference's log-probabilities equal
    it as well: -log p[:, c] is the reference's unreduced loss of a one-hot probability target on c;
(b) every ``matched`` row of numpy, torch, jax and tensorflow that is not ``unsupported`` (float32, and
    the float64 sibling that decides its semantics) is ``ok``, its first value is within that tolerance
    of ONNX's first element, and every element is: each element's error is at most the row's
    ``value_abs_err`` and at most its ``value_rel_err`` times the reference's element (`_far_row`), which
    with the reference's own distance from ONNX's number must stay within atol + rtol |expected|.

The mapping: SoftmaxCrossEntropyLoss takes scores (``input='logits'``), NegativeLogLikelihoodLoss takes
log-probabilities (``input='log_probs'``; ONNX feeds it np.random.rand values, not log-probabilities:
NLL is defined on any real input). Inputs are (N, C, d1..dk) with classes on axis 1 as in PyTorch;
``reduction`` (default ``mean``), ``ignore_index`` and the optional weight input map to the same-named
harness.check arguments. An attribute this module does not know fails the case (`_attributes`).

Every ONNX case is canonical, none is skipped; the ones that look like departures are not:
- negative ignore_index (-1, -5) and one >= C (10): labels equal to it are dropped, as PyTorch reads
  an ignore_index outside [0, C) (its default is -100); no label lies outside [0, C) otherwise;
- an ignore_index inside [0, C) with class weights (0, 1, 2): its weight is unused and the weighted
  mean divides by the weights of the kept targets, as PyTorch;
- ``log_prob``: asserted in (a); no framework row outputs it, so (b) judges the loss only; the
  ``*_log_prob`` case has the same inputs and loss as its twin and shares the twin's harness rows;
- ONNX's expectations are computed partly in float32 (the gathered losses and weights): within its rtol.

Source: the onnx package, version 1.23.2 (``pip install onnx==1.23.2``):
- onnx/backend/test/case/node/softmax_cross_entropy_loss.py, class SoftmaxCrossEntropyLoss (34
  export methods: 17 cases, each also with ``log_prob``);
- onnx/backend/test/case/node/negativeloglikelihoodloss.py, class NegativeLogLikelihoodLoss (18);
- the tolerance: onnx/backend/test/case/node/__init__.py, ``expect`` makes every node test case a
  TestCase(rtol=1e-3, atol=1e-7), which onnx/backend/test/runner/__init__.py
  (``assert_similar_outputs``) checks with np.testing.assert_allclose: |actual - expected| <= atol +
  rtol |expected|, element by element.

Runtime: harness.check takes one case per call, and each call starts a worker per framework
(TensorFlow's ~5 s). So the module runs check's own steps (harness/api/check.py: make_case,
with_float64, run_accuracy with a RowJudge, accuracy_frame) once over all 35 distinct inputs, each
worker started once; ``test_grouped_rows_are_checks_rows`` proves a grouped row is harness.check's row.
About 25-35 s on 2 cores, a cold JAX compile cache (~/.cache/ce-harness/xla) included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest

import harness
from adapters import reference
from adapters.registry import choose_frameworks
from cases.generator import with_float64
from cases.spec import Case
from harness.api.check import make_case
from harness.judge.rows import RowJudge, accuracy_frame
from harness.runner.accuracy import run_accuracy
from harness.runner.options import RunOptions

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx==1.23.2)")
from onnx import numpy_helper  # noqa: E402
from onnx.backend.test.case.node import negativeloglikelihoodloss, softmax_cross_entropy_loss  # noqa: E402

RTOL, ATOL = 1e-3, 1e-7  # onnx/backend/test/case/node/__init__.py: TestCase(rtol=1e-3, atol=1e-7)
FRAMEWORKS = "numpy,torch,jax,tensorflow"
INPUT = {"SoftmaxCrossEntropyLoss": "logits", "NegativeLogLikelihoodLoss": "log_probs"}
SOURCES = (
    (softmax_cross_entropy_loss, softmax_cross_entropy_loss.SoftmaxCrossEntropyLoss),
    (negativeloglikelihoodloss, negativeloglikelihoodloss.NegativeLogLikelihoodLoss),
)
KNOWN_ATTRIBUTES = {"reduction", "ignore_index"}


@dataclasses.dataclass(frozen=True, eq=False)
class OnnxCase:
    """One ``expect`` call of an ONNX case: the node and its literal inputs and expected outputs."""

    name: str  # the ONNX test name, e.g. test_sce_mean_weight_ii_log_prob
    op: str
    attributes: dict[str, Any]
    inputs: tuple[np.ndarray, ...]  # x, target[, weight]
    outputs: tuple[np.ndarray, ...]  # loss[, log_prob]
    output_names: tuple[str, ...]

    @property
    def options(self) -> dict[str, Any]:
        """The harness.check / make_case keyword arguments of the node."""
        reduction = self.attributes.get("reduction", "mean")
        return {"input": INPUT[self.op], "ignore_index": self.attributes.get("ignore_index"), "reduction": reduction}

    @property
    def key(self) -> tuple:
        """What decides the loss: a ``*_log_prob`` case and its twin share it (and their harness rows)."""
        arrays = tuple((a.dtype.str, a.shape, a.tobytes()) for a in self.inputs)
        return self.op, tuple(sorted(self.options.items())), arrays


def _array(a: Any) -> np.ndarray:
    return numpy_helper.to_array(a) if isinstance(a, onnx.TensorProto) else np.asarray(a)


def _attributes(node: Any) -> dict[str, Any]:
    """The node's attributes as Python values; one this module does not map is an error, not ignored."""
    out = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    unknown = set(out) - KNOWN_ATTRIBUTES
    assert not unknown, f"{node.op_type}: attributes {sorted(unknown)} have no harness.check mapping"
    return {k: (v.decode() if isinstance(v, bytes) else int(v)) for k, v in out.items()}


def _capture() -> tuple[list[OnnxCase], dict[str, int]]:
    """Every case of `SOURCES`, as its export methods hand it to ``expect``; and the export methods per op."""
    found: list[OnnxCase] = []

    def expect(node: Any, inputs: Any, outputs: Any, name: str, **kwargs: Any) -> None:
        found.append(OnnxCase(name, node.op_type, _attributes(node), tuple(_array(a) for a in inputs),
                              tuple(_array(a) for a in outputs), tuple(node.output)))  # fmt: skip

    exports: dict[str, int] = {}
    state = np.random.get_state()  # the export methods seed NumPy's global generator
    try:
        for module, cls in SOURCES:
            methods = sorted(n for n in vars(cls) if n.startswith("export"))
            exports[cls.__name__] = len(methods)
            with mock.patch.object(module, "expect", expect):
                for m in methods:
                    getattr(cls, m)()
    finally:
        np.random.set_state(state)
    return found, exports


CASES, EXPORTS = _capture()


def _harness_cases() -> dict[tuple, Case]:
    """One harness case per distinct loss input, named after the first ONNX case that has it."""
    out: dict[tuple, Case] = {}
    for c in CASES:
        if c.key not in out:
            case = make_case(*c.inputs, **c.options)
            out[c.key] = dataclasses.replace(case, name=c.name.removeprefix("test_"))
    return out


HARNESS_CASES = _harness_cases()


def _check_all(cases: list[Case], frameworks: str) -> pd.DataFrame:
    """harness.check's steps (harness/api/check.py) on several cases at once: a worker per framework
    for all of them, not one per case (each case's float64 sibling decides its semantics, as there)."""
    cases = with_float64(cases)
    rows: list[dict] = []
    options = RunOptions(frameworks=choose_frameworks(frameworks), quiet=True)
    run_accuracy(cases, options, RowJudge("check"), rows.extend)
    return accuracy_frame(rows, cases)


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return _check_all(list(HARNESS_CASES.values()), FRAMEWORKS)


def _far(actual: Any, expected: Any, rtol: float = RTOL, atol: float = ATOL) -> np.ndarray:
    """Elements outside ONNX's |a - e| <= atol + rtol |e| (np.testing.assert_allclose); NaN never matches."""
    a, e = np.broadcast_arrays(np.asarray(actual, np.float64), np.asarray(expected, np.float64))
    with np.errstate(invalid="ignore"):
        return ~(np.abs(a - e) <= atol + rtol * np.abs(e))


def _far_row(ref: np.ndarray, expected: np.ndarray, abs_err: float, rel_err: float) -> np.ndarray:
    """Elements where a row could be outside ONNX's tolerance of `expected`, given only its maxima: each
    element's error is at most `abs_err` and at most `rel_err` |ref| (0 where ref is 0 and rel_err is
    finite), so the row's element is within |ref - e| + that bound of `expected`."""
    r, e = np.broadcast_arrays(np.asarray(ref, np.float64), np.asarray(expected, np.float64))
    bound = np.full(r.shape, abs_err)
    if np.isfinite(rel_err):
        bound = np.minimum(bound, rel_err * np.abs(r))
    with np.errstate(invalid="ignore"):
        return ~(bound + np.abs(r - e) <= ATOL + RTOL * np.abs(e))


def _log_probs(case: Case) -> np.ndarray:
    """log_softmax(x) along axis 1 from the reference: -log p[:, c] is the unreduced loss of a one-hot
    probability target on class c."""
    x = case.inputs().x.astype(case.dtype)
    columns = []
    for c in range(x.shape[1]):
        onehot = np.zeros_like(x)
        onehot[:, c] = 1
        one = make_case(x, onehot, target_kind="prob", reduction="none")
        columns.append(-np.asarray(reference.evaluate(one.spec, one.inputs()).value))
    return np.stack(columns, axis=1)


def _where(far: np.ndarray, got: np.ndarray, want: np.ndarray) -> str:
    at = [tuple(i) for i in np.argwhere(far)[:3]]
    return "; ".join(f"at {i}: {np.asarray(got)[i]!r} vs {np.asarray(want)[i]!r}" for i in at)


def _params() -> Iterator[Any]:
    for c in CASES:
        yield pytest.param(c, id=c.name.removeprefix("test_"))


def test_every_export_method_is_captured() -> None:
    """Each export method calls ``expect`` once: a changed case module shows here, not as fewer tests."""
    for op, n in EXPORTS.items():
        got = sum(c.op == op for c in CASES)
        assert n >= 17 and got == n, f"{op}: {got} cases captured from {n} export methods"
    assert len({c.name for c in CASES}) == len(CASES)
    for c in CASES:
        assert len(c.inputs) in (2, 3) and len(c.outputs) == len(c.output_names) in (1, 2), c.name
        assert c.outputs[0].shape == c.inputs[1].shape or c.outputs[0].shape == (), c.name
        assert len(c.outputs) == 1 or (c.op == "SoftmaxCrossEntropyLoss" and c.output_names[1] == "log_prob"), c.name


@pytest.mark.parametrize("c", list(_params()))
def test_onnx_expectation(c: OnnxCase, rows: pd.DataFrame) -> None:
    case = HARNESS_CASES[c.key]
    expected = c.outputs[0].astype(np.float64)
    assert np.isfinite(expected).all(), f"{c.name}: ONNX expects non-finite values {expected}"
    tol = f"(rtol={RTOL:g}, atol={ATOL:g})"
    problems: list[str] = []

    # (a) the float64 reference, and the log-probabilities where ONNX also outputs them
    ev = reference.evaluate(case.spec, case.inputs())
    ref = np.asarray(ev.value, np.float64)
    assert not ev.undefined and ref.shape == expected.shape, (c.name, ev.undefined, ref.shape, expected.shape)
    if (far := _far(ref, expected)).any():
        problems.append(f"reference loss vs ONNX's {tol}: {_where(far, ref, expected)}")
    if len(c.outputs) == 2:
        log_p, want = _log_probs(case), c.outputs[1].astype(np.float64)
        if log_p.shape != want.shape or (far := _far(log_p, want)).any():
            where = _where(far, log_p, want) if log_p.shape == want.shape else f"shape {log_p.shape}"
            problems.append(f"reference log_prob vs ONNX's {tol}: {where}")

    mine = rows[rows["case_id"].isin([case.id, dataclasses.replace(case, dtype="float64").id])]
    assert set(mine["dtype"]) == {"float32", "float64"}, f"{c.name}: rows {sorted(set(mine['dtype']))}"
    if (far := _far(mine["ref_value"].to_numpy(), expected.flat[0])).any():
        problems.append(f"ref_value column {sorted(set(mine['ref_value']))} vs ONNX's {expected.flat[0]!r} {tol}")

    # (b) every matched row that ran: ok, and within ONNX's tolerance of its expectation
    matched = mine[(mine["recipe"] == "matched") & (mine["outcome"] != "unsupported")]
    ran = set(matched["framework"])
    assert {"numpy", "torch"} <= ran, f"{c.name}: matched rows ran for {sorted(ran)} only"
    for _, row in matched.iterrows():
        name = f"{row['framework']}/{row['api']}/matched ({row['dtype']})"
        if row["outcome"] != "ok":
            problems.append(f"{name}: outcome {row['outcome']!r} ({row['error']}; {row['explanation']})")
            continue
        if _far(row["value"], expected.flat[0]).any():
            problems.append(f"{name}: value {row['value']!r} vs ONNX's {expected.flat[0]!r} {tol}")
        if (far := _far_row(ref, expected, row["value_abs_err"], row["value_rel_err"])).any():
            errs = f"value_abs_err {row['value_abs_err']:.3g}, value_rel_err {row['value_rel_err']:.3g}"
            problems.append(f"{name}: {errs} may leave ONNX's tolerance {tol} {_where(far, ref, expected)}")

    assert not problems, f"{c.name} [{c.op} {c.attributes}]:\n  " + "\n  ".join(problems)


def _same(u: Any, v: Any) -> bool:
    return u == v or (pd.isna(u) and pd.isna(v))


def test_grouped_rows_are_checks_rows(rows: pd.DataFrame) -> None:
    """A case of the grouped run gives harness.check's own rows (numbers, outcomes, explanations)."""
    c = next(c for c in CASES if c.options["ignore_index"] is not None and len(c.inputs) == 3)
    one = harness.check(*c.inputs, frameworks="numpy,torch", **c.options)
    alone, grouped = make_case(*c.inputs, **c.options), HARNESS_CASES[c.key]  # 'user-n3-...', 'user-<name>-n3-...'
    twins = (dataclasses.replace(alone, dtype="float64"), dataclasses.replace(grouped, dtype="float64"))
    ids = {a.id: g.id for a, g in ((alone, grouped), twins)}
    keys = ["case_id", "framework", "api", "recipe", "dtype"]
    columns = ["outcome", "value", "ref_value", "value_abs_err", "grad_abs_err", "explanation", "recipe_code"]
    mine = rows[rows["framework"].isin(["numpy", "torch"]) & rows["case_id"].isin(ids.values())]
    theirs = one.assign(case_id=one["case_id"].map(ids))
    merged = theirs[keys + columns].merge(mine[keys + columns], on=keys, suffixes=("_check", "_group"))
    assert len(merged) == len(theirs) == len(mine) > 0, (len(merged), len(theirs), len(mine))
    for col in columns:
        a, b = merged[f"{col}_check"], merged[f"{col}_group"]
        assert all(_same(u, v) for u, v in zip(a, b, strict=True)), (col, list(a), list(b))
