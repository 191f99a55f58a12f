"""`--python FW=PATH`: a framework's workers under another interpreter, and a second install side by side."""

from __future__ import annotations

import site
import subprocess
import sys
from pathlib import Path

import pytest

from cases.names import UsageError
from harness.api.run import run
from harness.runner.interpreters import env_path, parse


@pytest.fixture(scope="module")
def other_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A second interpreter (its own venv) that sees this environment's packages through a .pth file."""
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True)
    (next(home.glob("lib/python*/site-packages")) / "parent.pth").write_text(site.getsitepackages()[0] + "\n")
    return str(home / "bin" / "python")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("jax", "Expected --python FRAMEWORK=INTERPRETER or FRAMEWORK='pkg==X ...'. Received: 'jax'"),
        ("jax=", "Expected --python FRAMEWORK=INTERPRETER or FRAMEWORK='pkg==X ...'. Received: 'jax='"),
        ("jx=/usr/bin/python3", "Expected framework in {"),
        ("jax=/no/such/python", "Expected an executable Python or pip requirements such as 'jax==0.9.2 jaxlib==0.9.2'. Received: --python jax='/no/such/python'"),
        ("jax@=jax==0.9.2", "Expected FRAMEWORK@LABEL, the label of letters, digits, '.', '_' or '-'. Received: 'jax@'"),
    ],
)
def test_bad_specs_get_one_line(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as e:
        parse([spec])
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_specs_name_an_interpreter_or_requirements() -> None:
    assert parse([f"torch={sys.executable}", "jax@new=jax==0.9.2 jaxlib==0.9.2"]) == {
        "torch": sys.executable, "jax@new": "jax==0.9.2 jaxlib==0.9.2"}  # fmt: skip
    # one environment per set of requirements, whatever their order
    assert env_path("jax==0.9.2 jaxlib==0.9.2") == env_path("jaxlib==0.9.2  jax==0.9.2")
    assert env_path("jax==0.9.2") != env_path("jax==0.9.1")


def test_a_second_install_runs_under_its_interpreter(other_python: str, tmp_path: Path) -> None:
    result = run("numpy", "documented", "float64", "cpu", timing="off", out=tmp_path / "run", quiet=True,
                 python=[f"numpy@other={other_python}"])  # fmt: skip
    fws = result.env["frameworks"]
    assert fws["numpy@other"]["python"]["executable"] == other_python, fws
    assert fws["numpy"]["python"]["executable"] == sys.executable, fws
    df = result.accuracy
    a, b = (df[df["framework"] == f].sort_values(["case_id", "api", "recipe"]) for f in ("numpy", "numpy@other"))
    assert len(a) == len(b) > 0
    for column in ("value", "outcome", "grad_rel_err"):
        assert a[column].reset_index(drop=True).equals(b[column].reset_index(drop=True)), column
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "## Version to version" in summary and "numpy@other 2." in summary, summary[-3000:]
