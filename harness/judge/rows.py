"""Rows of the `accuracy` DataFrame (docs/DESIGN.md, "Results"): one per case x framework x api x recipe x
device, each judged against the case's reference as its result arrives (`RowJudge`), and the table they
make (`accuracy_frame`, with the semantics decided once: harness/judge/semantics.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from adapters import reference, registry
from adapters.base import Adapter, Result
from adapters.reference import Evaluation
from adapters.registry import FRAMEWORKS
from cases.spec import Case, Inputs
from harness.judge.explain import Facts, Memo, explain
from harness.judge.metrics import compare, first
from harness.judge.reference_store import ReferenceStore
from harness.judge.registry import registered_variants
from harness.judge.semantics import decide_once, note_unreproduced
from harness.judge.tolerances import NUMERICAL, numerical_gradient_slack, tolerance

ACCURACY_COLUMNS = (
    "run_id", "case_id", "kind", "family", "input", "target", "weighted", "sample_weighted", "ignore_index",
    "label_smoothing",
    "reduction", "shape", "dtype", "framework", "framework_version", "api", "recipe", "recipe_code", "device",
    "mode", "policy", "outcome", "error", "value", "ref_value", "value_abs_err", "value_rel_err", "value_ulp_err",
    "grad_abs_err", "grad_rel_err", "grad_ulp_err", "value_scaled_err", "grad_scaled_err",
    "grad_w_abs_err", "grad_w_rel_err", "grad_w_ulp_err", "grad_w_scaled_err", "tol", "explanation",
    "deterministic", "loss_dtype", "grad_method",
)  # fmt: skip

NUMBERS = ACCURACY_COLUMNS[ACCURACY_COLUMNS.index("value") : ACCURACY_COLUMNS.index("tol") + 1]


def case_fields(case: Case) -> dict[str, Any]:
    s = case.spec
    return {
        "case_id": case.id, "kind": case.kind, "family": s.family, "input": s.input, "target": s.target,
        "weighted": s.weighted, "sample_weighted": s.sample_weighted, "ignore_index": s.ignore_index,
        "label_smoothing": s.label_smoothing, "reduction": s.reduction, "shape": case.shape_str, "dtype": case.dtype,
    }  # fmt: skip


Explained = dict[tuple[tuple[str, ...], bytes], str]  # one case's explanations by (registered variants, `digest`)


def digest(*arrays: np.ndarray | None) -> bytes:
    """What tells a row's numbers from another's: each array's dtype, shape and bytes."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.asarray(a if a is not None else np.zeros(0, np.int8))
        h.update(f"{a.dtype.str}{a.shape}|".encode())  # before the copy below, which makes a scalar 1-d
        h.update(np.ascontiguousarray(a).data)
    return h.digest()


