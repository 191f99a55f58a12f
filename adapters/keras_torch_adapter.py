"""Keras 3 on its PyTorch backend (``keras_torch``): adapters/keras_backend_adapter.py."""

from adapters.keras_backend_adapter import KerasBackendAdapter

ADAPTER = KerasBackendAdapter("torch")
