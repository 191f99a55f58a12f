"""The known-differences registry (adapters/known_differences.csv, shipped as package data): which
explanations are documented behaviour of which framework API. `run --strict` fails on any other."""

from __future__ import annotations

import csv
import fnmatch
import functools
import io
from dataclasses import dataclass
from importlib import resources

from adapters.registry import base_name

REGISTRY = ("adapters", "known_differences.csv")  # package, file


@dataclass(frozen=True)
class KnownDifference:
    framework: str
    api: str  # fnmatch pattern on the API's dotted name
    variant: str
    condition: str
    source: str


def known_differences(text: str | None = None) -> tuple[KnownDifference, ...]:
    """The registry's lines (from `text`, a CSV, if given). A missing registry is an error: without it
    every difference would read as new."""
    if text is None:
        try:
            text = resources.files(REGISTRY[0]).joinpath(REGISTRY[1]).read_text(encoding="utf-8")
        except (FileNotFoundError, ModuleNotFoundError) as e:
            raise RuntimeError(
                f"the known-differences registry {'/'.join(REGISTRY)} is missing from this installation "
                "(reinstall the package: it ships as package data)"
            ) from e
    rows = [r for r in csv.DictReader(io.StringIO(text)) if not r["framework"].startswith("#")]
    return tuple(KnownDifference(**{k: (v or "").strip() for k, v in r.items()}) for r in rows)


def is_known(framework: str, api: str, variant: str, registry: tuple[KnownDifference, ...]) -> bool:
    """Every part of the explanation ("V" or "V+computed_in=D") is registered for this framework API (an
    install of it, ``jax@new``, shares the framework's lines)."""
    framework = base_name(framework)
    return bool(variant) and all(
        any(k.framework == framework and fnmatch.fnmatch(api, k.api) and k.variant == part for k in registry)
        for part in variant.split("+")
    )


@functools.cache
def registered_variants(framework: str, api: str) -> tuple[str, ...]:
    """Variant names the registry lists for this framework API (read once per process)."""
    registry, framework = known_differences(), base_name(framework)
    return tuple(k.variant for k in registry if k.framework == framework and fnmatch.fnmatch(api, k.api))
