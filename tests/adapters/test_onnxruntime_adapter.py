"""ONNX Runtime against the reference on every default case, its values judged alone (an inference runtime has
no gradients); its documented differences pinned; ONNX's own backend vectors of SoftmaxCrossEntropyLoss and
NegativeLogLikelihoodLoss run through onnxruntime directly and through the harness.

About 30 s of CPU on 2 cores: every default case in four dtypes (one InferenceSession per op signature, one
export per recipe, dtype and rank) and the backend vectors' grouped check (a numpy and an onnxruntime worker).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime==1.31.1)")
pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx==1.23.2)")

from adapters import reference
from adapters.base import Unavailable
from adapters.onnxruntime_adapter import ADAPTER, EXPORT_CE, NLL, NO_GRADIENT, SCE, Runtime
from adapters.reference import Semantics
from adapters.registry import choose_framework
from cases.generator import default_cases
from cases.spec import Case, Inputs, LossSpec

ROOT = Path(__file__).resolve().parents[2]
CASES = default_cases()
HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def rows(judged) -> list[dict]:
    return [r.row | {"tag": r.case.tag, "case": r.case} for r in judged(ADAPTER, CASES)]


def short(row: dict) -> str:
    return (
        f"[{row['case_id']} {row['api'].split('.')[-1]} {row['recipe']}: outcome={row['outcome']} "
        f"value={row['value']!r} ref={row['ref_value']!r} expl={row['explanation']!r} {row['error'][:160]}]"
    )


def mine(rows: list[dict], **where: object) -> list[dict]:
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


# -- matched rows: PyTorch's semantics, value judged alone ------------------------------------------------
def _unsupported_for_a_reason(row: dict) -> bool:
    """The operators have no label smoothing and no probability targets (their ONNX pages say which)."""
    if row["api"] == EXPORT_CE:
        return False  # the exported recipe writes both out
    e = row["error"]
    return (
        row["outcome"] == "unsupported"
        and "onnx.ai/onnx/operators" in e
        and (
            ("no label smoothing" in e and row["label_smoothing"] > 0)
            or ("class indices only" in e and row["target"] == "prob")
        )
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matched_rows_agree_with_reference(rows: list[dict], dtype: str, as_pytorch) -> None:
    """Every matched row is ok, or raises where PyTorch does (labels outside [0, C)), or is unsupported because
    the operator has no such attribute."""
    matched = mine(rows, recipe="matched", dtype=dtype)
    assert len([r for r in matched if r["outcome"] == "ok"]) > 80
    wrong = [short(r) for r in matched
             if not (as_pytorch(r["case"], r["outcome"], r["explanation"]) or _unsupported_for_a_reason(r))]  # fmt: skip
    assert not wrong, "\n".join(wrong)
    assert {r["api"] for r in matched if r["outcome"] == "ok"} == {SCE, NLL, EXPORT_CE}


def test_rows_judge_the_value_alone_and_say_why(rows: list[dict]) -> None:
    numbers = [r for r in rows if r["outcome"] in ("ok", "mismatch", "nonfinite")]
    assert numbers
    for r in numbers:
        assert r["grad_method"] == "none" and np.isnan(r["grad_rel_err"]) and np.isnan(r["grad_scaled_err"]), short(r)
        assert r["error"] == NO_GRADIENT, short(r)
    assert "1.19.2" in NO_GRADIENT and "inference" in NO_GRADIENT


def test_matched_losses_come_back_in_the_case_dtype(rows: list[dict]) -> None:
    """No Cast in the graphs the matched recipes run: the loss is in the inputs' dtype (float16 included)."""
    ran = [r for r in rows if r["recipe"] == "matched" and r["outcome"] == "ok"]
    assert {r["dtype"] for r in ran} == {"float64", "float32", "float16"}
    wrong = [short(r) + f" loss_dtype={r['loss_dtype']}" for r in ran if r["loss_dtype"] != r["dtype"]]
    assert not wrong, "\n".join(wrong)


