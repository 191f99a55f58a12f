"""Adapters that fail for real, to test that a run outlives them (loaded as ``tests.harness.faulty_adapter:NAME``).

Each computes the reference (so its other rows are `ok`) except on cases with reduction='sum',
where it aborts the process, hangs, or is killed by a signal.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from adapters import reference
from adapters.base import Adapter, Api, Recipe
from cases.spec import Inputs, LossSpec

CODE = "loss = reference(x, y, w)"


class Faulty(Adapter):
    modules = distributions = ("numpy",)
    apis = (Api("faulty.loss", lambda s: not s.linear, lambda s: (Recipe("native", CODE), Recipe("matched", None, "none"))),)

    def __init__(self, name: str, fault: Callable[[], None]) -> None:
        super().__init__()
        self.name, self.fault = name, fault

    def setup(self) -> dict[str, Any]:
        return {}

    def compile(self, code: str) -> Callable[..., Any]:
        return reference.evaluate

    def evaluate(
        self, fn, spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str = "eager", policy: str = "none"
    ) -> tuple[np.ndarray, np.ndarray, str]:
        if spec.reduction == "sum":
            self.fault()
        ev = fn(spec, inputs)
        return ev.value, ev.grad, "float64"


ABORTS = Faulty("aborts", os.abort)
HANGS = Faulty("hangs", lambda: time.sleep(3600))
KILLED = Faulty("killed", lambda: os.kill(os.getpid(), signal.SIGKILL))


def _oom() -> None:
    raise MemoryError("Unable to allocate 512. GiB for an array with shape (4096, 32000, 1000)")


OOM = Faulty("oom", _oom)
