"""PORTING.md (issue 8): its snippets, run as written, reproduce PyTorch's values."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cases.generator import default_cases
from cases.names import UsageError
from harness.render.porting import CONFIG, CONVENTIONS, porting_guide, porting_section

ROOT = Path(__file__).resolve().parents[3]
KINDS = ("multiclass", "documented", "soft")
CASES = {c.id: c for c in default_cases(KINDS, ("float32",))}
TORCH_BLOCK = re.compile(r"^\*\*PyTorch\*\* [^\n]*\n\n```python\n(.*?)\n```", re.S | re.M)
JAX_MATCHED = re.compile(
    r"^#### JAX/optax `([^`]+)`\n\nmatched [^\n]*\n(?:Why[^\n]*\n)?\n```python\n(.*?)\n```", re.S | re.M
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, dict]:
    out = tmp_path_factory.mktemp("porting") / "run"
    p = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--frameworks", "torch,jax", "--kinds", ",".join(KINDS),
         "--dtypes", "float32", "--devices", "cpu", "--timing", "off", "--quiet", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return pd.read_parquet(out / "accuracy.parquet"), json.loads((out / "env.json").read_text())


@pytest.fixture(scope="module")
def guide(run: tuple[pd.DataFrame, dict]) -> str:
    return porting_guide(*run)


def sections(guide: str) -> list[tuple[str, list[str]]]:
    """(section text, its case ids) for each configuration."""
    out = []
    for text in guide.split("\n### ")[1:]:
        line = re.search(r"^Cases \(float32\): (.*)$", text, re.M)
        assert line, text[:200]
        out.append((text, re.findall(r"`([^`]+)`", line.group(1))))
    return out


def last(a: np.ndarray) -> np.ndarray:
    """PyTorch's layout to classes last, as the TensorFlow and JAX snippets take it."""
    return np.moveaxis(a, 1, -1) if a.ndim > 2 else a


def value_of(df: pd.DataFrame, case_id: str, framework: str, api: str | None = None) -> float:
    rows = df[(df["case_id"] == case_id) & (df["framework"] == framework) & (df["recipe"] == "matched")]
    rows = rows[rows["outcome"] != "unsupported"]
    if api is not None:
        rows = rows[rows["api"] == api]
    return float(rows["value"].iloc[0])


def test_the_guide_states_its_conventions(guide: str, run: tuple[pd.DataFrame, dict]) -> None:
    assert CONVENTIONS in guide
    assert "classes on axis 1" in guide and "TensorFlow and JAX snippets take classes LAST" in guide
    assert f"PyTorch {run[1]['frameworks']['torch']['version']}" in guide
    found = sections(guide)
    configs = run[0][run[0]["dtype"] == "float32"].drop_duplicates(list(CONFIG))
    assert len(found) == len(configs)
    title = "multiclass: softmax, logits input, index targets, class weights, reduction=mean"
    weighted = next(t for t, _ in found if t.startswith(title))
    assert "Why: `weight_norm=N`: weighted (or masked) mean divided by the number of elements" in weighted
    assert "(source: https://keras.io/api/losses/)" in weighted


def test_torch_snippets_run_as_written_reproduce_pytorch(guide: str, run: tuple[pd.DataFrame, dict]) -> None:
    import torch
    import torch.nn.functional as F

    checked = 0
    for text, ids in sections(guide):
        m = TORCH_BLOCK.search(text)
        assert m, text[:300]
        for case_id in ids:
            inputs = CASES[case_id].inputs()
            x = torch.tensor(inputs.x, dtype=torch.float32)
            index = CASES[case_id].spec.target == "index"
            y = torch.tensor(inputs.target, dtype=torch.int64 if index else torch.float32)
            w = None if inputs.weight is None else torch.tensor(inputs.weight, dtype=torch.float32)
            s = None if inputs.sample_weight is None else torch.tensor(inputs.sample_weight, dtype=torch.float32)
            scope = {"torch": torch, "F": F, "x": x, "y": y, "w": w, "s": s}
            exec(m.group(1), scope)
            got = float(scope["loss"].reshape(-1)[0])
            want = value_of(run[0], case_id, "torch")
            assert got == pytest.approx(want, rel=1e-6, nan_ok=True), (case_id, m.group(1))
            checked += 1
    assert checked == len(CASES)


def test_jax_snippets_with_classes_last_reproduce_pytorch(guide: str, run: tuple[pd.DataFrame, dict]) -> None:
    import jax
    import jax.numpy as jnp
    import optax

    checked = 0
    for text, ids in sections(guide):
        for api, code in JAX_MATCHED.findall(text):
            for case_id in ids:
                case = CASES[case_id]
                inputs = case.inputs()
                x = jnp.asarray(last(inputs.x), jnp.float32)
                index = case.spec.target == "index"
                y = jnp.asarray(inputs.target, jnp.int32) if index else jnp.asarray(last(inputs.target), jnp.float32)
                w = None if inputs.weight is None else jnp.asarray(inputs.weight, jnp.float32)
                s = None if inputs.sample_weight is None else jnp.asarray(inputs.sample_weight, jnp.float32)
                scope = {"jax": jax, "jnp": jnp, "optax": optax, "x": x, "y": y, "w": w, "s": s}
                exec(code, scope)
                got = float(np.asarray(scope["loss"]).reshape(-1)[0])
                want, torch_value = value_of(run[0], case_id, "jax", api), value_of(run[0], case_id, "torch")
                assert got == pytest.approx(want, rel=1e-6, nan_ok=True), (case_id, code)
                assert got == pytest.approx(torch_value, rel=1e-5, abs=1e-6, nan_ok=True), (case_id, code)
                checked += 1
    assert checked >= len(CASES)


def test_a_section_for_one_configuration(run: tuple[pd.DataFrame, dict]) -> None:
    df = run[0]
    spec = {"kind": "multiclass", "family": "softmax", "input": "logits", "target": "index", "weighted": True,
            "sample_weighted": False, "ignore_index": None, "label_smoothing": 0.0, "reduction": "mean"}  # fmt: skip
    text = porting_section(df, "pytorch", "optax", spec)
    assert text.startswith("Porting from PyTorch to JAX/optax.") and "classes LAST" in text
    assert len(re.findall(r"^### ", text, re.M)) == 1, "one configuration"
    assert "loss = F.cross_entropy(x, y, weight=w, reduction='mean')" in text
    assert "#### JAX/optax `optax.losses.softmax_cross_entropy_with_integer_labels`" in text
    assert "TensorFlow" not in text
    assert "_No rows match" in porting_section(df, "torch", "jax", {"reduction": "nonsense"})
    with pytest.raises(UsageError, match=r"^Expected framework in"):
        porting_section(df, "torch", "mxnet", spec)