def accuracy_row(
    run_id: str, case: Case, framework: str, version: str | None, device: str, result: Result, ref: Evaluation,
    memo: Memo | None = None, inputs: Inputs | None = None, facts: Facts | None = None,
    explained: Explained | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A row for one result, judged against the reference when it carries numbers (`memo`, `inputs`, `facts`:
    see explain). `explained`: the case's explanations so far; a row with the same numbers as an explained one
    (another recipe or framework that computes alike), and the same registered variants, gets its explanation."""
    tol = tolerance(case.dtype, case.n_classes, case.n_elements)
    row = {
        "run_id": run_id, **case_fields(case), "framework": framework, "framework_version": version or "",
        "api": result.api, "recipe": result.recipe, "recipe_code": result.recipe_code, "device": device,
        "mode": result.mode, "policy": result.policy, "outcome": result.outcome or "", "error": result.error,
        "tol": tol, "explanation": "", "deterministic": result.deterministic, "loss_dtype": result.loss_dtype,
        "grad_method": result.grad_method if result.outcome is None else "",
    }  # fmt: skip
    row.update(dict.fromkeys(NUMBERS[:-1], float("nan")))
    row["ref_value"] = first(ref.value)
    if result.outcome is None:
        judged = with_numerical_slack(ref, result, case, inputs, tol)
        cmp = compare(result.value, result.grad, judged, case.dtype, tol, result.grad_w)
        row.update({k: getattr(cmp, k) for k in NUMBERS[:-1]})
        # the comparison's finding, and the adapter's note (why there is no gradient) beside it
        row["outcome"], row["error"] = cmp.outcome, "; ".join(e for e in (cmp.error, result.error) if e)
        if cmp.outcome in ("mismatch", "nonfinite"):
            registered = registered_variants(framework, result.api)
            numerical = result.grad_method in NUMERICAL and result.grad is not None  # else widen changes nothing
            widen = (lambda ev, t: with_numerical_slack(ev, result, case, inputs, t)) if numerical else None
            # explain() is a function of the case and these: a numerical gradient's allowance (widen) aside
            key = None if numerical or explained is None else (registered, digest(result.value, result.grad,
                                                                                   result.grad_w))  # fmt: skip
            if key is not None and key in explained:
                row["explanation"] = explained[key]
            else:
                row["explanation"] = explain(case, result.value, result.grad, ref, registered, memo, inputs,
                                             result.grad_w, widen, facts)  # fmt: skip
                if key is not None:
                    explained[key] = row["explanation"]
    return row


def with_numerical_slack(ref: Evaluation, result: Result, case: Case, inputs: Inputs | None, tol: float) -> Evaluation:
    """`ref` for judging `result`: for a numerical gradient (`tolerances.NUMERICAL`) its gradient's error scale
    grows by the method's own error over `tol` (`tolerances.numerical_gradient_slack`), so the judge's test
    ``|g - gr| <= tol * scale`` allows ``tol * gs + slack``; `ref` itself for autodiff (and for no gradient)."""
    if result.grad_method not in NUMERICAL or result.grad is None or ref.grad_scale is None:
        return ref
    x = (case.inputs() if inputs is None else inputs).x
    gs = np.asarray(ref.grad_scale, np.float64)
    value_scale = float(np.nansum(np.abs(np.asarray(ref.scale, np.float64))))
    slack = numerical_gradient_slack(result.grad_method, gs, value_scale, x, case.spec.input, case.n_classes,
                                     case.n_elements)  # fmt: skip
    return dataclasses.replace(ref, grad_scale=gs + slack / tol)


def placeholder_rows(
    run_id: str,
    case: Case,
    adapter: Adapter,
    version: str | None,
    device: str,
    outcome: str,
    error: str,
    ref: Evaluation,
    plan: Sequence[tuple[str, str]],
) -> list[dict[str, Any]]:
    """Rows with no numbers (framework or device unavailable, worker crashed or timed out), one per
    (api, recipe) that the framework would have run for this case, in each (mode, policy) of `plan`."""
    rows = []
    for api in adapter.apis_for(case.spec):
        for mode, policy in plan:
            for recipe in api.recipes(case.spec):
                missing = recipe.code is None
                result = Result(api.name, recipe.name, recipe.code or "", "unsupported" if missing else outcome,
                                recipe.reason if missing else error, mode=mode, policy=policy)  # fmt: skip
                rows.append(accuracy_row(run_id, case, adapter.name, version, device, result, ref))
    return rows


CaseReference = tuple[Inputs, Evaluation]
# x.size from which a case's reference gradient is remade when read: below it (every default case) the parent holds
# it (8 MiB of float64 at most, twice with its scale) rather than remaking it for each row and variant compared
LAZY_MIN_ELEMENTS = 2**20


def reference_cache(size: int = 8, store: ReferenceStore | None = None) -> Callable[[Case], CaseReference]:
    """A case's inputs and reference, made when first needed and kept for the last `size` cases (jobs
    walk the cases in the same order), so the parent never holds every case's arrays; references `store`
    keeps (a linear head's: harness/judge/reference_store.py) are read from it after the first time.

    A large case's reference gradient (`LAZY_MIN_ELEMENTS`) is remade from the inputs when read
    (`evaluate(lazy=True)`): the parent holds its logits once, not beside a gradient of their size, while it
    judges and explains rows. A smaller case's is kept: remaking it for each of its rows and variants costs more
    CPU time (several seconds a run) than the memory it would save.
    """
    lock = threading.Lock()
    kept: dict[str, CaseReference] = {}

    def get(case: Case) -> CaseReference:
        with lock:
            if case.id in kept:
                return kept[case.id]
        inputs = case.inputs()
        ev = None if store is None else store.get(case.id)
        if ev is None:
            ev = reference.evaluate(case.spec, inputs, lazy=math.prod(case.shape) >= LAZY_MIN_ELEMENTS)
            if store is not None:
                store.put(case.id, ev)
        entry = inputs, ev
        with lock:
            kept[case.id] = entry
            while len(kept) > size:
                kept.pop(next(iter(kept)))
        return entry

    return get


class RowJudge:
    """Judges each case's results into rows as they arrive (`harness.runner.accuracy.CaseJudge`), against
    the case's reference, made once per case and kept for its other frameworks (`reference_cache`).

    What explaining a case's rows learns of each variant evaluation (`explain.Fact`: a few values each) is kept
    for the run, so that every framework's rows of the case after the first are explained without making
    again the evaluations that cannot reproduce them: jobs reach a case minutes apart, long after its
    evaluations (each as large as its logits) were dropped. So are its explanations, by the rows' numbers
    (`accuracy_row`'s `explained`): a recipe that computes as another did is explained at once.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.store = ReferenceStore()  # a linear head's references, read back by every framework after the first
        self.reference = reference_cache(store=self.store)
        self._facts: dict[str, Facts] = {}
        self._explained: dict[str, Explained] = {}
        self._lock = threading.Lock()

    def facts(self, case: Case) -> Facts:
        """The facts of `case`'s variant evaluations learnt so far (filled in as its rows are explained)."""
        with self._lock:
            return self._facts.setdefault(case.id, {})

    def results(
        self, case: Case, adapter: Adapter, version: str | None, device: str, results: Iterable[Result]
    ) -> list[dict[str, Any]]:
        memo: Memo = {}  # the case's variant evaluations, shared by its rows' explanations
        inputs, ev = self.reference(case)
        facts = self.facts(case)
        with self._lock:
            explained = self._explained.setdefault(case.id, {})
        rows = []
        for r in results:
            rows.append(accuracy_row(self.run_id, case, adapter.name, version, device, r, ev, memo, inputs, facts,
                                     explained))  # fmt: skip
            del r  # before the next arrives: one result's arrays at a time
        return rows

    def without_numbers(
        self, case: Case, adapter: Adapter, version: str | None, device: str, outcome: str, error: str,
        plan: Sequence[tuple[str, str]],
    ) -> list[dict[str, Any]]:  # fmt: skip
        ref = self.reference(case)[1]
        return placeholder_rows(self.run_id, case, adapter, version, device, outcome, error, ref, plan)


def own_mode(framework: str) -> str:
    """How a framework's users run a loss (its adapter's first mode): eager, or jax.jit for JAX."""
    try:
        return registry.load(framework).modes[0]
    except (KeyError, ImportError, AttributeError, ValueError):
        return "eager"


def with_columns(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with every accuracy column, typed; the columns that runs made before them lack get what those rows
    were: no sample weights, one eager call (JAX's jitted), no policy, determinism and loss dtype unknown,
    gradients by autodiff (the NumPy reference's analytic)."""
    df = df.reindex(columns=[*df.columns, *(c for c in ACCURACY_COLUMNS if c not in df.columns)])
    df["ignore_index"] = df["ignore_index"].astype("Int64")
    filled = {"weighted": False, "sample_weighted": False, "policy": "none", "loss_dtype": ""}
    for column, value in filled.items():  # object first: a column the frame lacked is all-NaN float
        df[column] = df[column].astype(object).where(df[column].notna(), value)
    df["weighted"] = df["weighted"].astype(bool)
    df["sample_weighted"] = df["sample_weighted"].astype(bool)
    modes = {fw: own_mode(fw) for fw in df["framework"].unique()}  # a lookup per framework, not per row
    df["mode"] = df["mode"].astype(object).where(df["mode"].notna(), df["framework"].map(modes))
    df["deterministic"] = df["deterministic"].astype("boolean")
    # before grad_method a row with numbers had the framework's autodiff gradient, or the reference's formulas
    numbers = df["outcome"].isin(["ok", "mismatch", "nonfinite"])
    was = np.select([~numbers, df["framework"] == "numpy"], ["", "analytic"], "autodiff")
    df["grad_method"] = df["grad_method"].astype(object).where(df["grad_method"].notna(), pd.Series(was, df.index))
    return df


def accuracy_frame(rows: Sequence[dict[str, Any]], cases: Sequence[Case] = ()) -> pd.DataFrame:
    """The tidy `accuracy` DataFrame, in case order, then framework, device, api, mode, policy, recipe."""
    df = with_columns(pd.DataFrame(list(rows), columns=list(ACCURACY_COLUMNS)))
    order = {c.id: i for i, c in enumerate(cases)}
    fw_order = {f: i for i, f in enumerate(FRAMEWORKS)}
    df = df.assign(
        _c=df["case_id"].map(order).fillna(len(order)), _f=df["framework"].map(fw_order).fillna(len(fw_order))
    )
    df = df.sort_values(["_c", "case_id", "_f", "device", "api", "mode", "policy", "recipe"], kind="stable")
    return note_unreproduced(decide_once(df.drop(columns=["_c", "_f"]).reset_index(drop=True)))
