"""Keras 3 on JAX (`keras_jax`) and on PyTorch (`keras_torch`) against the float64 reference.

Keras reads its backend once per process, so every Keras call here runs in a worker process of its own: the
default cases through the harness's runner and judge (`run_accuracy`, `RowJudge`: the rows a run writes), and
the backend behaviours pinned below through one probe process per backend (`PROBE`), each value checked
against a hand derivation or NumPy in float64.

- Every matched row in float64 and float32 is `ok`, but where reproducing PyTorch departs from the exact answer
  (`matched_as_pytorch`: BCELoss' -100 log clamp on probabilities of exactly 0 and 1; labels outside [0, C)).
- Every native row that differs is explained, and its explanation is registered for its framework and API
  (adapters/known_differences.csv), so `run --strict` passes; the backend-specific ones are pinned by case.
- ONNX's SoftmaxCrossEntropyLoss / NegativeLogLikelihoodLoss backend vectors: matched rows within ONNX's
  tolerance of ONNX's expected loss (the vectors as tests/harness/judge/test_onnx_expectations.py loads them).

About 60-90 s on 2 cores with the XLA cache (~/.cache/ce-harness/xla) warm; a cold cache adds ~2 minutes.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import harness
from adapters import keras_recipes
from adapters.registry import DISPLAY, choose_framework, load
from cases.generator import default_cases, with_float64
from cases.spec import Case
from harness.judge.registry import is_known, known_differences
from harness.judge.rows import RowJudge, accuracy_frame
from harness.runner.accuracy import run_accuracy
from harness.runner.options import RunOptions

for _module in ("keras", "jax", "torch"):
    pytest.importorskip(_module, reason=f"{_module} is not installed (pip install -e '.[jax,torch]' keras)")

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("keras_jax", "keras_torch")
CCE, SCCE, BCE = keras_recipes.CCE, keras_recipes.SCCE, keras_recipes.BCE
FULL = ("float64", "float32")
CASES = default_cases(dtypes=FULL)
BY_ID = {c.id: c for c in with_float64(CASES)}


def _run(cases: list[Case], frameworks: tuple[str, ...], **options) -> pd.DataFrame:
    """The rows `python -m harness run` writes for `cases` (their float64 siblings decide the semantics)."""
    cases = with_float64(cases)
    rows: list[dict] = []
    run_accuracy(cases, RunOptions(frameworks=frameworks, quiet=True, **options), RowJudge("test"), rows.extend)
    return accuracy_frame(rows, cases)


# keras_jax runs jax.jit first (as Keras' fit does); these cases run eager too, where the two modes differ
BOTH_MODES = frozenset(
    c.id for c in CASES if c.id.startswith("edge-masked") or ("-n64-c10-" in c.id and "-w-iim100-" in c.id)
)


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return _run(CASES, FRAMEWORKS, mode_cases=BOTH_MODES)


def show(df: pd.DataFrame) -> str:
    cols = ["case_id", "framework", "api", "recipe", "mode", "outcome", "explanation", "value_rel_err", "error"]
    return df[cols].to_string(max_colwidth=90)


def fail_if(bad: pd.DataFrame) -> None:
    if len(bad):
        pytest.fail(f"{len(bad)} row(s):\n{show(bad)}", pytrace=False)


def numbers(df: pd.DataFrame) -> pd.DataFrame:
    return df[~df["outcome"].isin(["unsupported"])]


# -- the registry's lines and the adapters' declarations ---------------------------------------------------


def test_frameworks_are_registered() -> None:
    assert choose_framework("keras-jax") == "keras_jax" and choose_framework("keras-torch") == "keras_torch"
    assert DISPLAY["keras_jax"] == "Keras 3 (JAX)" and DISPLAY["keras_torch"] == "Keras 3 (PyTorch)"
    for name in FRAMEWORKS:
        adapter = load(name)
        assert adapter.name == name and adapter.classes_last and adapter.unavailable() is None
        assert adapter.names == "`keras`, `ops` (keras.ops)" and "LAST" in adapter.layout
        assert adapter.version() == importlib.metadata.version("keras")
        assert {a.name for a in adapter.apis} == {CCE, SCCE, BCE}
    assert load("keras_jax").modes == ("compiled", "eager") and load("keras_torch").modes == ("eager",)


def test_modules_import_no_framework() -> None:
    code = ("import sys, adapters.keras_jax_adapter, adapters.keras_torch_adapter; "
            "assert not {'keras', 'jax', 'torch'} & set(sys.modules), sorted({'keras', 'jax', 'torch'} & set(sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_an_unknown_backend_is_refused() -> None:
    from adapters.keras_backend_adapter import KerasBackendAdapter

    with pytest.raises(ValueError, match=r"Expected backend in \{jax, torch\}. Received: backend='tensorflow'"):
        KerasBackendAdapter("tensorflow")


# -- matched rows ------------------------------------------------------------------------------------------

# Matched rows that cannot exist, with the reason they carry (as on TensorFlow).
UNSUPPORTED_MATCHED = ((SCCE, "takes class indices only"), (SCCE, "has no label_smoothing argument"))


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("dtype", FULL)
def test_matched_rows_are_ok(rows: pd.DataFrame, framework: str, dtype: str, as_pytorch) -> None:
    mine = rows[(rows["framework"] == framework) & (rows["recipe"] == "matched") & (rows["dtype"] == dtype)]
    found = numbers(mine)
    assert len(found) > 90, f"only {len(found)} matched {dtype} rows with numbers"
    bad = [not as_pytorch(BY_ID[r.case_id], r.outcome, r.explanation) for r in found.itertuples()]
    fail_if(found[bad])
    unsupported = mine[mine["outcome"] == "unsupported"]
    fail_if(unsupported[[not any(a == api and why in err for a, why in UNSUPPORTED_MATCHED)
                         for api, err in zip(unsupported["api"], unsupported["error"], strict=True)]])  # fmt: skip


def test_confident_predictions_are_ok_in_both_recipes_where_keras_computes_in_float32(rows: pd.DataFrame) -> None:
    # A trained model's near-one-hot logits (a loss of ~1e-5 per element): the matched rows are exact in float64
    # and float32; the native rows compute in float32 (no dtype=), so they are ok in float32.
    confident = rows[rows["case_id"].str.startswith("multiclass-confident-n256") & rows["api"].isin([CCE, SCCE])]
    assert set(confident["dtype"]) == set(FULL) and set(confident["framework"]) == set(FRAMEWORKS)
    fail_if(confident[(confident["recipe"] == "matched") & (confident["outcome"] != "ok")])
    native32 = confident[(confident["recipe"] == "native") & (confident["dtype"] == "float32")]
    assert len(native32) == 4
    fail_if(native32[native32["outcome"] != "ok"])


# -- native rows: every difference named and registered -------------------------------------------------------


def test_every_difference_is_explained_and_registered(rows: pd.DataFrame) -> None:
    # what `python -m harness run --strict` checks (harness/render/summary.py, label_known)
    registry = known_differences()
    diff = rows[rows["outcome"].isin(["mismatch", "nonfinite"])]
    assert len(diff) > 100
    known = [is_known(f, a, e, registry) for f, a, e in zip(diff["framework"], diff["api"], diff["explanation"],
                                                             strict=True)]  # fmt: skip
    fail_if(diff[[not k for k in known]])


def pinned(
    rows: pd.DataFrame, framework: str, case_prefix: str, api: str, recipe: str = "native", mode: str | None = None
) -> pd.DataFrame:
    """The rows with numbers of a framework's API and recipe on cases whose id starts with `case_prefix`, in `mode`
    (default: the framework's own, jax.jit for keras_jax)."""
    mode = mode or load(framework).modes[0]
    found = numbers(rows[(rows["framework"] == framework) & rows["case_id"].str.startswith(case_prefix)
                         & (rows["api"] == api) & (rows["recipe"] == recipe) & (rows["mode"] == mode)])  # fmt: skip
    assert len(found), f"no {framework} {api} {recipe} {mode} rows for {case_prefix}: the pinned case is gone"
    return found


def expect(found: pd.DataFrame, outcome: str, explanation: str | None = None, error: str | None = None) -> None:
    bad = found["outcome"] != outcome
    if explanation is not None:
        bad |= found["explanation"] != explanation
    if error is not None:
        bad |= ~found["error"].str.contains(error, regex=False)
    fail_if(found[bad])


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_keras_computes_in_float32_unless_told(rows: pd.DataFrame, framework: str) -> None:
    # "dtype: ... Defaults to None, which means using keras.backend.floatx()" (https://keras.io/api/losses/)
    found = pinned(rows, framework, "multiclass-n64-c10-f64-mean", CCE)
    expect(found, "mismatch", "computed_in=float32")
    assert set(found["loss_dtype"]) == {"float32"}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_masked_logits_give_nan_in_categorical_crossentropy(rows: pd.DataFrame, framework: str) -> None:
    # -sum(target * log_softmax(x)) (keras/src/backend/{jax,torch}/nn.py): 0 * -inf = NaN at a -inf logit, op by op
    expect(pinned(rows, framework, "edge-masked", CCE, mode="eager"), "nonfinite", "0*log(0)=nan")


def test_masked_logits_under_jit_are_nan_for_probability_targets_only(rows: pd.DataFrame) -> None:
    # jax.jit of the same Keras loss: probability targets still give 0 * -inf = NaN; with one-hot targets made from
    # indices the compiled program's value and gradient stay finite (float64 inputs: computed in float32)
    for api in (CCE, SCCE):
        expect(pinned(rows, "keras_jax", "edge-masked-n64-c10-f32-mean", api), "ok")
        expect(pinned(rows, "keras_jax", "edge-masked-n64-c10-f64-mean", api), "mismatch", "computed_in=float32")
    expect(pinned(rows, "keras_jax", "edge-masked-n64-c10-f32-pt", CCE), "nonfinite", "0*log(0)=nan")


def test_sparse_categorical_crossentropy_with_masked_logits_differs_by_backend(rows: pd.DataFrame) -> None:
    # JAX's backend multiplies one_hot(y) by log_softmax(x) (NaN again, op by op); PyTorch's calls F.cross_entropy
    expect(pinned(rows, "keras_jax", "edge-masked", SCCE, mode="eager"), "nonfinite", "0*log(0)=nan")
    expect(pinned(rows, "keras_torch", "edge-masked-n64-c10-f32", SCCE), "ok")  # finite (float64: computed_in=float32)


def test_labels_outside_the_classes_by_backend(rows: pd.DataFrame) -> None:
    # JAX: one_hot of a label outside [0, C) is a zero row (https://docs.jax.dev/en/latest/_autosummary/jax.nn.one_hot.html);
    # PyTorch on the CPU raises (F.one_hot, F.cross_entropy), as PyTorch itself does
    for api in (CCE, SCCE):
        expect(pinned(rows, "keras_jax", "edge-oob", api), "nonfinite", "weight_norm=N+label_oob=zero")
    expect(
        pinned(rows, "keras_torch", "edge-oob", CCE), "raised", error="Class values must be smaller than num_classes"
    )
    expect(pinned(rows, "keras_torch", "edge-oob", SCCE), "raised", error="Target 10 is out of bounds")


def test_class_weights_of_ignored_labels_by_backend(rows: pd.DataFrame) -> None:
    # sample_weight=ops.take(w, y) with y = -100: jnp.take fills NaN outside [-C, C)
    # (https://docs.jax.dev/en/latest/_autosummary/jax.numpy.take.html); CategoricalCrossentropy then has NaN loss
    # and gradient rows op by op (under jax.jit the gradient stays finite), SparseCategoricalCrossentropy's
    # ignore_class masks the gradient but not the NaN value
    expect(pinned(rows, "keras_jax", "multiclass-n64-c10-f64-w-iim100-mean", CCE, mode="eager"), "nonfinite",
           "weight_norm=N+label_oob=nan_rows")  # fmt: skip
    expect(pinned(rows, "keras_jax", "multiclass-n64-c10-f64-w-iim100-mean", CCE), "nonfinite",
           "weight_norm=N+label_oob=nan_value")  # fmt: skip
    for mode in ("eager", "compiled"):
        expect(pinned(rows, "keras_jax", "multiclass-n64-c10-f64-w-iim100-mean", SCCE, mode=mode), "nonfinite",
               "weight_norm=count+label_oob=nan_value")  # fmt: skip
    # PyTorch's index_select raises instead
    for api in (CCE, SCCE):
        expect(pinned(rows, "keras_torch", "multiclass-n64-c10-f64-w-iim100-mean", api), "raised",
               error="index out of range")  # fmt: skip


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_probabilities_are_renormalised_then_clipped(rows: pd.DataFrame, framework: str) -> None:
    # Both losses divide x by its sum, then clip (keras/src/backend/{jax,torch}/nn.py); TensorFlow's sparse one
    # clips first (probs_renormalised=after_clip)
    for api in (CCE, SCCE):
        expect(pinned(rows, framework, "multiclass-n64-c10-f32-prob-mean", api), "mismatch", "probs_renormalised")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_unnormalised_soft_targets_keep_an_exact_gradient(rows: pd.DataFrame, framework: str) -> None:
    # TensorFlow's kernel takes the gradient as softmax(x) - t (grad_assumes_normalised_targets); JAX's and
    # PyTorch's Keras differentiate -sum(t log_softmax(x)): their float32 rows of unnormalised targets are ok
    found = pinned(rows, framework, "soft-n64-c10-f32-pt-mean", CCE)
    expect(found, "ok")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_binary_crossentropy_averages_the_last_axis(rows: pd.DataFrame, framework: str) -> None:
    # https://keras.io/api/losses/probabilistic_losses/#binarycrossentropy-class ("axis ... Defaults to -1")
    expect(pinned(rows, framework, "binary-hard-n64-c4-f32-sum", BCE), "mismatch", "mean_over_last_axis")


# -- backend behaviours, each in a process of its own -----------------------------------------------------------

PROBE = r"""
import json, sys
import numpy as np
from adapters.base import Unavailable
from adapters.keras_backend_adapter import KerasBackendAdapter
from cases.spec import Inputs, LossSpec

backend = sys.argv[1]
a = KerasBackendAdapter(backend)
keras = a.namespace()["keras"]

def run(code, spec, inputs, mode="eager"):
    try:
        v, g, dt = a.evaluate(a.compile(code), spec, inputs, "float64", "cpu", mode)
        return {"value": np.asarray(v).tolist(), "grad": np.asarray(g).tolist(), "dtype": dt}
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"}

rng = np.random.default_rng(7)
x = rng.standard_normal((6, 5)) * 2
t = rng.random((6, 5))  # soft targets whose rows do not sum to 1
soft_sum, sig_sum = LossSpec(target="prob", reduction="sum"), LossSpec(family="sigmoid", target="prob", reduction="sum")
cce = "loss = keras.losses.CategoricalCrossentropy(from_logits=True, reduction={!r}, dtype='float64')(y, x)"
out = {"x": x.tolist(), "t": t.tolist(), "result_type": keras.backend.result_type("float64", "float32")}
out["unnormalised"] = run(cce.format("sum"), soft_sum, Inputs(x, t))
out["mean_dtype"] = run(cce.format("sum_over_batch_size"), LossSpec(target="prob"), Inputs(x, t))["dtype"]
out["ops_mean"] = run("loss = ops.mean(x)", soft_sum, Inputs(x, t))
out["sum_over_size"] = run("loss = ops.sum(x) / ops.size(x)", soft_sum, Inputs(x, t))
out["bce"] = run("loss = keras.losses.BinaryCrossentropy(from_logits=True, reduction='sum', dtype='float64')"
                 "(y[..., None], x[..., None])", sig_sum, Inputs(x, t))
out["ops_bce"] = run("loss = ops.sum(ops.binary_crossentropy(y, x, from_logits=True))", sig_sum, Inputs(x, t))
for label in (-100, 5):  # no ignore_class: the label goes in as it is
    y = np.array([0, 1, 2, 3, 4, label])
    out[f"sparse{label}"] = run("loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, "
                                "reduction='none', dtype='float64')(y, x)", LossSpec(reduction="none"), Inputs(x, y))
if backend == "jax":
    out["unnormalised_compiled"] = run(cce.format("sum"), soft_sum, Inputs(x, t), "compiled")
other = KerasBackendAdapter("torch" if backend == "jax" else "jax")
try:
    other.namespace()
    out["other"] = "imported"
except Unavailable as e:
    out["other"] = str(e)
print("PROBE" + json.dumps(out))
"""


@pytest.fixture(scope="module", params=["jax", "torch"])
def probe(request: pytest.FixtureRequest) -> tuple[str, dict]:
    done = subprocess.run([sys.executable, "-c", PROBE, request.param], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("PROBE")), None)
    assert done.returncode == 0 and line, done.stderr[-3000:]
    return request.param, json.loads(line.removeprefix("PROBE"))


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _softmax(x: np.ndarray) -> np.ndarray:
    return np.exp(_log_softmax(x))


