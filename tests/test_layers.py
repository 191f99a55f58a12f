"""The layers data flows through (cases -> adapters -> runner -> judge -> render -> api -> cli), checked
on the source: no module imports a later layer, and no import cycle exists, counting imports made inside
functions (only those under ``if TYPE_CHECKING:`` are left out: they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cases", "adapters", "harness")
LAYERS = (  # earliest first; a module may import its own layer and earlier ones
    ("cases", "harness.version"),
    ("adapters",),
    ("harness.runner",),
    ("harness.judge",),
    ("harness.render",),
    ("harness.api",),
    ("harness",),  # harness/__init__.py, cli.py, __main__.py
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    best = (-1, len(LAYERS))
    for k, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                best = max(best, (len(p), k))  # the longest matching prefix decides
    return best[1]


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules `path` imports (anywhere in it, but under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", 0) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in modules:  # `from x import y`: y may be a name in x, not a module
                name = name.rpartition(".")[0]
            if name and name != me:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    modules = {module_name(p) for p in files}
    return {module_name(p): imports(p, modules) for p in files}


def test_the_graph_is_read() -> None:
    """A meta-test: the scan sees function-level imports and skips TYPE_CHECKING ones."""
    g = graph()
    assert "harness.api.run" in g["harness.cli"], "cli.py imports the API inside its functions"
    assert "cases.spec" not in g["cases.data"], "cases/data.py imports Case under TYPE_CHECKING only"
    assert {"cases.arrays", "cases.data"} <= g["cases.spec"]


def test_no_module_imports_a_later_layer() -> None:
    bad = [f"{m} (layer {layer(m)}) imports {d} (layer {layer(d)})" for m, deps in graph().items() for d in deps
           if layer(d) > layer(m)]  # fmt: skip
    assert not bad, "\n".join(sorted(bad))


def test_there_is_no_import_cycle() -> None:
    g = graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for d in sorted(g.get(m, ())):
            if state.get(d) == 1:
                return [*path[path.index(d) :], d]
            if d not in state and (cycle := visit(d)):
                return cycle
        state[m] = 2
        path.pop()
        return None

    for m in sorted(g):
        if m not in state and (cycle := visit(m)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))
