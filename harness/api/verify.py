"""Verify a user's own loss: ``fn(x, y, w) -> loss`` on the generated cases of one configuration.

The function runs in its framework's worker (the same process isolation, dtype handling and
differentiation as the frameworks' APIs get), and its rows are judged like a run's: against the
canonical (PyTorch's) semantics, each difference explained by the variants, combinations included.
`failures` and `failure_message` are the one verdict behind `verify`'s table, the command line's exit
code and `harness.testing.assert_matches_torch`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from adapters.registry import DISPLAY, choose_framework
from adapters.user import UserLoss
from adapters.variants import describe
from cases.generator import verify_cases, verify_kinds, with_float64
from cases.names import DEVICES, DTYPES, FAMILIES, INPUTS, REDUCTIONS, TARGETS, UsageError, choose, choose_many
from cases.spec import LossSpec


def verify_spec(
    family: str = "softmax", input: str = "logits", target: str | None = None, weighted: bool = False,
    ignore_index: int | None = None, label_smoothing: float = 0.0, reduction: str = "mean",
) -> LossSpec:  # fmt: skip
    """The configuration a function is verified for; a one-line UsageError for a bad option."""
    family = choose(family, FAMILIES, "family")
    target = choose(target or ("prob" if family == "sigmoid" else "index"), TARGETS, "target")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int | np.integer)):
        raise UsageError(f"Expected ignore_index to be an integer or None. Received: ignore_index={ignore_index!r}")
    if not isinstance(weighted, bool | np.bool_):
        raise UsageError(f"Expected weighted to be True or False. Received: weighted={weighted!r}")
    return LossSpec(family, choose(input, INPUTS, "input"), target, bool(weighted),
                    None if ignore_index is None else int(ignore_index), label_smoothing,
                    choose(reduction, REDUCTIONS, "reduction"))  # fmt: skip


def verify(
    fn: Callable[..., Any] | str, framework: str, *, class_axis: int = 1, family: str = "softmax",
    input: str = "logits", target: str | None = None, weighted: bool = False, ignore_index: int | None = None,
    label_smoothing: float = 0.0, reduction: str = "mean", kinds: str | Iterable[str] | None = None,
    dtypes: str | Iterable[str] = ("float64", "float32"), seed: int = 0, devices: str | Iterable[str] = "cpu",
    case_timeout: float = 120.0, quiet: bool = True,
) -> pd.DataFrame:  # fmt: skip
    """Run the user's loss ``fn(x, y, w) -> loss`` on the configuration's generated cases and judge it.

    Args:
      fn: the loss, over `framework`'s tensors: ``x`` the input (N, C, d1, ...) with classes on axis 1,
        or (N, d1, ..., C) for ``class_axis=-1``; ``y`` the target (int (N, d1, ...) class indices, or
        probabilities shaped as x); ``w`` the (C,) class weights (pos_weight for the sigmoid family)
        when `weighted`, else None. It returns the loss `reduction` asks for (a scalar, or one per
        element for ``none``). A callable (defined anywhere, ``__main__`` included) or ``"module:function"``.
      framework: the framework whose tensors `fn` takes (aliases accepted). ``numpy``: NumPy arrays (a
        plain-Python function that iterates over them, or over their ``tolist()``, works too); the gradient is
        numerical in float64 (`adapters.numerical`: complex step, else central differences; the rows'
        ``grad_method``), judged within what that method supports (`tolerances.numerical_gradient_slack`).
      class_axis: 1 (PyTorch's layout) or -1 (classes last, as Keras, optax and tf.nn take them).
      family, input, target, weighted, ignore_index, label_smoothing, reduction: the configuration, as
        PyTorch's loss would be called with it (`LossSpec`); `target` defaults to ``index`` (softmax) or
        ``prob`` (sigmoid). With `ignore_index` the cases hold that label (a quarter of the elements).
      kinds: the configuration's kind and/or ``edge`` (`cases.generator.verify_cases`; default both).
      dtypes: the dtypes x is given in (default float64 and float32). A float64 case always runs: it
        decides the semantics of the others (harness/judge/semantics.py); its rows are returned where
        float64 was asked for.

    Returns:
      The accuracy rows, as a run's: one per case and device, the api column naming `fn`, the recipe
      ``user``; `failures` picks the rows that do not match.
    """
    framework = choose_framework(framework)
    spec = verify_spec(family, input, target, weighted, ignore_index, label_smoothing, reduction)
    chosen_kinds = None if kinds is None else choose_many(kinds, verify_kinds(spec), "kind")
    chosen_dtypes = choose_many(dtypes, DTYPES, "dtype")
    chosen_devices = choose_many(devices, DEVICES, "device")
    user = UserLoss.of(fn, class_axis)

    from harness.judge.rows import RowJudge, accuracy_frame
    from harness.runner.accuracy import run_accuracy
    from harness.runner.options import RunOptions

    cases = with_float64(verify_cases(spec, chosen_kinds, chosen_dtypes, seed))
    options = RunOptions(frameworks=(framework,), devices=chosen_devices, case_timeout=case_timeout, quiet=quiet,
                         user=user)  # fmt: skip
    rows: list[dict] = []
    run_accuracy(cases, options, RowJudge("verify"), rows.extend)
    df = accuracy_frame(rows, cases)
    return df[df["dtype"].isin(chosen_dtypes)].reset_index(drop=True)


def failures(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that do not match the canonical loss: any outcome but ``ok`` (a function that could not
    run has not been shown to match)."""
    return df[df["outcome"] != "ok"]


def _row_text(row: pd.Series) -> str:
    where = f"case {row['case_id']}"
    if row["outcome"] in ("mismatch", "nonfinite"):
        errs = f"value off by {row['value_rel_err']:.2g} (relative), gradient by {row['grad_rel_err']:.2g}"
        text = f"{where}: {row['outcome']}, {errs}, tolerance {row['tol']:.2g}"
        why = describe(row["explanation"]) if row["explanation"] else "no documented variant reproduces it"
        return f"{text}; cause: {why}"
    return f"{where}: {row['outcome']}: {row['error']}"


def failure_message(df: pd.DataFrame) -> str:
    """One line: how many rows fail, the first failing row (a float64 one where there is one: rounding
    hides nothing there) with its case, errors and cause, and every cause met; '' when every row is ok."""
    bad = failures(df)
    bad = bad.sort_values("dtype", key=lambda d: d != "float64", kind="stable")
    if bad.empty:
        return ""
    api, fw = df["api"].iloc[0], df["framework"].iloc[0]
    head = f"{api} ({DISPLAY.get(fw, fw)}) does not match PyTorch on {len(bad)} of {len(df)} rows"
    causes = bad["explanation"].where(bad["outcome"].isin(["mismatch", "nonfinite"]), bad["outcome"]).fillna("")
    counts = causes.replace("", "unexplained").value_counts()
    every = ", ".join(f"{c} ({n})" for c, n in counts.items())
    return f"{head}; first: {_row_text(bad.iloc[0])}; all causes: {every}"
