"""Explanations: seed claims, the known/new split, and that a variant's output is explained."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import harness.judge.explain as explain_module
from adapters.reference import Evaluation, evaluate
from adapters.variants import BY_NAME, SEMANTIC, evaluate_variants
from cases.documented import documented_cases
from cases.generator import default_cases
from cases.spec import Case, Inputs, LossSpec
from harness.judge.claims import claim_tolerance, explain_claim
from harness.judge.explain import FACT_MAX_GRAD, MEMO_MAX_ELEMENTS, Fact, combo_name, differs, explain
from harness.judge.metrics import compare
from harness.judge.registry import is_known, known_differences
from harness.judge.tolerances import tolerance
from harness.render.summary import new_difference_count

ROOT = Path(__file__).resolve().parents[3]
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


def _variant_outputs(kinds: tuple[str, ...] = ("binary", "multiclass", "soft", "smoothed", "edge", "documented")):
    """(case, variant, the variant's output, reference) where the variant differs from the canonical loss."""
    for case in default_cases(kinds, dtypes=("float64", "float32")):
        inputs = case.inputs()
        ref = evaluate(case.spec, inputs)
        tol = tolerance(case.dtype, case.n_classes, case.n_elements)
        for v in SEMANTIC:
            ev = evaluate_variants((v,), case.spec, inputs, constants=case.dtype)
            if ev is None or ev.undefined:  # no numbers to explain where PyTorch raises
                continue
            if compare(ev.value, ev.grad, ref, case.dtype, tol).outcome != "ok":
                yield case, v, ev, ref


def test_a_variants_own_output_is_explained_by_a_variant_that_reproduces_it() -> None:
    seen = set()
    for case, v, ev, ref in _variant_outputs():
        name = explain(case, ev.value, ev.grad, ref, (v.name,) if v.registered_only else ())  # where registered
        assert name, f"{v.name}'s own output is unexplained [{case.id}]"
        assert not name.startswith("computed_in"), f"{v.name} explained as rounding {name} [{case.id}]"
        again = evaluate_variants(tuple(BY_NAME[n] for n in name.split("+")), case.spec, case.inputs(),
                                  constants=case.dtype)  # fmt: skip
        assert compare(ev.value, ev.grad, again, case.dtype, 1e-6).outcome == "ok", (v.name, name, case.id)
        seen.add(v.name)
    assert len(seen) >= 20, sorted(set(BY_NAME) - seen)


def combination(case: Case, *names: str):
    return evaluate_variants(tuple(BY_NAME[n] for n in names), case.spec, case.inputs(), constants=case.dtype)


@pytest.mark.parametrize(
    ("prefix", "names"),
    [
        # optax's obvious port of CrossEntropyLoss(weight, ignore_index=-100, label_smoothing=0.1): labels -100
        # one-hot to zero rows (still smoothed) and the mean over N, two causes
        ("smoothed-n64-c10-f64-w-iim100-ls0.1-mean", ("label_oob=zero", "weight_norm=N")),
        # tf.one_hot of an ignore label through softmax_cross_entropy_with_logits, then tf.reduce_mean
        ("multiclass-n64-c10-f64-iim100-mean", ("label_oob=zero_row", "weight_norm=N")),
        # an all-ignored batch read by optax: NaN loss, and the gradient of the mean over N
        ("multiclass-allignored-n64-c10-f64-iim100-mean", ("label_oob=nan", "weight_norm=N")),
        # Keras from probabilities with sample_weight=w[y]
        ("multiclass-n64-c10-f64-prob-mean", ("probs_renormalised", "reduction=sum")),
        ("soft-n8-c10-d16-f64-pt-mean", ("class_axis=-1", "grad_assumes_normalised_targets")),
    ],
)
def test_every_cause_is_named(prefix: str, names: tuple[str, ...]) -> None:
    """A difference with several causes is explained by all of them, in the table's order."""
    case = next(c for c in default_cases(dtypes=("float64",)) if c.id.startswith(prefix))
    inputs = case.inputs()
    ev = combination(case, *names)
    got = explain(case, ev.value, ev.grad, evaluate(case.spec, inputs), inputs=inputs)
    assert got == combo_name([BY_NAME[n] for n in names]), f"explain({'+'.join(names)}'s output) = {got!r} [{case.id}]"
    for n in names:  # and no part alone reproduces it
        alone = combination(case, n)
        assert alone is None or compare(ev.value, ev.grad, alone, "float64", 1e-6).outcome != "ok", n


def test_an_all_ignored_batch_returning_zero_is_empty_mean_not_weight_norm() -> None:
    """Keras' ignore_class divides an empty mask with divide_no_nan: 0, where PyTorch gives NaN. Dividing by N
    also gives 0 there, so the name must come from the rule that is really at work."""
    case = next(c for c in default_cases(dtypes=("float64",)) if c.id.startswith("multiclass-allignored-n64-c10-f64"))
    zero = np.zeros(case.shape)
    got = explain(case, np.asarray(0.0), zero, evaluate(case.spec, case.inputs()), registered=("weight_norm=N",))
    assert got == "empty_mean=0", got


def test_exactly_one_hot_targets_are_not_explained_by_normalisation() -> None:
    """softmax(x) - t is the exact gradient when t sums to 1: such rows are not grad_assumes_normalised_targets."""
    x = np.random.default_rng(3).normal(size=(16, 5))
    t = np.eye(5)[np.arange(16) % 5]
    case = Case("user", LossSpec(target="prob"), x.shape, "float64", data=Inputs(x, t))
    assert combination(case, "grad_assumes_normalised_targets") is not None
    ref = evaluate(case.spec, case.inputs())
    same = combination(case, "grad_assumes_normalised_targets")
    assert compare(same.value, same.grad, ref, "float64", 1e-14).outcome == "ok"  # no difference to name
    wrong = ref.grad * 1.01
    assert "grad_assumes_normalised_targets" not in explain(case, ref.value, wrong, ref)


def test_renormalisation_is_named_as_such_and_binary_clipping_does_not_say_renormalised() -> None:
    assert "renormalised" not in BY_NAME["prob_clip=1e-7"].summary
    case = next(c for c in default_cases(dtypes=("float64",)) if c.id.startswith("multiclass-n64-c10-f64-prob-mean"))
    assert case.inputs().x.min() > 1e-7  # nothing for a clip to do
    ev = combination(case, "probs_renormalised")
    assert explain(case, ev.value, ev.grad, evaluate(case.spec, case.inputs())) == "probs_renormalised"


def test_every_variant_and_registry_line_cites_a_source() -> None:
    for v in BY_NAME.values():
        assert v.source.startswith("https://"), v
    for k in known_differences():
        assert k.source.startswith("https://") or k.source.startswith("adapters/"), k
        assert all(part in BY_NAME for part in k.variant.split("+")), k
    assert is_known("jax", "optax.losses.softmax_cross_entropy", "label_oob=zero+weight_norm=N", known_differences())


def test_a_memo_changes_no_explanation_and_is_not_kept_for_large_cases() -> None:
    """One memo per case: the rows after the first reuse its variant evaluations, with the same answers."""
    outputs = list(_variant_outputs(("multiclass", "edge", "smoothed")))
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

    outputs = [(case, v, ev, ref, case.inputs()) for case, v, ev, ref in _variant_outputs(("multiclass", "edge"))]
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


def test_a_missing_registry_is_an_error_not_an_empty_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the registry every difference would read as new: an installation without it must say so."""
    import harness.judge.registry as registry

    monkeypatch.setattr(registry, "REGISTRY", ("adapters", "no_such_file.csv"))
    with pytest.raises(RuntimeError, match=r"known-differences registry adapters/no_such_file\.csv is missing"):
        registry.known_differences()
    assert registry.known_differences("framework,api,variant,condition,source\ntorch,a.b,v,c,s\n")[0].variant == "v"


def _linear_variant_outputs():
    """(case, variant, output, reference) for a small linear head: a variant of its logits' loss, chained to E and W."""
    spec = LossSpec(linear=True, ignore_index=-100, weighted=True)
    for dtype in ("float64", "float32"):
        case = Case("linear", spec, (16, 50), dtype, hidden=8)
        inputs = case.inputs()
        ref = evaluate(spec, inputs)
        tol = tolerance(case.dtype, case.n_classes, case.n_elements)
        for v in SEMANTIC:
            ev = evaluate_variants((v,), spec, inputs, constants=case.dtype)
            if (
                ev is not None
                and not ev.undefined
                and compare(ev.value, ev.grad, ref, dtype, tol, ev.grad_w).outcome != "ok"
            ):
                yield case, v, ev, ref


def test_facts_shared_by_a_cases_rows_change_no_explanation() -> None:
    """One `Facts` per case, shared by every row of it (every framework's): the same explanation as without, and
    the later rows reuse what the first learnt (a linear head's first from its value alone)."""
    outputs = [*_variant_outputs(("multiclass", "smoothed")), *_linear_variant_outputs()]
    assert any(c.spec.linear for c, *_ in outputs)
    facts: dict[str, dict] = {}
    for case, v, ev, ref in outputs:
        shared = facts.setdefault(case.id, {})
        got = explain(case, ev.value, ev.grad, ref, facts=shared, grad_w=ev.grad_w)
        want = explain(case, ev.value, ev.grad, ref, grad_w=ev.grad_w)
        assert got == want, f"explain({v.name}'s output) with facts {got!r} != {want!r} [{case.id}]"
    assert all(facts.values()), "every case's explanations left facts for its next rows"


@pytest.mark.parametrize(
    "case_id", ["multiclass-confident-n256-c100-f32-mean-s0", "smoothed-n64-c10-f64-ls0.1-mean-s0"]
)
def test_a_fact_rules_out_only_values_its_evaluation_cannot_reproduce(case_id: str) -> None:
    """Both directions, a confident near-one-hot case among them: a fact never rules out its own evaluation's value
    and gradient (nor ones within the tolerance of them), and rules out a value or a gradient 10 tolerances away, one
    with a NaN where it has none, and every row when the evaluation does not differ from the reference."""
    case = next(c for c in default_cases(("multiclass", "smoothed"), ("float64", "float32")) if c.id == case_id)
    inputs = case.inputs()
    ref = evaluate(case.spec, inputs)
    tol = tolerance(case.dtype, case.n_classes, case.n_elements)
    ev = evaluate_variants((BY_NAME["reduction=sum"],), case.spec, inputs, constants=case.dtype)
    fact = Fact.of(ev, True)
    value, grad = np.asarray(ev.value, np.float64), np.array(ev.grad, np.float64)  # a copy: NaN written below
    kept = grad.size <= FACT_MAX_GRAD  # the n64-c10 case's gradient; not the n256-c100 one's
    assert fact.stage is not None and fact.stage.grad.size == (grad.size if kept else 0)
    v_step, g_step = tol * np.asarray(ev.scale, np.float64), tol * np.asarray(ev.grad_scale, np.float64)
    assert not fact.rules_out(value, grad, case.dtype, tol)
    assert not fact.rules_out(value, None, case.dtype, tol)
    assert not fact.rules_out(value + 0.5 * v_step, grad + 0.5 * g_step, case.dtype, tol)
    assert fact.rules_out(value + 10 * v_step, grad, case.dtype, tol)
    assert fact.rules_out(value, grad + 10 * g_step, case.dtype, tol) == kept  # else its full comparison decides
    assert not fact.rules_out(value, grad + 10 * g_step, case.dtype, 20 * tol)
    assert fact.rules_out(np.full_like(value, np.nan), grad, case.dtype, tol)
    grad[0, 0] = np.nan
    assert fact.rules_out(value, grad, case.dtype, tol) == kept
    assert Fact.of(ref, False).rules_out(np.asarray(ref.value), np.asarray(ref.grad), case.dtype, tol)


def test_a_fact_keeps_no_large_or_lazy_gradient() -> None:
    """A gradient beyond FACT_MAX_GRAD elements (or made a block at a time) is not kept: the fact judges the value
    alone, so a row with any gradient and the evaluation's value is not turned down (its full comparison decides)."""
    case = next(c for c in default_cases(("linear",), ("float32",)) if "c32000" in c.id)
    inputs = case.inputs()
    ev = evaluate_variants((BY_NAME["reduction=sum"],), case.spec, inputs, constants=case.dtype)
    assert ev is not None and np.size(ev.grad_w) > FACT_MAX_GRAD
    fact = Fact.of(ev, True)
    assert fact.stage is not None and fact.stage.grad_w is None, "a classifier's gradient is never kept"
    tol = tolerance(case.dtype, case.n_classes, case.n_elements)
    big = np.zeros((FACT_MAX_GRAD + 1, 2))
    wide = Evaluation(np.asarray(ev.value), big, np.asarray(ev.scale), big)
    assert Fact.of(wide, True).stage.grad.size == 0
    assert not Fact.of(wide, True).rules_out(np.asarray(ev.value, np.float64), big + 1e9, case.dtype, tol)


def test_differs_is_a_failed_comparison_found_sooner() -> None:
    """explain() judges a row against a variant with `differs`, the value alone first: the same verdict as a full
    `compare`, both ways, for a row that passes, a value or a gradient (of E or W) beyond tolerance, NaNs where there
    are none, no gradient, an undefined loss and a shape of its own."""
    cases = [*_variant_outputs(("multiclass",)), *_linear_variant_outputs()]
    seen = set()
    for case, v, ev, ref in cases:
        tol = tolerance(case.dtype, case.n_classes, case.n_elements)
        value, grad = np.asarray(ev.value, np.float64), np.array(ev.grad, np.float64)
        gw = None if ev.grad_w is None else np.array(ev.grad_w, np.float64)
        v_step, g_step = 10 * tol * np.abs(np.asarray(ev.scale, np.float64)), 10 * tol * np.abs(ev.grad_scale)
        nan_grad = grad.copy()
        nan_grad.flat[0] = np.nan
        rows = [(value, grad, gw), (value + v_step, grad, gw), (value, grad + g_step, gw), (value, nan_grad, gw),
                (value, None, None), (np.full_like(value, np.nan), grad, gw), (value, grad[:1], gw)]  # fmt: skip
        if gw is not None:
            rows.append((value, grad, gw + 10 * tol * np.abs(ev.grad_w_scale)))
        targets = [ev, ref, dataclasses.replace(ev, undefined="labels outside [0, C)")]
        for (val, g, w), target in itertools.product(rows, targets):
            want = compare(val, g, target, case.dtype, tol, w).outcome
            assert differs(val, g, target, case.dtype, tol, w) == (want != "ok"), (v.name, case.id, want)
            seen.add(want)
    assert seen == {"ok", "mismatch", "nonfinite"}, seen


def test_a_linear_heads_value_only_fact_gains_its_gradient_once_made() -> None:
    """A linear head's variant is first known by its value (`learn`); once its evaluation is made to judge a row,
    the fact keeps its gradient of E too: a later row with the variant's value and a gradient it cannot give is
    turned down without the evaluation made again, and a row it can give is still explained by it."""
    case, v, ev, ref = next((c, v, ev, r) for c, v, ev, r in _linear_variant_outputs() if v.name == "reduction=sum")
    inputs, facts = case.inputs(), {}
    assert explain(case, ev.value, ev.grad, ref, inputs=inputs, grad_w=ev.grad_w, facts=facts) == v.name
    fact = facts[((v.name,), "float64", case.dtype)]
    assert fact.stage is not None and fact.stage.grad.size == np.size(ev.grad), "the gradient of E is kept"
    made = []
    real = explain_module.evaluate_variants

    def counted(*args, **kwargs):
        call = inspect.signature(real).bind(*args, **kwargs)
        call.apply_defaults()
        a = call.arguments
        made.append((tuple(c.name for c in a["variants"]), a["dtype"], a["value_only"]))
        return real(*args, **kwargs)

    vtol = max(tolerance(case.dtype, case.n_classes, case.n_elements), explain_module.VARIANT_MIN_TOL)
    off = np.array(ev.grad, np.float64) + 10 * vtol * np.abs(ev.grad_scale)  # 10 of a variant's tolerances away
    with pytest.MonkeyPatch.context() as m:
        m.setattr(explain_module, "evaluate_variants", counted)
        assert explain(case, ev.value, off, ref, inputs=inputs, grad_w=ev.grad_w, facts=facts) != v.name
        assert ((v.name,), "float64", False) not in made, "turned down by the kept gradient, not by the evaluation"
        assert explain(case, ev.value, ev.grad, ref, inputs=inputs, grad_w=ev.grad_w, facts=facts) == v.name
        assert ((v.name,), "float64", False) in made, "its own row is judged against the whole evaluation"
