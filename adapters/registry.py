"""Which adapter module serves which framework name. Loading one never imports its framework."""

from __future__ import annotations

import importlib

from adapters.base import Adapter
from cases.names import FRAMEWORKS

MODULES = {
    "numpy": "adapters.numpy_adapter",
    "torch": "adapters.torch_adapter",
    "tensorflow": "adapters.tensorflow_adapter",
    "jax": "adapters.jax_adapter",
}
assert set(MODULES) == set(FRAMEWORKS)


def load(name: str) -> Adapter:
    """The adapter for a canonical framework name (see `cases.names.choose` for aliases), or for
    ``package.module:ATTR``, an adapter object of your own (how the tests inject faulty frameworks)."""
    if ":" in name:
        module, attr = name.split(":", 1)
        return getattr(importlib.import_module(module), attr)
    return importlib.import_module(MODULES[name]).ADAPTER