def test_categorical_gradient_is_exact_for_unnormalised_targets(probe: tuple[str, dict]) -> None:
    # d/dx -sum_c t_c log_softmax(x)_c = (sum_c t_c) softmax(x) - t: exact whatever the row sums (a hand
    # derivation); TensorFlow's kernel returns softmax(x) - t instead
    backend, out = probe
    x, t = np.array(out["x"]), np.array(out["t"])
    logp = _log_softmax(x)
    exact_value = -(t * logp).sum()
    exact_grad = t.sum(axis=1, keepdims=True) * _softmax(x) - t
    r = out["unnormalised"]
    assert abs(r["value"] - exact_value) <= 1e-13 * abs(exact_value), (r["value"], exact_value)
    np.testing.assert_allclose(r["grad"], exact_grad, rtol=1e-12, atol=1e-14)
    assert np.abs(np.array(r["grad"]) - (_softmax(x) - t)).max() > 0.1  # far from TensorFlow's softmax(x) - t
    if backend == "jax":  # jax.jit gives the same numbers
        np.testing.assert_allclose(out["unnormalised_compiled"]["grad"], r["grad"], rtol=1e-14, atol=1e-15)


def test_keras_maps_float64_to_float32_off_tensorflow(probe: tuple[str, dict]) -> None:
    # keras/src/backend/common/dtypes.py (BIT64_TO_BIT32_DTYPE): keras.backend.result_type(float64, 'float32') is
    # float32, so ops.mean computes float64 inputs in float32 and returns float64 (keras-team/keras#23223); the
    # recipes take sum / size instead
    _, out = probe
    assert out["result_type"] == "float32"
    x = np.array(out["x"])
    exact = float(np.mean(x))
    assert 1e-12 < abs(out["ops_mean"]["value"] - exact) / abs(exact) < 1e-6, out["ops_mean"]["value"]
    assert out["ops_mean"]["dtype"] == "float64"
    assert abs(out["sum_over_size"]["value"] - exact) <= 1e-15 * abs(exact) * x.size


