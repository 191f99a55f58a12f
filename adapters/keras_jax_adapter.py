"""Keras 3 on its JAX backend (``keras_jax``): adapters/keras_backend_adapter.py."""

from adapters.keras_backend_adapter import KerasBackendAdapter

ADAPTER = KerasBackendAdapter("jax")
