"""adapters/jax_executables.py: a kept executable computes the jit call's bits, in the next process too.

Each scenario runs in fresh interpreters (a kept executable's worth is in the next process; JAX's persistent cache
is process-wide configuration): ~10 s on 2 cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax", reason="jax is not installed (pip install -e '.[jax]')")
pytest.importorskip("optax", reason="optax is not installed (pip install -e '.[jax]')")

ROOT = Path(__file__).resolve().parents[2]

# One process: evaluate a recipe compiled (bfloat16: XLA fuses the converts, the case that broke a cache-loaded
# executable) through the JAX adapter; print the bits of value and gradient, and how many executables are kept.
SCRIPT = r"""
import json, sys
from pathlib import Path
import jax
cache, xla = sys.argv[1], sys.argv[2]
if xla:
    jax.config.update("jax_compilation_cache_dir", xla)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
from adapters.jax_adapter import ADAPTER, INTEGER
from adapters.base import make_function
from cases.generator import default_cases
case = next(c for c in default_cases(("multiclass",), ("bfloat16",)) if c.id == "multiclass-n64-c10-bf16-mean-s0")
api = next(a for a in ADAPTER.apis_for(case.spec) if a.name == INTEGER)
code = api.recipes(case.spec)[1].code
inputs = ADAPTER.arrange("matched", case.spec, case.inputs())[0]
ADAPTER.namespace()
import adapters.jax_executables as je
built = []
build = je.ExecutableCache._build
je.ExecutableCache._build = lambda self, *a: built.append(1) or build(self, *a)
if sys.argv[3] == "poison":  # as the cache was first written: XLA's persistent cache left on for the build
    je.ExecutableCache._build = lambda self, jitted, args: built.append(1) or jitted.lower(*args).compile()
if cache:
    orig = je.ExecutableCache.__init__
    def init(self, *a, **k):
        orig(self, *a, **{**k, "directory": Path(cache)})
    je.ExecutableCache.__init__ = init
fn = make_function(code, ADAPTER.namespace()) if sys.argv[3] == "function" else ADAPTER.compile(code)
value, grad, _ = ADAPTER.evaluate(fn, case.spec, inputs, case.dtype, "cpu", "compiled")
kept = len(list(Path(cache).glob("*.pkl"))) if cache else 0
print(json.dumps({"value": value.tobytes().hex(), "grad": grad.tobytes().hex(), "kept": kept, "built": len(built)}))
"""


def _evaluate(cache: Path | str, xla: Path | str = "", how: str = "snippet") -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(cache), str(xla), how], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_kept_executable_gives_the_jit_calls_bits_in_the_next_process(tmp_path: Path) -> None:
    """Built with JAX's persistent cache warm (an executable loaded from it serialises without its code: the next
    process would raise NOT_FOUND), kept, loaded and run by the next process without building it again: the same
    bits as a plain jax.jit call."""
    xla = tmp_path / "xla"
    plain = _evaluate("", "", how="function")  # not made by Adapter.compile: jitted as usual, nothing kept
    assert plain["kept"] == 0
    _evaluate("", xla, how="function")  # fills JAX's persistent cache only
    assert any(xla.iterdir())
    first = _evaluate(tmp_path / "kept", xla)
    assert (first["kept"], first["built"]) == (1, 1)
    second = _evaluate(tmp_path / "kept", xla)
    assert second["built"] == 0, "the kept executable ran as loaded"
    assert (second["value"], second["grad"]) == (first["value"], first["grad"]) == (plain["value"], plain["grad"])


def test_an_executable_that_does_not_run_is_built_again(tmp_path: Path) -> None:
    """A kept executable serialised from JAX's persistent cache (no code: NOT_FOUND when run): the next process
    builds it again, with the jit call's numbers, and keeps the whole one."""
    xla, kept = tmp_path / "xla", tmp_path / "kept"
    want = _evaluate("", xla, how="function")
    assert _evaluate(kept, xla, how="poison")["built"] == 1
    got = _evaluate(kept, xla)
    assert (got["value"], got["grad"], got["built"]) == (want["value"], want["grad"], 1)
    assert _evaluate(kept, xla)["built"] == 0


def test_a_damaged_file_is_built_again(tmp_path: Path) -> None:
    """A truncated file: the row's numbers are the jit call's, and the file is replaced by a whole one."""
    kept = tmp_path / "kept"
    want = _evaluate(kept)
    (path,) = kept.glob("*.pkl")
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    got = _evaluate(kept)
    assert (got["value"], got["grad"], got["built"]) == (want["value"], want["grad"], 1)
    assert _evaluate(kept)["built"] == 0, "the file was replaced by a whole one"


def test_the_key_holds_the_code_the_signature_and_the_wrappers(tmp_path: Path) -> None:
    """Another snippet, another shape or dtype, or a change in the wrapping functions' source: another executable."""
    import jax
    import jax.numpy as jnp

    from adapters.jax_executables import ExecutableCache, signature

    def wrap(f):
        return jax.jit(f)

    def other(f):  # the same behaviour, other source
        return jax.jit(f)

    calls: list[str] = []

    def build(tag: str, f):
        jitted = jax.jit(f)

        class Counting:
            def lower(self, *args):
                calls.append(tag)
                return jitted.lower(*args)

        return Counting()

    cache = ExecutableCache(jax, ("jax",), (wrap,), directory=tmp_path)
    x, x2 = jnp.ones((3, 2), jnp.float32), jnp.ones((4, 2), jnp.float32)
    double = build("double", lambda a: a * 2)
    np.testing.assert_array_equal(cache.call("a * 2", double, (x,)), np.full((3, 2), 2.0))
    cache.call("a * 2", double, (x,))
    assert calls == ["double"], "a second call in the process is served from memory"
    cache.call("a * 2", double, (x2,))
    cache.call("a * 2", double, (x.astype(jnp.float64) if jax.config.jax_enable_x64 else x.astype(jnp.float16),))
    cache.call("a * 3", build("triple", lambda a: a * 3), (x,))
    assert calls == ["double", "double", "double", "triple"]
    again = ExecutableCache(jax, ("jax",), (wrap,), directory=tmp_path)
    np.testing.assert_array_equal(again.call("a * 2", double, (x,)), np.full((3, 2), 2.0))
    assert len(calls) == 4, "a new cache with the same wrappers loads the kept file"
    changed = ExecutableCache(jax, ("jax",), (other,), directory=tmp_path)
    changed.call("a * 2", double, (x,))
    assert len(calls) == 5, "other wrappers' source: built again"
    assert signature((x, None)) == (((3, 2), "float32"), None)