def test_binary_crossentropy_is_float32_inside_even_with_dtype_float64(probe: tuple[str, dict]) -> None:
    # BinaryCrossentropy averages the last axis with ops.mean: each float64 loss goes through float32; the
    # element-wise keras.ops.binary_crossentropy (the matched recipe's call) stays float64
    _, out = probe
    x, t = np.array(out["x"]), np.array(out["t"])
    exact = float((t * np.logaddexp(0, -x) + (1 - t) * np.logaddexp(0, x)).sum())
    assert 1e-12 < abs(out["bce"]["value"] - exact) / exact < 1e-6, out["bce"]["value"]
    assert abs(out["ops_bce"]["value"] - exact) / exact < 1e-14


def test_mean_reduction_dtype(probe: tuple[str, dict]) -> None:
    # PyTorch's backend: divide_no_nan promotes through result_type, so every Keras mean reduction returns float32
    # for float64 inputs, dtype='float64' or not; JAX's divides in jnp and keeps float64
    backend, out = probe
    assert out["mean_dtype"] == ("float64" if backend == "jax" else "float32")


def test_sparse_labels_outside_the_classes(probe: tuple[str, dict]) -> None:
    # no ignore_class: JAX's backend one-hots any label outside [0, C) to a zero row (a loss of 0); PyTorch's
    # calls F.cross_entropy, which raises on the CPU except for -100, its own default ignore_index (a silent 0;
    # on MPS other labels read memory out of range: keras-team/keras#23664)
    backend, out = probe
    first = -_log_softmax(np.array(out["x"]))[np.arange(5), np.arange(5)]
    r = out["sparse-100"]
    np.testing.assert_allclose(r["value"], [*first, 0.0], rtol=1e-13)
    assert not np.any(r["grad"][5]), "the -100 label's row has a gradient"
    if backend == "jax":
        np.testing.assert_allclose(out["sparse5"]["value"], [*first, 0.0], rtol=1e-13)
    else:
        assert out["sparse5"]["error"].startswith("IndexError: Target 5 is out of bounds"), out["sparse5"]


