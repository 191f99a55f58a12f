"""Which (mode, policy) pairs a framework runs a case in (docs/DESIGN.md, "Modes and policies").

Every case runs in the framework's own mode (`Adapter.modes[0]`: eager, or jax.jit for JAX) without a
policy. By default the other modes, and each policy on inputs in its dtype, run on a representative subset
of the cases (`cases.generator.mode_cases`): compiles cost seconds each. Naming modes or policies
(`--modes`, `--policies`) runs every case in each of them that the framework has, as a product. The same
subset (every case when modes or policies are named) is called `RunOptions.repeats` times for the
`deterministic` column: the repeats triple a case's cost.
"""

from __future__ import annotations

from adapters.base import Adapter
from cases.names import POLICY_DTYPES
from cases.spec import Case
from harness.runner.options import RunOptions

Plan = tuple[tuple[str, str], ...]


def _policy_fits(policy: str, case: Case) -> bool:
    return policy == "none" or POLICY_DTYPES[policy] == case.dtype


def case_repeats(case: Case, options: RunOptions) -> int:
    """Calls per row of `case`: `options.repeats` where determinism is checked (module docstring), else 1."""
    if options.user is not None:
        return 1
    deep = case.id in options.mode_cases or options.modes is not None or options.policies is not None
    return options.repeats if deep else 1


def case_plan(adapter: Adapter, case: Case, options: RunOptions) -> Plan:
    """The (mode, policy) pairs `adapter` runs `case` in under `options` (module docstring)."""
    own = adapter.modes[0]
    if options.user is not None:  # a verified function runs as its framework runs it
        return ((own, "none"),)
    subset = case.id in options.mode_cases
    if options.modes is None:
        modes = [own] + [m for m in adapter.modes[1:] if subset]
    else:
        modes = [m for m in adapter.modes if m in options.modes]
    if options.policies is None:
        extra = [(own, p) for p in adapter.policies if subset and _policy_fits(p, case)]
        return tuple([(m, "none") for m in modes] + extra)
    policies = [p for p in ("none", *adapter.policies) if p in options.policies and _policy_fits(p, case)]
    return tuple((m, p) for m in modes for p in policies)
