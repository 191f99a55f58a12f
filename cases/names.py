"""The names used everywhere: CLI options, case ids, report columns (docs/DESIGN.md, "Names").

This is the bottom of the dependency chain (cases -> adapters -> harness), so the vocabulary and
the one way of rejecting a bad name live here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

FAMILIES = ("softmax", "sigmoid")
INPUTS = ("logits", "log_probs", "probs")
TARGETS = ("index", "prob")
REDUCTIONS = ("none", "sum", "mean")
KINDS = ("binary", "multiclass", "soft", "smoothed", "edge", "accumulation", "documented", "linear")
DTYPES = ("float64", "float32", "float16", "bfloat16")
DEVICES = ("cpu", "gpu")
RECIPES = ("native", "matched")
# How a loss runs (docs/DESIGN.md, "Modes and policies"): eagerly or compiled (torch.compile, XLA), and under a
# mixed-precision policy (torch.autocast, Keras' mixed policies) or none. A policy applies to inputs in its dtype.
MODES = ("eager", "compiled")
POLICIES = ("none", "autocast-bfloat16", "autocast-float16", "mixed_bfloat16", "mixed_float16")
POLICY_DTYPES = {"autocast-bfloat16": "bfloat16", "autocast-float16": "float16", "mixed_bfloat16": "bfloat16",
                 "mixed_float16": "float16"}  # fmt: skip
IGNORE_DEFAULT = -100  # PyTorch's ignore_index default: the canonical semantics are its
OUTCOMES = ("ok", "mismatch", "nonfinite", "raised", "unsupported", "crashed", "timeout")

ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}

# Short dtype tags for case ids (multiclass-n64-c10-f32-...).
DTYPE_TAGS = {"float64": "f64", "float32": "f32", "float16": "f16", "bfloat16": "bf16"}

ALIASES: Mapping[str, str] = {  # framework aliases live with the frameworks (adapters/registry.py)
    "f64": "float64",
    "f32": "float32",
    "f16": "float16",
    "half": "float16",
    "bf16": "bfloat16",
    "cuda": "gpu",
}


class UsageError(ValueError):
    """A bad name, option or input file: reported as one line, exit code 2."""


def choose(value: str, valid: Iterable[str], what: str, aliases: Mapping[str, str] = ALIASES) -> str:
    """Return the canonical name for `value` (`aliases` accepted) or raise a one-line UsageError.

    >>> choose("bf16", DTYPES, "dtype")
    'bfloat16'
    """
    valid = tuple(valid)
    name = value.strip().lower()
    name = aliases.get(name, name)
    if name not in valid:
        raise UsageError(f"Expected {what} in {{{', '.join(valid)}}}. Received: {what}={value!r}")
    return name


def choose_many(
    values: str | Iterable[str], valid: Iterable[str], what: str, aliases: Mapping[str, str] = ALIASES
) -> tuple[str, ...]:
    """Parse a comma-separated list (or an iterable) of names; `all` selects every valid name."""
    valid = tuple(valid)
    items = values.split(",") if isinstance(values, str) else list(values)
    items = [v for v in (i.strip() for i in items) if v]
    if not items:
        raise UsageError(f"Expected at least one {what} from {{{', '.join(valid)}}}. Received: ''")
    if [i.lower() for i in items] == ["all"]:
        return valid
    chosen = [choose(i, valid, what, aliases) for i in items]
    return tuple(dict.fromkeys(chosen))  # de-duplicated, order kept