def test_float16_runs_and_bfloat16_has_no_kernels(rows: list[dict], as_pytorch) -> None:
    """float16: the CPU provider casts what it has no float16 kernel for to float32 and back, and the rows are
    within float16's tolerance. bfloat16: no kernel for the inlined function bodies."""
    f16 = mine(rows, recipe="matched", dtype="float16")
    assert len([r for r in f16 if r["outcome"] == "ok"]) > 60
    wrong = [
        short(r)
        for r in f16
        if not (as_pytorch(r["case"], r["outcome"], r["explanation"]) or _unsupported_for_a_reason(r))
    ]
    assert not wrong, "\n".join(wrong)
    bf16 = [r for r in mine(rows, dtype="bfloat16") if not _unsupported_for_a_reason(r)]
    assert bf16
    for r in bf16:
        if r["outcome"] == "raised":  # PyTorch itself raises while tracing, before onnxruntime sees a model
            assert r["api"] == EXPORT_CE and ("label_smoothing" in r["error"] or "out of bounds" in r["error"]), short(
                r
            )
        else:
            assert r["outcome"] == "unsupported" and "no CPU kernel for bfloat16" in r["error"], short(r)


# -- native rows: the obvious ports' differences, each pinned --------------------------------------------
def _expected_native(r: dict) -> str:
    """What the obvious port gives: PyTorch's own departures (seed 001's probabilities, NLL's scores passed
    to a loss that applies log_softmax, a sample-weighted mean over N, the accumulation loop's mean of means),
    and nothing else."""
    c: Case = r["case"]
    if c.spec.micro_batches and c.spec.reduction == "mean" and r["api"] != NLL:
        return "accumulation=mean_of_means"
    if r["api"] == NLL:
        return ""
    if c.spec.input == "probs":
        return "probs_passed_as_logits"
    if (c.spec.input == "log_probs" and c.tag == "scores") or c.name == "seed004nll":
        return "log_probs_passed_as_logits"  # raw scores: log_softmax changes them (log-probabilities it keeps)
    if c.spec.sample_weighted and c.spec.reduction == "mean":
        return "weight_norm=N"
    return ""


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_native_rows_differ_only_where_pytorch_ports_do(rows: list[dict], dtype: str, as_pytorch) -> None:
    native = [r for r in mine(rows, recipe="native", dtype=dtype) if r["outcome"] in ("ok", "mismatch", "nonfinite")]
    wrong = []
    for r in native:
        want = _expected_native(r)
        if want and (r["outcome"] != "mismatch" or r["explanation"] != want):
            wrong.append(f"want {want}: {short(r)}")
        elif not want and not as_pytorch(r["case"], r["outcome"], r["explanation"]):
            wrong.append(f"want ok: {short(r)}")
    assert not wrong, "\n".join(wrong)
    assert {_expected_native(r) for r in native} >= {
        "accumulation=mean_of_means", "probs_passed_as_logits", "log_probs_passed_as_logits", "weight_norm=N", ""
    }  # fmt: skip


def test_the_exporter_refuses_label_smoothing(rows: list[dict]) -> None:
    """torch.onnx.export (TorchScript) of F.cross_entropy(label_smoothing=e): "Unsupported: ONNX does not
    support label_smoothing"; the matched recipe writes the smoothing out in PyTorch ops and exports that."""
    smoothed = mine(rows, api=EXPORT_CE, dtype="float32")
    smoothed = [r for r in smoothed if r["label_smoothing"] > 0 and r["tag"] != "oob"]
    assert len(smoothed) >= 20
    for r in smoothed:
        if r["recipe"] == "native":
            assert r["outcome"] == "raised", short(r)
            assert r["error"].startswith("SymbolicValueError: Unsupported: ONNX does not support label_smoothing")
        else:
            assert r["outcome"] == "ok" and "mean(1)" in r["recipe_code"], short(r)


