"""References kept on disk for a run's later frameworks (harness/judge/reference_store.py): the same bits back,
read-only, only a linear head's, and rows judged from a kept reference equal rows judged from a fresh one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from adapters import reference
from adapters.base import Result
from cases.spec import Case, LossSpec
from harness.judge.reference_store import ARRAYS, ReferenceStore
from harness.judge.rows import accuracy_row, reference_cache

LINEAR = Case("linear", LossSpec(linear=True, bias=True, ignore_index=-100), (16, 300), "float32", hidden=8)


def test_a_kept_reference_reads_back_bit_for_bit_and_read_only() -> None:
    store = ReferenceStore()
    ev = reference.evaluate(LINEAR.spec, LINEAR.inputs())
    assert store.get(LINEAR.id) is None
    store.put(LINEAR.id, ev)
    back = store.get(LINEAR.id)
    for f in ARRAYS:
        np.testing.assert_array_equal(getattr(back, f), getattr(ev, f), err_msg=f)
    assert back.undefined == ev.undefined
    with pytest.raises(ValueError, match="read-only"):
        back.grad_w[0, 0] = 1.0
    store.close()
    assert not store.path.exists()


def test_only_a_linear_heads_reference_is_kept() -> None:
    """A softmax loss' reference costs milliseconds and a large one is lazy (`GradRows`): made again, not kept."""
    store = ReferenceStore()
    case = Case("multiclass", LossSpec(), (8, 32000), "float32")
    lazy = reference.evaluate(case.spec, case.inputs(), lazy=True)
    for c, ev in ((case, lazy), (Case("multiclass", LossSpec(), (4, 3)), reference.evaluate(LossSpec(), Case(
            "multiclass", LossSpec(), (4, 3)).inputs()))):  # fmt: skip
        store.put(c.id, ev)
        assert store.get(c.id) is None
    store.put(LINEAR.id, reference.evaluate(LINEAR.spec, LINEAR.inputs()))
    assert store.get(LINEAR.id) is not None


def test_rows_from_a_kept_reference_equal_rows_from_a_fresh_one() -> None:
    """The run's cache reads the second framework's reference from the store: its rows (numbers, outcome and
    explanation of a wrong result alike) are those a fresh reference gives."""
    store = ReferenceStore()
    kept, fresh = reference_cache(size=1, store=store), reference_cache(size=1)
    inputs, ev = kept(LINEAR)
    other = Case("linear", dataclasses.replace(LINEAR.spec, reduction="sum"), LINEAR.shape, hidden=8)
    kept(other)  # LINEAR leaves the in-memory cache: the next read is the store's
    assert store.get(LINEAR.id) is not None
    wrong = reference.evaluate(dataclasses.replace(LINEAR.spec, reduction="sum"), inputs, "float32")
    for result in (Result("api", "native", "", None, value=np.asarray(ev.value), grad=np.asarray(ev.grad),
                          grad_w=np.asarray(ev.grad_w)),
                   Result("api", "native", "", None, value=wrong.value, grad=wrong.grad, grad_w=wrong.grad_w)):  # fmt: skip
        rows = [accuracy_row("r", LINEAR, "torch", "v", "cpu", result, get(LINEAR)[1], inputs=get(LINEAR)[0],
                             facts={}) for get in (kept, fresh)]  # fmt: skip
        assert pd.Series(rows[0]).equals(pd.Series(rows[1])), (rows[0], rows[1])
    assert (rows[0]["outcome"], rows[0]["explanation"]) == ("mismatch", "reduction=sum")  # the wrong result's
