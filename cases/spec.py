"""What a loss computation is (`LossSpec`) and one concrete input to it (`Case`).

The canonical semantics of every field are in docs/DESIGN.md ("The canonical semantics"); the float64
reference in `adapters/reference.py` implements them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cases.arrays import ALIGN_BYTES, Inputs, aligned, quantize
from cases.data import make
from cases.names import DTYPE_TAGS, DTYPES, FAMILIES, INPUTS, KINDS, REDUCTIONS, TARGETS, UsageError, choose

__all__ = ["ALIGN_BYTES", "Case", "Inputs", "LossSpec", "aligned", "quantize"]


@dataclass(frozen=True)
class LossSpec:
    """One loss configuration, independent of data and framework.

    Attributes:
      family: ``softmax`` (classes on axis 1) or ``sigmoid`` (element-wise binary).
      input: what ``x`` holds: ``logits``, ``log_probs`` or ``probs``.
      target: ``index`` (class indices, softmax only) or ``prob`` (a distribution, or soft binary targets).
      weighted: class weights ``w[C]`` (softmax) or ``pos_weight[C]`` (sigmoid) are given.
      ignore_index: target value whose elements contribute nothing (index targets only).
      label_smoothing: ``e`` in [0, 1]; softmax ``t' = (1-e) t + e/C``, sigmoid ``t' = (1-e) t + e/2``.
      reduction: ``none``, ``sum`` or ``mean``.
      sample_weighted: a weight per loss element (``Inputs.sample_weight``; Keras' sample_weight, torch's BCE
        ``weight=``) multiplies that element's loss; the mean's denominator stays the unweighted one.
      micro_batches: sizes along N of the micro-batches a gradient-accumulation loop splits the batch into
        (``()``: one batch). The canonical loss is the full batch's: accumulation must not change it.
      linear: ``x`` holds hidden states E (N, D) and the logits are E Wᵀ (+ b) with a classifier W (C, D)
        (`Inputs.classifier`): the loss and its gradients with respect to E and W (and b) are judged. Softmax
        logits and index targets only (a language model's head: `torch.nn.functional.linear_cross_entropy`).
      bias: the linear head adds a bias b (C,) (`Inputs.bias`); only with ``linear``.
    """

    family: str = "softmax"
    input: str = "logits"
    target: str = "index"
    weighted: bool = False
    ignore_index: int | None = None
    label_smoothing: float = 0.0
    reduction: str = "mean"
    sample_weighted: bool = False
    micro_batches: tuple[int, ...] = ()
    linear: bool = False
    bias: bool = False

    def __post_init__(self) -> None:
        # Checks first, with the received value in the message (optax / Keras style).
        choose(self.family, FAMILIES, "family")
        choose(self.input, INPUTS, "input")
        choose(self.target, TARGETS, "target")
        choose(self.reduction, REDUCTIONS, "reduction")
        e = self.label_smoothing
        if not (isinstance(e, (int, float)) and math.isfinite(e) and 0.0 <= e <= 1.0):
            raise UsageError(f"Expected label_smoothing in [0, 1]. Received: label_smoothing={e!r}")
        if self.family == "sigmoid" and self.target != "prob":
            raise UsageError(f"Expected target='prob' for family='sigmoid'. Received: target={self.target!r}")
        mb = self.micro_batches
        if mb and (not all(isinstance(k, int) and k > 0 for k in mb) or len(mb) < 2):
            raise UsageError(f"Expected micro_batches of two or more positive sizes. Received: micro_batches={mb!r}")
        if self.linear and (self.family, self.input, self.target) != ("softmax", "logits", "index"):
            got = f"family={self.family!r}, input={self.input!r}, target={self.target!r}"
            raise UsageError(f"Expected a softmax of logits with index targets for linear=True. Received: {got}")
        if self.linear and (self.sample_weighted or mb):
            got = f"sample_weighted={self.sample_weighted!r}, micro_batches={mb!r}"
            raise UsageError(f"Expected no sample weights or micro-batches for linear=True. Received: {got}")
        if self.bias and not self.linear:
            raise UsageError("Expected bias=True only with linear=True (the linear head's bias). Received: bias=True")
        if self.ignore_index is not None and self.target != "index":
            raise UsageError(
                f"Expected ignore_index=None for target={self.target!r} (index targets only). "
                f"Received: ignore_index={self.ignore_index!r}"
            )

    @property
    def flags(self) -> str:
        """Short readable tag of the non-default fields, used in case ids."""
        parts = ["linb" if self.bias else "lin"] if self.linear else []
        if self.input != "logits":
            parts.append({"log_probs": "logp", "probs": "prob"}[self.input])
        if self.family == "softmax" and self.target == "prob":
            parts.append("pt")
        if self.weighted:
            parts.append("w")
        if self.sample_weighted:
            parts.append("sw")
        if self.ignore_index is not None:
            parts.append(f"ii{self.ignore_index}".replace("-", "m"))
        if self.label_smoothing:
            parts.append(f"ls{self.label_smoothing:g}")
        if self.micro_batches:
            parts.append("mb" + "x".join(str(k) for k in self.micro_batches))
        parts.append(self.reduction)
        return "-".join(parts)


@dataclass(frozen=True)
class Case:
    """One loss spec on one concrete input, with a stable readable id.

    Generated cases are materialised from (``tag``, ``shape``, ``seed``) by ``cases.data``, so a
    Case is small to send to a worker and gives byte-identical inputs everywhere. Documented and
    user-supplied cases carry their arrays in ``data``.

    A linear head's case (`LossSpec.linear`) keeps ``shape`` the logits' (N, C) and adds ``hidden``, the
    hidden size D of E (N, D) and W (C, D).
    """

    kind: str
    spec: LossSpec
    shape: tuple[int, ...]
    dtype: str = "float32"
    seed: int = 0
    tag: str = ""
    name: str = ""
    data: Inputs | None = field(default=None, compare=False, repr=False)
    # Documented cases: numbers a source printed for these inputs, as (label, value) pairs.
    claimed: tuple[tuple[str, float], ...] = ()
    note: str = ""
    hidden: int = 0

    def __post_init__(self) -> None:
        choose(self.dtype, DTYPES, "dtype")
        if self.kind not in (*KINDS, "user", "timing"):
            raise UsageError(f"Expected kind in {{{', '.join(KINDS)}}}. Received: kind={self.kind!r}")
        if len(self.shape) < 1 or (self.spec.family == "softmax" and len(self.shape) < 2):
            raise UsageError(f"Expected x of shape (N, C) or (N, C, d1, ...). Received: shape={self.shape}")
        if self.spec.micro_batches and sum(self.spec.micro_batches) != self.shape[0]:
            got = f"micro_batches={self.spec.micro_batches}, shape={self.shape}"
            raise UsageError(f"Expected micro-batch sizes that sum to N. Received: {got}")
        if self.spec.linear != (self.hidden > 0) or (self.spec.linear and len(self.shape) != 2):
            got = f"linear={self.spec.linear}, hidden={self.hidden}, shape={self.shape}"
            raise UsageError(f"Expected hidden > 0 and shape (N, C) exactly for a linear spec. Received: {got}")

    @property
    def n_classes(self) -> int:
        return self.shape[1] if len(self.shape) > 1 else 1

    @property
    def n_elements(self) -> int:
        """Loss elements before reduction: N*d1*..*dk for softmax, every element for sigmoid."""
        size = math.prod(self.shape)
        return size // self.n_classes if self.spec.family == "softmax" else size

    @property
    def id(self) -> str:
        n, c = self.shape[0], self.n_classes
        parts = [self.kind]
        parts += [p for p in (self.name, self.tag) if p]
        parts += [f"n{n}", f"c{c}"] + ([f"h{self.hidden}"] if self.hidden else [])
        if len(self.shape) > 2:
            parts.append("d" + "x".join(str(d) for d in self.shape[2:]))
        parts += [DTYPE_TAGS[self.dtype], self.spec.flags, f"s{self.seed}"]
        return "-".join(parts)

    @property
    def shape_str(self) -> str:
        """``64x10``; a linear head's ``64x32 @ 32000x32`` (E times W transposed)."""
        if self.hidden:
            (n, c), d = self.shape, self.hidden
            return f"{n}x{d} @ {c}x{d}"
        return "x".join(str(d) for d in self.shape)

    def inputs(self) -> Inputs:
        """The case's arrays, quantised to its dtype and held as float64."""
        raw = self.data if self.data is not None else make(self)
        return Inputs(
            x=aligned(quantize(raw.x, self.dtype)),
            target=raw.target if self.spec.target == "index" else aligned(quantize(raw.target, self.dtype)),
            weight=None if raw.weight is None else quantize(raw.weight, self.dtype),
            sample_weight=None if raw.sample_weight is None else quantize(raw.sample_weight, self.dtype),
            classifier=None if raw.classifier is None else aligned(quantize(raw.classifier, self.dtype)),
            bias=None if raw.bias is None else quantize(raw.bias, self.dtype),
        )
