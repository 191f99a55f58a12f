"""Which Python runs each framework's worker (`--python FW=PATH`).

A framework whose dependencies conflict with the others', or a second version of one (``jax@new``), runs in
its own environment: its worker is started by that environment's interpreter and imports the harness from
a links directory (harness/runner/worker.py, `code_path`) and everything else from that environment.
`PATH` is an interpreter, or pip requirements (``"jax==0.9.2 jaxlib==0.9.2"``): the harness then makes a
virtual environment for them on first use, under ``$CE_HARNESS_ENVS`` (default ``~/.cache/ce-harness/envs``),
and reuses it afterwards.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from adapters.registry import choose_framework
from cases.names import UsageError

# What the harness' own modules need in a worker's environment (cases and adapters import them).
WORKER_REQUIREMENTS = ("numpy", "ml_dtypes", "cloudpickle")
_REQUIREMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?\s*(==|>=|<=|~=|!=|<|>)\s*[\w.*+!-]+")


def parse(specs: Iterable[str]) -> dict[str, str]:
    """``FW=PATH`` items as {framework: interpreter or requirements}; one-line UsageError for a bad one."""
    out: dict[str, str] = {}
    for spec in specs:
        name, eq, where = spec.partition("=")
        if not eq or not name.strip() or not where.strip():
            raise UsageError(f"Expected --python FRAMEWORK=INTERPRETER or FRAMEWORK='pkg==X ...'. Received: {spec!r}")
        framework, where = choose_framework(name), where.strip()
        if not (is_interpreter(where) or all(_REQUIREMENT.fullmatch(r) for r in where.split())):
            raise UsageError(
                f"Expected an executable Python or pip requirements such as 'jax==0.9.2 jaxlib==0.9.2'. "
                f"Received: --python {framework}={where!r}"
            )
        out[framework] = where
    return out


def is_interpreter(where: str) -> bool:
    return os.path.isfile(where) and os.access(where, os.X_OK)


def envs_home() -> Path:
    return Path(os.environ.get("CE_HARNESS_ENVS") or Path.home() / ".cache" / "ce-harness" / "envs")


def env_path(requirements: str) -> Path:
    """Where the environment for `requirements` lives (one per set of requirements, order ignored)."""
    key = " ".join(sorted(requirements.split()))
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", key)[:60].strip("-")
    return envs_home() / f"{slug}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def interpreter(where: str, say: Callable[[str], None] = lambda line: None) -> str:
    """The interpreter for `where`: itself, or that of the environment for its requirements, made on first use
    (`say` reports it: it takes a minute or more)."""
    if is_interpreter(where):
        return where
    home = env_path(where)
    python = home / "bin" / "python"
    if not (home / ".complete").is_file():
        say(f"creating a Python environment for {where!r} in {home} (first use)")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True, capture_output=True)
        install = [str(python), "-m", "pip", "install", "-q", *WORKER_REQUIREMENTS, *where.split()]
        done = subprocess.run(install, capture_output=True, text=True)
        if done.returncode:
            tail = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise UsageError(f"Could not install {where!r} into {home}: {tail}")
        (home / ".complete").write_text(where + "\n")
    return str(python)
