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

from adapters.registry import FRAMEWORKS, choose_frameworks
from cases.names import DEVICES, DTYPES, FAMILIES, IGNORE_DEFAULT, INPUTS, TARGETS, UsageError, choose, choose_many
from cases.spec import Case, Inputs, LossSpec

NPZ_ARRAYS = ("x", "target", "weight", "sample_weight")


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays x, target and (optional) weight and sample_weight of an .npz file, or a one-line UsageError."""
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
    unknown = sorted(set(arrays) - set(NPZ_ARRAYS))
    if unknown:
        want = "x, target and optionally weight and sample_weight"
        raise UsageError(f"Expected arrays {want} in {path.name}. Received: also {unknown}")
    return arrays


def _dtype_name(a: np.ndarray, what: str) -> str:
    name = a.dtype.name
    if name not in DTYPES:
        valid = ", ".join(DTYPES)
        raise UsageError(f"Expected {what} of a float dtype in {{{valid}}}. Received: {what}.dtype={name}")
    return name


def _finite(a: np.ndarray, what: str) -> np.ndarray:
    """`a` as float64, or a one-line UsageError if it is not numeric or holds NaN/Inf."""
    try:
        a = np.asarray(a).astype(np.float64)
    except (TypeError, ValueError):
        raise UsageError(f"Expected a numeric {what}. Received: {what}.dtype={np.asarray(a).dtype}") from None
    if not np.isfinite(a).all():
        raise UsageError(f"Expected a finite {what}. Received: {int((~np.isfinite(a)).sum())} NaN or Inf values")
    return a


def make_case(
    x: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, *, family: str = "softmax",
    input: str = "logits", target_kind: str | None = None, ignore_index: int | None = IGNORE_DEFAULT,
    label_smoothing: float = 0.0, reduction: str = "mean", sample_weight: np.ndarray | float | None = None,
) -> Case:  # fmt: skip
    """A validated `Case` of kind ``user`` from the user's arrays (PyTorch layout, classes on axis 1).

    Only what is malformed is refused (one line each): shapes that do not fit, non-numeric arrays, NaN in
    x or Inf/NaN in weights, an unknown option. What a framework accepts is run, and each framework's
    treatment becomes its row: scores that are not log-probabilities for ``input='log_probs'`` (NLL is
    defined on any real input), negative or unnormalised soft labels, labels outside [0, C) (PyTorch
    raises on those; the others' behaviour is the finding).

    `ignore_index` defaults to PyTorch's -100. An ignore_index that no label equals changes nothing in
    PyTorch's semantics, so the case's spec leaves it out (and no framework's recipe is refused for it);
    with probability targets PyTorch does not use it, and neither does the case.
    """
    x, target = np.asarray(x), np.asarray(target)
    family = choose(family, FAMILIES, "family")
    input = choose(input, INPUTS, "input")
    dtype = _dtype_name(x, "x")
    if target_kind is None:
        target_kind = "index" if np.issubdtype(target.dtype, np.integer) and family == "softmax" else "prob"
    target_kind = choose(target_kind, TARGETS, "target")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int | np.integer)):
        raise UsageError(f"Expected ignore_index to be an integer or None. Received: ignore_index={ignore_index!r}")
    if target_kind != "index" or not (np.issubdtype(target.dtype, np.integer) and (target == ignore_index).any()):
        ignore_index = None  # it ignores nothing (docstring)
    spec = LossSpec(family, input, target_kind, weight is not None, ignore_index, label_smoothing, reduction,
                    sample_weight is not None)  # fmt: skip

    if x.ndim < (2 if family == "softmax" or weight is not None else 1) or x.size == 0:
        want = "(N, C) or (N, C, d1, ...)" if family == "softmax" or weight is not None else "(N, ...)"
        raise UsageError(f"Expected x of shape {want}. Received: x.shape={x.shape}")
    x64 = x.astype(np.float64)
    if np.isnan(x64).any():
        raise UsageError(f"Expected x without NaN. Received: {int(np.isnan(x64).sum())} NaN values in x")
    if input == "probs" and ((x64 < 0) | (x64 > 1)).any():
        raise UsageError(f"Expected x in [0, 1] for input='probs'. Received: x in [{x64.min():g}, {x64.max():g}]")
    c = x.shape[1] if x.ndim > 1 else 1

    if target_kind == "index":
        want = x.shape[:1] + x.shape[2:]
        if not np.issubdtype(target.dtype, np.integer):
            got = target.dtype.name
            raise UsageError(f"Expected an integer target for target='index'. Received: target.dtype={got}")
        if target.shape != want:
            got = target.shape
            raise UsageError(f"Expected target of shape {want} (x.shape without axis 1). Received: target.shape={got}")
        t = target.astype(np.int64)
    else:
        if target.shape != x.shape:
            got = target.shape
            want = f"Expected target of shape {x.shape} (as x) for target='prob'"
            raise UsageError(f"{want}. Received: target.shape={got}")
        t = _finite(target, "target")

    w = None
    if weight is not None:
        w = _finite(weight, "weight")
        if w.shape != (c,):
            raise UsageError(f"Expected weight of shape ({c},) (one per class). Received: weight.shape={w.shape}")
    s = None
    if sample_weight is not None:
        elements = x.shape[:1] + x.shape[2:] if family == "softmax" else x.shape
        s = _finite(sample_weight, "sample_weight")
        try:
            s = np.ascontiguousarray(np.broadcast_to(s, elements))
        except ValueError:
            want = f"Expected sample_weight broadcastable to the loss elements {elements}"
            raise UsageError(f"{want}. Received: sample_weight.shape={s.shape}") from None
    data = Inputs(x=x64, target=t, weight=w, sample_weight=s)
    return Case(kind="user", spec=spec, shape=x.shape, dtype=dtype, data=data)


def check(
    x: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, *, family: str = "softmax",
    input: str = "logits", target_kind: str | None = None, ignore_index: int | None = IGNORE_DEFAULT,
    label_smoothing: float = 0.0, reduction: str = "mean", sample_weight: np.ndarray | float | None = None,
    frameworks: str | Iterable[str] = FRAMEWORKS, devices: str | Iterable[str] = ("cpu",), case_timeout: float = 120.0,
    quiet: bool = True,
) -> pd.DataFrame:  # fmt: skip
    """Compare every framework's loss and gradient on the user's own arrays with the exact answer.

    Args:
      x: input, (N, C) or (N, C, d1, ...) with classes on axis 1 (PyTorch layout); its dtype is the
        dtype every framework computes in.
      target: int (N, d1, ...) class indices, or a float array of x's shape (probabilities).
      weight: optional (C,) class weights (softmax) or pos_weight (sigmoid).
      sample_weight: optional weights of the loss elements, broadcast to (N, d1, ...) (softmax) or x's shape
        (sigmoid): a plain multiplier of each element's loss (Keras' sample_weight, torch's BCE weight=).
      family, input, target_kind, ignore_index, label_smoothing, reduction: the `LossSpec` fields;
        ignore_index defaults to PyTorch's -100 (`make_case`).
      frameworks, devices: which to run (names or comma-separated strings; aliases accepted).

    Returns:
      The tidy `accuracy` DataFrame, one row per framework x api x recipe x device; for x below float64,
      the same rows for x in float64 follow (they decide the semantics: harness/judge/semantics.py).
    """
    from cases.generator import with_float64
    from harness.judge.rows import RowJudge, accuracy_frame
    from harness.runner.accuracy import run_accuracy
    from harness.runner.options import RunOptions

    case = make_case(x, target, weight, family=family, input=input, target_kind=target_kind, ignore_index=ignore_index,
                     label_smoothing=label_smoothing, reduction=reduction, sample_weight=sample_weight)  # fmt: skip
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
