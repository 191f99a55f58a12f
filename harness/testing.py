"""For users' test suites: assert that a loss function matches PyTorch's semantics.

>>> from harness.testing import assert_matches_torch
>>> assert_matches_torch(my_loss, "jax", class_axis=-1, weighted=True, ignore_index=-100)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd


def assert_matches_torch(fn: Callable[..., Any] | str, framework: str, **options: Any) -> pd.DataFrame:
    """`harness.verify(fn, framework, **options)`; raises AssertionError unless every row is ok.

    The message is one line: the function, how many rows fail, the first failing case with its errors
    and cause (``weight_norm=count (weighted mean divided by ...)``), and every cause met. Returns the rows
    when it passes. A bad option is a `UsageError` (a ValueError), not an assertion.
    """
    from harness.api.verify import failure_message, verify

    df = verify(fn, framework, **options)
    message = failure_message(df)
    if message:
        raise AssertionError(message)
    return df