def test_one_process_holds_one_backend(probe: tuple[str, dict]) -> None:
    backend, out = probe
    assert out["other"].startswith(f"keras was already imported in this process with the '{backend}' backend"), out


# -- modes and policies --------------------------------------------------------------------------------------


def test_modes_and_policies() -> None:
    # keras_jax: eager and jax.jit agree on the matched rows; the Keras mixed-precision policies leave the losses
    # in float32 (they compute in floatx) on both backends
    picks = [c for c in default_cases(dtypes=("float32", "bfloat16"))
             if c.id in ("multiclass-n64-c10-f32-w-iim100-mean-s0", "multiclass-n64-c10-bf16-mean-s0")]  # fmt: skip
    assert len(picks) == 2
    df = _run(picks, FRAMEWORKS, mode_cases=frozenset(c.id for c in picks), repeats=2)
    jax = df[(df["framework"] == "keras_jax") & (df["recipe"] == "matched") & (df["dtype"] == "float32")]
    assert set(jax["mode"]) == {"eager", "compiled"}
    fail_if(jax[jax["outcome"] != "ok"])
    eager, compiled = (jax[jax["mode"] == m].set_index("api")["value"] for m in ("eager", "compiled"))
    np.testing.assert_allclose(compiled.sort_index(), eager.sort_index(), rtol=1e-6)
    policy = df[df["policy"] == "mixed_bfloat16"]
    assert set(policy["framework"]) == set(FRAMEWORKS)
    numbered = policy[policy["outcome"].isin(["ok", "mismatch", "nonfinite"])]
    assert len(numbered) and set(numbered["loss_dtype"]) == {"float32"}
    fail_if(numbered[(numbered["recipe"] == "matched") & (numbered["outcome"] != "ok")])


