"""PORTING.md (issue 8): its snippets, run as written, reproduce PyTorch's values."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cases.generator import default_cases
from cases.names import UsageError
from harness.render.porting import CONFIG, CONVENTIONS, folds, porting_guide, porting_section

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


FOLDED = re.compile(r"^- reduction=(\w+): the same with [^\n]*; cases \(float32\): (.*)$", re.M)


def with_reduction(text: str, reduction: str) -> str:
    """A mean section's snippets as its fold line says a sum or none configuration reads them."""
    text = text.replace("reduction='mean'", f"reduction='{reduction}'")
    return text.replace(".mean()", ".sum()" if reduction == "sum" else "")


def sections(guide: str) -> list[tuple[str, list[str]]]:
    """(section text, its case ids) for each configuration; one folded into a mean section (a sum or none
    that only repeats it) with that section's snippets, the reduction changed."""
    out = []
    for text in guide.split("\n### ")[1:]:
        line = re.search(r"^Cases \(float32\): (.*)$", text, re.M)
        assert line, text[:200]
        out.append((text, re.findall(r"`([^`]+)`", line.group(1))))
        out += [(with_reduction(text, r), re.findall(r"`([^`]+)`", ids)) for r, ids in FOLDED.findall(text)]
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
    # each framework's layout and names, from its adapter
    assert "- PyTorch: classes on axis 1 (PyTorch's layout). Names in scope: `torch`, `F` (torch.nn.functional)." in guide
    assert "- JAX/optax: classes LAST: pass np.moveaxis(x, 1, -1)" in guide and 'jax.config.update("jax_enable_x64", True)' in guide
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


def test_float64_jax_sections_say_to_enable_x64(run: tuple[pd.DataFrame, dict], guide: str) -> None:
    """Without jax_enable_x64 JAX makes float64 arrays float32 without a word: a float64 port must say so."""
    df = run[0]
    enable = 'jax.config.update("jax_enable_x64", True)'
    assert enable in porting_section(df[df["dtype"] == "float64"], "torch", "jax")
    assert enable in porting_section(df[df["dtype"] == "float64"], "jax", "torch")
    assert enable not in porting_section(df[df["dtype"] == "float32"], "torch", "jax")
    assert enable not in porting_section(df[df["dtype"] == "float64"], "torch", "tensorflow")
    assert enable in guide.split("## Configurations")[0], "the guide's conventions say it once"


# -- issue 17: the index, the fold of sum/none into mean, notes said once, half precision ----------------

TORCH_CE, OPTAX = "torch.nn.functional.cross_entropy", "optax.losses.softmax_cross_entropy_with_integer_labels"
ENV = {"run_id": "r1", "cpu": "x"}


def config_rows(reduction: str, dtype: str = "float32", jax_native: dict | None = None, jax_matched: str = "",
                **config: object) -> list[dict]:  # fmt: skip
    """PyTorch and JAX rows of one configuration, all ok unless `jax_native` says otherwise."""
    case = f"multiclass-n64-c10-{dtype}-{reduction}-s0"
    reduce = {"mean": ".mean()", "sum": ".sum()", "none": ""}[reduction]
    base = {"case_id": case, "dtype": dtype, "reduction": reduction, **config}
    torch_code = f"loss = F.cross_entropy(x, y, reduction='{reduction}')"
    jax_code = f"loss = optax.losses.softmax_cross_entropy_with_integer_labels(x, y){reduce}"
    return [
        *({**base, "framework": "torch", "api": TORCH_CE, "recipe": r, "recipe_code": torch_code}
          for r in ("native", "matched")),
        {**base, "framework": "jax", "api": OPTAX, "recipe": "matched", "recipe_code": jax_matched or jax_code},
        {**base, "framework": "jax", "api": OPTAX, "recipe": "native", "recipe_code": jax_code, **(jax_native or {})},
    ]  # fmt: skip


def headings3(guide: str) -> list[str]:
    return re.findall(r"^### (.+)$", guide, flags=re.M)


def github_anchors(doc: str) -> set[str]:
    """GitHub's heading anchors (lower case, punctuation dropped, spaces to hyphens, repeats numbered)."""
    seen: dict[str, int] = {}
    out = set()
    body = re.sub(r"```.*?```", "", doc, flags=re.S)
    for text in re.findall(r"^#{1,6} (.+)$", body, flags=re.M):
        base = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        n = seen.get(base, 0)
        out.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return out


def test_a_sum_that_only_repeats_the_mean_is_folded_into_it(frame: Callable[..., pd.DataFrame]) -> None:
    guide = porting_guide(frame(*config_rows("mean"), *config_rows("sum"), *config_rows("none")), ENV)
    assert headings3(guide) == ["multiclass: softmax, logits input, index targets, reduction=mean (also sum, none)"]
    assert "- reduction=sum: the same with `reduction='sum'`, `tf.reduce_sum(...)`, `.sum()`, with the same verdicts; " \
           "cases (float32): `multiclass-n64-c10-float32-sum-s0`" in guide  # fmt: skip
    assert "cases (float32): `multiclass-n64-c10-float32-none-s0`" in guide
    index = guide.split("## Conventions")[0]
    anchor = "(#multiclass-softmax-logits-input-index-targets-reductionmean-also-sum-none)"
    for label in ("multiclass · softmax logits index, mean", "multiclass · softmax logits index, sum",
                  "multiclass · softmax logits index, none"):  # fmt: skip
        assert f"[{label}]{anchor}" in index, "the index finds a folded configuration by its label"


