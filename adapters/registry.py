"""The frameworks: one line each (name, adapter module, display name, aliases). Loading one never imports
its framework.

Adding a framework is one adapter module (docs/ADAPTERS.md says how) and one line in `TABLE`.
"""

from __future__ import annotations

import copy
import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from adapters.base import Adapter
from cases.names import UsageError, choose, choose_many


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
    Framework("paddle", "adapters.paddle_adapter", "PaddlePaddle", ("paddlepaddle",)),
    Framework("mlx", "adapters.mlx_adapter", "MLX"),
    Framework("onnxruntime", "adapters.onnxruntime_adapter", "ONNX Runtime", ("ort", "onnx")),
    Framework("keras_jax", "adapters.keras_jax_adapter", "Keras 3 (JAX)", ("keras-jax",)),
    Framework("keras_torch", "adapters.keras_torch_adapter", "Keras 3 (PyTorch)", ("keras-torch",)),
)
FRAMEWORKS = tuple(f.name for f in TABLE)
DISPLAY = {f.name: f.display for f in TABLE}
ALIASES = {alias: f.name for f in TABLE for alias in f.aliases}
MODULES = {f.name: f.module for f in TABLE}


_LABEL = re.compile(r"[A-Za-z0-9._-]+")


def base_name(name: str) -> str:
    """The framework of an instance name: ``jax`` for ``jax@new`` (a second install of JAX, run by another
    interpreter: `--python jax@new=PATH`), the name itself otherwise."""
    return name.split("@", 1)[0]


def choose_framework(value: str) -> str:
    """The canonical name of a framework (aliases accepted) or of an instance of one (``jax@new``), or a
    one-line UsageError."""
    base, at, label = value.strip().partition("@")
    name = choose(base, FRAMEWORKS, "framework", ALIASES)
    if not at:
        return name
    if not _LABEL.fullmatch(label):
        why = "Expected FRAMEWORK@LABEL, the label of letters, digits, '.', '_' or '-'"
        raise UsageError(f"{why}. Received: {value!r}")
    return f"{name}@{label}"


def choose_frameworks(values: str | Iterable[str]) -> tuple[str, ...]:
    """A comma-separated list (or iterable) of frameworks or instances (``jax@new``); ``all`` selects every
    framework."""
    items = [i.strip() for i in (values.split(",") if isinstance(values, str) else values) if i.strip()]
    if not items or [i.lower() for i in items] == ["all"]:
        return choose_many(items, FRAMEWORKS, "framework", ALIASES)  # every framework, or the one-line error
    return tuple(dict.fromkeys(map(choose_framework, items)))  # de-duplicated, order kept


def load(name: str) -> Adapter:
    """The adapter for a canonical framework name, or for ``package.module:ATTR``, an adapter object of
    your own (how the tests inject faulty frameworks)."""
    if ":" in name:
        module, attr = name.split(":", 1)
        return getattr(importlib.import_module(module), attr)
    adapter = importlib.import_module(MODULES[base_name(name)]).ADAPTER
    if name != adapter.name:  # an instance: the same adapter under its own name (its rows and tables)
        adapter = copy.copy(adapter)
        adapter.name = name
    return adapter
