from __future__ import annotations

import numpy as np

from cases.generator import default_cases
from cases.names import DTYPES, KINDS


def test_default_set_covers_every_kind_and_dtype_with_unique_ids() -> None:
    cases = default_cases()
    assert {c.kind for c in cases} == set(KINDS)
    assert {c.dtype for c in cases} == set(DTYPES)
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids))


def test_required_variants_are_present() -> None:
    cases = default_cases(dtypes=("float32",))
    specs = [(c.kind, c.spec, c.shape, c.tag) for c in cases]
    assert {s.ignore_index for _, s, _, _ in specs} >= {-100, -1, 13}  # default, negative, >= C
    assert any(t == "allignored" for *_, t in specs)
    assert {len(shape) for _, _, shape, _ in specs} >= {2, 3, 5}  # (N, C), (N, C, d1), (N, C, d1, d2, d3)
    assert {s.input for _, s, _, _ in specs} == {"logits", "log_probs", "probs"}
    assert any(shape[1] == 32000 for _, _, shape, _ in specs) and any(shape[1] == 2 for _, _, shape, _ in specs)
    assert {"big", "masked", "unnormalised", "p01"} <= {t for *_, t in specs}
    assert {s.reduction for _, s, _, _ in specs} == {"none", "sum", "mean"}
    smoothed = [s for k, s, _, _ in specs if k == "smoothed"]
    assert any(s.weighted and s.ignore_index is not None for s in smoothed)
    assert any(s.target == "prob" for s in smoothed) and any(s.family == "sigmoid" for s in smoothed)


def test_inputs_are_deterministic_and_respect_the_data_contract() -> None:
    for case in default_cases(dtypes=("float16",), seed=7):
        a, b = case.inputs(), case.inputs()
        assert a.x.tobytes() == b.x.tobytes() and a.target.tobytes() == b.target.tobytes(), case.id
        assert np.array_equal(a.x, a.x.astype(np.float16).astype(np.float64)), f"x not representable [{case.id}]"
        if case.spec.target == "index":
            t = a.target
            ok = (t >= 0) & (t < case.n_classes)
            if case.spec.ignore_index is not None:
                ok |= t == case.spec.ignore_index
            assert ok.all() or case.tag == "oob", f"labels out of range [{case.id}]"
            assert case.tag != "oob" or not ok.all(), f"an oob case without labels outside [0, C) [{case.id}]"


def test_seeds_change_the_data() -> None:
    a = default_cases(kinds=("multiclass",), dtypes=("float64",), seed=0)[0].inputs().x
    b = default_cases(kinds=("multiclass",), dtypes=("float64",), seed=1)[0].inputs().x
    assert not np.array_equal(a, b)
