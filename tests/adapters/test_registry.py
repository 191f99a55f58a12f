"""The framework table (adapters/registry.py): one line per framework, its aliases, its adapter."""

from __future__ import annotations

import pytest

from adapters import registry
from adapters.base import Adapter
from cases.names import UsageError


def test_names_and_aliases_come_from_one_table() -> None:
    assert registry.choose_frameworks("pytorch,tf,optax,np") == ("torch", "tensorflow", "jax", "numpy")
    assert registry.choose_frameworks("all") == registry.FRAMEWORKS
    with pytest.raises(UsageError, match=r"Expected framework in \{numpy, torch, tensorflow, jax, paddle, mlx, onnxruntime, keras_jax, keras_torch\}\. Received: "):
        registry.choose_framework("paddel")


def test_every_line_loads_an_adapter_of_that_name_without_importing_its_framework() -> None:
    import sys

    before = set(sys.modules)
    for f in registry.TABLE:
        adapter = registry.load(f.name)
        assert isinstance(adapter, Adapter) and adapter.name == f.name, f
    assert not {"torch", "tensorflow", "jax", "keras", "paddle", "mlx", "onnxruntime"} & (set(sys.modules) - before)


def test_an_instance_is_the_framework_under_its_own_name() -> None:
    """``jax@new``: a second install of JAX (its workers under another interpreter: --python)."""
    assert registry.choose_frameworks("np,optax@0.9.2,jax") == ("numpy", "jax@0.9.2", "jax")
    assert registry.base_name("jax@0.9.2") == "jax" and registry.base_name("jax") == "jax"
    twin, jax = registry.load("jax@0.9.2"), registry.load("jax")
    assert twin.name == "jax@0.9.2" and jax.name == "jax" and type(twin) is type(jax)
    with pytest.raises(UsageError, match=r"^Expected FRAMEWORK@LABEL, the label of letters, digits, '\.', '_' or '-'\. Received: 'jax@a b'$"):
        registry.choose_framework("jax@a b")
