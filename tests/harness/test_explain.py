"""Explanations: seed claims, the known/new split, and that a variant's output is explained."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adapters.reference import evaluate
from adapters.variants import BY_NAME
from cases.documented import documented_cases
from cases.generator import default_cases
from harness.explain import MEMO_MAX_ELEMENTS, _candidates, claim_tolerance, explain, explain_claim, known_differences
from harness.metrics import compare
from harness.summary import new_difference_count
from harness.tolerances import tolerance

ROOT = Path(__file__).resolve().parents[2]
DOCS = {c.name: c for c in documented_cases(("float64",))}


def test_claim_tolerance_is_half_the_last_printed_digit() -> None:
    assert claim_tolerance("0.9163") == pytest.approx(5e-5)
    assert claim_tolerance("1.03e-2") == pytest.approx(5e-5)
    assert claim_tolerance("-0.1399") == pytest.approx(5e-5)


@pytest.mark.parametrize(
    ("name", "claimed", "agrees", "variants"),
    [
        ("seed001", 0.9163, False, ("probs_passed_as_logits",)),  # -log(0.4): probabilities read as such
        ("seed004", 1.3654, False, ("class_axis=0",)),  # softmax over dim=0
        ("seed004", 0.1365, False, ()),  # the article's stray number: nothing produces it
        ("seed000", 0.1269, True, ()),
        ("seed003c", 1.0302, True, ()),
    ],
)
def test_seed_claims_are_explained(name: str, claimed: float, agrees: bool, variants: tuple) -> None:
    verdict = explain_claim(DOCS[name], claimed, claim_tolerance(str(claimed)))
    assert verdict.agrees == agrees and verdict.variants == variants, verdict


def test_check_claimed_on_the_command_line(tmp_path: Path) -> None:
    c = DOCS["seed001"]
    f = tmp_path / "seed001.npz"
    np.savez(f, x=c.inputs().x.astype(np.float32), target=c.inputs().target)
    p = subprocess.run([sys.executable, "-m", "harness", "check", "--npz", str(f), "--claimed", "0.9163",
                        "--frameworks", "numpy"], cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr
    first = p.stdout.splitlines()[0]
    assert first.startswith("your 0.9163 is not the exact value 1.03307") and "probs_passed_as_logits" in first, first
    p = subprocess.run([sys.executable, "-m", "harness", "check", "--npz", str(f), "--claimed", "zero"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert p.returncode == 2 and "Expected --claimed to be a number" in p.stderr


def _variant_outputs():
    for case in default_cases(dtypes=("float64", "float32")):
        ref = evaluate(case.spec, case.inputs())
        tol = tolerance(case.dtype, case.n_classes, case.n_elements)
        for v, ev in _candidates(case):
            if v.dtype is None and compare(ev.value, ev.grad, ref, case.dtype, tol).outcome != "ok":
                yield case, v, ev, ref


def test_a_variants_own_output_is_explained_by_a_variant_that_reproduces_it() -> None:
    seen = set()
    for case, v, ev, ref in _variant_outputs():
        name = explain(case, ev.value, ev.grad, ref)
        assert name, f"{v.name}'s own output is unexplained [{case.id}]"
        assert not name.startswith("computed_in"), f"{v.name} explained as rounding {name} [{case.id}]"
        if "+" not in name:
            again = BY_NAME[name].fn(case.spec, case.inputs(), case.dtype)
            assert compare(ev.value, ev.grad, again, case.dtype, 1e-6).outcome == "ok", (v.name, name, case.id)
        seen.add(v.name)
    assert len(seen) >= 15, seen


def test_a_memo_changes_no_explanation_and_is_not_kept_for_large_cases() -> None:
    """One memo per case: the rows after the first reuse its variant evaluations, with the same answers."""
    outputs = list(_variant_outputs())
    memos: dict[str, dict] = {}
    for case, v, ev, ref in outputs:
        memo = memos.setdefault(case.id, {})
        assert explain(case, ev.value, ev.grad, ref, memo=memo) == explain(case, ev.value, ev.grad, ref), (
            v.name,
            case.id,
        )
    small = [c for c, *_ in outputs if math.prod(c.shape) <= MEMO_MAX_ELEMENTS]
    large = [c for c, *_ in outputs if math.prod(c.shape) > MEMO_MAX_ELEMENTS]
    assert small and all(memos[c.id] for c in small), "small cases keep their evaluations"
    assert large and not any(memos[c.id] for c in large), "a 32000-class case's evaluations are not kept"


def test_the_runs_lazy_reference_and_inputs_change_no_explanation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run explains against a reference whose gradient is remade per block (GradRows) with the
    inputs it was made from: the same answers, and no second copy of the inputs is made."""
    from cases.spec import Case

    outputs = [(case, v, ev, ref, case.inputs()) for case, v, ev, ref in _variant_outputs()]
    want = [explain(case, ev.value, ev.grad, ref) for case, v, ev, ref, _ in outputs]

    def no_second_copy(self: Case) -> None:
        raise AssertionError(f"explain made {self.id}'s inputs again")

    monkeypatch.setattr(Case, "inputs", no_second_copy)
    for (case, v, ev, _, inputs), name in zip(outputs, want, strict=True):
        lazy = evaluate(case.spec, inputs, lazy=True)
        got = explain(case, ev.value, ev.grad, lazy, inputs=inputs)
        assert got == name, f"{got!r} != {name!r} [explain({v.name}'s output, lazy reference), {case.id}]"


def test_strict_counts_differences_the_registry_does_not_list() -> None:
    row = {"framework": "torch", "api": "torch.nn.functional.binary_cross_entropy", "outcome": "mismatch",
           "explanation": "prob_clamp=log>=-100"}  # fmt: skip
    df = pd.DataFrame([row, {**row, "explanation": ""}, {**row, "outcome": "ok", "explanation": ""}])
    assert new_difference_count(df) == 1  # the unexplained one
    assert new_difference_count(df, registry=()) == 2  # nothing is known without a registry
    assert any(k.variant == "prob_clamp=log>=-100" for k in known_differences())