def test_the_exporter_emits_an_invalid_model_for_probability_targets(rows: list[dict]) -> None:
    """F.cross_entropy with probability targets exports as SoftmaxCrossEntropyLoss, whose targets are integers:
    onnxruntime refuses the model."""
    soft = [r for r in mine(rows, api=EXPORT_CE, dtype="float32", target="prob") if r["label_smoothing"] == 0]
    assert len(soft) >= 6
    for r in soft:
        if r["recipe"] == "native":
            assert r["outcome"] == "raised" and r["error"].startswith("InvalidGraph"), short(r)
            assert "input parameter (y) of operator (SoftmaxCrossEntropyLoss)" in r["error"], short(r)
        else:
            assert r["outcome"] == "ok", short(r)


def test_labels_outside_the_classes_raise_except_minus_one() -> None:
    """GatherElements raises on an index outside [-C, C) ("Out of range value in index tensor"), as PyTorch
    raises on a label outside [0, C); -1 is a valid GatherElements index: class C-1 (label_oob=wrap)."""
    rt = Runtime()
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 4)), np.array([0, 3, 1, 2, 0, 1])
    with pytest.raises(Exception, match="GatherElements op: Out of range value in index tensor"):
        rt.run_node("SoftmaxCrossEntropyLoss", x, np.where(y == 3, 4, y), reduction="mean")
    wrapped = np.where(y == 3, -1, y)
    got = rt.run_node("SoftmaxCrossEntropyLoss", x, wrapped, reduction="none")
    spec = LossSpec(reduction="none")
    want = reference.evaluate(spec, Inputs(x, wrapped), semantics=Semantics(labels="wrap")).value
    np.testing.assert_allclose(got, want, rtol=1e-13)
    np.testing.assert_allclose(got, reference.evaluate(spec, Inputs(x, y)).value, rtol=1e-13)


def test_oob_rows_raise_as_pytorch(rows: list[dict]) -> None:
    oob = [r for r in rows if r["tag"] == "oob" and r["dtype"] in ("float64", "float32")]
    assert oob
    for r in oob:
        assert r["outcome"] == "raised" and "Out of range value in index tensor" in r["error"], short(r)


def test_weighted_mean_divides_by_the_kept_targets_weights() -> None:
    """ONNX's weighted mean is sum(w[y] l) / sum(w[y]) over the kept targets, as PyTorch
    (https://onnx.ai/onnx/operators/onnx__SoftmaxCrossEntropyLoss.html), not the mean over N."""
    rt = Runtime()
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(40, 5)), rng.uniform(0.2, 3.0, 5)
    y = np.where(rng.uniform(size=40) < 0.3, -100, rng.integers(0, 5, 40))
    got = rt.run_node("SoftmaxCrossEntropyLoss", x, y, w, ignore_index=-100, reduction="mean")
    spec = LossSpec(weighted=True, ignore_index=-100)
    assert abs(got - reference.evaluate(spec, Inputs(x, y, w)).value) <= 1e-14 * abs(got)
    over_n = reference.evaluate(spec, Inputs(x, y, w), semantics=Semantics(denominator="elements")).value
    assert abs(got - over_n) > 0.05 * abs(got)  # 8% here


