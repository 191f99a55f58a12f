"""Compiled JAX programs kept between runs: a jitted recipe's executable, loaded instead of traced and lowered.

JAX's persistent compilation cache (``jax_compilation_cache_dir``) saves the XLA compile, but it is keyed by
the lowered program, so every run still traces each recipe and lowers it to StableHLO first: ~0.08 s an
evaluation here, most of the JAX adapter's accuracy pass (about 1000 programs). This cache keys the
*compiled executable* by what determines the program before tracing:

- the recipe's code and how the adapter wraps it (its `key`, and the source of the wrapping functions);
- the arguments' shapes and dtypes (None where there is none: `signature`);
- the device (platform, id, its client's version);
- a salt: the Python, jax, jaxlib and optax versions, the host's CPU model and flags (XLA compiles for
  them), ``XLA_FLAGS`` and x64.

A hit deserialises the same executable (``jax.experimental.serialize_executable``: ~7 ms), which computes the
same bits as the jit call it replaces. An executable is built with the persistent cache off: one that XLA
loaded from that cache serialises without its code (``NOT_FOUND: Function ... not found`` when the next
process calls it), and so, at times, does one that reuses code the process loaded from it (the eager rows'
pieces). A kept executable that fails to run is therefore built again, so a bad file costs time, never a row.
Timing workers never use this cache (their compile times are real compiles), nor does a run that verifies a
user's loss (its source is not in the key).
"""

from __future__ import annotations

import hashlib
import inspect
import os
import pickle
import platform
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any


def signature(args: Sequence[Any]) -> tuple[tuple[tuple[int, ...], str] | None, ...]:
    """Each argument's (shape, dtype), None for a missing one: what a jitted call is specialised on here."""
    return tuple(None if a is None else (tuple(a.shape), str(a.dtype)) for a in args)


def beside(xla_cache: str) -> Path:
    """Where the executables live: beside JAX's persistent cache (``~/.cache/ce-harness/xla-executables``)."""
    path = Path(xla_cache)
    return path.with_name(path.name + "-executables")


class ExecutableCache:
    """Executables by key, in memory for this process and on disk (`directory`) for the next run.

    Args:
      jax: the imported module.
      distributions: those whose versions the programs depend on (jax, jaxlib, optax).
      wrappers: the functions that wrap a recipe into what is jitted: their source is part of every key.
      directory: where the executables are kept (default: `beside` JAX's persistent cache).
    """

    def __init__(
        self, jax: Any, distributions: Sequence[str], wrappers: Sequence[Callable[..., Any]] = (),
        directory: Path | None = None,
    ) -> None:  # fmt: skip
        self._jax = jax
        self._directory = directory or beside(jax.config.jax_compilation_cache_dir)
        self._salt = (*_salt(jax, distributions), tuple(inspect.getsource(f) for f in wrappers))
        self._loaded: dict[str, Any] = {}

    def call(self, key: Any, jitted: Callable[..., Any], args: Sequence[Any]) -> Any:
        """``jitted(*args)``, run by the executable kept for (`key`, the arguments' signature and device).

        `key` is any value with a stable repr that, with the signature, determines what `jitted` traces to."""
        device = next(iter(args[0].devices()))
        where = (device.platform, device.id, device.client.platform_version)
        digest = hashlib.sha256(repr((self._salt, where, key, signature(args))).encode()).hexdigest()
        executable = self._loaded.get(digest)
        if executable is None:
            kept = self._load(digest, device)
            if kept is not None:
                try:
                    out = self._jax.block_until_ready(kept(*args))  # an error shows when the result is waited for
                except Exception:  # kept whole but not runnable here: build it again, below
                    pass
                else:
                    self._loaded[digest] = kept
                    return out
            executable = self._loaded[digest] = self._store(digest, self._build(jitted, args))
        return executable(*args)

    def _build(self, jitted: Any, args: Sequence[Any]) -> Any:
        config = self._jax.config
        was = config.jax_enable_compilation_cache
        config.update("jax_enable_compilation_cache", False)  # a cache-loaded executable serialises without its code
        try:
            return jitted.lower(*args).compile()
        finally:
            config.update("jax_enable_compilation_cache", was)

    def _load(self, digest: str, device: Any) -> Any:
        from jax.experimental import serialize_executable

        try:
            with (self._directory / f"{digest}.pkl").open("rb") as f:
                payload, in_tree, out_tree = pickle.load(f)
            return serialize_executable.deserialize_and_load(payload, in_tree, out_tree, device.client, [device])
        except FileNotFoundError:
            return None
        except Exception:  # a truncated or foreign file: built again and overwritten
            return None

    def _store(self, digest: str, compiled: Any) -> Any:
        from jax.experimental import serialize_executable

        try:
            blob = pickle.dumps(serialize_executable.serialize(compiled))
        except Exception:  # not serialisable (a closed-over constant): this process keeps it
            return compiled
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._directory, prefix=".tmp-")  # whole or absent: a run may die here
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, self._directory / f"{digest}.pkl")
        except OSError:  # a read-only or full disk: the run goes on without keeping it
            pass
        return compiled


def _salt(jax: Any, distributions: Sequence[str]) -> tuple[Any, ...]:
    versions = []
    for name in distributions:
        try:
            versions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            versions.append((name, None))
    return (
        sys.version, platform.machine(), tuple(versions), _cpu(), os.environ.get("XLA_FLAGS", ""),
        bool(jax.config.jax_enable_x64),
    )  # fmt: skip


def _cpu() -> str:
    """The host CPU's model and feature flags (Linux), hashed: what XLA compiled the code for."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    lines = sorted({line for line in text.splitlines() if line.startswith(("model name", "flags"))})
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