def test_no_fold_where_verdicts_or_snippets_differ(frame: Callable[..., pd.DataFrame]) -> None:
    nan = {"outcome": "nonfinite", "explanation": "label_oob=nan"}
    differ = frame(*config_rows("mean"), *config_rows("sum", jax_native=nan))
    assert len(headings3(porting_guide(differ, ENV))) == 2, "the sum's verdict is not the mean's"
    weighted = (
        "loss = w[y] * optax.losses.softmax_cross_entropy_with_integer_labels(x, y)\nloss = loss.sum() / w[y].sum()"
    )
    division = frame(*config_rows("mean", jax_matched=weighted), *config_rows("sum"))
    assert len(headings3(porting_guide(division, ENV))) == 2, "a weighted mean's division is not the reduction"
    mean, total = frame(*config_rows("mean")), frame(*config_rows("sum"))
    assert folds(mean, total) and folds(mean, frame(*config_rows("none")))
    assert not folds(mean, frame(*config_rows("sum", jax_native=nan)))
    mismatch = {"outcome": "mismatch", "explanation": "label_oob=nan"}
    nan_mean = frame(*config_rows("mean", jax_native=nan))
    assert folds(nan_mean, frame(*config_rows("sum", jax_native=mismatch))), "a NaN or a mismatch: it differs, so"
    half = frame(*config_rows("sum", dtype="float16", jax_native=nan))
    assert not folds(mean, pd.concat([total, half])), "half-precision verdicts count too"


def test_the_index_links_every_section_and_api(frame: Callable[..., pd.DataFrame]) -> None:
    nan = {"outcome": "nonfinite", "explanation": "label_oob=nan"}
    guide = porting_guide(frame(*config_rows("mean"), *config_rows("sum", jax_native=nan)), ENV)
    assert guide.index("## Index") < guide.index("## Conventions") < guide.index("## Configurations")
    index = guide.split("## Index")[1].split("\n## ")[0]
    assert "| configuration | JAX/optax |" in index
    assert "[`softmax_cross_entropy_with_integer_labels`](#jaxoptax-optaxlossessoftmax_cross_entropy_with_integer" \
           "_labels-1) native ✗" in index  # fmt: skip
    links = re.findall(r"\]\(#([^)]+)\)", guide)
    assert len(links) >= 2 + 2 + 3 and set(links) <= github_anchors(guide), set(links) - github_anchors(guide)


def test_a_comment_many_snippets_repeat_is_one_note(frame: Callable[..., pd.DataFrame]) -> None:
    clamp = "x = jnp.maximum(x, -1e30)  # a -inf logit gives 0 * inf = NaN"
    rare = "y = y  # said twice"
    rows = [
        *config_rows("mean", jax_matched=f"{clamp}\n{rare}\nloss = optax.losses.f(x, y).mean()"),
        *config_rows("mean", label_smoothing=0.1, jax_matched=f"{clamp}\n{rare}\nloss = optax.losses.g(x, y).mean()"),
        *config_rows("mean", weighted=True, jax_matched=f"{clamp}\nloss = optax.losses.h(x, y).mean()"),
    ]
    guide = porting_guide(frame(*rows), ENV)
    assert guide.count("x = jnp.maximum(x, -1e30)  # [1]\n") == 3 and guide.count("0 * inf = NaN") == 1
    assert "- [1] a -inf logit gives 0 * inf = NaN (3 snippets)" in guide.split("## Configurations")[0]
    assert guide.count("y = y  # said twice") == 2, "a comment two snippets share stays"


def test_half_precision_verdicts_and_what_to_do(frame: Callable[..., pd.DataFrame]) -> None:
    overflow = {"outcome": "nonfinite", "explanation": "computed_in=float16"}
    rows = [
        *config_rows("mean"), *config_rows("mean", dtype="float16", jax_native=overflow),
        *config_rows("sum"), *config_rows("sum", dtype="float16"),
    ]  # fmt: skip
    guide = porting_guide(frame(*rows), ENV)
    mean, total = guide.split("\n### ")[1:]
    assert "**Half precision** (float16, each within its own tolerance; what to do" in mean
    assert "- JAX/optax `optax.losses.softmax_cross_entropy_with_integer_labels` native: float16 ✗ " \
           "computed_in=float16 (float32 ✓)" in mean  # fmt: skip
    assert "**Half precision** (float16, each within its own tolerance): the same verdicts as float32." in total
    assert "(also sum)" not in guide, "the sum's float16 verdicts are not the mean's: no fold"
    section = guide.split("## Half precision and rounding")[1].split("\n## ")[0]
    assert "- `computed_in=float16`: compute the loss in float32" in section
    assert "| JAX/optax `optax.losses.softmax_cross_entropy_with_integer_labels` | native | `computed_in=float16` | " \
           "float16 | 1 (1 rows) | see `computed_in=float16` above |" in section  # fmt: skip


def test_a_cause_is_explained_once_per_section(frame: Callable[..., pd.DataFrame]) -> None:
    norm = {"outcome": "mismatch", "explanation": "weight_norm=N", "recipe_code": "loss = (l * w[y]).mean()"}
    rows = config_rows("mean", weighted=True, jax_native=norm)
    other = [{**r, "api": "optax.losses.softmax_cross_entropy"} for r in rows if r["framework"] == "jax"]
    guide = porting_guide(frame(*rows, *other), ENV)
    assert guide.count("Why: `weight_norm=N`: weighted (or masked) mean") == 1
    assert "Why: `weight_norm=N` (as above)." in guide
