"""Rows of the `accuracy` DataFrame (DESIGN.md, "Results"): one per case x framework x api x recipe x device."""

from __future__ import annotations

import math
from typing import Any

from adapters.base import Adapter, Result
from adapters.reference import Evaluation
from cases.names import ITEMSIZE
from cases.spec import Case, Inputs
from harness.explain import Memo, explain, registered_variants
from harness.metrics import compare, first
from harness.tolerances import tolerance

ACCURACY_COLUMNS = (
    "run_id", "case_id", "kind", "family", "input", "target", "weighted", "ignore_index", "label_smoothing",
    "reduction", "shape", "dtype", "framework", "framework_version", "api", "recipe", "recipe_code", "device",
    "outcome", "error", "value", "ref_value", "value_abs_err", "value_rel_err", "value_ulp_err",
    "grad_abs_err", "grad_rel_err", "grad_ulp_err", "value_scaled_err", "grad_scaled_err", "tol", "explanation",
)  # fmt: skip

NUMBERS = ACCURACY_COLUMNS[ACCURACY_COLUMNS.index("value") : ACCURACY_COLUMNS.index("tol") + 1]


def case_fields(case: Case) -> dict[str, Any]:
    s = case.spec
    return {
        "case_id": case.id, "kind": case.kind, "family": s.family, "input": s.input, "target": s.target,
        "weighted": s.weighted, "ignore_index": s.ignore_index, "label_smoothing": s.label_smoothing,
        "reduction": s.reduction, "shape": case.shape_str, "dtype": case.dtype,
    }  # fmt: skip


def accuracy_row(
    run_id: str, case: Case, framework: str, version: str | None, device: str, result: Result, ref: Evaluation,
    memo: Memo | None = None, inputs: Inputs | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A row for one result, judged against the reference when it carries numbers (`memo`, `inputs`:
    see explain)."""
    tol = tolerance(case.dtype, case.n_classes, case.n_elements)
    row = {
        "run_id": run_id, **case_fields(case), "framework": framework, "framework_version": version or "",
        "api": result.api, "recipe": result.recipe, "recipe_code": result.recipe_code, "device": device,
        "outcome": result.outcome or "", "error": result.error, "tol": tol, "explanation": "",
    }  # fmt: skip
    row.update(dict.fromkeys(NUMBERS[:-1], float("nan")))
    row["ref_value"] = first(ref.value)
    if result.outcome is None:
        cmp = compare(result.value, result.grad, ref, case.dtype, tol)
        row.update({k: getattr(cmp, k) for k in NUMBERS[:-1]})
        row["outcome"], row["error"] = cmp.outcome, cmp.error
        if cmp.outcome in ("mismatch", "nonfinite"):
            registered = registered_variants(framework, result.api)
            row["explanation"] = explain(case, result.value, result.grad, ref, registered, memo, inputs)
    return row


def placeholder_rows(
    run_id: str,
    case: Case,
    adapter: Adapter,
    version: str | None,
    device: str,
    outcome: str,
    error: str,
    ref: Evaluation,
) -> list[dict[str, Any]]:
    """Rows with no numbers (framework or device unavailable, worker crashed or timed out), one per
    (api, recipe) that the framework would have run for this case."""
    rows = []
    for api in adapter.apis_for(case.spec):
        for recipe in api.recipes(case.spec):
            result = Result(api.name, recipe.name, recipe.code or "", "unsupported" if recipe.code is None else outcome,
                            recipe.reason if recipe.code is None else error)  # fmt: skip
            rows.append(accuracy_row(run_id, case, adapter.name, version, device, result, ref))
    return rows


TIMING_COLUMNS = (
    "run_id", "case_id", "shape", "dtype", "framework", "framework_version", "api", "device", "mode", "pass",
    "median_s", "iqr_s", "samples", "compile_s", "bytes_min", "gbps", "roofline_frac", "threads",
)  # fmt: skip


def bytes_min(case: Case, pass_: str) -> int:
    """The fewest bytes a loss call must move: read x, targets and weights, write the loss, and for
    forward+backward also write the gradient (a fused kernel reads x once for both)."""
    item = ITEMSIZE[case.dtype]
    x = math.prod(case.shape) * item
    target = case.n_elements * 8 if case.spec.target == "index" else x
    weight = case.n_classes * item if case.spec.weighted else 0
    out = item if case.spec.reduction != "none" else case.n_elements * item
    return x + target + weight + out + (x if pass_ == "forward_backward" else 0)


def timing_row(
    run_id: str, case: Case, framework: str, version: str | None, device: str, api: str, mode: str, pass_: str,
    measurement, bandwidth_gbps: float | None, threads: int | None,
) -> dict[str, Any]:  # fmt: skip
    """One timing row; `measurement` is a harness.timing.Measurement."""
    b = bytes_min(case, pass_)
    gbps = b / measurement.median_s / 1e9
    return {
        "run_id": run_id, "case_id": case.id, "shape": case.shape_str, "dtype": case.dtype, "framework": framework,
        "framework_version": version or "", "api": api, "device": device, "mode": mode, "pass": pass_,
        "median_s": measurement.median_s, "iqr_s": measurement.iqr_s, "samples": len(measurement.samples),
        "compile_s": measurement.compile_s if mode == "compiled" else float("nan"), "bytes_min": b, "gbps": gbps,
        "roofline_frac": gbps / bandwidth_gbps if bandwidth_gbps else float("nan"), "threads": threads or 0,
    }  # fmt: skip
