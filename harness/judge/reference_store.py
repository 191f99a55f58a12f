"""References that cost more to make than to read, kept on disk for a run's later frameworks.

Jobs reach a case minutes apart (one framework walks every case, then the next), so the parent's in-memory
cache (`rows.reference_cache`, a few cases) makes each reference again for every framework. That costs
little except for a linear head (`LossSpec.linear`): its reference is several float64 matrix products of
N x C x D multiply-adds and its error scales (~0.3 s a case here, nine times a run), while its arrays
(the gradients of E and [W | b] and their scales) are a few MB. `ReferenceStore` writes such a reference
once to a private temporary directory and reads it back memory-mapped, read-only: the same numbers, held
by the page cache rather than the parent.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np

from adapters.reference import Evaluation, GradRows
from harness.runner.store import atomic_write

ARRAYS = ("value", "grad", "scale", "grad_scale", "grad_w", "grad_w_scale")  # Evaluation's array fields


class ReferenceStore:
    """One run's kept references, by case id, in a directory removed with the store (or at exit)."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="ce-harness-references-")
        self.path = Path(self._dir.name)

    @staticmethod
    def keeps(ev: Evaluation) -> bool:
        """A reference worth keeping: a linear head's (`ev.grad_w` set), whose arrays are all arrays (a lazy
        `GradRows` is remade from the inputs when read, and cheap to make again)."""
        return ev.grad_w is not None and not any(isinstance(getattr(ev, f), GradRows) for f in ARRAYS)

    def get(self, case_id: str) -> Evaluation | None:
        """The kept reference of `case_id` (read-only memory-mapped arrays), or None."""
        meta = self.path / f"{case_id}.json"
        if not meta.is_file():
            return None
        fields = json.loads(meta.read_text())
        arrays = {f: np.load(self.path / f"{case_id}.{f}.npy", mmap_mode="r") for f in fields["arrays"]}
        return Evaluation(**{f: arrays.get(f) for f in ARRAYS}, undefined=fields["undefined"])

    def put(self, case_id: str, ev: Evaluation) -> None:
        """Keep `ev` (if `keeps` says so). Each file is written whole under a temporary name and renamed, the index
        last: a reader (another job's thread) sees the whole reference or none of it."""
        if not self.keeps(ev):
            return
        present = [f for f in ARRAYS if getattr(ev, f) is not None]
        for f in present:
            npy = io.BytesIO()
            np.save(npy, np.asarray(getattr(ev, f)))
            atomic_write(self.path / f"{case_id}.{f}.npy", npy.getvalue())
        index = {"arrays": present, "undefined": ev.undefined}
        atomic_write(self.path / f"{case_id}.json", json.dumps(index).encode())

    def close(self) -> None:
        self._dir.cleanup()
