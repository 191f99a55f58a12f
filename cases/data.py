"""Deterministic arrays for generated cases, from (spec, tag, shape, seed).

Every case with the same seed draws from the same stream, so the float32 and float16 variants of
a case hold the same numbers rounded differently, and `sum` and `mean` see the same data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cases.arrays import Inputs

if TYPE_CHECKING:
    from cases.spec import Case

# Data variants a tag selects (the rest of a case's data follows from its spec).
TAGS = {
    "": "standard normal logits (scale 2), uniform classes",
    "hard": "binary targets in {0, 1}",
    "soft": "binary targets uniform in [0, 1]",
    "p01": "probabilities that include exactly 0 and 1, with targets that make the exact loss finite",
    "p01soft": "probabilities that include exactly 0 and 1 under soft targets: the exact loss is inf",
    "allignored": "every target equals ignore_index",
    "big": "logits uniform in [-1e4, 1e4]",
    "big1e3": "logits uniform in [-1e3, 1e3]: float16 losses near 1e3, whose sum overflows float16",
    "confident": "a trained model's logits: the target class 8 to 14 above every other (standard normal) logit",
    "masked": "a third of the classes masked with -inf logits (never the target class)",
    "unnormalised": "soft targets whose rows sum to between 0.5 and 1.5, not 1",
    "negative": "soft targets with negative entries that still sum to 1 (1.5 t - 0.5/C)",
    "scores": "raw scores (standard normal, scale 2) given as log-probabilities: NLL is defined on any real input",
    "oob": "labels outside [0, C) that are not ignore_index (C and -1): PyTorch raises",
}


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _linear(case: Case, rng: np.random.Generator) -> Inputs:
    """A language model's head: hidden states E ~ N(0, 1) (N, D), a classifier W ~ N(0, 4/D) (C, D) so that
    the logits E Wᵀ have the standard cases' scale (2), a bias ~ N(0, 0.25), uniform labels."""
    (n, c), d = case.shape, case.hidden
    e = rng.normal(0.0, 1.0, size=(n, d))
    w = rng.normal(0.0, 2.0 / np.sqrt(d), size=(c, d))
    bias = rng.normal(0.0, 0.5, size=c) if case.spec.bias else None
    weight = rng.uniform(0.25, 2.0, size=c) if case.spec.weighted else None
    target = rng.integers(0, c, size=n).astype(np.int64)
    if case.spec.ignore_index is not None:
        target = np.where(rng.uniform(size=n) < 0.25, case.spec.ignore_index, target).astype(np.int64)
    return Inputs(x=e, target=target, weight=weight, classifier=w, bias=bias)


def make(case: Case) -> Inputs:
    """Raw (unquantised) float64 arrays for a generated case."""
    spec, shape, tag = case.spec, case.shape, case.tag
    if tag not in TAGS:
        raise ValueError(f"Expected tag in {{{', '.join(repr(t) for t in TAGS)}}}. Received: tag={tag!r}")
    rng = np.random.default_rng(case.seed)
    if spec.linear:
        return _linear(case, rng)
    c = case.n_classes
    z = rng.normal(0.0, 2.0, size=shape)
    if tag == "big":
        z = rng.uniform(-1e4, 1e4, size=shape)
    elif tag == "big1e3":
        z = rng.uniform(-1e3, 1e3, size=shape)
    weight = rng.uniform(0.25, 2.0, size=c) if spec.weighted else None
    elements = shape if spec.family == "sigmoid" else (shape[0], *shape[2:])
    sample_weight = rng.uniform(0.0, 2.0, size=elements) if spec.sample_weighted else None

    if spec.family == "sigmoid":
        if tag in ("soft", "p01soft"):
            target = rng.uniform(0.0, 1.0, size=shape)
        else:
            target = rng.integers(0, 2, size=shape).astype(np.float64)
        x = z
        if spec.input == "probs":
            x = 1.0 / (1.0 + np.exp(-z))
            if tag in ("p01", "p01soft"):
                # Every fourth element is saturated; under hard targets it agrees with its target.
                sat = np.zeros(shape, dtype=bool)
                sat.flat[::4] = True
                x = np.where(sat, target.round() if tag == "p01" else rng.integers(0, 2, size=shape), x)
        return Inputs(x=x, target=target, weight=weight, sample_weight=sample_weight)

    # softmax: classes on axis 1
    spatial = (shape[0], *shape[2:])
    labels = rng.integers(0, c, size=spatial)
    if tag == "confident":  # the target's logit 8 to 14 above the largest of the others
        onehot = np.moveaxis(np.eye(c, dtype=bool)[labels], -1, 1)
        others = np.where(onehot, -np.inf, z).max(axis=1, keepdims=True)
        margin = np.expand_dims(rng.uniform(8.0, 14.0, size=spatial), 1)
        z = np.where(onehot, others + margin, z)
    if tag == "masked":
        masked = rng.uniform(size=shape) < 1 / 3
        onehot = np.moveaxis(np.eye(c, dtype=bool)[labels], -1, 1)
        z = np.where(masked & ~onehot, -np.inf, z)
    if spec.target == "index":
        target = labels.astype(np.int64)
        if tag == "oob":  # every fifth label C, every seventh -1
            target.flat[::5], target.flat[3::7] = c, -1
        if spec.ignore_index is not None:
            drop = np.ones(spatial, bool) if tag == "allignored" else rng.uniform(size=spatial) < 0.25
            target = np.where(drop, spec.ignore_index, target).astype(np.int64)
    else:
        target = _softmax(rng.normal(0.0, 1.5, size=shape))
        if tag == "masked":
            target = np.where(np.isinf(z), 0.0, target)
            target = target / target.sum(axis=1, keepdims=True)
        if tag == "unnormalised":
            target = target * rng.uniform(0.5, 1.5, size=spatial)[:, None]
        if tag == "negative":
            target = 1.5 * target - 0.5 / c
    x = z
    if spec.input == "log_probs" and tag != "scores":
        x = (
            z
            - np.log(np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True))
            - z.max(axis=1, keepdims=True)
        )
    elif spec.input == "probs":
        x = _softmax(z)
    return Inputs(x=x, target=target, weight=weight, sample_weight=sample_weight)
