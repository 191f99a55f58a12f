"""Every framework's losses compiled, under its mixed-precision policies and repeated (issue 18): judged as a run
judges them, with the dtype the loss came back in and whether repeated calls give the same bits.

PyTorch's autocast runs cross_entropy in float32 (torch.amp's autocast op lists put it on the float32 list:
https://pytorch.org/docs/stable/amp.html#cpu-ops-that-can-autocast-to-float32); Keras losses compute in their
own dtype, keras.config.floatx() by default, whatever the global policy (https://keras.io/api/losses/, `dtype`);
JAX's eager mode is op by op (jax.disable_jit) and its own mode jax.jit.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

import pytest

from adapters.base import Adapter
from cases.generator import default_cases

CASES = {c.id: c for c in default_cases(("multiclass", "smoothed"), ("bfloat16", "float32"))}
BF16 = CASES["multiclass-n64-c10-bf16-mean-s0"]
F32_SMOOTHED = CASES["smoothed-n64-c10-f32-ls0.1-mean-s0"]


def adapter(name: str) -> Adapter:
    if importlib.util.find_spec({"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}[name]) is None:
        pytest.skip(f"{name} is not installed")
    module = importlib.import_module(f"adapters.{name}_adapter")
    return module.ADAPTER


PLANS = {
    "torch": (("eager", "none"), ("compiled", "none"), ("eager", "autocast-bfloat16")),
    "tensorflow": (("eager", "none"), ("compiled", "none"), ("eager", "mixed_bfloat16")),
    "jax": (("compiled", "none"), ("eager", "none")),
}
# (mode, policy) -> the dtype the matched loss comes back in from bfloat16 logits
LOSS_DTYPES = {
    "torch": {
        ("eager", "none"): "bfloat16",
        ("compiled", "none"): "bfloat16",
        ("eager", "autocast-bfloat16"): "float32",
    },
    "jax": {("compiled", "none"): "bfloat16", ("eager", "none"): "bfloat16"},
}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_every_mode_and_policy_is_judged_ok_and_repeats_bit_for_bit(name: str, judged: Callable, as_pytorch) -> None:
    a = adapter(name)
    rows = judged(a, [BF16, F32_SMOOTHED], plan=PLANS[name], repeats=3)
    for case in (BF16, F32_SMOOTHED):
        mine = [r for r in rows if r.case is case]
        want = {p for p in PLANS[name] if p[1] == "none" or case.dtype == "bfloat16"}
        assert {(r.result.mode, r.result.policy) for r in mine} >= want, "every planned pair has rows"
    matched = [r for r in rows if r.recipe == "matched" and r.outcome != "unsupported"]
    assert matched
    bad = [f"{r.case.id} {r.api} {r.result.mode}/{r.result.policy}: {r.outcome} {r.error}" for r in matched
           if r.outcome != "ok"]  # fmt: skip
    assert not bad, bad
    assert all(r.result.deterministic is True for r in matched), "CPU kernels give the same bits each call"
    for (mode, policy), dtype in LOSS_DTYPES.get(name, {}).items():
        got = {
            r.result.loss_dtype
            for r in matched
            if r.case is BF16 and (r.result.mode, r.result.policy) == (mode, policy)
        }
        assert got == {dtype}, (mode, policy, got)


def test_keras_losses_compute_in_float32_with_or_without_a_mixed_policy(judged: Callable) -> None:
    """The global mixed policy does not reach a Keras loss: its native rows come back float32 either way, the same
    numbers; tf.nn ops compute in the logits' dtype, policy or not."""
    a = adapter("tensorflow")
    rows = judged(a, [BF16], plan=PLANS["tensorflow"][::2])
    keras = [r for r in rows if r.api.startswith("keras.") and r.recipe == "native"]
    by = {(r.api, r.result.policy): r for r in keras}
    for api in {r.api for r in keras}:
        plain, mixed = by[api, "none"], by[api, "mixed_bfloat16"]
        assert plain.result.loss_dtype == mixed.result.loss_dtype == "float32"
        assert plain.value == mixed.value
    tfnn = {r.result.loss_dtype for r in rows if r.api.startswith("tf.nn.") and r.recipe == "native"}
    assert tfnn == {"bfloat16"}


def test_a_non_deterministic_call_is_caught() -> None:
    """`deterministic` compares the bits of repeated calls: a loss that adds noise each call is caught."""
    import numpy as np

    from adapters.numpy_adapter import NumpyAdapter

    class Noisy(NumpyAdapter):
        calls = 0

        def evaluate(self, fn, spec, inputs, dtype, device, mode="eager", policy="none"):
            value, grad, dt = super().evaluate(fn, spec, inputs, dtype, device, mode, policy)
            Noisy.calls += 1
            return value + Noisy.calls * np.spacing(value), grad, dt  # one more ulp each call

    case = CASES["multiclass-n64-c10-f32-mean-s0"]
    results = [r for r in Noisy().run_case(case, "cpu", repeats=3) if np.isfinite(r.value).all()]  # inf + ulp = inf
    assert results and {r.deterministic for r in results} == {False}
    assert {r.deterministic for r in NumpyAdapter().run_case(case, "cpu", repeats=3)} == {True}
    assert {r.deterministic for r in NumpyAdapter().run_case(case, "cpu")} == {None}, "one call: not checked"


def test_a_mode_a_framework_lacks_is_unsupported_with_the_reason() -> None:
    from adapters.numpy_adapter import ADAPTER

    results = ADAPTER.run_case(CASES["multiclass-n64-c10-f32-mean-s0"], "cpu", plan=(("compiled", "none"),))
    assert {r.outcome for r in results} == {"unsupported"}
    assert all("numpy runs eagerly without a policy" in r.error for r in results)
