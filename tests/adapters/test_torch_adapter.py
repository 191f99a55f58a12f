"""PyTorch against the reference on every default case; its documented differences pinned."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

from adapters.torch_adapter import ADAPTER
from cases.generator import default_cases

CASES = [c for c in default_cases() if c.kind != "linear"]  # the linear kind: tests/adapters/test_linear_heads.py


@pytest.fixture(scope="module")
def rows(judged) -> list[dict]:
    return [r.row | {"tag": r.case.tag} for r in judged(ADAPTER, CASES)]


def short(row: dict) -> str:
    return f"[{row['case_id']} {row['api'].split('.')[-1]} {row['recipe']}: value={row['value']!r} ref={row['ref_value']!r} {row['error']}]"


# Where PyTorch's own semantics are not the exact answer (the same in native and matched rows):
EXPECTED_MATCHED = {
    # BCELoss "clamps its log function outputs to be greater than or equal to -100"
    # (https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html): p=0 under t>0 gives 100, not inf.
    "p01soft": "nonfinite",
    # BCELoss's backward divides (p - t) by max(p (1 - p), 1e-12), so at p in {0, 1} the gradient
    # is 0 where the exact one is (1 - t) / (1 - p) = 1 (torch/csrc/.../Loss.cpp binary_cross_entropy_backward).
    "p01": "mismatch",
    # Probability targets compute -sum(target * log_softmax(x)) as the formula in
    # https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html reads: a masked (-inf)
    # class has target 0 and 0 * -inf = NaN. The exact loss takes 0 log 0 = 0 (the same mechanism in
    # optax: https://github.com/google-deepmind/optax/issues/896).
    "masked/prob": "nonfinite",
    # "a target value outside [0, C) raises" (IndexError: Target 10 is out of bounds): the canonical loss has
    # no value there either, and PyTorch's raise is what the harness calls canonical.
    "oob": "raised",
}


def expected(row: dict) -> str:
    key = row["tag"] + ("/prob" if row["tag"] == "masked" and row["target"] == "prob" else "")
    return EXPECTED_MATCHED.get(key, "ok")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matched_rows_agree_with_reference(rows: list[dict], dtype: str) -> None:
    mine = [r for r in rows if r["recipe"] == "matched" and r["dtype"] == dtype]
    assert len(mine) > 50
    wrong = [f"{r['outcome']} but should be {expected(r)} {short(r)}" for r in mine if r["outcome"] != expected(r)]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_runs_on_cpu(rows: list[dict], dtype: str) -> None:
    """Every API accepts half precision on CPU in this PyTorch; nothing raises."""
    mine = [r for r in rows if r["dtype"] == dtype and r["outcome"] != "unsupported"]
    raised = [short(r) for r in mine if r["outcome"] == "raised" and r["tag"] != "oob"]
    assert mine and not raised, "\n".join(raised)
    ok = sum(r["outcome"] == "ok" for r in mine)
    assert ok / len(mine) > 0.8, f"only {ok}/{len(mine)} {dtype} rows ok"


def test_probabilities_passed_to_cross_entropy_are_read_as_logits(rows: list[dict]) -> None:
    """cross_entropy applies log_softmax to its input (seed 001's mistake): the native row differs."""
    for r in rows:
        if r["api"].endswith(".cross_entropy") and r["input"] == "probs" and r["dtype"] == "float64":
            assert r["outcome"] == ("mismatch" if r["recipe"] == "native" else "ok"), short(r)
            if r["recipe"] == "native":
                assert r["value_rel_err"] > 0.1, short(r)


def test_log_probs_through_cross_entropy_keep_the_value_but_not_the_gradient(rows: list[dict]) -> None:
    """log_softmax(log p) == log p, so the value survives; the gradient is that of a renormalised loss."""
    mine = [
        r
        for r in rows
        if r["api"].endswith(".cross_entropy")
        and r["input"] == "log_probs"
        and r["recipe"] == "native"
        and r["dtype"] == "float64"
        and r["kind"] != "documented"
        and r["tag"] != "scores"
    ]  # fmt: skip (raw scores are not log-probabilities: log_softmax changes them)
    assert mine
    for r in mine:
        assert r["outcome"] == "mismatch" and r["value_rel_err"] < 1e-14 and r["grad_rel_err"] > 0.1, short(r)


def test_binary_label_smoothing_has_no_native_argument(rows: list[dict]) -> None:
    mine = [r for r in rows if r["family"] == "sigmoid" and r["label_smoothing"] > 0]
    assert mine
    for r in mine:
        if r["recipe"] == "native":
            assert r["outcome"] == "unsupported" and "label_smoothing" in r["error"], short(r)
        elif r["dtype"] in ("float64", "float32"):
            assert r["outcome"] == "ok", short(r)


def test_recipe_code_is_what_ran() -> None:
    case = next(c for c in CASES if c.kind == "smoothed" and c.spec.weighted and c.spec.ignore_index == -100)
    (native, matched) = [r for r in ADAPTER.run_case(case, "cpu")]
    assert native.recipe_code == (
        "loss = F.cross_entropy(x, y, weight=w, ignore_index=-100, label_smoothing=0.1, reduction='mean')"
    )
    assert matched.recipe_code == native.recipe_code


def test_gpu_is_unavailable_without_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present; the CPU-only path is what this checks")
    from adapters.base import Unavailable

    with pytest.raises(Unavailable, match="no GPU"):
        ADAPTER.device("gpu")


def test_compiled_timer_specialises_each_shape() -> None:
    """Every snippet is `_loss` in `<recipe>`; without dynamic=False, dynamo remembers that name and
    compiles the second shape it sees as a dynamic-shape kernel, which is not what a fresh process
    compiling that case runs (the warm-up compile made every timed case the second one)."""
    import logging

    from cases.spec import Case, LossSpec

    torch = pytest.importorskip("torch")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("torch.fx.experimental.symbolic_shapes")  # logs create_symbol per dynamic dim
    torch._logging.set_logs(dynamic=logging.INFO)  # torch's loggers do not propagate: listen on this one
    logger.addHandler(handler)
    try:
        for shape in ((4, 3), (6, 5)):
            case = Case(kind="timing", spec=LossSpec(), shape=shape)
            code = ADAPTER.apis_for(case.spec)[0].recipes(case.spec)[1].code
            call, sync = ADAPTER.timer(code, case.spec, case.inputs(), "float32", "cpu", "compiled", "forward")
            sync(call())
    finally:
        logger.removeHandler(handler)
        torch._logging.set_logs()
    symbols = [m for m in seen if "create_symbol" in m]
    assert not symbols, f"dynamic shapes in a timed compile: {symbols[:2]} [timer(shape=(6, 5), mode='compiled')]"


def test_the_isa_probe_uses_inductors_default_cache_and_leaves_the_workers_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A timing worker's compiles start from its own empty cache (TORCHINDUCTOR_CACHE_DIR); the ISA probe alone is
    made against inductor's default one, found there again after the first run, and the variable is restored."""
    from torch._inductor import cpu_vec_isa
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from adapters.torch_adapter import TorchAdapter

    seen = []
    monkeypatch.setattr(cpu_vec_isa, "valid_vec_isa_list", lambda: seen.append(os.environ["TORCHINDUCTOR_CACHE_DIR"]))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    adapter = TorchAdapter()
    adapter._probe_isa()
    adapter._probe_isa()  # once per process
    assert seen == [default_cache_dir()] and os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path)
