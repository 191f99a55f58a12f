"""Cross-entropy comparison harness.

From Python, the same entry points as the command line (`python -m harness run | launch | check | verify |
report | compare | list`): `harness.run`, `harness.launch`, `harness.check`, `harness.verify`, `harness.report`,
`harness.compare`, `harness.catalog`; for test suites, `harness.testing.assert_matches_torch`.
"""

from __future__ import annotations

import importlib
from typing import Any

from harness.version import __version__

_API = {"run": "harness.api.run", "launch": "harness.api.launch", "check": "harness.api.check",
        "verify": "harness.api.verify", "report": "harness.api.report", "compare": "harness.api.report",
        "catalog": "harness.api.report"}  # fmt: skip
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:  # the API without importing pandas and the rest on `import harness`
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
