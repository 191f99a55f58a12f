"""Keras 3 on its JAX or PyTorch backend: keras.losses.CategoricalCrossentropy, SparseCategoricalCrossentropy and
BinaryCrossentropy, with the recipes of adapters/keras_recipes.py in ``keras.ops`` spelling.

Keras reads ``KERAS_BACKEND`` once, at its first import, so each backend is its own framework (``keras_jax``,
``keras_torch``) and runs in its own worker process; `setup` sets the variable before importing keras and
refuses (`Unavailable`) where keras was already imported with another backend. Layout as the TensorFlow
adapter's: classes LAST for matched snippets (`classes_last`), index targets int32 (JAX) or int64 (PyTorch).

What differs from Keras on TensorFlow (pinned in tests/adapters/test_keras_backends.py):

- CategoricalCrossentropy is ``-sum(labels * log_softmax(x))`` (keras/src/backend/{jax,torch}/nn.py): its
  gradient is exact for labels that do not sum to 1, where TensorFlow's kernel assumes they do.
- A label outside [0, C) (ignore_index passed straight in): JAX's one_hot makes it a zero row (loss 0, gradient
  0); PyTorch's backend hands it to F.cross_entropy, which raises on the CPU except for -100, F.cross_entropy's
  own default ignore_index (a silent loss of 0), and reads memory out of range on MPS (keras-team/keras#23664).
- Keras' type promotion maps float64 to float32 off TensorFlow (keras-team/keras#23223): ``ops.mean``, and so
  BinaryCrossentropy's mean over the last axis, compute float64 inputs in float32 on both backends, even with
  ``dtype='float64'``; on PyTorch every Keras mean reduction returns float32 too. The matched recipes avoid
  both (adapters/keras_recipes.py).
- JAX's ``ops.take`` fills NaN for an index outside [-C, C): class weights ``ops.take(w, y)`` of an ignored
  label -100 make the loss NaN (PyTorch's raises).

`evaluate` takes d loss / dx with jax.grad or torch autograd (of the sum for reduction 'none'). JAX runs
``compiled`` first (jax.jit, as Keras' fit runs a loss on JAX: ``jit_compile='auto'``), its executables kept
between runs (adapters/jax_executables.py), and eager (op by op) on the mode cases. The two differ where XLA
compiles the masking away: -inf logits with index targets, and NaN class weights of ignored labels, give NaN
op by op and finite numbers (or a NaN value with a finite gradient) under jit.
PyTorch runs eager only: torch.compile of a Keras loss took 13 s cold and 6 s per new dtype here. The Keras
mixed-precision policies are set for the call, as the TensorFlow adapter does (Keras' losses compute in floatx
whatever the policy).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from adapters.base import Adapter, Unavailable, cache_home, make_function
from adapters.jax_executables import ExecutableCache
from adapters.keras_recipes import OPS_JAX, OPS_TORCH, KerasRecipes, global_policy
from cases.spec import Inputs, LossSpec

BACKENDS = ("jax", "torch")


class KerasBackendAdapter(Adapter):
    """Keras 3 on `backend` (``jax`` or ``torch``); the framework is named ``keras_<backend>``."""

    classes_last = True
    layout = "classes LAST: pass np.moveaxis(x, 1, -1) (and probability targets likewise)"
    names = "`keras`, `ops` (keras.ops)"
    distributions = ("keras",)
    policies = ("mixed_bfloat16", "mixed_float16")

    def __init__(self, backend: str) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"Expected backend in {{{', '.join(BACKENDS)}}}. Received: backend={backend!r}")
        super().__init__()
        self.backend = backend
        self.name = f"keras_{backend}"
        self.recipes: KerasRecipes = OPS_JAX if backend == "jax" else OPS_TORCH
        self.apis = self.recipes.apis
        self.modules = ("keras", backend) if backend == "torch" else ("keras", "jax", "jaxlib")
        self.also = ("jax", "jaxlib") if backend == "jax" else ("torch",)
        self.install_hint = f"pip install -e '.[{backend}]' keras -c constraints.txt"
        # JAX: compiled first, as Keras' fit runs a loss on JAX (module docstring)
        self.modes = ("compiled", "eager") if backend == "jax" else ("eager",)
        # JAX: a first run compiles each (recipe, shape, dtype), ~0.3 s: split across the job slots, as JAX's own
        self.compile_bound = backend == "jax"
        self._jitted: dict[tuple[Callable[..., Any], str], Callable[..., Any]] = {}  # (recipe, policy) -> jit
        self._executables: ExecutableCache | None = None  # compiled programs kept between runs (JAX)

    # -- the framework ---------------------------------------------------------------------------------
    def setup(self) -> dict[str, Any]:
        """keras and keras.ops on this adapter's backend (float64 enabled for JAX)."""
        if "keras" in sys.modules:  # KERAS_BACKEND was read at that import
            found = sys.modules["keras"].backend.backend()
            if found != self.backend:
                raise Unavailable(
                    f"keras was already imported in this process with the {found!r} backend; {self.name} needs "
                    f"a process of its own (KERAS_BACKEND={self.backend} is read at keras' first import)"
                )
        os.environ["KERAS_BACKEND"] = self.backend
        if self.backend == "jax":
            os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # read at the first jax import
            import jax

            jax.config.update("jax_enable_x64", True)  # float64 cases; this worker's process only
        import keras
        from keras import ops

        if keras.backend.backend() != self.backend:
            raise Unavailable(f"keras runs on the {keras.backend.backend()!r} backend, not {self.backend!r}")
        return {"keras": keras, "ops": ops}

    def _module(self) -> Any:
        """jax or torch, imported by `setup`."""
        self.namespace()
        return sys.modules[self.backend]

    def accumulated_mean(self, spec: LossSpec) -> str:
        if spec.weighted:
            y = "y" if spec.ignore_index is None else "ops.where(keep, y, 0)"
            weight = f"ops.take(w, {y})"
        else:
            weight = "ops.ones_like(y, total.dtype)"
        if spec.ignore_index is None:
            return f"loss = total / ops.sum(ops.cast({weight}, total.dtype))"
        kept = f"ops.where(keep, ops.cast({weight}, total.dtype), 0)"
        return f"keep = y != {spec.ignore_index}\nloss = total / ops.sum({kept})"

    def no_gpu(self) -> str | None:
        mod = self._module()
        if self.backend == "torch":
            return None if mod.cuda.is_available() else "torch.cuda.is_available() is False"
        try:
            mod.devices("gpu")
        except RuntimeError as e:
            return str(e).splitlines()[0]
        return None

    def threads(self) -> int | None:
        return self._module().get_num_threads() if self.backend == "torch" else None

    def isa(self, device: str) -> str | None:
        mod = self._module()
        if self.backend == "torch":
            if device.startswith("cuda"):
                return mod.cuda.get_device_name(device)
            return f"torch.backends.cpu.get_cpu_capability() = {mod.backends.cpu.get_cpu_capability()}"
        if device != "cpu":
            return mod.devices("gpu")[0].device_kind
        return "XLA CPU: the host's features (LLVM)"

    # -- staging and running -----------------------------------------------------------------------------
    def _stage(self, spec: LossSpec, inputs: Inputs, dtype: str, device: str, grad: bool = False) -> tuple[Any, ...]:
        """x, y, w, s as the backend's arrays in `dtype` on `device` (exact: inputs are representable in it)."""
        mod = self._module()
        if self.backend == "torch":
            tdt = getattr(mod, dtype)
            x = mod.as_tensor(inputs.x, dtype=tdt, device=device).requires_grad_(grad)
            ydt = mod.int64 if spec.target == "index" else tdt
            y = mod.tensor(inputs.target, dtype=ydt, device=device)
            w, s = (None if a is None else mod.tensor(a, dtype=tdt, device=device)
                    for a in (inputs.weight, inputs.sample_weight))  # fmt: skip
            return x, y, w, s
        platform, _, index = device.partition(":")
        found = [d for d in mod.devices("cpu" if platform == "cpu" else "gpu") if d.id == int(index or 0)]
        if not found:
            raise Unavailable(f"no JAX device {device!r} here")
        jdt = mod.numpy.dtype(getattr(mod.numpy, dtype))

        def put(a: np.ndarray, adt: Any) -> Any:
            return mod.device_put(np.asarray(a).astype(adt, copy=False), found[0])

        y = put(inputs.target, np.int32) if spec.target == "index" else put(inputs.target, jdt)
        w, s = (None if a is None else put(a, jdt) for a in (inputs.weight, inputs.sample_weight))
        return put(inputs.x, jdt), y, w, s

    def _policy(self, policy: str) -> contextlib.AbstractContextManager[Any]:
        if policy == "none":
            return contextlib.nullcontext()
        if policy not in self.policies:
            raise Unavailable(f"{self.name} has no policy {policy!r}")
        return global_policy(self.namespace()["keras"], policy)

    def _keras_device(self, device: str) -> contextlib.AbstractContextManager[Any]:
        """Keras' own device scope, so that tensors Keras makes inside a loss sit beside the inputs."""
        return self.namespace()["keras"].device("cpu:0" if device == "cpu" else "gpu:" + device.partition(":")[2])

    def evaluate(
        self, fn: Callable[..., Any], spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str = "eager",
        policy: str = "none",
    ) -> tuple[np.ndarray, np.ndarray, str]:  # fmt: skip
        if mode not in self.modes:
            raise Unavailable(f"{self.name} has no {mode!r} mode (modes: {', '.join(self.modes)})")
        with self._policy(policy), self._keras_device(device):
            if self.backend == "torch":
                return self._evaluate_torch(fn, spec, inputs, dtype, device)
            return self._evaluate_jax(fn, spec, inputs, dtype, device, mode, policy)

    def _evaluate_torch(
        self, fn: Callable[..., Any], spec: LossSpec, inputs: Inputs, dtype: str, device: str
    ) -> tuple[np.ndarray, np.ndarray, str]:
        torch = self._module()
        x, y, w, s = self._stage(spec, inputs, dtype, device, grad=True)
        loss = fn(x, y, w, s)
        (loss.sum() if loss.dim() else loss).backward()
        grad = x.grad if x.grad is not None else torch.zeros_like(x)
        value = loss.detach().to(device="cpu", dtype=torch.float64).numpy()
        return value, grad.to(device="cpu", dtype=torch.float64).numpy(), str(loss.dtype).removeprefix("torch.")

    def _evaluate_jax(
        self, fn: Callable[..., Any], spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str, policy: str
    ) -> tuple[np.ndarray, np.ndarray, str]:
        jax = self._module()
        self._enable_compilation_cache()
        x, y, w, s = self._stage(spec, inputs, dtype, device)
        if mode == "compiled":
            (_, loss), grad = self._compiled(fn, policy, (x, y, w, s))
        else:  # op by op, as a loss called outside a jitted step runs (jnp's own jitted functions stay jitted)
            (_, loss), grad = jax.value_and_grad(_summed(fn), has_aux=True)(x, y, w, s)
        value = np.asarray(loss).astype(np.float64, copy=False)
        return value, np.asarray(grad).astype(np.float64, copy=False), str(loss.dtype)

    def _compiled(self, fn: Callable[..., Any], policy: str, args: tuple[Any, ...]) -> tuple[Any, Any]:
        """jax.jit(value_and_grad) of `fn` on `args`, by the executable a run before compiled for the same recipe code,
        policy, shapes and dtypes (adapters/jax_executables.py); a user's loss is jitted as usual."""
        jax = self._module()
        key = (fn, policy)  # one jit per (recipe, policy): a trace reads Keras' global policy; jit's cache would not
        if key not in self._jitted:
            self._jitted[key] = jax.jit(jax.value_and_grad(_summed(fn), has_aux=True))
        code = self.code_of(fn)
        if code is None or self.user is not None:
            return self._jitted[key](*args)
        if self._executables is None:
            wrappers = (make_function, _summed, KerasBackendAdapter._compiled)
            self._executables = ExecutableCache(jax, self.modules, wrappers)
        return self._executables.call(("keras value_and_grad", code, policy), self._jitted[key], args)

    def _enable_compilation_cache(self) -> None:
        """The JAX adapter's persistent XLA cache (~/.cache/ce-harness/xla): a cached executable is the same
        program; timing workers never call this, so their compile times are real compiles."""
        jax = self._module()
        if jax.config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
            return
        jax.config.update("jax_compilation_cache_dir", os.path.join(cache_home(), "xla"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

    def timer(
        self, code: str, spec: LossSpec, inputs: Inputs, dtype: str, device: str, mode: str, pass_: str
    ) -> tuple[Callable[[], Any], Callable[[Any], None]]:
        """Eager calls, or (JAX) a fresh jax.jit whose first call compiles; the gradient with respect to x only."""
        if mode not in self.modes:
            raise Unavailable(f"{self.name} has no {mode!r} mode (modes: {', '.join(self.modes)})")
        mod = self._module()
        fn = make_function(code, self.namespace())  # not the cached one: a compiler cache keyed by it starts empty
        x, y, w, s = self._stage(spec, inputs, dtype, device, grad=pass_ == "forward_backward")
        if self.backend == "torch":
            if pass_ == "forward":

                def call() -> Any:
                    with mod.no_grad(), self._keras_device(device):
                        return fn(x, y, w, s)
            else:

                def call() -> Any:
                    with self._keras_device(device):
                        loss = fn(x, y, w, s)
                    return mod.autograd.grad(loss.sum() if loss.dim() else loss, x)[0]

            sync = (lambda result: mod.cuda.synchronize(device)) if device.startswith("cuda") else (lambda result: None)
            return call, sync
        step = fn if pass_ == "forward" else mod.grad(lambda *a: _summed(fn)(*a)[0])
        if mode == "compiled":
            step = mod.jit(step)

        def run() -> Any:
            with self._keras_device(device):
                return step(x, y, w, s)

        return run, mod.block_until_ready


def _summed(fn: Callable[..., Any]) -> Callable[..., tuple[Any, Any]]:
    """`fn` as (the value to differentiate, the loss): for `none`, the gradient of the sum."""

    def total(x: Any, y: Any, w: Any, s: Any) -> tuple[Any, Any]:
        loss = fn(x, y, w, s)
        return (loss.sum() if loss.ndim else loss), loss

    return total
