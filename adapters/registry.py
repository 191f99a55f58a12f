"""The frameworks: one line each (name, adapter module, display name, aliases). Loading one never imports
its framework.

Adding a framework is one adapter module (docs/ADAPTERS.md says how) and one line in `TABLE`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass

from adapters.base import Adapter
from cases.names import choose, choose_many


@dataclass(frozen=True)
class Framework:
    name: str  # on the command line and in every table
    module: str  # the adapter module; its ADAPTER attribute is the adapter
    display: str  # in prose
    aliases: tuple[str, ...] = ()  # also accepted on the command line and by the Python API


TABLE = (
    Framework("numpy", "adapters.numpy_adapter", "NumPy", ("np", "reference")),
    Framework("torch", "adapters.torch_adapter", "PyTorch", ("pytorch",)),
    Framework("tensorflow", "adapters.tensorflow_adapter", "TensorFlow", ("tf", "keras")),
    Framework("jax", "adapters.jax_adapter", "JAX/optax", ("optax",)),
)
FRAMEWORKS = tuple(f.name for f in TABLE)
DISPLAY = {f.name: f.display for f in TABLE}
ALIASES = {alias: f.name for f in TABLE for alias in f.aliases}
MODULES = {f.name: f.module for f in TABLE}


def choose_framework(value: str) -> str:
    """The canonical name of a framework (aliases accepted), or a one-line UsageError."""
    return choose(value, FRAMEWORKS, "framework", ALIASES)


def choose_frameworks(values: str | Iterable[str]) -> tuple[str, ...]:
    """A comma-separated list (or iterable) of frameworks; ``all`` selects every one."""
    return choose_many(values, FRAMEWORKS, "framework", ALIASES)


def load(name: str) -> Adapter:
    """The adapter for a canonical framework name, or for ``package.module:ATTR``, an adapter object of
    your own (how the tests inject faulty frameworks)."""
    if ":" in name:
        module, attr = name.split(":", 1)
        return getattr(importlib.import_module(module), attr)
    return importlib.import_module(MODULES[name]).ADAPTER