# -- the exported graphs -----------------------------------------------------------------------------------
@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed: no torch.onnx.export")
def test_the_exporter_computes_zero_dim_arithmetic_in_float32() -> None:
    """Two 0-dim float64 tensors divided (l.sum() / d) come back float32 from the TorchScript exporter's graph
    (it reads a 0-dim tensor as a scalar: https://github.com/pytorch/pytorch/issues/85663); divided before the
    sum, the loss stays float64. Why the matched recipes divide first."""
    rt = Runtime()
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(8, 3)), rng.integers(0, 3, 8)

    def after(x, y, w, s):
        import torch.nn.functional as F

        losses = F.cross_entropy(x, y, reduction="none")
        return losses.sum() / (y != 1).to(losses.dtype).sum()

    def before(x, y, w, s):
        import torch.nn.functional as F

        losses = F.cross_entropy(x, y, reduction="none")
        return (losses / (y != 1).to(losses.dtype).sum()).sum()

    a, b = rt.exported(after, x, y), rt.exported(before, x, y)
    assert a.dtype == np.float32 and b.dtype == np.float64
    assert abs(float(a) - float(b)) <= 1e-6 * abs(float(b))


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed: no torch.onnx.export")
def test_one_export_serves_every_shape_of_its_rank() -> None:
    """Exported once with every axis dynamic, a session gives the reference's loss on other N and C (the
    written-out smoothing takes the class mean, not a traced C)."""
    spec = LossSpec(weighted=True, ignore_index=-100, label_smoothing=0.1)
    export = next(api for api in ADAPTER.apis_for(spec) if api.name == EXPORT_CE)
    code = export.recipes(spec)[1].code
    fn = ADAPTER.compile(code)
    rt_sessions = ADAPTER.namespace()["exported"].__self__.sessions
    rng = np.random.default_rng(3)
    before = len(rt_sessions)
    for n, c in ((16, 5), (40, 11), (3, 2)):
        x, w = rng.normal(size=(n, c)), rng.uniform(0.5, 2.0, c)
        y = np.where(rng.uniform(size=n) < 0.25, -100, rng.integers(0, c, n))
        got = fn(x, y, w, None)
        want = reference.evaluate(spec, Inputs(x, y, w)).value
        assert abs(got - want) <= 1e-13 * abs(want), (n, c, got, want)
    assert len(rt_sessions) - before <= 1


# -- the operators' recipes ---------------------------------------------------------------------------------
def test_snippets_are_the_calls() -> None:
    spec = LossSpec(weighted=True, ignore_index=-100)
    assert [a.name for a in ADAPTER.apis_for(spec)] == [SCE, EXPORT_CE]
    sce, export = (api.recipes(spec) for api in ADAPTER.apis_for(spec))
    assert sce[0].code == sce[1].code == "loss = sce(x, y, w, ignore_index=-100, reduction='mean')"
    assert "    loss = F.cross_entropy(x, y, weight=w, ignore_index=-100, reduction='mean')\n" in export[0].code
    assert export[0].code.endswith("loss = exported(loss_fn, x, y, w, s)") and export[1].code == export[0].code
    probs = LossSpec(input="probs")
    native, matched = ADAPTER.apis_for(probs)[0].recipes(probs)
    assert native.code == "loss = sce(x, y, reduction='mean')"
    assert matched.code == "loss = nll(run_node(\"Log\", x), y, reduction='mean')"


def test_operators_without_the_attribute_are_unsupported() -> None:
    for spec, why in ((LossSpec(label_smoothing=0.1), "no label smoothing attribute"),
                      (LossSpec(target="prob"), "class indices only")):  # fmt: skip
        for recipe in ADAPTER.apis_for(spec)[0].recipes(spec):
            assert recipe.code is None and why in recipe.reason and SCE.split(".")[1] in recipe.reason


def test_timer_times_the_forward_pass_only() -> None:
    case = Case(kind="timing", spec=LossSpec(weighted=True), shape=(32, 7))
    code = ADAPTER.apis_for(case.spec)[0].recipes(case.spec)[1].code
    call, sync = ADAPTER.timer(code, case.spec, case.inputs(), "float32", "cpu", "eager", "forward")
    value = call()
    sync(value)
    want = reference.evaluate(case.spec, case.inputs()).value
    assert value.dtype == np.float32 and abs(float(value) - want) <= 1e-5 * abs(want)
    with pytest.raises(Unavailable, match="inference only"):
        ADAPTER.timer(code, case.spec, case.inputs(), "float32", "cpu", "eager", "forward_backward")
    with pytest.raises(Unavailable, match="eager"):
        ADAPTER.timer(code, case.spec, case.inputs(), "float32", "cpu", "compiled", "forward")