# -- ONNX's backend vectors -----------------------------------------------------------------------------------


def _onnx_module():
    """tests/harness/judge/test_onnx_expectations.py, for its captured cases (importlib mode: no package import)."""
    pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx==1.23.2)")
    path = ROOT / "tests" / "harness" / "judge" / "test_onnx_expectations.py"
    spec = importlib.util.spec_from_file_location("_onnx_expectations", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_onnx_vectors() -> None:
    onnx = _onnx_module()
    df = _run(list(onnx.HARNESS_CASES.values()), FRAMEWORKS)
    problems = []
    for c in onnx.CASES:
        case = onnx.HARNESS_CASES[c.key]
        expected = c.outputs[0].astype(np.float64)
        mine = df[df["case_id"].isin([case.id, dataclasses.replace(case, dtype="float64").id])]
        matched = numbers(mine[mine["recipe"] == "matched"])
        assert set(matched["framework"]) == set(FRAMEWORKS), (c.name, sorted(set(matched["framework"])))
        for r in matched.itertuples():
            name = f"{c.name}: {r.framework}/{r.api} ({r.dtype})"
            if r.outcome != "ok":
                problems.append(f"{name}: {r.outcome} {r.explanation} {r.error}")
            elif onnx._far(r.value, expected.flat[0]).any():
                problems.append(f"{name}: value {r.value!r} vs ONNX's {expected.flat[0]!r}")
    assert not problems, "\n".join(problems)


def test_onnx_vector_through_check() -> None:
    # one vector through harness.check itself: the rows the grouped run above stands for
    onnx = _onnx_module()
    c = next(c for c in onnx.CASES if c.options["ignore_index"] is not None and len(c.inputs) == 3)
    df = harness.check(*c.inputs, frameworks="numpy,keras_jax", **c.options)
    matched = df[(df["framework"] == "keras_jax") & (df["recipe"] == "matched") & (df["outcome"] != "unsupported")]
    assert len(matched) and set(matched["outcome"]) == {"ok"}, show(matched)
    assert not onnx._far(matched["value"].to_numpy(), c.outputs[0].astype(np.float64).flat[0]).any()
