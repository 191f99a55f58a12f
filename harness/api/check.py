"""Bring your own tensors: the harness on a user's x, target and weight.

Everything the user hands in is validated before any work starts; each problem is one line that
names the array and what was received (a `UsageError`, exit code 2 on the command line).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from adapters.reference import out_of_range
from adapters.registry import FRAMEWORKS, choose_frameworks
from cases.names import DEVICES, DTYPES, FAMILIES, INPUTS, TARGETS, UsageError, choose, choose_many
from cases.spec import Case, Inputs, LossSpec


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays x, target and (optional) weight of an .npz file, or a one-line UsageError."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"Expected an existing .npz file. Received: --npz={str(path)!r} (no such file)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        why = f"{type(e).__name__}: {e}"
        raise UsageError(f"Expected a NumPy .npz file. Received: --npz={str(path)!r} ({why})") from None
    for key in ("x", "target"):
        if key not in arrays:
            found = ", ".join(sorted(arrays)) or "nothing"
            raise UsageError(f"Expected an array named {key!r} in {path.name}. Received: arrays {found}")
    unknown = sorted(set(arrays) - {"x", "target", "weight"})
    if unknown:
        raise UsageError(f"Expected arrays x, target and optionally weight in {path.name}. Received: also {unknown}")
    return arrays


def _dtype_name(a: np.ndarray, what: str) -> str:
    name = a.dtype.name
    if name not in DTYPES:
        valid = ", ".join(DTYPES)
        raise UsageError(f"Expected {what} of a float dtype in {{{valid}}}. Received: {what}.dtype={name}")
    return name


def make_case(
    x: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, *, family: str = "softmax",
    input: str = "logits", target_kind: str | None = None, ignore_index: int | None = None,
    label_smoothing: float = 0.0, reduction: str = "mean",
) -> Case:  # fmt: skip
    """A validated `Case` of kind ``user`` from the user's arrays (PyTorch layout, classes on axis 1)."""
    x, target = np.asarray(x), np.asarray(target)
    family = choose(family, FAMILIES, "family")
    input = choose(input, INPUTS, "input")
    dtype = _dtype_name(x, "x")
    if target_kind is None:
        target_kind = "index" if np.issubdtype(target.dtype, np.integer) and family == "softmax" else "prob"
    target_kind = choose(target_kind, TARGETS, "target")
    spec = LossSpec(family, input, target_kind, weight is not None, ignore_index, label_smoothing, reduction)

    if x.ndim < (2 if family == "softmax" or weight is not None else 1) or x.size == 0:
        want = "(N, C) or (N, C, d1, ...)" if family == "softmax" or weight is not None else "(N, ...)"
        raise UsageError(f"Expected x of shape {want}. Received: x.shape={x.shape}")
    x64 = x.astype(np.float64)
    if np.isnan(x64).any():
        raise UsageError(f"Expected x without NaN. Received: {int(np.isnan(x64).sum())} NaN values in x")
    if input == "probs" and ((x64 < 0) | (x64 > 1)).any():
        raise UsageError(f"Expected x in [0, 1] for input='probs'. Received: x in [{x64.min():g}, {x64.max():g}]")
    if input == "log_probs" and (x64 > 0).any():
        raise UsageError(f"Expected x <= 0 for input='log_probs'. Received: max(x)={x64.max():g}")
    c = x.shape[1] if x.ndim > 1 else 1

    if target_kind == "index":
        want = x.shape[:1] + x.shape[2:]
        if not np.issubdtype(target.dtype, np.integer):
            got = target.dtype.name
            raise UsageError(f"Expected an integer target for target='index'. Received: target.dtype={got}")
        if target.shape != want:
            got = target.shape
            raise UsageError(f"Expected target of shape {want} (x.shape without axis 1). Received: target.shape={got}")
        bad = out_of_range(target, c, ignore_index)
        if bad.any():
            ii = f" or == ignore_index={ignore_index}" if ignore_index is not None else " (no ignore_index given)"
            got = int(target[bad].flat[0])
            raise UsageError(f"Expected target values in [0, {c}){ii}. Received: target value {got}")
        t = target.astype(np.int64)
    else:
        if target.shape != x.shape:
            got = target.shape
            want = f"Expected target of shape {x.shape} (as x) for target='prob'"
            raise UsageError(f"{want}. Received: target.shape={got}")
        t = target.astype(np.float64)
        if not np.isfinite(t).all():
            raise UsageError("Expected a finite target. Received: NaN or Inf in target")
        hi = 1.0 if family == "sigmoid" else np.inf
        if ((t < 0) | (t > hi)).any():
            raise UsageError(f"Expected target in [0, {hi:g}]. Received: target in [{t.min():g}, {t.max():g}]")

    w = None
    if weight is not None:
        w = np.asarray(weight).astype(np.float64)
        if w.shape != (c,):
            raise UsageError(f"Expected weight of shape ({c},) (one per class). Received: weight.shape={w.shape}")
        if not np.isfinite(w).all():
            raise UsageError(f"Expected finite weights. Received: weight={w.tolist()}")
    return Case(kind="user", spec=spec, shape=x.shape, dtype=dtype, data=Inputs(x=x64, target=t, weight=w))


def check(
    x: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, *, family: str = "softmax",
    input: str = "logits", target_kind: str | None = None, ignore_index: int | None = None,
    label_smoothing: float = 0.0, reduction: str = "mean", frameworks: str | Iterable[str] = FRAMEWORKS,
    devices: str | Iterable[str] = ("cpu",), case_timeout: float = 120.0, quiet: bool = True,
) -> pd.DataFrame:  # fmt: skip
    """Compare every framework's loss and gradient on the user's own arrays with the exact answer.

    Args:
      x: input, (N, C) or (N, C, d1, ...) with classes on axis 1 (PyTorch layout); its dtype is the
        dtype every framework computes in.
      target: int (N, d1, ...) class indices, or a float array of x's shape (probabilities).
      weight: optional (C,) class weights (softmax) or pos_weight (sigmoid).
      family, input, target_kind, ignore_index, label_smoothing, reduction: the `LossSpec` fields.
      frameworks, devices: which to run (names or comma-separated strings; aliases accepted).

    Returns:
      The tidy `accuracy` DataFrame, one row per framework x api x recipe x device; for x below float64,
      the same rows for x in float64 follow (they decide the semantics: harness/judge/semantics.py).
    """
    from cases.generator import with_float64
    from harness.judge.rows import RowJudge, accuracy_frame
    from harness.runner.accuracy import run_accuracy
    from harness.runner.options import RunOptions

    case = make_case(x, target, weight, family=family, input=input, target_kind=target_kind,
                     ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction)  # fmt: skip
    options = RunOptions(
        frameworks=choose_frameworks(frameworks),
        devices=choose_many(devices, DEVICES, "device"),
        case_timeout=case_timeout,
        quiet=quiet,
    )
    cases = with_float64([case])  # a float64 row decides the semantics of lower-precision ones
    rows: list[dict] = []
    run_accuracy(cases, options, RowJudge("check"), rows.extend)
    return accuracy_frame(rows, cases)
