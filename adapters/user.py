"""A user's own loss function as one API of its framework (`harness.verify`).

The function ``fn(x, y, w) -> loss`` gets framework tensors: ``x`` the input (classes on axis 1, or last
for ``class_axis=-1``), ``y`` the target, ``w`` the class weights (pos_weight for the sigmoid family) or
None. It travels to the framework's worker pickled: by reference when it lives in an importable module,
by value (cloudpickle) when it was defined in ``__main__`` (a plain script, a heredoc, a notebook) or is a
lambda or closure, so the worker never re-runs the caller's script. A ``"module:function"`` string is
imported in the worker only, so the caller's process never imports the user's framework.
"""

from __future__ import annotations

import importlib
import importlib.util
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.base import Api, Recipe
from cases.names import UsageError
from cases.spec import LossSpec

RECIPE = "user"  # the recipe column of a verified function's rows
CLASS_AXES = (1, -1)


def _reference(text: str) -> tuple[str, str]:
    """(module, qualified name) of ``"module:function"``, or a one-line UsageError."""
    module, sep, qualname = text.partition(":")
    if not sep or not module or not qualname:
        raise UsageError(f"Expected MODULE:FUNCTION (e.g. my_losses:ce). Received: {text!r}")
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as e:
        found, why = None, f"{type(e).__name__}: {e}"
    else:
        why = "no such module on sys.path"
    if found is None:
        raise UsageError(f"Expected an importable module in {text!r}. Received: module {module!r} ({why})")
    return module, qualname


def _pickled(fn: Callable[..., Any]) -> bytes:
    """`fn` pickled: cloudpickle pickles a function by value only where the worker could not import it."""
    try:
        import cloudpickle
    except ImportError:  # importable functions still travel by reference
        dumps: Callable[[Any], bytes] = pickle.dumps
    else:
        dumps = cloudpickle.dumps
    try:
        return dumps(fn)
    except Exception as e:
        why = f"{type(e).__name__}: {e}".splitlines()[0]
        raise UsageError(f"Expected a function the worker can receive (picklable). Received: {fn!r} ({why})") from None


@dataclass(frozen=True)
class UserLoss:
    """A user's loss function, ready to send to a worker.

    Attributes:
      name: ``module.qualname`` (the rows' api column).
      class_axis: 1 (PyTorch's layout) or -1 (classes last: the harness moves them before the call).
      reference: ``(module, qualname)`` of a function given as ``"module:function"``.
      payload: the pickled function otherwise.
    """

    name: str
    class_axis: int = 1
    reference: tuple[str, str] | None = None
    payload: bytes = field(default=b"", repr=False)

    @classmethod
    def of(cls, fn: Callable[..., Any] | str, class_axis: int = 1) -> UserLoss:
        """`fn` (a callable or ``"module:function"``), validated; a one-line UsageError if it cannot be used."""
        if class_axis not in CLASS_AXES:
            raise UsageError(f"Expected class_axis in {{1, -1}}. Received: class_axis={class_axis!r}")
        if isinstance(fn, str):
            module, qualname = _reference(fn)
            return cls(f"{module}.{qualname}", class_axis, reference=(module, qualname))
        if not callable(fn):
            raise UsageError(f"Expected a function fn(x, y, w) -> loss or 'module:function'. Received: {fn!r}")
        module = getattr(fn, "__module__", None) or "__main__"
        qualname = getattr(fn, "__qualname__", None) or type(fn).__name__
        return cls(f"{module}.{qualname}", class_axis, payload=_pickled(fn))

    def load(self) -> Callable[..., Any]:
        """The function itself (in the worker, after its framework was set up)."""
        if self.reference is None:
            return pickle.loads(self.payload)
        module, qualname = self.reference
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        if not callable(obj):
            raise TypeError(f"{self.name} is not callable: {type(obj).__name__}")
        return obj

    @property
    def code(self) -> str:
        """The snippet that calls it (recipe_code): the function is ``user_loss`` in its namespace."""
        return f"loss = user_loss(x, y, w)  # {self.name}"

    def api(self, reason: str | None = None) -> Api:
        """The one API a verifying adapter offers: every spec, one recipe (``user``), or why it cannot run."""
        recipe = Recipe(RECIPE, None, reason) if reason else Recipe(RECIPE, self.code)

        def recipes(spec: LossSpec) -> tuple[Recipe, ...]:
            return (recipe,)

        return Api(self.name, lambda spec: True, recipes)  # type: ignore[arg-type]
