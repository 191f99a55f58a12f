"""The framework table (adapters/registry.py): one line per framework, its aliases, its adapter."""

from __future__ import annotations

import pytest

from adapters import registry
from adapters.base import Adapter
from cases.names import UsageError


def test_names_and_aliases_come_from_one_table() -> None:
    assert registry.choose_frameworks("pytorch,tf,optax,np") == ("torch", "tensorflow", "jax", "numpy")
    assert registry.choose_frameworks("all") == registry.FRAMEWORKS
    with pytest.raises(UsageError, match=r"Expected framework in \{numpy, torch, tensorflow, jax\}\. Received: "):
        registry.choose_framework("paddel")


def test_every_line_loads_an_adapter_of_that_name_without_importing_its_framework() -> None:
    import sys

    before = set(sys.modules)
    for f in registry.TABLE:
        adapter = registry.load(f.name)
        assert isinstance(adapter, Adapter) and adapter.name == f.name, f
    assert not {"torch", "tensorflow", "jax", "keras"} & (set(sys.modules) - before)
