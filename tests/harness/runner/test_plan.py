"""Which (mode, policy) pairs a framework runs a case in, and which cases are repeated (harness/runner/plan.py)."""

from __future__ import annotations

import dataclasses

from adapters.jax_adapter import ADAPTER as JAX
from adapters.numpy_adapter import ADAPTER as NUMPY
from adapters.tensorflow_adapter import ADAPTER as TF
from adapters.torch_adapter import ADAPTER as TORCH
from adapters.user import UserLoss
from cases.generator import default_cases, mode_cases
from cases.names import DTYPES, KINDS
from harness.runner.options import RunOptions
from harness.runner.plan import case_plan, case_repeats

CASES = default_cases()
SUBSET = mode_cases(CASES)
OPTIONS = RunOptions(mode_cases=SUBSET)


def case(prefix: str):
    return next(c for c in CASES if c.id.startswith(prefix))


def test_the_subset_holds_every_kind_and_dtype_and_the_out_of_range_labels() -> None:
    chosen = [c for c in CASES if c.id in SUBSET]
    assert {c.kind for c in chosen} == set(KINDS) and {c.dtype for c in chosen} == set(DTYPES)
    assert any(c.tag == "oob" for c in chosen)
    assert len(chosen) == len(KINDS), "one case a kind: compiles cost seconds each"


def test_outside_the_subset_every_framework_runs_its_own_way_once() -> None:
    c = case("multiclass-n64-c10-f32-w-mean")
    assert c.id not in SUBSET
    assert case_plan(TORCH, c, OPTIONS) == (("eager", "none"),)
    assert case_plan(JAX, c, OPTIONS) == (("compiled", "none"),), "jax.jit is how JAX runs a loss"
    assert case_repeats(c, OPTIONS) == 1


def test_the_subset_adds_the_other_modes_and_the_policies_of_its_dtype() -> None:
    bf16 = case("multiclass-n64-c10-bf16-mean")
    assert bf16.id in SUBSET and case_repeats(bf16, OPTIONS) == 3
    assert case_plan(TORCH, bf16, OPTIONS) == (("eager", "none"), ("compiled", "none"), ("eager", "autocast-bfloat16"))
    assert case_plan(TF, bf16, OPTIONS) == (("eager", "none"), ("compiled", "none"), ("eager", "mixed_bfloat16"))
    assert case_plan(JAX, bf16, OPTIONS) == (("compiled", "none"), ("eager", "none"))
    assert case_plan(NUMPY, bf16, OPTIONS) == (("eager", "none"),)
    f32 = case("binary-hard-n64-c4-f32-mean")
    assert f32.id in SUBSET and case_plan(TORCH, f32, OPTIONS) == (("eager", "none"), ("compiled", "none"))


def test_named_modes_and_policies_run_every_case_as_a_product() -> None:
    f16 = case("multiclass-n64-c10-f16-w-mean")
    both = dataclasses.replace(OPTIONS, modes=("eager", "compiled"), policies=("none", "autocast-float16"))
    assert case_plan(TORCH, f16, both) == (
        ("eager", "none"), ("eager", "autocast-float16"), ("compiled", "none"), ("compiled", "autocast-float16"),
    )  # fmt: skip
    assert case_plan(TF, f16, both) == (("eager", "none"), ("compiled", "none")), "no Keras policy was named"
    eager_only = dataclasses.replace(OPTIONS, modes=("eager",))
    assert case_plan(JAX, f16, eager_only) == (("eager", "none"),)
    assert case_repeats(f16, eager_only) == 3


def test_a_verified_function_runs_once_its_framework_s_way() -> None:
    opts = dataclasses.replace(OPTIONS, user=UserLoss.of(len), modes=("eager", "compiled"))
    bf16 = case("multiclass-n64-c10-bf16-mean")
    assert case_plan(JAX, bf16, opts) == (("compiled", "none"),) and case_repeats(bf16, opts) == 1
