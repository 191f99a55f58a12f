"""The default case set: every kind of cross-entropy input, in every dtype, from one seed."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence

from cases.documented import documented_cases
from cases.names import DTYPES, KINDS
from cases.spec import Case, LossSpec

N, C = 64, 10
MICRO_BATCHES = (8, 24, 32)


def _specs() -> Iterator[tuple[str, LossSpec, tuple[int, ...], str]]:
    """(kind, spec, shape, tag) for the generated kinds, before dtypes and seeds."""
    sig = dict(family="sigmoid", target="prob")
    # binary: sigmoid logits with hard and soft targets, pos_weight, and the probabilities input.
    for r in ("mean", "sum", "none"):
        yield "binary", LossSpec(**sig, reduction=r), (N, 4), "hard"
    yield "binary", LossSpec(**sig), (N, 4), "soft"
    yield "binary", LossSpec(**sig, weighted=True), (N, 4), "hard"
    yield "binary", LossSpec(**sig, weighted=True), (N, 4), "soft"
    yield "binary", LossSpec(**sig, input="probs"), (N, 4), "hard"
    yield "binary", LossSpec(**sig, input="probs"), (N, 4), "p01"
    yield "binary", LossSpec(**sig, input="probs", reduction="sum"), (N, 4), "p01"
    yield "binary", LossSpec(**sig, input="probs"), (N, 4), "p01soft"
    # per-element weights: torch's BCE weight=, Keras' sample_weight (a plain multiplier of each loss)
    yield "binary", LossSpec(**sig, sample_weighted=True), (N, 4), "hard"
    yield "binary", LossSpec(**sig, input="probs", sample_weighted=True), (N, 4), "hard"

    # multiclass: index targets.
    for r in ("mean", "sum", "none"):
        yield "multiclass", LossSpec(reduction=r), (N, C), ""
        yield "multiclass", LossSpec(weighted=True, reduction=r), (N, C), ""
    for ii in (-100, -1, C + 3):
        yield "multiclass", LossSpec(ignore_index=ii), (N, C), ""
    yield "multiclass", LossSpec(weighted=True, ignore_index=-100), (N, C), ""
    yield "multiclass", LossSpec(weighted=True, ignore_index=-100, reduction="sum"), (N, C), ""
    yield "multiclass", LossSpec(ignore_index=-100), (N, C), "allignored"
    yield "multiclass", LossSpec(ignore_index=-100, reduction="sum"), (N, C), "allignored"
    yield "multiclass", LossSpec(), (8, C, 16), ""
    yield "multiclass", LossSpec(weighted=True, ignore_index=-100), (4, C, 4, 3, 2), ""
    yield "multiclass", LossSpec(reduction="none"), (4, C, 4, 3, 2), ""
    yield "multiclass", LossSpec(input="log_probs"), (N, C), ""
    yield "multiclass", LossSpec(input="log_probs", weighted=True, ignore_index=-100), (N, C), ""
    yield "multiclass", LossSpec(input="probs"), (N, C), ""
    yield "multiclass", LossSpec(input="log_probs"), (N, C), "scores"  # NLL on raw scores
    yield "multiclass", LossSpec(weighted=True, sample_weighted=True), (N, C), ""  # Keras-style sample weights
    # a trained model's confident predictions, the most common real input (a loss of ~1e-5 per element)
    yield "multiclass", LossSpec(), (256, 100), "confident"
    yield "multiclass", LossSpec(weighted=True), (8, C, 16), "confident"

    # soft: probability targets.
    for r in ("mean", "sum", "none"):
        yield "soft", LossSpec(target="prob", reduction=r), (N, C), ""
    yield "soft", LossSpec(target="prob", weighted=True), (N, C), ""
    yield "soft", LossSpec(target="prob", weighted=True), (8, C, 16), ""
    yield "soft", LossSpec(target="prob"), (8, C, 16), ""  # the unweighted K-dim port, classes left on axis 1
    yield "soft", LossSpec(target="prob"), (N, C), "negative"  # TensorFlow's own tests use negative labels

    # smoothed: label smoothing on index and probability targets, with weights and ignore_index.
    yield "smoothed", LossSpec(label_smoothing=0.1), (N, C), ""
    yield "smoothed", LossSpec(label_smoothing=0.1, reduction="sum"), (N, C), ""
    yield "smoothed", LossSpec(label_smoothing=0.2, weighted=True), (N, C), ""
    yield "smoothed", LossSpec(label_smoothing=0.1, ignore_index=-100), (N, C), ""
    yield "smoothed", LossSpec(label_smoothing=0.1, weighted=True, ignore_index=-100), (N, C), ""
    yield "smoothed", LossSpec(label_smoothing=0.1, weighted=True, ignore_index=-100), (4, C, 4, 3, 2), ""
    yield "smoothed", LossSpec(target="prob", label_smoothing=0.1), (N, C), ""
    yield "smoothed", LossSpec(target="prob", label_smoothing=0.1, weighted=True), (N, C), ""
    yield "smoothed", LossSpec(**sig, label_smoothing=0.1), (N, 4), "hard"
    yield "smoothed", LossSpec(label_smoothing=0.1), (256, 100), "confident"

    # edge: extreme magnitudes, masked classes, tiny and huge C, unnormalised targets.
    yield "edge", LossSpec(), (N, C), "big"
    yield "edge", LossSpec(**sig), (N, 4), "big"
    yield "edge", LossSpec(), (N, C), "masked"
    yield "edge", LossSpec(target="prob"), (N, C), "masked"
    yield "edge", LossSpec(), (N, 2), ""
    yield "edge", LossSpec(weighted=True), (8, 32000), ""
    yield "edge", LossSpec(target="prob"), (N, C), "unnormalised"
    yield "edge", LossSpec(), (128, 1000), "big1e3"  # float16: the mean's sum of ~1e3 losses passes 65504
    yield "edge", LossSpec(), (N, C), "oob"  # labels outside [0, C): PyTorch raises; what does each do?

    # accumulation: one batch's loss computed as a gradient-accumulation loop does, over micro-batches of 8, 24
    # and 32 rows holding different numbers of non-ignored labels (the mean of their means is not the batch's)
    for extra in ({}, {"weighted": True, "label_smoothing": 0.1}):
        yield "accumulation", LossSpec(ignore_index=-100, micro_batches=MICRO_BATCHES, **extra), (N, C), ""


# linear: a language model's head, hidden states E (N, D) times a classifier W (C, D)ᵀ, at the vocabulary sizes of
# Llama 2, Llama 3 and Gemma; N and D small enough for a default run (the timing plan has the large ones)
VOCABULARIES = (32000, 128256, 256000)


def _linear_specs() -> Iterator[tuple[LossSpec, tuple[int, int], int, tuple[str, ...]]]:
    """(spec, (N, C), D, dtypes) of the linear kind: a language model's configuration (ignored labels, mean) at
    C=32000 and the mean over every label at each larger vocabulary, in float32 and bfloat16; every other option
    (sum, none, bias, class weights with label smoothing) at C=1000 in float32, where the loss and explaining a
    row cost little. Each also in float64, where semantics are decided (harness/judge/semantics.py)."""
    lm = LossSpec(linear=True, ignore_index=-100)
    both, f32 = ("float64", "float32", "bfloat16"), ("float64", "float32")
    yield lm, (32, VOCABULARIES[0]), 16, both
    yield LossSpec(linear=True), (8, VOCABULARIES[1]), 16, both
    yield LossSpec(linear=True), (8, VOCABULARIES[2]), 8, both
    yield LossSpec(linear=True, reduction="sum"), (64, 1000), 16, f32
    yield dataclasses.replace(lm, reduction="none"), (64, 1000), 16, f32
    yield dataclasses.replace(lm, bias=True), (64, 1000), 16, f32
    yield dataclasses.replace(lm, weighted=True, label_smoothing=0.1), (64, 1000), 16, f32


def default_cases(kinds: Iterable[str] = KINDS, dtypes: Iterable[str] = DTYPES, seed: int = 0) -> list[Case]:
    """The default set, filtered to `kinds` and `dtypes`; ids are unique and stable for a seed."""
    kinds, dtypes = tuple(kinds), tuple(dtypes)
    cases = [
        Case(kind=kind, spec=spec, shape=shape, dtype=dtype, seed=seed, tag=tag)
        for kind, spec, shape, tag in _specs()
        if kind in kinds
        for dtype in dtypes
    ]
    if "linear" in kinds:
        cases += [
            Case(kind="linear", spec=spec, shape=shape, dtype=dtype, seed=seed, hidden=d)
            for spec, shape, d, own in _linear_specs()
            for dtype in dtypes
            if dtype in own
        ]
    if "documented" in kinds:
        cases += [c for c in documented_cases() if c.dtype in dtypes]
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return cases


def with_float64(cases: Sequence[Case]) -> list[Case]:
    """`cases` and, after them, the float64 case of each configuration that lacks one: the semantics of a
    recipe are decided where rounding cannot hide them (harness/judge/semantics.py), at every dtype alike."""
    have = {c.id for c in cases}
    extra = [dataclasses.replace(c, dtype="float64") for c in cases if c.dtype != "float64"]
    extra = list({c.id: c for c in extra if c.id not in have}.values())
    return [*cases, *extra]


def verify_kinds(spec: LossSpec) -> tuple[str, str]:
    """The kinds of `verify_cases` for a configuration: its own (binary, smoothed, soft or multiclass) and edge."""
    if spec.family == "sigmoid":
        return "binary", "edge"
    if spec.label_smoothing:
        return "smoothed", "edge"
    return ("soft" if spec.target == "prob" else "multiclass"), "edge"


def verify_cases(
    spec: LossSpec, kinds: Iterable[str] | None = None, dtypes: Iterable[str] = ("float64", "float32"), seed: int = 0
) -> list[Case]:
    """The generated cases a user's own loss for `spec` is verified on (`harness.verify`), in `dtypes`.

    Its kind (`verify_kinds`): typical inputs (N x C; hard and soft binary targets), a K-dim input where
    softmax has one (the class axis at work), a trained model's confident predictions (index targets).
    ``edge``: a mean over a batch whose every label is ignored (PyTorch: a NaN loss with a zero gradient),
    logits in [-1e4, 1e4], and a third of the classes masked with -inf (index targets without smoothing,
    whose exact loss stays finite there: a port that multiplies a one-hot by log-probabilities gets
    0 * -inf = NaN).
    """
    main, edge = verify_kinds(spec)
    kinds = (main, edge) if kinds is None else tuple(kinds)
    plan: list[tuple[str, tuple[int, ...], str]] = []
    if spec.family == "sigmoid":
        plan += [(main, (N, 4), "hard")]
        plan += [(main, (N, 4), "p01")] if spec.input == "probs" else [(main, (N, 4), "soft")]
    else:
        plan += [(main, (N, C), ""), (main, (8, C, 16) if spec.target == "prob" else (4, C, 4, 3, 2), "")]
        if spec.target == "index":
            plan.append((main, (256, 100), "confident"))
    if spec.ignore_index is not None and spec.reduction == "mean":
        plan.append((edge, (N, C), "allignored"))
    if spec.input == "logits":
        plan.append((edge, (N, 4) if spec.family == "sigmoid" else (N, C), "big"))
        if spec.target == "index" and not spec.label_smoothing:
            plan.append((edge, (N, C), "masked"))
    return [
        Case(kind=kind, spec=spec, shape=shape, dtype=dtype, seed=seed, tag=tag)
        for kind, shape, tag in plan
        if kind in kinds
        for dtype in dtypes
    ]


def mode_cases(cases: Sequence[Case]) -> frozenset[str]:
    """The ids of the cases a default run also runs compiled and under mixed-precision policies: every kind and
    every dtype at least once: kind k in its order with the k-th of float32, bfloat16, float16, float64, ... (the
    half-precision policies meet their dtypes); for ``edge``, the out-of-range labels (XLA gives NaN where eager
    raises). Compiles cost seconds each here; `--modes all` / `--policies all` run every case."""
    rotation = ("float32", "bfloat16", "float16", "float64")
    chosen: list[str] = []
    for k, kind in enumerate(KINDS):
        mine = [c for c in cases if c.kind == kind]
        mine = [c for c in mine if c.tag == "oob"] or mine if kind == "edge" else mine
        want = rotation[k % len(rotation)]
        pick = next((c for c in mine if c.dtype == want), mine[0] if mine else None)
        if pick is not None:
            chosen.append(pick.id)
    return frozenset(chosen)


# Timing cases: the common configuration (logits, class indices, mean) at a classifier's size, a
# large-vocabulary size and a segmentation-like K-dim size.
TIMING_SHAPES = ((256, 1000), (4096, 32000), (16, 21, 64, 64))


TIMING_LEVELS = ("off", "default", "full")
CPU_DEFAULT_MAX_ELEMENTS = 10_000_000  # ~1 s a call here: 8 APIs x 4 modes/passes would not fit in a default run


# Linear heads timed, (N, D, C): on a CPU ~1-2 s a call forward+backward, N >> D as in training so that the logits
# (N x C) outweigh W (C x D) (--timing full only: three cases of several APIs would double a default run); on a GPU
# the sizes of the Cut Cross-Entropy README's table (Gemma 2 2B: N=8192, D=2304, C=256000) and of Llama 3 8B and
# Llama 2 7B heads.
LINEAR_TIMING = {
    "cpu": ((2048, 128, 32000), (1024, 128, 128256), (512, 128, 256000)),
    "gpu": ((8192, 4096, 32000), (8192, 4096, 128256), (8192, 2304, 256000)),
}


def timing_plan(level: str, seed: int = 0) -> dict[str, list[Case]]:
    """The cases each device kind times at a `--timing` level: float32 everywhere, bfloat16 too on GPUs
    (the dtype large vocabularies train in there); the default leaves the CPU's largest case and its linear
    heads out."""
    if level == "off":
        return {"cpu": [], "gpu": []}
    cpu = timing_cases(("float32",), seed)
    if level == "default":
        cpu = [c for c in cpu if math.prod(c.shape) <= CPU_DEFAULT_MAX_ELEMENTS]
    else:
        cpu += linear_timing_cases("cpu", ("float32",), seed)
    gpu = timing_cases(("float32", "bfloat16"), seed) + linear_timing_cases("gpu", ("float32", "bfloat16"), seed)
    return {"cpu": cpu, "gpu": gpu}


def linear_timing_cases(device_kind: str, dtypes: Iterable[str] = ("float32",), seed: int = 0) -> list[Case]:
    """The linear heads `timing_plan` times on a device kind (`LINEAR_TIMING`): mean over every label."""
    return [
        Case(kind="timing", spec=LossSpec(linear=True), shape=(n, c), dtype=dtype, seed=seed, hidden=d)
        for dtype in dtypes
        for n, d, c in LINEAR_TIMING[device_kind]
    ]


def timing_cases(dtypes: Iterable[str] = ("float32",), seed: int = 0) -> list[Case]:
    """The cases the timing sweep runs (float32 on every device; the GPU sweep adds bfloat16)."""
    return [
        Case(kind="timing", spec=LossSpec(), shape=shape, dtype=dtype, seed=seed)
        for dtype in dtypes
        for shape in TIMING_SHAPES
    ]
