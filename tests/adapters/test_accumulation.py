"""Gradient accumulation (issue 18): every API called over micro-batches of 8, 24 and 32 rows whose numbers of
kept labels differ. The naive loop (`native`: each micro-batch's mean, averaged) is explained by
`accumulation=mean_of_means` (huggingface/transformers#34191); the loop that divides the summed losses once by the
batch's denominator (`matched`) gives the full batch's loss and gradient."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

import numpy as np
import pytest

from adapters import reference
from cases.generator import default_cases

CASES = default_cases(("accumulation",), ("float64", "float32"))


def test_the_cases_split_unequal_counts_of_kept_labels() -> None:
    assert CASES and all(c.spec.micro_batches == (8, 24, 32) and c.spec.ignore_index == -100 for c in CASES)
    y = CASES[0].inputs().target
    kept = [int((y[a:b] != -100).sum()) for a, b in ((0, 8), (8, 32), (32, 64))]
    assert len(set(np.array(kept) / np.array([8, 24, 32]))) > 1, kept  # so the mean of means is not the mean


@pytest.mark.parametrize("name", ["torch", "jax", "tensorflow"])
def test_the_naive_loop_is_named_and_the_batch_loop_matches(name: str, judged: Callable, as_pytorch) -> None:
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed")
    adapter = importlib.import_module(f"adapters.{name}_adapter").ADAPTER
    rows = [r for r in judged(adapter, CASES) if r.outcome != "unsupported"]
    native = [r for r in rows if r.recipe == "native" and r.outcome != "raised"]
    matched = [r for r in rows if r.recipe == "matched"]
    assert native and matched
    assert all("accumulation=mean_of_means" in r.explanation.split("+") for r in native), [
        (r.case.id, r.api, r.outcome, r.explanation) for r in native if "accumulation" not in r.explanation
    ]
    assert all(r.outcome == "ok" for r in matched), [(r.case.id, r.api, r.outcome, r.error) for r in matched]
    assert all("for a, b in ((0, 8), (8, 32), (32, 64))" in r.code for r in rows)


def test_the_reference_of_a_split_batch_is_the_batch_s_loss() -> None:
    """micro_batches leave the canonical loss alone; the mean of means is the average of the three means, by hand."""
    import dataclasses

    c = CASES[0]
    inputs = c.inputs()
    whole = reference.evaluate(dataclasses.replace(c.spec, micro_batches=()), inputs)
    assert float(reference.evaluate(c.spec, inputs).value) == float(whole.value)
    means = []
    for a, b in ((0, 8), (8, 32), (32, 64)):
        sub = reference.Inputs(inputs.x[a:b], inputs.target[a:b])
        means.append(float(reference.evaluate(dataclasses.replace(c.spec, micro_batches=()), sub).value))
    naive = reference.evaluate(c.spec, inputs, semantics=reference.Semantics(accumulation="mean_of_means"))
    assert float(naive.value) == pytest.approx(sum(means) / 3, rel=1e-15)
