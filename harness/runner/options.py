"""What a run is asked to do (`RunOptions`) and how its rows are keyed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.registry import FRAMEWORKS
from adapters.user import UserLoss
from harness.runner.timing import BUDGET_S


@dataclass(frozen=True)
class RunOptions:
    frameworks: tuple[str, ...] = FRAMEWORKS
    devices: tuple[str, ...] = ("cpu",)
    case_timeout: float = 120.0
    jobs: int = 2
    debug: bool = False
    quiet: bool = False
    verbose: bool = False
    threads: int | None = None  # intra-op threads for every framework (None: the frameworks' default)
    timing_budget_s: float = BUDGET_S  # sampling seconds per timing measurement (at least 3 samples)
    user: UserLoss | None = None  # harness.verify: the user's function replaces the frameworks' APIs
    # harness/runner/plan.py: modes and policies every case runs in (None: the framework's own mode, no policy,
    # and the others on the `mode_cases` subset)
    modes: tuple[str, ...] | None = None
    policies: tuple[str, ...] | None = None
    mode_cases: frozenset[str] = frozenset()
    repeats: int = 3  # calls whose bits must agree for a row to be `deterministic` (on the cases plan.py says)
    # (framework, interpreter) for frameworks whose workers another Python runs (harness/runner/interpreters.py)
    python: tuple[tuple[str, str], ...] = ()

    def interpreter(self, framework: str) -> str | None:
        """The interpreter `framework`'s workers run under (None: this one)."""
        return dict(self.python).get(framework)


def device_kind(device: str) -> str:
    """``cpu`` or ``gpu`` for a row's concrete device (``cuda:0`` -> ``gpu``)."""
    return "cpu" if device == "cpu" else "gpu"


def row_key(row: dict[str, Any]) -> tuple[str, str, str]:
    """What a resumed run skips: a case already done by a framework on a device kind."""
    return row["case_id"], row["framework"], device_kind(row["device"])
