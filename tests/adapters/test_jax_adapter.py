"""JAX/optax against the reference on the default cases; optax's documented differences pinned.

XLA compiles every (recipe, shape, dtype) once, ~0.3-0.4 s each on a 2-core CPU: the module runs float64
and float32 in full and half precision on a few cases, ~75 s cold. Compiled executables are kept in
pytest's cache directory (the JAX persistent compilation cache), so a re-run takes ~15 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adapters import reference
from adapters.base import make_function
from adapters.jax_adapter import ADAPTER, INTEGER, SAFE, SIGMOID, SOFTMAX
from cases.generator import default_cases
from cases.spec import Case, Inputs, LossSpec

pytest.importorskip("jax", reason="jax is not installed (pip install -e '.[jax]')")
pytest.importorskip("optax", reason="optax is not installed (pip install -e '.[jax]')")

CASES = [c for c in default_cases(dtypes=("float64", "float32")) if c.kind != "linear"]  # test_linear_heads.py
# Half precision on a few specs that cover each API and the masking/weighting code paths.
HALF_SPECS = (
    LossSpec(),
    LossSpec(weighted=True, ignore_index=-100, label_smoothing=0.1),
    LossSpec(target="prob", weighted=True),
    LossSpec(family="sigmoid", target="prob", weighted=True),
)
HALF = [c for c in default_cases(dtypes=("float16", "bfloat16")) if c.spec in HALF_SPECS and c.shape[0] == 64]


def _compilation_cache(config: pytest.Config) -> None:
    """Keep XLA executables in pytest's cache dir: a re-run skips compilation, the numbers are the same."""
    import jax

    if os.environ.get("JAX_COMPILATION_CACHE_DIR") or getattr(config, "cache", None) is None:
        return
    jax.config.update("jax_compilation_cache_dir", str(config.cache.mkdir("jax-compilation-cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # ours take ~0.3 s, under the 1 s default


def _rows(judged, cases: list[Case]) -> dict[tuple[str, str, str], dict]:
    """Every (case, api, recipe) judged as a run judges it (the `judged` fixture of tests/adapters/conftest.py),
    keyed by (case id, api, recipe)."""
    out = {}
    for j in judged(ADAPTER, cases):
        out[j.case.id, j.api, j.recipe] = j.row | {"case": j.case, "result": j.result}
    return out


@pytest.fixture(scope="module")
def rows(request: pytest.FixtureRequest, judged) -> dict[tuple[str, str, str], dict]:
    _compilation_cache(request.config)
    return _rows(judged, CASES)


def short(row: dict) -> str:
    return (
        f"[{row['case_id']} {row['api'].split('.')[-1]} {row['recipe']}: outcome={row['outcome']} "
        f"value={row['value']!r} ref={row['ref_value']!r} value_rel_err={row['value_rel_err']:.3g} "
        f"grad_rel_err={row['grad_rel_err']:.3g} tol={row['tol']:.3g} {row['error']}]"
    )


def row_for(rows: dict, case_id: str, api: str, recipe: str = "native") -> dict:
    have = sorted(k[1:] for k in rows if k[0] == case_id)
    assert (case_id, api, recipe) in rows, f"no row {case_id} {api} {recipe}; have {have}"
    return rows[case_id, api, recipe]


def assert_reproduced(row: dict, what_optax_computes: reference.Evaluation) -> None:
    """The row's value is the reference of what optax actually computes, within the row's tolerance."""
    v, scale = float(what_optax_computes.value), float(what_optax_computes.scale)
    assert abs(row["value"] - v) <= 4 * row["tol"] * scale, f"expected {v!r}: {short(row)}"


def find(spec: LossSpec, dtype: str, tag: str = "") -> Case:
    """The default case the pins below are about; a generator change that drops it fails here, by name."""
    found = [c for c in CASES if c.spec == spec and c.dtype == dtype and c.tag == tag and c.kind != "documented"]
    assert found, f"no default case with {spec} {dtype} tag={tag!r}"
    return found[0]


# -- every spec against the reference --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matched_rows_agree_with_reference(rows: dict, dtype: str, as_pytorch) -> None:
    """Every matched composition reproduces PyTorch: the canonical semantics, masked (-inf) logits included,
    and PyTorch's departures from them where it has them (tests/adapters/conftest.py)."""
    mine = [r for r in rows.values() if r["recipe"] == "matched" and r["dtype"] == dtype]
    assert len(mine) > 60, f"only {len(mine)} matched {dtype} rows"
    wrong = [short(r) for r in mine if not as_pytorch(r["case"], r["outcome"], r["explanation"])]
    assert not wrong, "\n".join(wrong)


def test_every_supported_spec_has_rows_and_nothing_raises(rows: dict) -> None:
    """Each default case gets a row per supporting API and recipe; no snippet raises. A float32 result
    promoted to float64 by x64 would raise in evaluate(), so this also checks the explicit dtypes."""
    for case in CASES:
        expected = {(api.name, r) for api in ADAPTER.apis_for(case.spec) for r in ("native", "matched")}
        got = {(api, recipe) for (cid, api, recipe) in rows if cid == case.id}
        assert expected and got == expected, f"{case.id}: rows {sorted(got)} != {sorted(expected)}"

    # The one exception: the obvious (native) port of a K-dim loss passes classes on axis 1, where optax
    # expects them last (axis=-1): index targets then do not fit the logits' shape and raise
    # (https://optax.readthedocs.io/en/latest/api/losses.html, "axis: Axis or axes along which to compute").
    def kdim_port(r: dict) -> bool:
        return r["recipe"] == "native" and len(r["case"].shape) > 2 and r["case"].spec.family == "softmax"

    raised = [short(r) for r in rows.values() if r["outcome"] in ("raised", "crashed") and not kdim_port(r)]
    assert not raised, "\n".join(raised)
    kdim = [r for r in rows.values() if r["outcome"] == "raised" and kdim_port(r)]
    assert kdim and all("Incompatible shapes" in r["error"] for r in kdim), [short(r) for r in kdim]
    # Unsupported only where optax has no such argument, with the reason in the row.
    for r in rows.values():
        if r["outcome"] == "unsupported":
            why = r["error"]
            assert r["recipe"] == "native" and ("no pos_weight" in why or "no label smoothing" in why), short(r)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_is_computed_in_that_dtype(dtype: str, judged, as_pytorch) -> None:
    """A few half-precision cases run (no float64 promotion under x64) and match within their tolerance."""
    mine = _rows(judged, [c for c in HALF if c.dtype == dtype])
    matched = [r for r in mine.values() if r["recipe"] == "matched"]
    assert len(matched) >= 6, [r["case_id"] for r in matched]
    wrong = [short(r) for r in matched if not as_pytorch(r["case"], r["outcome"], r["explanation"])]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "spec",
    [
        LossSpec(input="probs", ignore_index=-100),
        LossSpec(input="probs", weighted=True, ignore_index=-1, label_smoothing=0.1),
        LossSpec(input="log_probs", ignore_index=13, reduction="sum"),
        LossSpec(input="probs", weighted=True, ignore_index=0),  # an in-range ignore_index
    ],
    ids=lambda s: s.flags,
)
def test_ignored_labels_reach_neither_value_nor_gradient(spec: LossSpec, judged) -> None:
    """Beyond the default set: (log-)probability inputs with ignore_index in and out of range, weights and
    smoothing; the masked compositions give the exact value and a zero gradient for ignored elements."""
    case = Case(kind="multiclass", spec=spec, shape=(16, 5), dtype="float64")
    mine = _rows(judged, [case])
    matched = [r for r in mine.values() if r["recipe"] == "matched"]
    assert matched and all(r["outcome"] == "ok" for r in matched), "\n".join(short(r) for r in matched)


def test_grad_is_returned_in_pytorch_layout(rows: dict) -> None:
    """Spatial cases (N, C, d1..dk) pass only if evaluate() moves the class axis there and back."""
    spatial = [r for r in rows.values() if len(r["case"].shape) > 2 and r["recipe"] == "matched"]
    assert len(spatial) >= 8 and all(r["result"].grad.shape == r["case"].shape for r in spatial)
    assert all(r["outcome"] == "ok" for r in spatial), "\n".join(short(r) for r in spatial)


# -- optax's documented differences, as they really are -----------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("ignore_index", [-100, 13])
def test_out_of_range_integer_label_gives_nan(rows: dict, dtype: str, ignore_index: int) -> None:
    """optax passes the label to jnp.take_along_axis, whose default mode="fill" returns NaN for an index
    outside [-C, C) (https://docs.jax.dev/en/latest/_autosummary/jax.numpy.take_along_axis.html): no error,
    a NaN loss (https://github.com/google-deepmind/optax/issues/1185). `mean` is then NaN as well. The
    gradient stays finite: the filled gather passes nothing back, so such an element gets only the
    logsumexp term, softmax(x_i) / N."""
    case = find(LossSpec(ignore_index=ignore_index), dtype)
    r = row_for(rows, case.id, INTEGER)
    assert r["outcome"] == "nonfinite" and np.isnan(r["value"]), short(r)
    inputs, grad = case.inputs(), r["result"].grad
    out = inputs.target == ignore_index
    x = inputs.x[out]
    softmax = np.exp(x - x.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    assert out.any() and np.isfinite(grad).all(), short(r)
    err = np.abs(grad[out] - softmax / inputs.target.size).max()
    assert err <= 4 * r["tol"] * softmax.max() / inputs.target.size, (err, short(r))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_label_minus_one_silently_reads_the_last_class(rows: dict, dtype: str) -> None:
    """jnp indexing normalises a negative index NumPy-style before the bounds check
    (https://docs.jax.dev/en/latest/notebooks/Common_Gotchas_in_JAX.html#out-of-bounds-indexing), so
    ignore_index=-1 is not ignored: it is class C-1. The native value is the loss with -1 replaced by C-1."""
    case = find(LossSpec(ignore_index=-1), dtype)
    r = row_for(rows, case.id, INTEGER)
    inputs = case.inputs()
    c = case.n_classes
    wrapped = reference.evaluate(LossSpec(), Inputs(inputs.x, np.where(inputs.target == -1, c - 1, inputs.target)))
    assert r["outcome"] == "mismatch", short(r)
    assert_reproduced(r, wrapped)
    assert np.allclose(r["result"].grad, wrapped.grad, rtol=0, atol=4 * r["tol"] * np.abs(wrapped.grad).max()), short(r)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_hot_of_ignored_label_is_a_zero_row(rows: dict, dtype: str) -> None:
    """jax.nn.one_hot(-100, C) is all zeros (it compares with arange(C)), so optax.smooth_labels turns an
    ignored element into the uniform e/C target and the mean divides by N: a finite, wrong loss."""
    spec = LossSpec(label_smoothing=0.1, ignore_index=-100)
    case = find(spec, dtype)
    r = row_for(rows, case.id, SOFTMAX)
    inputs = case.inputs()
    c = case.n_classes
    kept = inputs.target >= 0  # (N,): the default case is 2-D
    onehot = np.eye(c)[np.where(kept, inputs.target, 0)] * kept[:, None]
    smoothed = 0.9 * onehot + 0.1 / c
    assert r["outcome"] == "mismatch", short(r)
    assert_reproduced(r, reference.evaluate(LossSpec(target="prob"), Inputs(inputs.x, smoothed)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_masked_logits_nan_in_softmax_cross_entropy_not_in_safe(rows: dict, dtype: str) -> None:
    """A -inf logit with target 0: softmax_cross_entropy computes 0 * -inf = NaN; safe_softmax_cross_entropy
    "handles labels*logsoftmax(logits) as 0 when logits=-inf and labels=0"
    (https://optax.readthedocs.io/en/latest/api/losses.html#optax.losses.safe_softmax_cross_entropy,
    https://github.com/google-deepmind/optax/issues/896). The NaN is in the value only: the gradient
    (softmax - labels) is finite and right. The matched row's `where=` keeps the masked classes out."""
    case = find(LossSpec(target="prob"), dtype, tag="masked")
    plain = row_for(rows, case.id, SOFTMAX)
    assert plain["outcome"] == "nonfinite" and np.isnan(plain["value"]), short(plain)
    assert plain["grad_rel_err"] <= plain["tol"], short(plain)
    for api, recipe in ((SAFE, "native"), (SAFE, "matched"), (SOFTMAX, "matched")):
        r = row_for(rows, case.id, api, recipe)
        assert r["outcome"] == "ok", short(r)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_weighted_native_mean_divides_by_n(rows: dict, dtype: str) -> None:
    """(loss * w[y]).mean() divides by N where PyTorch divides by sum(w[y]) (weight_norm=N)."""
    case = find(LossSpec(weighted=True), dtype)
    r = row_for(rows, case.id, INTEGER)
    inputs = case.inputs()
    ratio = inputs.weight[inputs.target].sum() / inputs.target.size
    assert r["outcome"] == "mismatch", short(r)
    assert abs(r["value"] / ratio - r["ref_value"]) <= 4 * r["tol"] * abs(r["ref_value"]), short(r)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_smooth_labels_on_binary_targets_smooths_towards_one_over_c(rows: dict, dtype: str) -> None:
    """optax.smooth_labels divides e by the size of the last axis (optax/losses/_smoothing.py), not by 2:
    on (N, 4) binary targets it gives t' = (1-e) t + e/4."""
    case = find(LossSpec(family="sigmoid", target="prob", label_smoothing=0.1), dtype, tag="hard")
    r = row_for(rows, case.id, SIGMOID)
    inputs = case.inputs()
    t = 0.9 * inputs.target + 0.1 / case.n_classes
    assert r["outcome"] == "mismatch", short(r)
    assert_reproduced(r, reference.evaluate(LossSpec(family="sigmoid", target="prob"), Inputs(inputs.x, t)))


def test_probabilities_and_log_probabilities_read_as_logits(rows: dict) -> None:
    """optax's losses take logits: log-probabilities keep the value (log_softmax(log p) == log p) but get the
    gradient of a renormalised loss; probabilities are wrong in both (the porting mistake of seed 001)."""
    logp = row_for(rows, find(LossSpec(input="log_probs"), "float64").id, INTEGER)
    assert logp["outcome"] == "mismatch" and logp["value_rel_err"] < 1e-14 and logp["grad_rel_err"] > 0.1, short(logp)
    for case in (find(LossSpec(input="probs"), "float64"),
                 find(LossSpec(family="sigmoid", target="prob", input="probs"), "float64", tag="hard")):  # fmt: skip
        r = row_for(rows, case.id, INTEGER if case.spec.family == "softmax" else SIGMOID)
        assert r["outcome"] == "mismatch" and r["value_rel_err"] > 0.1, short(r)


# -- the adapter contract ---------------------------------------------------------------------------------------
def test_recipe_code_is_the_porting_advice() -> None:
    spec = LossSpec(weighted=True, ignore_index=-100)
    (native, matched) = next(a for a in ADAPTER.apis_for(spec) if a.name == INTEGER).recipes(spec)
    assert native.code == "loss = (optax.losses.softmax_cross_entropy_with_integer_labels(x, y) * w[y]).mean()"
    assert matched.code is not None, matched
    assert matched.code.splitlines()[-1] == "loss = loss.sum() / jnp.where(valid, w[y], 0).sum()", matched.code
    make_function(matched.code, {})  # valid Python
    plain = next(a for a in ADAPTER.apis_for(LossSpec()) if a.name == INTEGER).recipes(LossSpec())
    assert plain[0].code == plain[1].code == f"loss = {INTEGER}(x, y).mean()", plain


def test_module_imports_no_framework() -> None:
    """A missing jax or optax must give `unsupported` rows, so importing the adapter imports neither."""
    code = "import sys, adapters.jax_adapter; print(sorted(m for m in ('jax', 'optax') if m in sys.modules))"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out


@pytest.mark.parametrize("missing", ["jax", "optax"])
def test_unavailable_names_a_missing_jax_or_optax(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a))
    reason = ADAPTER.unavailable()
    assert reason is not None and missing in reason, reason


def test_gpu_is_unavailable_without_one() -> None:
    import jax

    from adapters.base import Unavailable

    try:
        jax.devices("gpu")
        pytest.skip("a GPU is present; the CPU-only path is what this checks")
    except RuntimeError:
        pass
    with pytest.raises(Unavailable, match="no GPU"):
        ADAPTER.device("gpu")


def test_safe_softmax_cross_entropy_rows_need_optax_0_2_3(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = LossSpec(target="prob")
    assert SAFE in [a.name for a in ADAPTER.apis_for(spec)]
    monkeypatch.setattr(type(ADAPTER), "versions", lambda self: {"jax": "0.4.30", "optax": "0.2.2"})
    assert SAFE not in [a.name for a in ADAPTER.apis_for(spec)]


def test_rows_record_jax_version_and_env_records_optax() -> None:
    """The framework_version of the jax rows is JAX's (not optax's, as before); jaxlib and optax are recorded."""
    import importlib.metadata as md

    assert ADAPTER.version() == md.version("jax")
    assert ADAPTER.versions() == {
        "jax": md.version("jax"),
        "jaxlib": md.version("jaxlib"),
        "optax": md.version("optax"),
    }
