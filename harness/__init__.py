"""Cross-entropy comparison harness: `python -m harness run`, `check`, `list`."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "check"]


def __getattr__(name: str):  # harness.check without importing pandas on `import harness`
    if name == "check":
        from harness.check_tensors import check

        return check
    raise AttributeError(name)
