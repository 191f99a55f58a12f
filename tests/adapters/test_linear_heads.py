"""A linear head's loss (`LossSpec.linear`) through PyTorch's, JAX's and Keras' APIs, judged as a run judges it: matched
float32 rows are `ok` for the value and both gradients; a chunked loop that accumulates wrongly is caught by the
gradient it gets wrong; the APIs that cannot run here say why; adapters without linear APIs have no rows."""

from __future__ import annotations

import copy
import dataclasses

import pytest

pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")
pytest.importorskip("jax", reason="JAX is not installed (pip install -e '.[jax]')")
pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install -e '.[tensorflow]')")

from adapters import registry
from adapters.base import Adapter, Api, Recipe
from adapters.jax_adapter import ADAPTER as JAX
from adapters.jax_adapter import LINEAR
from adapters.registry import FRAMEWORKS
from adapters.tensorflow_adapter import ADAPTER as TF
from adapters.torch_adapter import ADAPTER as TORCH
from adapters.torch_adapter import CCE, LIGER, LINEAR_CE, LINEAR_CHUNKED, LINEAR_NAIVE
from cases.generator import default_cases
from cases.spec import Case, LossSpec

KERAS = "keras.losses.SparseCategoricalCrossentropy:linear"
LM = LossSpec(linear=True, ignore_index=-100)
SMALL = [
    Case("linear", LM, (32, 32000), "float32", hidden=16),
    Case("linear", dataclasses.replace(LM, bias=True, reduction="sum"), (48, 4000), "float32", hidden=16),
    Case("linear", dataclasses.replace(LM, weighted=True, label_smoothing=0.1), (48, 4000), "float32", hidden=16),
    Case("linear", dataclasses.replace(LM, reduction="none"), (48, 4000), "float64", hidden=16),
]


@pytest.fixture(scope="module")
def rows(judged) -> list:
    return judged(TORCH, SMALL) + judged(JAX, SMALL) + judged(TF, SMALL)


def test_every_matched_row_is_ok_for_the_value_and_both_gradients(rows: list) -> None:
    ran = [r for r in rows if r.recipe == "matched" and r.outcome != "unsupported"]
    assert {r.api for r in ran} == {LINEAR_NAIVE, LINEAR_CE, LINEAR_CHUNKED, LINEAR, KERAS}
    bad = [(r.case_id, r.api, r.outcome, r.error, r.grad_w_scaled_err) for r in ran if r.outcome != "ok"]
    assert not bad, bad
    for r in ran:  # both gradients were judged: E's and the classifier's [W | b]
        assert r.grad_scaled_err == r.grad_scaled_err and r.grad_w_scaled_err == r.grad_w_scaled_err, r.case_id
        width = r.case.hidden + r.case.spec.bias
        assert r.result.grad.shape == (r.case.shape[0], r.case.hidden)
        assert r.result.grad_w.shape == (r.case.n_classes, width)


def test_the_jax_recipe_is_chunked_with_checkpointed_chunks(rows: list) -> None:
    code = next(r.code for r in rows if r.api == LINEAR and r.recipe == "matched")
    assert "jax.lax.map(" in code and "batch_size=rows" in code and "@jax.checkpoint" in code
    native = next(r for r in rows if r.api == LINEAR and r.recipe == "native" and r.case.spec.reduction == "none")
    # the obvious port passes ignore_index straight in: optax's gather wraps -100 to class C-100 (documented)
    assert native.outcome == "mismatch" and native.explanation == "label_oob=wrap"


def test_keras_computes_a_float64_head_in_float32(rows: list) -> None:
    """Keras' losses compute in their float32 dtype policy (documented: keras.losses.*), a head's too."""
    native = [r for r in rows if r.api == KERAS and r.recipe == "native" and r.case.dtype == "float64"]
    assert native and all(r.outcome == "mismatch" and r.explanation == "computed_in=float32" for r in native)


def test_apis_that_cannot_run_here_say_why(rows: list) -> None:
    for api, word in ((CCE, "triton"), (LIGER, "GPU")):
        mine = [r for r in rows if r.api == api]
        assert mine and all(r.outcome == "unsupported" and word in r.error for r in mine), api
    smoothed = [r for r in rows if r.api == LINEAR_CHUNKED and r.case.spec.label_smoothing]
    assert smoothed and all(r.outcome == "unsupported" and "label smoothing" in r.error for r in smoothed)


def with_api(adapter: Adapter, name: str, code: str) -> Adapter:
    """A copy of `adapter` whose one API is a hand-written linear recipe (as `Adapter.verifying` makes one)."""
    twin = copy.copy(adapter)
    twin.apis = (Api(name, lambda s: True, lambda s: (Recipe("matched", code),), linear=True),)
    twin._functions = {}
    if hasattr(twin, "_jitted"):
        twin._jitted = {}
    return twin


# Chunked loops written wrongly, each caught by the part it gets wrong:
WRONG = {
    # dW from the first chunk only (the others' classifier detached): the value and dE are right
    (TORCH, "grad_w"): """\
parts = []
for k, (xc, yc) in enumerate(zip(x.split(16), y.split(16))):
    Wc = W if k == 0 else W.detach()
    parts.append(F.cross_entropy(xc @ Wc.T, yc, ignore_index=-100, reduction='sum'))
loss = sum(parts) / (y != -100).sum()""",
    # the chunks' means averaged: chunks with fewer kept labels weigh more (value and both gradients)
    (JAX, "value"): """\
valid = y != -100
def chunk(a):
    e, t, v = a
    ce = optax.losses.softmax_cross_entropy_with_integer_labels(e @ W.T, jnp.where(v, t, 0))
    return jnp.where(v, ce, 0).sum() / v.sum()
loss = jax.lax.map(chunk, (x.reshape(4, -1, x.shape[1]), y.reshape(4, -1), valid.reshape(4, -1))).mean()""",
}


@pytest.mark.parametrize("adapter, part", list(WRONG), ids=["torch-dW-of-one-chunk", "jax-mean-of-chunk-means"])
def test_a_chunked_loop_with_a_wrong_accumulation_is_caught(judged, adapter: Adapter, part: str) -> None:
    case = SMALL[0]
    (row,) = judged(with_api(adapter, "wrong", WRONG[(adapter, part)]), [case])
    assert row.outcome == "mismatch", (row.outcome, row.error)
    assert row.row[f"{part}_scaled_err"] > row.tol
    if part == "grad_w":  # only the classifier's gradient shows it: the new columns are what catches it
        assert row.value_scaled_err <= row.tol and row.grad_scaled_err <= row.tol


def test_only_apis_that_take_a_head_have_rows_for_the_linear_kind() -> None:
    """Every framework's APIs are filtered by `Api.linear` (numpy's reference evaluates any spec, a head too)."""
    spec = default_cases(kinds=("linear",), dtypes=("float32",))[0].spec
    with_head = {}
    for name in FRAMEWORKS:
        adapter = registry.load(name)
        apis = adapter.apis_for(spec)
        assert all(api.linear for api in apis) or name == "numpy", (name, apis)
        with_head[name] = [a.name for a in apis]
        assert all(not api.linear for api in adapter.apis_for(LossSpec())), name
    assert with_head["tensorflow"] == ["keras.losses.SparseCategoricalCrossentropy:linear"]
    assert LINEAR in with_head["jax"] and LINEAR_CHUNKED in with_head["torch"]