def test_registry_and_devices() -> None:
    assert choose_framework("ort") == choose_framework("onnx") == "onnxruntime"
    assert ADAPTER.unavailable() is None and ADAPTER.version()
    assert set(ADAPTER.versions()) == {"onnxruntime", "onnx"}
    assert ADAPTER.modes == ("eager",) and ADAPTER.no_gradient == NO_GRADIENT
    with pytest.raises(Unavailable, match="no GPU"):
        ADAPTER.device("gpu")


def test_module_imports_no_framework() -> None:
    code = (
        "import sys, adapters.onnxruntime_adapter; print(sorted({'onnxruntime', 'onnx', 'torch'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# -- ONNX's backend vectors -----------------------------------------------------------------------------------
def _onnx_expectations() -> ModuleType:
    """tests/harness/judge/test_onnx_expectations.py: its captured ONNX cases and grouped check."""
    path = ROOT / "tests" / "harness" / "judge" / "test_onnx_expectations.py"
    spec = importlib.util.spec_from_file_location("onnx_expectations_for_onnxruntime", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


OX = _onnx_expectations()


@pytest.fixture(scope="module")
def onnx_rows() -> pd.DataFrame:
    return OX._check_all(list(OX.HARNESS_CASES.values()), "numpy,onnxruntime")


@pytest.mark.parametrize("c", [pytest.param(c, id=c.name.removeprefix("test_")) for c in OX.CASES])
def test_onnx_backend_vector(c, onnx_rows: pd.DataFrame) -> None:
    """(a) the node as ONNX's test builds it, run in onnxruntime: ONNX's expected loss (and log_prob) within
    ONNX's backend tolerance; (b) harness.check's onnxruntime rows of the same inputs: every matched row, and
    every native row of the API the node is, ok and within that tolerance."""
    node = OX.onnx.helper.make_node(c.op, ["x", "y", "w"][: len(c.inputs)], list(c.output_names), **c.attributes)
    rt = Runtime()
    session = rt.ort.InferenceSession(_model_with_outputs(node, c.inputs), providers=["CPUExecutionProvider"])
    got = session.run(None, dict(zip(["x", "y", "w"], c.inputs, strict=False)))
    for g, want in zip(got, c.outputs, strict=True):
        assert not OX._far(g, want).any(), f"{c.name}: onnxruntime {g!r} vs ONNX {want!r}"
    np.testing.assert_array_equal(rt.run_node(c.op, *c.inputs, **c.attributes), got[0])  # the snippets' helper

    case = OX.HARNESS_CASES[c.key]
    ids = {case.id, dataclasses.replace(case, dtype="float64").id}
    ort_rows = onnx_rows[onnx_rows["case_id"].isin(ids) & (onnx_rows["framework"] == "onnxruntime")]
    own = {"SoftmaxCrossEntropyLoss": SCE, "NegativeLogLikelihoodLoss": NLL}[c.op]
    judged = ort_rows[(ort_rows["recipe"] == "matched") | (ort_rows["api"] == own)]
    assert set(judged["api"]) >= {own, EXPORT_CE} if HAS_TORCH else {own}, sorted(set(ort_rows["api"]))
    expected = c.outputs[0].astype(np.float64)
    for _, r in judged.iterrows():
        name = f"{r['api']}/{r['recipe']} ({r['dtype']})"
        assert r["outcome"] == "ok", f"{c.name} {name}: {r['outcome']} {r['error']} {r['explanation']}"
        assert not OX._far(r["value"], expected.flat[0]).any(), (
            f"{c.name} {name}: {r['value']!r} vs {expected.flat[0]!r}"
        )


def _model_with_outputs(node, inputs) -> bytes:
    """The ONNX backend test's node as a model, every output declared (loss and log_prob)."""
    from onnx import helper

    from adapters.onnxruntime_adapter import IR_VERSION, OPSET

    ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for n, a in zip(node.input, inputs, strict=True)]  # fmt: skip
    outs = [
        helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(inputs[0].dtype), None) for o in node.output
    ]
    graph = helper.make_graph([node], "backend", ins, outs)
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    ).SerializeToString()
